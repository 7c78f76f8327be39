package kinesiswire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Media types and operation targets of the Kinesis protocols.
const (
	ContentTypeJSON  = "application/x-amz-json-1.1"
	PutRecordsTarget = "Kinesis_20131202.PutRecords"
	GetRecordsTarget = "Kinesis_20131202.GetRecords"
)

// maxResponseBody bounds a response body read into memory: GetRecords returns at most
// 10 MiB of data, a PutRecords response some 100 KiB.
const maxResponseBody = 64 << 20

// UseCBOR is the per-call option of kinesis.Client that sends PutRecords and GetRecords
// in CBOR, encoded and decoded here. Every other operation keeps the client's protocol.
func UseCBOR(o *kinesis.Options) { use(o, true) }

// UseJSON is the per-call option of kinesis.Client that encodes PutRecords requests and
// decodes their successful responses here, in JSON; errors and every other operation
// stay with the client's protocol.
func UseJSON(o *kinesis.Options) { use(o, false) }

func use(o *kinesis.Options, cbor bool) {
	if p, ok := o.Protocol.(*protocol); ok {
		if p.cbor == cbor {
			return
		}
		o.Protocol = p.ClientProtocol
	}
	if o.Protocol == nil {
		return
	}
	o.Protocol = &protocol{ClientProtocol: o.Protocol, cbor: cbor}
}

// protocol wraps the client's protocol for the operations whose bodies this package
// writes and reads.
type protocol struct {
	smithyhttp.ClientProtocol
	cbor bool
}

type bodyKey struct{}

// WithBody returns a context whose PutRecords call encodes its request body into *buf
// (reusing its capacity) and leaves it there, so that the caller can recycle the
// buffer after the call has returned. smithy-go closes the request body before the
// call returns, and a closed body reads as empty, so the transport never reads a
// buffer the caller has reused.
func WithBody(ctx context.Context, buf *[]byte) context.Context {
	return context.WithValue(ctx, bodyKey{}, buf)
}

// BodyOf returns the buffer WithBody put in ctx, or nil.
func BodyOf(ctx context.Context) *[]byte {
	bp, _ := ctx.Value(bodyKey{}).(*[]byte)
	return bp
}

// SerializeRequest implements smithyhttp.ClientProtocol.
func (p *protocol) SerializeRequest(ctx context.Context, schema *smithy.OperationSchema, in smithy.Serializable, req *smithyhttp.Request) error {
	switch in := in.(type) {
	case *kinesis.PutRecordsInput:
		var body []byte
		bp := BodyOf(ctx)
		if bp != nil {
			body = (*bp)[:0]
		}
		ct := ContentTypeJSON
		if p.cbor {
			ct = ContentType
		}
		enc, _ := ctx.Value(encodedKey{}).(*Encoded)
		body = AppendPutRecordsInput(body, in, enc, p.cbor)
		if bp != nil {
			*bp = body
		}
		return SetRequest(req, PutRecordsTarget, ct, body)
	case *kinesis.GetRecordsInput:
		if p.cbor {
			return SetRequest(req, GetRecordsTarget, ContentType, AppendGetRecordsInputCBOR(nil, in))
		}
	}
	return p.ClientProtocol.SerializeRequest(ctx, schema, in, req)
}

// DeserializeResponse implements smithyhttp.ClientProtocol.
func (p *protocol) DeserializeResponse(ctx context.Context, schema *smithy.OperationSchema, reg *smithy.TypeRegistry, resp *smithyhttp.Response, out smithy.Deserializable) error {
	var decode func([]byte) error
	op := ""
	switch out := out.(type) {
	case *kinesis.PutRecordsOutput:
		op = "PutRecords"
		if r := ResultEntriesOf(ctx); r != nil {
			out.Records = (*r)[:0]
		}
		decode = func(b []byte) error { return DecodePutRecordsOutputJSON(b, out) }
		if p.cbor {
			decode = func(b []byte) error { return DecodePutRecordsOutputCBOR(b, out) }
		}
	case *kinesis.GetRecordsOutput:
		if p.cbor {
			op = "GetRecords"
			decode = func(b []byte) error { return DecodeGetRecordsOutputCBOR(b, out) }
		}
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if decode == nil || !ok && !p.cbor {
		return p.ClientProtocol.DeserializeResponse(ctx, schema, reg, resp, out)
	}
	var body []byte
	var err error
	if op == "PutRecords" {
		// Its decoders and DecodeCBORError copy what they keep: the body is recycled.
		var bp *[]byte
		bp, err = readPooledBody(resp.Body, resp.ContentLength)
		if bp != nil {
			defer putResponseBody(bp)
			body = *bp
		}
	} else {
		body, err = readBody(resp.Body, resp.ContentLength)
	}
	if err != nil {
		return &smithy.DeserializationError{Err: err}
	}
	if !ok {
		err := DecodeCBORError(resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), body)
		if Rejected(resp.StatusCode, resp.Header.Get("Content-Type"), err) {
			return &smithy.DeserializationError{Err: &NotCBORError{Op: op, Err: err}}
		}
		return err
	}
	if err := decode(body); err != nil {
		err = fmt.Errorf("decode %s response: %w", op, err)
		if p.cbor {
			err = &NotCBORError{Op: op, Err: err}
		}
		return &smithy.DeserializationError{Err: err}
	}
	return nil
}

