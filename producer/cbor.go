package producer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/fxamacker/cbor/v2"

	"github.com/freshet/freshet/internal/cborwire"
)

// The Kinesis CBOR 1.1 protocol is the JSON 1.1 protocol (POST /, X-Amz-Target) with
// bodies in CBOR, where blobs are raw byte strings instead of base64 text. The producer
// uses it for PutRecords only, through cborProtocol, which wraps the client's own
// protocol and hands every other operation to it.

const (
	contentTypeCBOR  = "application/x-amz-cbor-1.1"
	putRecordsTarget = "Kinesis_20131202.PutRecords"
)

// useCBOR is the per-call option that switches PutRecords to CBOR.
func useCBOR(o *kinesis.Options) {
	if _, ok := o.Protocol.(*cborProtocol); ok || o.Protocol == nil {
		return
	}
	o.Protocol = &cborProtocol{ClientProtocol: o.Protocol}
}

// cborProtocol encodes PutRecords requests and decodes their responses in CBOR.
type cborProtocol struct {
	smithyhttp.ClientProtocol
}

type bodyBufKey struct{}

// Request bodies are recycled through the producer's bodyFree list (one per call in
// flight, maxFreeBodyBytes in all; a sync.Pool would lose them at every garbage
// collection). The producer puts a buffer in the call's context and takes it back when
// the call has returned. net/http may still read a request body after RoundTrip
// returns, but not this one: smithy-go hands the transport a body that it closes
// before the call returns (sdkhttp's wrapper passes Close through), and a closed body
// reads as empty, so a recycled buffer is never read by the call it came from.

// maxFreeBodyBytes bounds the memory the free request bodies keep between calls: the
// bodies of 16 calls of 2 MiB, or fewer larger ones. The bodies of calls in flight are
// not counted: they are the records the buffer bound already counts, serialized.
const maxFreeBodyBytes = 32 << 20

// SerializeRequest implements smithyhttp.ClientProtocol.
func (c *cborProtocol) SerializeRequest(ctx context.Context, schema *smithy.OperationSchema, in smithy.Serializable, req *smithyhttp.Request) error {
	pr, ok := in.(*kinesis.PutRecordsInput)
	if !ok {
		return c.ClientProtocol.SerializeRequest(ctx, schema, in, req)
	}
	return setPutRecordsBody(ctx, req, contentTypeCBOR, appendPutRecordsCBOR, pr)
}

// setPutRecordsBody encodes pr with encode into the call's recycled body buffer (the
// one in ctx, if any, which then holds the body) and makes req send it.
func setPutRecordsBody(ctx context.Context, req *smithyhttp.Request, contentType string, encode func([]byte, *kinesis.PutRecordsInput) []byte, pr *kinesis.PutRecordsInput) error {
	var body []byte
	bp, _ := ctx.Value(bodyBufKey{}).(*[]byte)
	if bp != nil {
		body = (*bp)[:0]
	}
	body = encode(body, pr)
	if bp != nil {
		*bp = body
	}
	return cborwire.SetRequest(req, putRecordsTarget, contentType, body)
}

// DeserializeResponse implements smithyhttp.ClientProtocol.
func (c *cborProtocol) DeserializeResponse(ctx context.Context, schema *smithy.OperationSchema, reg *smithy.TypeRegistry, resp *smithyhttp.Response, out smithy.Deserializable) error {
	po, ok := out.(*kinesis.PutRecordsOutput)
	if !ok {
		return c.ClientProtocol.DeserializeResponse(ctx, schema, reg, resp, out)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return &smithy.DeserializationError{Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		err := decodeCBORError(resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), body)
		if cborwire.Rejected(resp.StatusCode, resp.Header.Get("Content-Type"), err) {
			return &smithy.DeserializationError{Err: &cborDecodeError{err: err}}
		}
		return err
	}
	if err := decodePutRecordsCBOR(body, po); err != nil {
		return &smithy.DeserializationError{Err: &cborDecodeError{err: err}}
	}
	return nil
}

