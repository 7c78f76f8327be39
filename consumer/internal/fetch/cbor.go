package fetch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/freshet/freshet/internal/cborwire"
)

// GetRecords over the Kinesis CBOR 1.1 protocol: the JSON 1.1 protocol (POST /,
// X-Amz-Target) with CBOR bodies, where record data travels as raw byte strings instead
// of base64 text. The Java SDK talks to Kinesis this way by default. Decoding a response
// costs one pass over the body, and each record's Data is a slice of the body (one
// allocation per call, no copy per record).

const (
	contentTypeCBOR  = "application/x-amz-cbor-1.1"
	getRecordsTarget = "Kinesis_20131202.GetRecords"
	// maxGetRecordsBody bounds a response body: GetRecords returns at most 10 MiB of data.
	maxGetRecordsBody = 64 << 20
)

// UseCBOR is a per-call option of kinesis.Client.GetRecords that sends the call in CBOR.
// Every other operation keeps the client's protocol.
func UseCBOR(o *kinesis.Options) {
	if _, ok := o.Protocol.(*cborProtocol); ok || o.Protocol == nil {
		return
	}
	o.Protocol = &cborProtocol{ClientProtocol: o.Protocol}
}

// cborProtocol encodes GetRecords requests and decodes their responses in CBOR.
type cborProtocol struct {
	smithyhttp.ClientProtocol
}

// SerializeRequest implements smithyhttp.ClientProtocol.
func (c *cborProtocol) SerializeRequest(ctx context.Context, schema *smithy.OperationSchema, in smithy.Serializable, req *smithyhttp.Request) error {
	gr, ok := in.(*kinesis.GetRecordsInput)
	if !ok {
		return c.ClientProtocol.SerializeRequest(ctx, schema, in, req)
	}
	return cborwire.SetRequest(req, getRecordsTarget, contentTypeCBOR, appendGetRecordsInputCBOR(nil, gr))
}

// DeserializeResponse implements smithyhttp.ClientProtocol.
func (c *cborProtocol) DeserializeResponse(ctx context.Context, schema *smithy.OperationSchema, reg *smithy.TypeRegistry, resp *smithyhttp.Response, out smithy.Deserializable) error {
	gro, ok := out.(*kinesis.GetRecordsOutput)
	if !ok {
		return c.ClientProtocol.DeserializeResponse(ctx, schema, reg, resp, out)
	}
	body, err := readBody(resp.Body, resp.ContentLength)
	if err != nil {
		return &smithy.DeserializationError{Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		err := decodeCBORError(resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), body)
		if cborwire.Rejected(resp.StatusCode, resp.Header.Get("Content-Type"), err) {
			return &smithy.DeserializationError{Err: &CBORDecodeError{Err: err}}
		}
		return err
	}
	if err := DecodeGetRecordsCBOR(body, gro); err != nil {
		return &smithy.DeserializationError{Err: &CBORDecodeError{Err: err}}
	}
	return nil
}

// CBORDecodeError is a CBOR GetRecords call the endpoint did not answer in CBOR: a
// successful response whose body could not be decoded (kinesalite 3.3.3 cuts CBOR
// responses off at 16 KiB; kinesis-local sends data as base64 text), or an error
// response that rejects CBOR itself (cborwire.Rejected). The caller should read in JSON
// instead.
type CBORDecodeError struct{ Err error }

// Error implements error.
func (e *CBORDecodeError) Error() string {
	return "GetRecords not answered in CBOR: " + e.Err.Error()
}

// Unwrap returns the decoding error.
func (e *CBORDecodeError) Unwrap() error { return e.Err }

// cborEpoch converts a timestamp of the Kinesis CBOR protocol. Kinesis writes epoch
// milliseconds under tag 1 (not the seconds RFC 8949 specifies, which kinesalite
// writes); no arrival time is a billion seconds or more from 1970 (the year 5138) or
// under 1e11 milliseconds (1973), so the magnitude tells the two apart.
func cborEpoch(f float64) time.Time {
	if math.Abs(f) >= 1e11 {
		return time.UnixMilli(int64(math.Round(f)))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond))
}

