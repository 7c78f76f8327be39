package kinesiswire

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// AppendEntryCBOR appends e, one PutRecords request entry, to b as the CBOR map a
// request's Records array holds, and returns the result and the index in it where e's
// data starts (the entry carries the data as raw bytes).
func AppendEntryCBOR(b []byte, e *types.PutRecordsRequestEntry) ([]byte, int) {
	n := 1
	if e.PartitionKey != nil {
		n++
	}
	if e.ExplicitHashKey != nil {
		n++
	}
	b = AppendHead(b, MajorMap, uint64(n))
	b = AppendText(b, "Data")
	b = AppendHead(b, MajorBytes, uint64(len(e.Data)))
	at := len(b)
	b = append(b, e.Data...)
	if e.PartitionKey != nil {
		b = AppendText(b, "PartitionKey")
		b = AppendText(b, *e.PartitionKey)
	}
	if e.ExplicitHashKey != nil {
		b = AppendText(b, "ExplicitHashKey")
		b = AppendText(b, *e.ExplicitHashKey)
	}
	return b, at
}

// EntrySizeCBOR is an upper bound of the bytes AppendEntryCBOR appends for e.
func EntrySizeCBOR(e *types.PutRecordsRequestEntry) int {
	n := len(e.Data) + 48
	if e.PartitionKey != nil {
		n += len(*e.PartitionKey)
	}
	if e.ExplicitHashKey != nil {
		n += len(*e.ExplicitHashKey)
	}
	return n
}

// AppendEntryJSON appends e, one PutRecords request entry, to b as the JSON object a
// request's Records array holds (data in base64).
func AppendEntryJSON(b []byte, e *types.PutRecordsRequestEntry) []byte {
	b = append(b, `{"Data":"`...)
	b = base64.StdEncoding.AppendEncode(b, e.Data)
	b = append(b, '"')
	if e.PartitionKey != nil {
		b = append(b, `,"PartitionKey":`...)
		b = AppendString(b, *e.PartitionKey)
	}
	if e.ExplicitHashKey != nil {
		b = append(b, `,"ExplicitHashKey":`...)
		b = AppendString(b, *e.ExplicitHashKey)
	}
	return append(b, '}')
}

// EntrySizeJSON is an upper bound of the bytes AppendEntryJSON appends for e.
func EntrySizeJSON(e *types.PutRecordsRequestEntry) int {
	n := base64.StdEncoding.EncodedLen(len(e.Data)) + 64
	if e.PartitionKey != nil {
		n += 6 * len(*e.PartitionKey)
	}
	if e.ExplicitHashKey != nil {
		n += 6 * len(*e.ExplicitHashKey)
	}
	return n
}

// Encoded holds PutRecords request entries encoded before the call, so that a caller
// can encode each record when it takes it in (its data still in the CPU's cache)
// instead of reading it back from memory when the call is made.
type Encoded struct {
	// CBOR is the protocol the entries are in: true for AppendEntryCBOR, false for
	// AppendEntryJSON. A call in the other protocol encodes every entry itself.
	CBOR bool
	// Entries holds, for each record of the call's input in order, its entry as
	// encoded, or nil where the call encodes the record from the input. A call whose
	// input has another number of records ignores them all.
	Entries [][]byte
}

type encodedKey struct{}

// WithEncoded returns a context whose PutRecords call takes the request entries in enc
// instead of encoding those records of its input. The entries must encode the same
// records as the input does: the input is what the client validates, the entries are
// what it sends.
func WithEncoded(ctx context.Context, enc *Encoded) context.Context {
	return context.WithValue(ctx, encodedKey{}, enc)
}

// AppendPutRecordsInput appends the body of a PutRecords call of in to b, in CBOR
// (cbor) or JSON, taking the entries of enc, when it is in that protocol and has an
// element per record of in, as they are encoded (enc may be nil).
func AppendPutRecordsInput(b []byte, in *kinesis.PutRecordsInput, enc *Encoded, cbor bool) []byte {
	var entries [][]byte
	if enc != nil && enc.CBOR == cbor && len(enc.Entries) == len(in.Records) {
		entries = enc.Entries
	}
	if cbor {
		return appendPutRecordsInputCBOR(b, in, entries)
	}
	return appendPutRecordsInputJSON(b, in, entries)
}

// EntryDataJSON returns the data of entry, a request entry as AppendEntryJSON writes
// it, decoded from its base64. Errors wrap ErrMalformedJSON.
func EntryDataJSON(entry []byte) ([]byte, error) {
	const prefix = `{"Data":"`
	if len(entry) < len(prefix) || string(entry[:len(prefix)]) != prefix {
		return nil, fmt.Errorf("%w: not a request entry", ErrMalformedJSON)
	}
	b64 := entry[len(prefix):]
	end := bytes.IndexByte(b64, '"')
	if end < 0 {
		return nil, fmt.Errorf("%w: unterminated data", ErrMalformedJSON)
	}
	data, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(end)), b64[:end])
	if err != nil {
		return nil, fmt.Errorf("%w: data: %v", ErrMalformedJSON, err)
	}
	return data, nil
}

// resultEntries returns room for n result entries: recs emptied when it has the room
// (a caller's recycled array, see WithResultEntries), else a new array.
func resultEntries(recs []types.PutRecordsResultEntry, n int) []types.PutRecordsResultEntry {
	if cap(recs) >= n {
		clear(recs[:cap(recs)])
		return recs[:0]
	}
	return make([]types.PutRecordsResultEntry, 0, n)
}

type resultsKey struct{}

// WithResultEntries returns a context whose PutRecords call decodes its response's
// entries into *recs when it has room for them (the output's Records then share its
// array), so that a caller done with the output can recycle the array for a later
// call instead of the decoder allocating one per call.
func WithResultEntries(ctx context.Context, recs *[]types.PutRecordsResultEntry) context.Context {
	return context.WithValue(ctx, resultsKey{}, recs)
}

// ResultEntriesOf returns the array WithResultEntries put in ctx, or nil.
func ResultEntriesOf(ctx context.Context) *[]types.PutRecordsResultEntry {
	r, _ := ctx.Value(resultsKey{}).(*[]types.PutRecordsResultEntry)
	return r
}