// cborDecodeError is a CBOR PutRecords call the endpoint did not answer in CBOR: a
// successful response whose body could not be decoded, or an error response that
// rejects CBOR itself (cborwire.Rejected). The producer then stops using CBOR.
type cborDecodeError struct{ err error }

func (e *cborDecodeError) Error() string { return e.err.Error() }
func (e *cborDecodeError) Unwrap() error { return e.err }

// appendCBORHead appends a CBOR item head of major type major with argument n.
func appendCBORHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}

func appendCBORText(b []byte, s string) []byte {
	return append(appendCBORHead(b, 3, uint64(len(s))), s...)
}

// appendPutRecordsCBOR appends the CBOR body of a PutRecords call.
func appendPutRecordsCBOR(b []byte, in *kinesis.PutRecordsInput) []byte {
	size := 64
	for i := range in.Records {
		e := &in.Records[i]
		size += len(e.Data) + 48
		if e.PartitionKey != nil {
			size += len(*e.PartitionKey)
		}
		if e.ExplicitHashKey != nil {
			size += len(*e.ExplicitHashKey)
		}
	}
	if cap(b)-len(b) < size {
		nb := make([]byte, len(b), len(b)+size)
		copy(nb, b)
		b = nb
	}
	fields := 1
	if in.StreamName != nil {
		fields++
	}
	if in.StreamARN != nil {
		fields++
	}
	b = appendCBORHead(b, 5, uint64(fields))
	if in.StreamName != nil {
		b = appendCBORText(b, "StreamName")
		b = appendCBORText(b, *in.StreamName)
	}
	if in.StreamARN != nil {
		b = appendCBORText(b, "StreamARN")
		b = appendCBORText(b, *in.StreamARN)
	}
	b = appendCBORText(b, "Records")
	b = appendCBORHead(b, 4, uint64(len(in.Records)))
	for i := range in.Records {
		e := &in.Records[i]
		n := 1
		if e.PartitionKey != nil {
			n++
		}
		if e.ExplicitHashKey != nil {
			n++
		}
		b = appendCBORHead(b, 5, uint64(n))
		b = appendCBORText(b, "Data")
		b = appendCBORHead(b, 2, uint64(len(e.Data)))
		b = append(b, e.Data...)
		if e.PartitionKey != nil {
			b = appendCBORText(b, "PartitionKey")
			b = appendCBORText(b, *e.PartitionKey)
		}
		if e.ExplicitHashKey != nil {
			b = appendCBORText(b, "ExplicitHashKey")
			b = appendCBORText(b, *e.ExplicitHashKey)
		}
	}
	return b
}

var cborDecMode, _ = cbor.DecOptions{MaxArrayElements: 100000, MaxMapPairs: 100000, MaxNestedLevels: 8}.DecMode()

// decodePutRecordsCBOR decodes a PutRecords response body into out.
func decodePutRecordsCBOR(body []byte, out *kinesis.PutRecordsOutput) error {
	if err := cborwire.DecodePutRecordsOutput(body, out); err != nil {
		return fmt.Errorf("decode PutRecords response: %w", err)
	}
	return nil
}

// decodeCBORError turns an error response into a smithy API error.
func decodeCBORError(status int, header string, body []byte) error {
	var v struct {
		Type     string `cbor:"__type"`
		Code     string `cbor:"code"`
		Message  string `cbor:"message"`
		Message2 string `cbor:"Message"`
	}
	_ = cborDecMode.Unmarshal(body, &v)
	code := header
	if code == "" {
		code = v.Type
	}
	if code == "" {
		code = v.Code
	}
	if i := bytes.IndexByte([]byte(code), '#'); i >= 0 {
		code = code[i+1:]
	}
	if i := bytes.IndexByte([]byte(code), ':'); i >= 0 {
		code = code[:i]
	}
	if code == "" {
		code = http.StatusText(status)
	}
	msg := v.Message
	if msg == "" {
		msg = v.Message2
	}
	fault := smithy.FaultClient
	if status >= 500 {
		fault = smithy.FaultServer
	}
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: fault}
}