// readBody reads a whole response body into one buffer sized from Content-Length.
func readBody(r io.Reader, n int64) ([]byte, error) {
	if n < 0 || n > maxGetRecordsBody {
		return io.ReadAll(io.LimitReader(r, maxGetRecordsBody))
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}

func appendText(b []byte, s string) []byte { return append(appendHead(b, 3, uint64(len(s))), s...) }

// appendGetRecordsInputCBOR encodes a GetRecords request.
func appendGetRecordsInputCBOR(b []byte, in *kinesis.GetRecordsInput) []byte {
	n := uint64(1)
	if in.Limit != nil {
		n++
	}
	if in.StreamARN != nil {
		n++
	}
	b = appendHead(b, 5, n)
	b = appendText(appendText(b, "ShardIterator"), aws.ToString(in.ShardIterator))
	if in.Limit != nil {
		b = appendText(b, "Limit")
		if v := *in.Limit; v >= 0 {
			b = appendHead(b, 0, uint64(v))
		} else {
			b = appendHead(b, 1, uint64(-1-int64(v)))
		}
	}
	if in.StreamARN != nil {
		b = appendText(appendText(b, "StreamARN"), *in.StreamARN)
	}
	return b
}

// errCBOR reports a malformed CBOR body.
var errCBOR = errors.New("malformed CBOR")

// cborReader reads CBOR items from a buffer. Strings it returns share the buffer's
// memory only for byte strings; text strings are copied.
type cborReader struct {
	b   []byte
	off int
}

const indefinite = math.MaxUint64

// head reads an item head: major type, additional info and argument (indefinite for
// indefinite-length strings, arrays and maps).
func (r *cborReader) head() (major, info byte, arg uint64, err error) {
	if r.off >= len(r.b) {
		return 0, 0, 0, errCBOR
	}
	c := r.b[r.off]
	r.off++
	major, info = c>>5, c&31
	switch {
	case info < 24:
		return major, info, uint64(info), nil
	case info <= 27:
		n := 1 << (info - 24)
		if len(r.b)-r.off < n {
			return 0, 0, 0, errCBOR
		}
		p := r.b[r.off : r.off+n]
		r.off += n
		switch n {
		case 1:
			arg = uint64(p[0])
		case 2:
			arg = uint64(binary.BigEndian.Uint16(p))
		case 4:
			arg = uint64(binary.BigEndian.Uint32(p))
		default:
			arg = binary.BigEndian.Uint64(p)
		}
		return major, info, arg, nil
	case info == 31 && major >= 2 && major <= 5:
		return major, info, indefinite, nil
	case info == 31 && major == 7:
		return major, info, 0, nil // break
	}
	return 0, 0, 0, errCBOR
}

// isBreak reports (and consumes) a break byte.
func (r *cborReader) isBreak() bool {
	if r.off < len(r.b) && r.b[r.off] == 0xff {
		r.off++
		return true
	}
	return false
}

// bytesOf reads a byte or text string of major type m. Definite strings are returned
// as slices of the buffer; indefinite ones are joined into a new slice.
func (r *cborReader) bytesOf(m byte) ([]byte, error) {
	major, _, n, err := r.head()
	if err != nil {
		return nil, err
	}
	if major == 7 && (n == 22 || n == 23) { // null, undefined
		return nil, nil
	}
	if major != m {
		return nil, errCBOR
	}
	if n != indefinite {
		if uint64(len(r.b)-r.off) < n {
			return nil, errCBOR
		}
		s := r.b[r.off : r.off+int(n) : r.off+int(n)]
		r.off += int(n)
		return s, nil
	}
	var out []byte
	for !r.isBreak() {
		chunk, err := r.bytesOf(m)
		if err != nil {
			return nil, err
		}
		out = append(out, chunk...)
	}
	return out, nil
}

func (r *cborReader) text() (string, error) {
	b, err := r.bytesOf(3)
	return string(b), err
}

// int reads an integer (or a float with an integral value).
func (r *cborReader) int() (int64, error) {
	f, err := r.number()
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		return 0, errCBOR
	}
	return int64(f), nil
}

// number reads an integer or float, or a tag 1 (epoch time) around one.
func (r *cborReader) number() (float64, error) {
	start := r.off
	major, info, n, err := r.head()
	if err != nil {
		return 0, err
	}
	switch major {
	case 0:
		return float64(n), nil
	case 1:
		return -1 - float64(n), nil
	case 6:
		return r.number()
	case 7:
		switch info {
		case 25:
			return float64(halfToFloat(uint16(n))), nil
		case 26:
			return float64(math.Float32frombits(uint32(n))), nil
		case 27:
			return math.Float64frombits(n), nil
		}
	}
	r.off = start
	return 0, errCBOR
}

