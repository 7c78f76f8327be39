package aggregation

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// newTestDeaggregator returns a Deaggregator whose AppendBatch uses MD5
// lanes or not as asked, whatever the CPU: without AVX-512, lanehash.MD5
// falls back to crypto/md5 inside, so the lane code path is still exercised.
func newTestDeaggregator(t testing.TB, lanes bool, opts ...DeaggregatorOption) *Deaggregator {
	t.Helper()
	d, err := NewDeaggregator(opts...)
	if err != nil {
		t.Fatal(err)
	}
	d.cfg.md5Lanes = lanes
	return d
}

// appendEach is the reference for AppendBatch: Append per record.
func appendEach(d *Deaggregator, dst []UserRecord, ends []int, records []Record) ([]UserRecord, []int, []RecordError) {
	var errs []RecordError
	for i, r := range records {
		var err error
		dst, err = d.Append(dst, r)
		if err != nil {
			var me *MalformedError
			if !errors.As(err, &me) {
				panic(fmt.Sprintf("Append returned %T %v", err, err))
			}
			errs = append(errs, RecordError{Index: i, Err: me})
		}
		ends = append(ends, len(dst))
	}
	return dst, ends, errs
}

// sameUserRecords reports the first difference between two decodings.
func sameUserRecords(got, want []UserRecord) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d user records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(g.Data, w.Data) ||
			(g.Data == nil) != (w.Data == nil) || g.SubSequenceNumber != w.SubSequenceNumber || g.Aggregated != w.Aggregated {
			return fmt.Errorf("user record %d: got {%q %q %d bytes sub %d agg %v}, want {%q %q %d bytes sub %d agg %v}", i,
				g.PartitionKey, g.ExplicitHashKey, len(g.Data), g.SubSequenceNumber, g.Aggregated,
				w.PartitionKey, w.ExplicitHashKey, len(w.Data), w.SubSequenceNumber, w.Aggregated)
		}
	}
	return nil
}

// checkBatchMatches runs AppendBatch and Append per record on the same batch
// (with a non-empty prefix in dst and ends) and fails on any difference.
func checkBatchMatches(t testing.TB, batch, single *Deaggregator, records []Record) {
	t.Helper()
	prefix := []UserRecord{{PartitionKey: "prefix", Data: []byte("p")}}
	wantDst, wantEnds, wantErrs := appendEach(single, append([]UserRecord(nil), prefix...), []int{-7}, records)
	gotDst, gotEnds, err := batch.AppendBatch(append([]UserRecord(nil), prefix...), []int{-7}, records)
	if e := sameUserRecords(gotDst, wantDst); e != nil {
		t.Fatalf("AppendBatch differs from Append: %v", e)
	}
	if fmt.Sprint(gotEnds) != fmt.Sprint(wantEnds) {
		t.Fatalf("ends %v, want %v", gotEnds, wantEnds)
	}
	if len(wantErrs) == 0 {
		if err != nil {
			t.Fatalf("AppendBatch error %v, Append reported none", err)
		}
		return
	}
	var be *BatchError
	if !errors.As(err, &be) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("AppendBatch error %v (%T), want a *BatchError matching ErrMalformed", err, err)
	}
	if len(be.Records) != len(wantErrs) {
		t.Fatalf("%d malformed records reported, want %d", len(be.Records), len(wantErrs))
	}
	for i, re := range be.Records {
		w := wantErrs[i]
		if re.Index != w.Index || re.Err.Error() != w.Err.Error() || !errors.Is(re.Err, w.Err.Err) {
			t.Fatalf("malformed record %d: got index %d %v, want index %d %v", i, re.Index, re.Err, w.Index, w.Err)
		}
	}
	var me *MalformedError
	if !errors.As(err, &me) || me != be.Records[0].Err {
		t.Fatalf("errors.As does not find the first record's *MalformedError in %v", err)
	}
}

// batchPool is a pool of records to draw test batches from: plain records
// (some that begin with a magic number), KPL aggregates small and large,
// compressed frames of every codec, and malformed aggregates and frames of
// every kind. Building aggregates is the slow part, so it happens once.
var batchPool = sync.OnceValue(func() []Record {
	rng := rand.New(rand.NewPCG(11, 12))
	var pool []Record
	for i := 0; i < 6; i++ {
		data := make([]byte, rng.IntN(300))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		pool = append(pool, Record{PartitionKey: "plain", Data: data})
	}
	pool = append(pool, Record{PartitionKey: "magic", ExplicitHashKey: "5", Data: append(Magic[:len(Magic):len(Magic)], 1)})
	for i := 0; i < 24; i++ {
		// Large aggregates, so that most batches fill MD5 lanes.
		pool = append(pool, randomAggregate(rng, CodecNone, 4<<10+rng.IntN(100<<10)))
	}
	for i := 0; i < 6; i++ {
		pool = append(pool, randomAggregate(rng, CodecNone, 64+rng.IntN(2<<10)))
	}
	for _, codec := range []Codec{CodecZstd, CodecSnappy, CodecGzip} {
		for i := 0; i < 2; i++ {
			pool = append(pool, randomAggregate(rng, codec, 1<<10+rng.IntN(40<<10)))
		}
	}
	for i := 0; i < 12; i++ {
		codec := []Codec{CodecNone, CodecNone, CodecZstd}[rng.IntN(3)]
		pool = append(pool, corrupt(rng, randomAggregate(rng, codec, 4<<10+rng.IntN(20<<10)), i))
	}
	return pool
})