// NotCBORError is a CBOR call the endpoint did not answer in CBOR: a successful
// response whose body could not be decoded (kinesalite 3.3.3 cuts CBOR responses off
// at 16 KiB; kinesis-local sends data as base64 text), or an error response that
// rejects CBOR itself (Rejected). The caller should use JSON instead.
type NotCBORError struct {
	Op  string // PutRecords or GetRecords
	Err error
}

// Error implements error.
func (e *NotCBORError) Error() string { return e.Op + " not answered in CBOR: " + e.Err.Error() }

// Unwrap returns the decoding error.
func (e *NotCBORError) Unwrap() error { return e.Err }

// responseBodies are PutRecords response bodies kept for reuse (a response is some
// 30-100 KiB for 500 entries): at most 16, of at most maxPooledBody bytes each.
var responseBodies = make(chan *[]byte, 16)

const maxPooledBody = 1 << 20

// readPooledBody reads a whole response body, as readBody does, into a recycled buffer;
// putResponseBody gives it back once nothing refers to it.
func readPooledBody(r io.Reader, n int64) (*[]byte, error) {
	if n < 0 || n > maxPooledBody {
		b, err := readBody(r, n)
		return &b, err
	}
	var bp *[]byte
	select {
	case bp = <-responseBodies:
	default:
		bp = new([]byte)
	}
	if int64(cap(*bp)) < n {
		*bp = make([]byte, n)
	}
	*bp = (*bp)[:n]
	if _, err := io.ReadFull(r, *bp); err != nil {
		putResponseBody(bp)
		return nil, err
	}
	return bp, nil
}

func putResponseBody(bp *[]byte) {
	if cap(*bp) > maxPooledBody {
		return
	}
	select {
	case responseBodies <- bp:
	default:
	}
}

// readBody reads a whole response body into one buffer sized from Content-Length.
func readBody(r io.Reader, n int64) ([]byte, error) {
	if n < 0 || n > maxResponseBody {
		return io.ReadAll(io.LimitReader(r, maxResponseBody))
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// DecodeCBORError turns a CBOR error response into a smithy API error carrying the
// service's error code (X-Amzn-Errortype, else the body's __type or code; namespace
// and URI suffix removed, "HTTP<status>" if there is none) and message, so that errors
// classify as they do over JSON.
func DecodeCBORError(status int, header string, body []byte) error {
	code, msg := header, ""
	r := NewReader(body)
	var scratch []byte
	_ = r.fields(&scratch, func(key []byte) error {
		switch string(key) {
		case "__type", "code":
			s, err := r.Text(&scratch)
			if code == "" && err == nil {
				code = string(s)
			}
			return err
		case "message", "Message":
			s, err := r.Text(&scratch)
			if msg == "" && err == nil {
				msg = string(s)
			}
			return err
		}
		return r.Skip()
	})
	return apiError(status, code, msg)
}

// ContentType is the media type of Kinesis CBOR requests and responses.
const ContentType = "application/x-amz-cbor-1.1"

// Rejected reports whether an error response to a CBOR call (status, Content-Type and
// the error decoded from its body) says that the endpoint does not take CBOR at all,
// rather than reporting an error of the call: a 415, an error body that is not CBOR
// (Kinesis answers a CBOR call's errors in CBOR), or a serialization or
// unknown-operation error code.
func Rejected(status int, contentType string, err error) bool {
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if status == http.StatusUnsupportedMediaType || !strings.HasPrefix(contentType, ContentType) {
		return true
	}
	switch code {
	case "SerializationException", "UnknownOperationException", "UnsupportedMediaTypeException":
		return true
	}
	return false
}

// SetRequest makes req a call of the Kinesis JSON 1.1 or CBOR 1.1 protocol: POST to /
// (unless the endpoint has a path), operation target (for example PutRecordsTarget) in
// X-Amz-Target, contentType as Content-Type and Accept, and body as the stream, which
// the SDK then signs and sends.
func SetRequest(req *smithyhttp.Request, target, contentType string, body []byte) error {
	req.Method = http.MethodPost
	if len(req.URL.Path) == 0 {
		req.URL.Path = "/"
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", contentType)
	sreq, err := req.SetStream(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("set stream: %w", err)
	}
	*req = *sreq
	return nil
}