// halfToFloat converts an IEEE 754 half-precision value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h & 0x3ff)
	switch exp {
	case 0: // zero or subnormal: frac * 2^-24
		v := float32(frac) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	case 31:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// skip skips one item.
func (r *cborReader) skip(depth int) error {
	if depth > 32 {
		return errCBOR
	}
	major, info, n, err := r.head()
	if err != nil {
		return err
	}
	switch major {
	case 0, 1:
		return nil
	case 2, 3:
		if n == indefinite {
			for !r.isBreak() {
				if err := r.skip(depth + 1); err != nil {
					return err
				}
			}
			return nil
		}
		if uint64(len(r.b)-r.off) < n {
			return errCBOR
		}
		r.off += int(n)
		return nil
	case 4, 5:
		per := uint64(1)
		if major == 5 {
			per = 2
		}
		if n == indefinite {
			for !r.isBreak() {
				for i := uint64(0); i < per; i++ {
					if err := r.skip(depth + 1); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if n > uint64(len(r.b)) {
			return errCBOR
		}
		for i := uint64(0); i < n*per; i++ {
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case 6:
		return r.skip(depth + 1)
	}
	if info == 31 {
		return errCBOR // a break outside an indefinite item
	}
	return nil
}

// each calls f for every element of an array, or every key of a map (f reads the value).
func (r *cborReader) each(major byte, f func() error) error {
	m, _, n, err := r.head()
	if err != nil {
		return err
	}
	if m == 7 && (n == 22 || n == 23) {
		return nil
	}
	if m != major {
		return errCBOR
	}
	if n == indefinite {
		for !r.isBreak() {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		return errCBOR
	}
	for i := uint64(0); i < n; i++ {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// DecodeGetRecordsCBOR decodes a GetRecords response body into out. Record data shares
// body's memory; unknown fields are skipped.
func DecodeGetRecordsCBOR(body []byte, out *kinesis.GetRecordsOutput) error {
	r := &cborReader{b: body}
	err := r.each(5, func() error {
		key, err := r.bytesOf(3)
		if err != nil {
			return err
		}
		switch string(key) {
		case "Records":
			return r.each(4, func() error {
				rec, err := r.record()
				if err == nil {
					out.Records = append(out.Records, rec)
				}
				return err
			})
		case "NextShardIterator":
			s, err := r.bytesOf(3)
			if err == nil && s != nil {
				out.NextShardIterator = aws.String(string(s))
			}
			return err
		case "MillisBehindLatest":
			n, err := r.int()
			if err == nil {
				out.MillisBehindLatest = aws.Int64(n)
			}
			return err
		case "ChildShards":
			return r.each(4, func() error {
				c, err := r.childShard()
				if err == nil {
					out.ChildShards = append(out.ChildShards, c)
				}
				return err
			})
		}
		return r.skip(0)
	})
	if err != nil {
		return fmt.Errorf("decode GetRecords response at byte %d: %w", r.off, err)
	}
	if r.off != len(body) {
		return fmt.Errorf("decode GetRecords response: %d trailing bytes: %w", len(body)-r.off, errCBOR)
	}
	return nil
}

func (r *cborReader) record() (types.Record, error) {
	var rec types.Record
	err := r.each(5, func() error {
		key, err := r.bytesOf(3)
		if err != nil {
			return err
		}
		switch string(key) {
		case "Data":
			rec.Data, err = r.bytesOf(2)
			if err == nil && rec.Data == nil {
				rec.Data = []byte{}
			}
			return err
		case "PartitionKey":
			s, err := r.text()
			rec.PartitionKey = &s
			return err
		case "SequenceNumber":
			s, err := r.text()
			rec.SequenceNumber = &s
			return err
		case "ApproximateArrivalTimestamp":
			f, err := r.number()
			if err == nil {
				t := cborEpoch(f)
				rec.ApproximateArrivalTimestamp = &t
			}
			return err
		case "EncryptionType":
			s, err := r.text()
			rec.EncryptionType = types.EncryptionType(s)
			return err
		}
		return r.skip(0)
	})
	return rec, err
}

func (r *cborReader) childShard() (types.ChildShard, error) {
	var c types.ChildShard
	err := r.each(5, func() error {
		key, err := r.bytesOf(3)
		if err != nil {
			return err
		}
		switch string(key) {
		case "ShardId":
			s, err := r.text()
			c.ShardId = &s
			return err
		case "ParentShards":
			return r.each(4, func() error {
				s, err := r.text()
				c.ParentShards = append(c.ParentShards, s)
				return err
			})
		case "HashKeyRange":
			var h types.HashKeyRange
			err := r.each(5, func() error {
				key, err := r.bytesOf(3)
				if err != nil {
					return err
				}
				switch string(key) {
				case "StartingHashKey":
					s, err := r.text()
					h.StartingHashKey = &s
					return err
				case "EndingHashKey":
					s, err := r.text()
					h.EndingHashKey = &s
					return err
				}
				return r.skip(0)
			})
			c.HashKeyRange = &h
			return err
		}
		return r.skip(0)
	})
	return c, err
}

// decodeCBORError turns an error response into a smithy API error carrying the service's
// error code, so errors classify as they do over JSON.
func decodeCBORError(status int, header string, body []byte) error {
	code, msg := header, ""
	r := &cborReader{b: body}
	_ = r.each(5, func() error {
		key, err := r.bytesOf(3)
		if err != nil {
			return err
		}
		switch string(key) {
		case "__type", "code":
			s, err := r.text()
			if code == "" {
				code = s
			}
			return err
		case "message", "Message":
			s, err := r.text()
			if msg == "" {
				msg = s
			}
			return err
		}
		return r.skip(0)
	})
	if i := bytes.IndexByte([]byte(code), '#'); i >= 0 {
		code = code[i+1:]
	}
	if i := bytes.IndexByte([]byte(code), ':'); i >= 0 {
		code = code[:i]
	}
	if code == "" {
		code = "HTTP" + strconv.Itoa(status)
	}
	fault := smithy.FaultClient
	if status >= 500 {
		fault = smithy.FaultServer
	}
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: fault}
}
