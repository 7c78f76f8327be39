package kinesiswire

import (
	"math"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// AppendPutRecordsInputCBOR appends the CBOR body of a PutRecords call to b, sized up
// front (one allocation at most), record data as raw byte strings.
func AppendPutRecordsInputCBOR(b []byte, in *kinesis.PutRecordsInput) []byte {
	return appendPutRecordsInputCBOR(b, in, nil)
}

// appendPutRecordsInputCBOR is AppendPutRecordsInputCBOR taking the entries in enc that
// are not nil as encoded (enc is nil or has an element per record).
func appendPutRecordsInputCBOR(b []byte, in *kinesis.PutRecordsInput, enc [][]byte) []byte {
	size := 64
	for i := range in.Records {
		if enc != nil && enc[i] != nil {
			size += len(enc[i])
		} else {
			size += EntrySizeCBOR(&in.Records[i])
		}
	}
	b = grow(b, size)
	fields := 1
	if in.StreamName != nil {
		fields++
	}
	if in.StreamARN != nil {
		fields++
	}
	b = AppendHead(b, MajorMap, uint64(fields))
	if in.StreamName != nil {
		b = AppendText(b, "StreamName")
		b = AppendText(b, *in.StreamName)
	}
	if in.StreamARN != nil {
		b = AppendText(b, "StreamARN")
		b = AppendText(b, *in.StreamARN)
	}
	b = AppendText(b, "Records")
	b = AppendHead(b, MajorArray, uint64(len(in.Records)))
	for i := range in.Records {
		if enc != nil && enc[i] != nil {
			b = append(b, enc[i]...)
			continue
		}
		b, _ = AppendEntryCBOR(b, &in.Records[i])
	}
	return b
}

// DecodePutRecordsOutputCBOR decodes the body of a successful CBOR PutRecords response into
// out: FailedRecordCount, EncryptionType and every result entry (SequenceNumber,
// ShardId, ErrorCode, ErrorMessage); other keys and null values are skipped. Entries
// share one string per distinct shard ID and error code, and their sequence numbers
// sit in one array, so a 500-entry response costs a few allocations instead of
// thousands; the entries go into out.Records' array when it has room for them all
// (WithResultEntries). Errors wrap ErrMalformed.
func DecodePutRecordsOutputCBOR(body []byte, out *kinesis.PutRecordsOutput) error {
	r := NewReader(body)
	if r.IsNull() && r.Done() {
		return nil
	}
	top, err := r.Container(MajorMap)
	if err != nil {
		return err
	}
	var scratch []byte
	for r.Next(&top) {
		key, ok, err := r.Key(&scratch)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if r.IsNull() {
			continue
		}
		switch string(key) {
		case "FailedRecordCount":
			n, err := r.Int()
			if err != nil {
				return err
			}
			if n < math.MinInt32 || n > math.MaxInt32 {
				return malformed("FailedRecordCount %d out of range", n)
			}
			v := int32(n)
			out.FailedRecordCount = &v
		case "EncryptionType":
			s, err := r.Text(&scratch)
			if err != nil {
				return err
			}
			out.EncryptionType = types.EncryptionType(s)
		case "Records":
			if err := decodeEntries(r, out, &scratch); err != nil {
				return err
			}
		default:
			if err := r.Skip(); err != nil {
				return err
			}
		}
	}
	if !r.Done() {
		return malformed("%d bytes after the response", len(body)-r.i)
	}
	return nil
}

// interned keeps one string per distinct value (shard IDs, error codes: a handful per
// response).
type interned []*string

func (in *interned) get(b []byte) *string {
	for _, s := range *in {
		if *s == string(b) {
			return s
		}
	}
	s := string(b)
	*in = append(*in, &s)
	return &s
}

// entryFields sets the fields of PutRecords result entries as a decoder reads them: the
// sequence numbers share one backing array, shard IDs and error codes are interned.
type entryFields struct {
	seqs       []string
	ids, codes interned
	// seqBytes holds the bytes of the sequence numbers, one after another; each
	// sequence number is a string over its part (see seq), so a response's sequence
	// numbers take one or a few allocations instead of one each.
	seqBytes []byte
}

// seqBytesPerEntry is room for one sequence number (56 digits today) in seqBytes.
const seqBytesPerEntry = 56

// newEntryFields returns the fields of a response of n entries (n < 0: unknown).
func newEntryFields(n int) entryFields {
	if n < 0 {
		return entryFields{}
	}
	return entryFields{seqs: make([]string, 0, n), seqBytes: make([]byte, 0, n*seqBytesPerEntry)}
}

// seq returns a string of v's bytes. It appends them to seqBytes and returns a string
// over that copy: bytes once appended are never written again (a growing append
// moves later bytes to a new array and leaves the old one to the strings over it),
// which is the contract unsafe.String asks for. A caller keeping one sequence number
// keeps its response's seqBytes array alive (some 28 KiB for 500 entries).
func (ef *entryFields) seq(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	start := len(ef.seqBytes)
	ef.seqBytes = append(ef.seqBytes, v...)
	return unsafe.String(&ef.seqBytes[start], len(v))
}

// Entry fields, numbered by fieldOf.
const (
	fieldSequenceNumber = iota + 1
	fieldShardID
	fieldErrorCode
	fieldErrorMessage
)

// fieldOf returns the entry field named key, or 0 for a field the decoder skips.
func fieldOf(key []byte) int {
	switch string(key) {
	case "SequenceNumber":
		return fieldSequenceNumber
	case "ShardId":
		return fieldShardID
	case "ErrorCode":
		return fieldErrorCode
	case "ErrorMessage":
		return fieldErrorMessage
	}
	return 0
}

// set stores v as field f of e.
func (ef *entryFields) set(e *types.PutRecordsResultEntry, f int, v []byte) {
	switch f {
	case fieldSequenceNumber:
		if len(ef.seqs) == cap(ef.seqs) {
			// Indefinite array (or more entries than announced): a new backing array;
			// entries already decoded keep pointing into the old one.
			ef.seqs = make([]string, 0, max(16, 2*cap(ef.seqs)))
		}
		ef.seqs = append(ef.seqs, ef.seq(v))
		e.SequenceNumber = &ef.seqs[len(ef.seqs)-1]
	case fieldShardID:
		e.ShardId = ef.ids.get(v)
	case fieldErrorCode:
		e.ErrorCode = ef.codes.get(v)
	case fieldErrorMessage:
		s := string(v)
		e.ErrorMessage = &s
	}
}

func decodeEntries(r *Reader, out *kinesis.PutRecordsOutput, scratch *[]byte) error {
	items, err := r.Container(MajorArray)
	if err != nil {
		return err
	}
	n := items.Count()
	ef := newEntryFields(n)
	if n >= 0 {
		out.Records = resultEntries(out.Records, n)
	}
	for r.Next(&items) {
		if len(out.Records) < cap(out.Records) {
			// Decoded in place: no copy of an entry's pointers.
			out.Records = out.Records[:len(out.Records)+1]
			if r.plainEntry(&ef, &out.Records[len(out.Records)-1]) {
				continue
			}
			out.Records = out.Records[:len(out.Records)-1]
		}
		e := types.PutRecordsResultEntry{}
		if r.IsNull() {
			out.Records = append(out.Records, e)
			continue
		}
		fields, err := r.Container(MajorMap)
		if err != nil {
			return err
		}
		for r.Next(&fields) {
			key, ok, err := r.Key(scratch)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if r.IsNull() {
				continue
			}
			field := fieldOf(key)
			if field == 0 {
				if err := r.Skip(); err != nil {
					return err
				}
				continue
			}
			v, err := r.Text(scratch)
			if err != nil {
				return err
			}
			ef.set(&e, field, v)
		}
		out.Records = append(out.Records, e)
	}
	return nil
}

// plainEntry decodes the next entry as decodeEntries' general loop would, if it has
// the shape Kinesis writes: a definite map of at most four text keys the decoder knows,
// each with a definite text value, and no tags. It reports false, having consumed
// nothing, for any other entry, which the general loop then reads. It saves the general
// loop's per-item calls: an entry costs a few comparisons and its copies.
func (r *Reader) plainEntry(ef *entryFields, e *types.PutRecordsResultEntry) bool {
	b := r.b[r.i:]
	if len(b) == 0 || b[0]>>5 != MajorMap || b[0]&0x1f > 4 {
		return false
	}
	n := int(b[0] & 0x1f)
	var fields [4]int
	var values [4][]byte
	j := 1
	for k := 0; k < n; k++ {
		key, next, ok := shortText(b, j)
		if !ok {
			return false
		}
		f := fieldOf(key)
		if f == 0 {
			return false
		}
		v, next, ok := shortText(b, next)
		if !ok {
			return false
		}
		fields[k], values[k], j = f, v, next
	}
	for k := 0; k < n; k++ {
		ef.set(e, fields[k], values[k])
	}
	r.i += j
	return true
}

// shortText returns the definite text string whose head is at b[i] (a length below
// 65,536) and the index after it; ok is false for any other item or one cut off.
func shortText(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i]>>5 != MajorText {
		return nil, 0, false
	}
	n, at := int(b[i]&0x1f), i+1
	switch {
	case n < 24:
	case n == 24 && at < len(b):
		n, at = int(b[at]), at+1
	case n == 25 && at+1 < len(b):
		n, at = int(b[at])<<8|int(b[at+1]), at+2
	default:
		return nil, 0, false
	}
	if n > len(b)-at {
		return nil, 0, false
	}
	return b[at : at+n], at + n, true
}
