package aggregation

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/freshet/freshet/internal/lanehash"
)

// batchChunk is the most records AppendBatch prepares at a time, so that the
// scratch kept between calls stays small (12 KiB) whatever the batch size.
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
	perChunk := d.chunkAggregates(records)
	for first := 0; first < len(records); {
		items := d.prepare(records[first:], perChunk)
		for i := range items {
			it := &items[i]
			var rerr error
			dst, rerr = d.appendLocated(dst, records[first+i], it.kind, it.agg, it.err, it.sum)
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
		first += len(items)
	}
	if batchErr != nil {
		return dst, ends, batchErr
	}
	return dst, ends, nil
}

// chunkAggregates plans how many aggregates each chunk of the batch
// holds. Each chunk's MD5s are computed together, and then its records
// decoded while the aggregates are still in cache. With verification off,
// chunks are only bounded by batchChunk.
func (d *Deaggregator) chunkAggregates(records []Record) int {
	if !d.cfg.verify {
		return batchChunk
	}
	lanes := 1
	if d.cfg.md5Lanes {
		lanes = lanehash.MD5Lanes()
	}
	n, total := 0, 0
	for i := range records {
		if size := d.aggregateSize(records[i].Data); size > 0 {
			n++
			total += size
		}
	}
	if n == 0 {
		return batchChunk
	}
	return aggregatesPerChunk(n, total/n, lanes)
}

// aggregateSize predicts, from its header alone, the size of the KPL
// aggregate data holds (its data, or a frame's declared content), or 0 when
// it holds none whose MD5 is to be computed.
func (d *Deaggregator) aggregateSize(data []byte) int {
	switch {
	case hasPrefix(data, Magic[:]):
		return len(data)
	case hasPrefix(data, CompressedMagic[:]) && len(data) >= frameHeaderSize:
		if size := int64(binary.BigEndian.Uint32(data[len(CompressedMagic)+1:])); size <= int64(d.cfg.maxDecompressed) {
			return int(size)
		}
	}
	return 0
}

// prepare locates the aggregates of the records at the head of rest, up to
// batchChunk records and at most perChunk aggregates, checks all their MD5s
// at once when verification is on, and returns what it learned about each
// of those records.
func (d *Deaggregator) prepare(rest []Record, perChunk int) []batchItem {
	if d.items == nil {
		d.items = make([]batchItem, batchChunk)
	}
	items := d.items[:min(len(rest), batchChunk)]
	d.bodies, d.bodyItems = d.bodies[:0], d.bodyItems[:0]
	n := 0
	for n < len(items) && len(d.bodies) < perChunk {
		it := &items[n]
		it.kind, it.agg, it.err = d.locate(rest[n].Data)
		it.sum = sumUnchecked
		if d.cfg.verify && it.err == nil && len(it.agg) >= overhead {
			d.bodies = append(d.bodies, it.agg[len(Magic):len(it.agg)-md5.Size])
			d.bodyItems = append(d.bodyItems, int32(n))
		}
		n++
	}
	items = items[:n]
	if len(d.bodies) == 0 {
		return items
	}
	d.sums = slices.Grow(d.sums[:0], len(d.bodies))[:len(d.bodies)]
	sumMD5s(d.sums, d.bodies, d.cfg.md5Lanes)
	for k, i := range d.bodyItems {
		it := &items[i]
		it.sum = sumMismatched
		if bytes.Equal(d.sums[k][:], it.agg[len(it.agg)-md5.Size:]) {
			it.sum = sumMatched
		}
	}
	clear(d.bodies)
	return items
}