// batchCase draws a batch of n records from batchPool.
func batchCase(rng *rand.Rand, n int) []Record {
	pool := batchPool()
	out := make([]Record, n)
	for i := range out {
		out[i] = pool[rng.IntN(len(pool))]
	}
	return out
}

// randomAggregate drains an aggregator of random records once it holds about
// size bytes. It panics on errors, which would be bugs in the test.
func randomAggregate(rng *rand.Rand, codec Codec, size int) Record {
	a, err := NewAggregator(WithMaxBytes(max(size, MinMaxBytes)), WithCompression(codec), WithMinCompressSize(0))
	if err != nil {
		panic(err)
	}
	for _, r := range randomRecords(rng, 1+size/40) {
		if err := a.Add(r); errors.Is(err, ErrFull) {
			break
		} else if err != nil {
			panic(err)
		}
	}
	rec, err := a.Drain(nil)
	if err != nil {
		panic(err)
	}
	return rec
}

// corrupt damages a record in one of the ways a deaggregator must survive,
// chosen by how.
func corrupt(rng *rand.Rand, r Record, how int) Record {
	d := append([]byte(nil), r.Data...)
	switch how % 5 {
	case 0: // a flipped bit: MD5 mismatch, or a broken frame
		d[len(Magic)+rng.IntN(len(d)-len(Magic))] ^= 1 << rng.IntN(8)
	case 1: // truncated
		d = d[:rng.IntN(len(d))]
	case 2: // a valid MD5 over an invalid protobuf body
		body := make([]byte, 4<<10+rng.IntN(8<<10))
		for i := range body {
			body[i] = byte(rng.Uint32())
		}
		d = kpl(body...)
	case 3: // a record index beyond the table, with a valid MD5
		d = kpl(0x0A, 0x01, 'k', 0x1A, 0x04, 0x08, 0x05, 0x1A, 0x00)
	default: // a frame whose content is not a KPL aggregate
		d = frame(CodecSnappy, 5, []byte{5, 16, 'h', 'e', 'l', 'l', 'o'})
	}
	return Record{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: d}
}

func TestAppendBatchMatchesAppend(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	shard := HashKeyRange{Start: HashKey{Hi: 1 << 62}, End: HashKey{Hi: 3 << 62}}
	configs := []struct {
		name string
		opts []DeaggregatorOption
	}{
		{name: "default"},
		{name: "filter", opts: []DeaggregatorOption{WithShardHashKeyRange(shard)}},
		{name: "noverify", opts: []DeaggregatorOption{WithChecksumVerification(false)}},
		{name: "smalllimit", opts: []DeaggregatorOption{WithMaxDecompressedSize(16 << 10)}},
	}
	sizes := []int{0, 1, 5, 16, 17, 40, batchChunk + 30}
	for _, cfg := range configs {
		for _, lanes := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/lanes=%v", cfg.name, lanes), func(t *testing.T) {
				batch := newTestDeaggregator(t, lanes, cfg.opts...)
				single := newTestDeaggregator(t, false, cfg.opts...)
				for _, n := range sizes {
					for rep := 0; rep < 2; rep++ {
						checkBatchMatches(t, batch, single, batchCase(rng, n))
					}
				}
			})
		}
	}
}

// TestAppendBatchMalformedDeliveredWhole pins the per-record contract on a
// hand-made batch: good records decode, bad ones come back whole, in place.
func TestAppendBatchMalformedDeliveredWhole(t *testing.T) {
	bad := append([]byte(nil), validAggregate...)
	bad[len(bad)-1] ^= 0xFF
	records := []Record{
		{PartitionKey: "a", Data: validAggregate},
		{PartitionKey: "b", Data: bad},
		{PartitionKey: "c", Data: []byte("plain")},
		{PartitionKey: "d", Data: Magic[:]},
	}
	d := newTestDeaggregator(t, true)
	out, ends, err := d.AppendBatch(nil, nil, records)
	if fmt.Sprint(ends) != "[2 3 4 5]" {
		t.Fatalf("ends %v, want [2 3 4 5]", ends)
	}
	var be *BatchError
	if !errors.As(err, &be) || len(be.Records) != 2 || be.Records[0].Index != 1 || be.Records[1].Index != 3 ||
		!errors.Is(be.Records[0].Err, ErrChecksum) || !errors.Is(be.Records[1].Err, ErrTooShort) {
		t.Fatalf("error %v, want records 1 (checksum) and 3 (too short)", err)
	}
	if !errors.Is(err, ErrChecksum) || !errors.Is(err, ErrTooShort) {
		t.Fatalf("error %v does not match both causes", err)
	}
	if out[0].PartitionKey != "k" || out[1].PartitionKey != "m" || !out[0].Aggregated ||
		out[2].PartitionKey != "b" || !bytes.Equal(out[2].Data, bad) || out[2].Aggregated ||
		out[3].PartitionKey != "c" || out[4].PartitionKey != "d" {
		t.Fatalf("unexpected records %+v", out)
	}
}

