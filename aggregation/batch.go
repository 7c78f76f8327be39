package aggregation

import (
	"bytes"
	"crypto/md5"
	"fmt"
)

// batchChunk is how many records AppendBatch prepares at a time: enough to
// fill every MD5 lane several times over, few enough that the scratch kept
// between calls stays small (a few KiB) whatever the batch size.
const batchChunk = 256

// batchItem is what AppendBatch learned about one record before decoding it.
type batchItem struct {
	agg  []byte // the KPL aggregate: the record's data or a frame's content
	err  error  // why a frame could not be opened
	kind recordKind
	sum  sumState
}

// RecordError is one malformed record of a batch given to AppendBatch.
type RecordError struct {
	// Index is the record's position in the records passed to AppendBatch.
	Index int
	// Err says why it could not be decoded, exactly as Append reports it.
	Err *MalformedError
}

// BatchError reports the malformed records of a batch given to AppendBatch.
// Every one of them was still delivered whole as one plain record, in its
// place in the batch, as Append does. errors.Is(err, ErrMalformed) and the
// specific causes (ErrChecksum, ErrProtobuf, ...) match through Unwrap, and
// errors.As finds the first record's *MalformedError.
type BatchError struct {
	// Records lists the malformed records in batch order.
	Records []RecordError
}

// Error implements error.
func (e *BatchError) Error() string {
	if len(e.Records) == 0 {
		return "aggregation: no malformed records in batch"
	}
	first := e.Records[0]
	if len(e.Records) == 1 {
		return fmt.Sprintf("aggregation: record %d of batch: %v", first.Index, first.Err)
	}
	return fmt.Sprintf("aggregation: %d malformed records in batch, first at %d: %v", len(e.Records), first.Index, first.Err)
}

// Unwrap returns the *MalformedError of each malformed record.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, len(e.Records))
	for i, r := range e.Records {
		errs[i] = r.Err
	}
	return errs
}

// AppendBatch decodes a batch of Kinesis records, as GetRecords returns
// them, in order, and appends their user records to dst. For each record it
// also appends to ends the length out has after that record's user records.
// Called with empty dst and ends (pass dst[:0] and ends[:0] to reuse them
// between batches), the user records of records[i] are
// out[outEnds[i-1]:outEnds[i]], starting at 0 for i == 0; records in dst and
// ends on entry are left as they are.
//
// Each record decodes exactly as Append decodes it: the same user records,
// sub-sequence numbers, keys, hash-range filtering, decompression and
// limits; a malformed record is delivered whole as one plain record. The
// only difference is speed: with MD5 verification on, AppendBatch checks
// the MD5s of the batch's aggregates together, in the SIMD lanes of one
// core where the CPU has them (see the package documentation, "MD5 of a
// batch").
//
// err is nil when every record decoded, and otherwise a *BatchError listing
// the malformed records; out and outEnds are complete in both cases.
func (d *Deaggregator) AppendBatch(dst []UserRecord, ends []int, records []Record) (out []UserRecord, outEnds []int, err error) {
	var batchErr *BatchError
	for first := 0; first < len(records); first += batchChunk {
		chunk := records[first:min(first+batchChunk, len(records))]
		items := d.prepare(chunk)
		for i := range chunk {
			it := &items[i]
			var rerr error
			dst, rerr = d.appendLocated(dst, chunk[i], it.kind, it.agg, it.err, it.sum)
			if rerr != nil {
				if batchErr == nil {
					batchErr = &BatchError{}
				}
				me, ok := rerr.(*MalformedError)
				if !ok {
					me = &MalformedError{Err: rerr}
				}
				batchErr.Records = append(batchErr.Records, RecordError{Index: first + i, Err: me})
			}
			ends = append(ends, len(dst))
		}
		clear(items)
	}
	if batchErr != nil {
		return dst, ends, batchErr
	}
	return dst, ends, nil
}

// prepare locates the aggregate of every record of chunk and, when
// verification is on, checks all their MD5s at once.
func (d *Deaggregator) prepare(chunk []Record) []batchItem {
	if cap(d.items) < len(chunk) {
		d.items = make([]batchItem, len(chunk), batchChunk)
	}
	items := d.items[:len(chunk)]
	d.jobs = d.jobs[:0]
	for i := range chunk {
		it := &items[i]
		it.kind, it.agg, it.err = d.locate(chunk[i].Data)
		it.sum = sumUnchecked
		if d.cfg.verify && it.err == nil && len(it.agg) >= overhead {
			d.jobs = append(d.jobs, md5Job{body: it.agg[len(Magic) : len(it.agg)-md5.Size], item: int32(i)})
		}
	}
	if len(d.jobs) == 0 {
		return items
	}
	d.order = sumMD5s(d.jobs, d.order, d.cfg.md5Lanes)
	for k := range d.jobs {
		j := &d.jobs[k]
		it := &items[j.item]
		it.sum = sumMismatched
		if bytes.Equal(j.sum[:], it.agg[len(it.agg)-md5.Size:]) {
			it.sum = sumMatched
		}
		j.body = nil
	}
	return items
}
