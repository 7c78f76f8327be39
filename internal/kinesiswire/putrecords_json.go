package kinesiswire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// ErrMalformedJSON is wrapped by every error of DecodePutRecordsOutputJSON about a body
// that is not valid JSON or does not have the shape of a PutRecords response.
var ErrMalformedJSON = errors.New("kinesiswire: malformed JSON")

// maxJSONDepth bounds the nesting of skipped JSON values.
const maxJSONDepth = 64

// AppendPutRecordsInputJSON appends the JSON 1.1 body of a PutRecords call to b, sized
// up front (one allocation at most), base64 written straight into place. The SDK's
// serializer grows its buffer blob by blob and copies the result once more: for 5 MiB
// calls that is about a fifth of the JSON path's CPU.
func AppendPutRecordsInputJSON(b []byte, in *kinesis.PutRecordsInput) []byte {
	return appendPutRecordsInputJSON(b, in, nil)
}

// appendPutRecordsInputJSON is AppendPutRecordsInputJSON taking the entries in enc that
// are not nil as encoded (enc is nil or has an element per record).
func appendPutRecordsInputJSON(b []byte, in *kinesis.PutRecordsInput, enc [][]byte) []byte {
	size := 64
	for i := range in.Records {
		if enc != nil && enc[i] != nil {
			size += len(enc[i]) + 1
		} else {
			size += EntrySizeJSON(&in.Records[i])
		}
	}
	if in.StreamName != nil {
		size += 6 * len(*in.StreamName)
	}
	if in.StreamARN != nil {
		size += 6 * len(*in.StreamARN)
	}
	b = grow(b, size)
	b = append(b, '{')
	if in.StreamName != nil {
		b = append(b, `"StreamName":`...)
		b = AppendString(b, *in.StreamName)
		b = append(b, ',')
	}
	if in.StreamARN != nil {
		b = append(b, `"StreamARN":`...)
		b = AppendString(b, *in.StreamARN)
		b = append(b, ',')
	}
	b = append(b, `"Records":[`...)
	for i := range in.Records {
		if i > 0 {
			b = append(b, ',')
		}
		if enc != nil && enc[i] != nil {
			b = append(b, enc[i]...)
			continue
		}
		b = AppendEntryJSON(b, &in.Records[i])
	}
	return append(b, "]}"...)
}

// grow returns b with room for n more bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// DecodePutRecordsOutputJSON decodes the body of a successful JSON 1.1 PutRecords
// response into out, as the SDK's deserializer does (an empty body is an empty output; otherwise the body is one object whose keys
// match exactly; unknown keys and null values are skipped; what follows the object is
// not read), with the allocations of DecodePutRecordsOutputCBOR: one
// string per distinct shard ID and error code, the sequence numbers in one array.
// The entries go into out.Records' array when it has room for them all. Errors wrap
// ErrMalformedJSON.
func DecodePutRecordsOutputJSON(body []byte, out *kinesis.PutRecordsOutput) error {
	d := jsonDecoder{b: body}
	if len(body) == 0 {
		return nil
	}
	d.space()
	return d.object(func(key []byte) error {
		if d.literal("null") {
			return nil
		}
		switch string(key) {
		case "FailedRecordCount":
			n, err := d.int32()
			if err != nil {
				return err
			}
			out.FailedRecordCount = &n
		case "EncryptionType":
			s, err := d.str()
			if err != nil {
				return err
			}
			out.EncryptionType = types.EncryptionType(s)
		case "Records":
			return d.entries(out)
		default:
			return d.skip(0)
		}
		return nil
	})
}

func (d *jsonDecoder) entries(out *kinesis.PutRecordsOutput) error {
	// A first pass counts the entries, so that the entries and the sequence numbers
	// take one allocation each.
	n := d.countItems()
	out.Records = resultEntries(out.Records, n)
	ef := newEntryFields(n)
	return d.array(func() error {
		if len(out.Records) < cap(out.Records) {
			// Decoded in place: no copy of an entry's pointers.
			out.Records = out.Records[:len(out.Records)+1]
			if d.plainEntry(&ef, &out.Records[len(out.Records)-1]) {
				return nil
			}
			out.Records = out.Records[:len(out.Records)-1]
		}
		var e types.PutRecordsResultEntry
		if d.literal("null") {
			out.Records = append(out.Records, e)
			return nil
		}
		err := d.object(func(key []byte) error {
			if d.literal("null") {
				return nil
			}
			field := fieldOf(key)
			if field == 0 {
				return d.skip(0)
			}
			v, err := d.strBytes()
			if err != nil {
				return err
			}
			ef.set(&e, field, v)
			return nil
		})
		out.Records = append(out.Records, e)
		return err
	})
}

// plainEntry decodes the next entry as entries' general loop would, if it has the
// shape Kinesis writes: an object of at most four keys the decoder knows, each with a
// string value, with no white space and no escapes or control characters in its
// strings. It reports false, having consumed nothing, for any other entry, which the
// general loop then reads.
func (d *jsonDecoder) plainEntry(ef *entryFields, e *types.PutRecordsResultEntry) bool {
	b := d.b
	i := d.i
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	var fields [4]int
	var values [4][]byte
	n := 0
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			key, next, ok := plainString(b, i)
			if !ok || next >= len(b) || b[next] != ':' {
				return false
			}
			f := fieldOf(key)
			if f == 0 || n == len(fields) {
				return false
			}
			v, next, ok := plainString(b, next+1)
			if !ok || next >= len(b) {
				return false
			}
			fields[n], values[n] = f, v
			n++
			i = next + 1
			if b[next] == '}' {
				break
			}
			if b[next] != ',' {
				return false
			}
		}
	}
	for k := 0; k < n; k++ {
		ef.set(e, fields[k], values[k])
	}
	d.i = i
	d.space()
	return true
}