// TestSumMD5s checks the batch MD5 helper against crypto/md5, with and
// without lanes, across lengths around MD5's 64-byte blocks and its padding
// boundary (55/56 bytes), for batches of 1 to more than 16 bodies, some
// bodies aliasing others.
func TestSumMD5s(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	lengths := []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 4095, 4096, 4097, 51_200, 100_003}
	for _, lanes := range []bool{true, false} {
		for _, n := range []int{1, 2, 3, 4, 15, 16, 17, 33, 60} {
			t.Run(fmt.Sprintf("lanes=%v/%d", lanes, n), func(t *testing.T) {
				bodies := make([][]byte, n)
				for i := range bodies {
					if i > 0 && rng.IntN(5) == 0 {
						prev := bodies[rng.IntN(i)]
						bodies[i] = prev[rng.IntN(len(prev)+1):]
						continue
					}
					bodies[i] = make([]byte, lengths[rng.IntN(len(lengths))])
					for j := range bodies[i] {
						bodies[i][j] = byte(rng.Uint32())
					}
				}
				sums := make([][md5.Size]byte, n)
				sumMD5s(sums, bodies, lanes)
				for i, b := range bodies {
					if want := md5.Sum(b); sums[i] != want {
						t.Fatalf("body %d (%d bytes): sum %x, want %x", i, len(b), sums[i], want)
					}
				}
			})
		}
	}
}

// TestAggregatesPerChunk pins the chunk plan: whole rounds of lanes up to
// about md5ChunkBytes, spread evenly so that no chunk ends with a round of
// mostly idle lanes.
func TestAggregatesPerChunk(t *testing.T) {
	for _, tc := range []struct {
		n, avg, lanes, want int
	}{
		{n: 1, avg: 51_200, lanes: 16, want: 1},
		{n: 16, avg: 51_200, lanes: 16, want: 16},  // one full round
		{n: 17, avg: 51_200, lanes: 16, want: 9},   // two rounds of 9 and 8
		{n: 100, avg: 51_200, lanes: 16, want: 15}, // seven rounds of 15 or 14
		{n: 100, avg: 5_000, lanes: 16, want: 100}, // 500 KB: one chunk
		{n: 500, avg: 5_000, lanes: 16, want: 125}, // four chunks of 625 KB
		{n: 40, avg: 1 << 20, lanes: 16, want: 14}, // larger than a chunk: still a round of lanes
		{n: 40, avg: 51_200, lanes: 1, want: 14},   // no lanes: cache-sized chunks
		{n: 40, avg: 0, lanes: 16, want: 40},
		{n: 0, avg: 0, lanes: 16, want: 1},
	} {
		if got := aggregatesPerChunk(tc.n, tc.avg, tc.lanes); got != tc.want {
			t.Errorf("aggregatesPerChunk(%d, %d, %d) = %d, want %d", tc.n, tc.avg, tc.lanes, got, tc.want)
		}
	}
}

// TestAppendBatchStartsNoGoroutines runs batches big enough for lanes, in
// this goroutine and in several at once: MD5 lanes run on the caller's
// goroutine, so no goroutine is left behind.
func TestAppendBatchStartsNoGoroutines(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	records := make([]Record, 20)
	for i := range records {
		records[i] = randomAggregate(rng, CodecNone, 6<<10+rng.IntN(50<<10))
	}
	base := runtime.NumGoroutine()
	d := newTestDeaggregator(t, true)
	for i := 0; i < 3; i++ {
		if _, _, err := d.AppendBatch(nil, nil, records); err != nil {
			t.Fatal(err)
		}
		if n := runtime.NumGoroutine(); n != base {
			t.Fatalf("%d goroutines after a batch, %d before", n, base)
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := newTestDeaggregator(t, true)
			for i := 0; i < 3; i++ {
				if _, _, err := d.AppendBatch(nil, nil, records); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= base },
		func() string { return fmt.Sprintf("%d goroutines, want at most %d", runtime.NumGoroutine(), base) })
}

// waitFor polls cond until it holds or the timeout ends.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAppendBatchAllocations checks that a steady-state batch allocates only
// what Append would: one key string per aggregate, nothing per record.
func TestAppendBatchAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	records := make([]Record, 20)
	for i := range records {
		records[i] = randomAggregate(rng, CodecNone, 40<<10)
	}
	d := newTestDeaggregator(t, true)
	dst, ends, err := d.AppendBatch(nil, nil, records)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		dst, ends, _ = d.AppendBatch(dst[:0], ends[:0], records)
	})
	limit := len(records) + 1
	if allocs > float64(limit) {
		t.Fatalf("%v allocations per batch of %d aggregates, want at most %d", allocs, len(records), limit)
	}
}
