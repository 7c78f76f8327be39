package cborwire

import (
	"bytes"
	"math"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// DecodePutRecordsOutput decodes the body of a successful CBOR PutRecords response into
// out: FailedRecordCount, EncryptionType and every result entry (SequenceNumber,
// ShardId, ErrorCode, ErrorMessage); other keys and null values are skipped. Entries
// share one string per distinct shard ID and error code, and their sequence numbers
// sit in one array, so a 500-entry response costs a few allocations instead of
// thousands. Errors wrap ErrMalformed.
func DecodePutRecordsOutput(body []byte, out *kinesis.PutRecordsOutput) error {
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

func decodeEntries(r *Reader, out *kinesis.PutRecordsOutput, scratch *[]byte) error {
	items, err := r.Container(MajorArray)
	if err != nil {
		return err
	}
	n := items.Count()
	var seqs []string
	if n >= 0 {
		out.Records = make([]types.PutRecordsResultEntry, 0, n)
		seqs = make([]string, 0, n)
	}
	var ids, codes interned
	for r.Next(&items) {
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
			var field int
			switch {
			case bytes.Equal(key, []byte("SequenceNumber")):
				field = 1
			case bytes.Equal(key, []byte("ShardId")):
				field = 2
			case bytes.Equal(key, []byte("ErrorCode")):
				field = 3
			case bytes.Equal(key, []byte("ErrorMessage")):
				field = 4
			default:
				if err := r.Skip(); err != nil {
					return err
				}
				continue
			}
			v, err := r.Text(scratch)
			if err != nil {
				return err
			}
			switch field {
			case 1:
				if len(seqs) == cap(seqs) {
					// Indefinite array (or more entries than announced): a new backing
					// array; entries already decoded keep pointing into the old one.
					seqs = make([]string, 0, max(16, 2*cap(seqs)))
				}
				seqs = append(seqs, string(v))
				e.SequenceNumber = &seqs[len(seqs)-1]
			case 2:
				e.ShardId = ids.get(v)
			case 3:
				e.ErrorCode = codes.get(v)
			case 4:
				s := string(v)
				e.ErrorMessage = &s
			}
		}
		out.Records = append(out.Records, e)
	}
	return nil
}