// plainString returns the string whose opening quote is at b[i] and the index after
// its closing quote; ok is false for any other value, or a string with an escape or a
// control character.
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	end := bytes.IndexByte(b[i+1:], '"')
	if end < 0 {
		return nil, 0, false
	}
	s = b[i+1 : i+1+end]
	for _, c := range s {
		if c == '\\' || c < 0x20 {
			return nil, 0, false
		}
	}
	return s, i + 2 + end, true
}

// jsonDecoder reads JSON values from a byte slice.
type jsonDecoder struct {
	b       []byte
	i       int
	scratch []byte
}

func (d *jsonDecoder) malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format+" at byte %d", append(append([]any{ErrMalformedJSON}, args...), d.i)...)
}

func (d *jsonDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// literal consumes lit (null, true, false) if it comes next.
func (d *jsonDecoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		d.space()
		return true
	}
	return false
}

func (d *jsonDecoder) expect(c byte) error {
	if d.i >= len(d.b) || d.b[d.i] != c {
		return d.malformed("%q expected", c)
	}
	d.i++
	d.space()
	return nil
}

// object calls f for every key of an object; f reads the value.
func (d *jsonDecoder) object(f func(key []byte) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		d.space()
		return nil
	}
	for {
		key, err := d.strBytes()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := f(key); err != nil {
			return err
		}
		if d.i < len(d.b) && d.b[d.i] == ',' {
			d.i++
			d.space()
			continue
		}
		return d.expect('}')
	}
}

// array calls f for every item of an array; f reads the item.
func (d *jsonDecoder) array(f func() error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		d.space()
		return nil
	}
	for {
		if err := f(); err != nil {
			return err
		}
		if d.i < len(d.b) && d.b[d.i] == ',' {
			d.i++
			d.space()
			continue
		}
		return d.expect(']')
	}
}

// countItems estimates the items of the array of entries that comes next, without
// consuming it, as the objects that open from there to the end of the body (one per
// entry; a brace inside a string or a nested object only adds to the estimate, which
// sizes the result and nothing else).
func (d *jsonDecoder) countItems() int {
	return bytes.Count(d.b[d.i:], openBrace)
}

var openBrace = []byte{'{'}

// strBytes reads a string. One without escapes aliases the body, its bytes as they
// are (as the SDK takes them); one with escapes is unquoted by encoding/json into the
// decoder's scratch buffer. Control characters are malformed.
func (d *jsonDecoder) strBytes() ([]byte, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, d.malformed("string expected")
	}
	start := d.i + 1
	escaped := false
	i := start
	for ; i < len(d.b); i++ {
		c := d.b[i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			d.i = i
			return nil, d.malformed("control character in a string")
		}
		if c == '\\' {
			escaped = true
			i++
		}
	}
	if i >= len(d.b) {
		return nil, d.malformed("unterminated string")
	}
	tok := d.b[d.i : i+1]
	d.i = i + 1
	d.space()
	if !escaped {
		return tok[1 : len(tok)-1], nil
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedJSON, err)
	}
	d.scratch = append(d.scratch[:0], s...)
	return d.scratch, nil
}

func (d *jsonDecoder) str() (string, error) {
	b, err := d.strBytes()
	return string(b), err
}

// number reads a number token as the JSON grammar defines it.
func (d *jsonDecoder) number() ([]byte, error) {
	start := d.i
	i := d.i
	if i < len(d.b) && d.b[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(d.b) && d.b[i] >= '0' && d.b[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(d.b) && d.b[i] == '0':
		i++
	case !digits():
		return nil, d.malformed("number expected")
	}
	if i < len(d.b) && d.b[i] == '.' {
		i++
		if !digits() {
			return nil, d.malformed("digits expected")
		}
	}
	if i < len(d.b) && (d.b[i] == 'e' || d.b[i] == 'E') {
		i++
		if i < len(d.b) && (d.b[i] == '+' || d.b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, d.malformed("digits expected")
		}
	}
	d.i = i
	d.space()
	return d.b[start:i], nil
}

func (d *jsonDecoder) int32() (int32, error) {
	tok, err := d.number()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(tok), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: FailedRecordCount %s", ErrMalformedJSON, tok)
	}
	return int32(n), nil
}

// skip reads past the next value, whatever it is.
func (d *jsonDecoder) skip(depth int) error {
	if depth > maxJSONDepth {
		return d.malformed("nested deeper than %d", maxJSONDepth)
	}
	if d.i >= len(d.b) {
		return d.malformed("value expected")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(func([]byte) error { return d.skip(depth + 1) })
	case c == '[':
		return d.array(func() error { return d.skip(depth + 1) })
	case c == '"':
		_, err := d.strBytes()
		return err
	case c == '-' || c >= '0' && c <= '9':
		_, err := d.number()
		return err
	case d.literal("true"), d.literal("false"), d.literal("null"):
		return nil
	}
	return d.malformed("value expected")
}
