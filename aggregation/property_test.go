package aggregation

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// randomRecords returns n records mixing the edge cases the format must carry:
// empty data, unicode keys, 256-byte and 256-character keys, explicit hash
// keys at 0 and 2^128-1, keys re-used across records, and data lengths across
// varint boundaries.
func randomRecords(rng *rand.Rand, n int) []Record {
	pool := []string{
		"a", "user-1", "ключ", "鍵🔑", strings.Repeat("x", 256), strings.Repeat("é", 256),
		strings.Repeat("🌊", 256),
	}
	for i := 0; i < 200; i++ {
		pool = append(pool, fmt.Sprintf("key-%d-%c", i, rune(0x4e00+rng.IntN(500))))
	}
	ehks := []string{"0", MaxHashKey.String(), "1", "170141183460469231731687303715884105728"}
	dataLens := []int{0, 1, 100, 127, 128, 300, 1024, 16383, 16384}
	recs := make([]Record, n)
	for i := range recs {
		r := Record{PartitionKey: pool[rng.IntN(len(pool))]}
		switch rng.IntN(4) {
		case 0:
			r.ExplicitHashKey = ehks[rng.IntN(len(ehks))]
		case 1:
			r.ExplicitHashKey = HashKey{Hi: rng.Uint64(), Lo: rng.Uint64()}.String()
		}
		size := rng.IntN(200)
		if rng.IntN(5) == 0 {
			size = dataLens[rng.IntN(len(dataLens))]
		}
		if size > 0 || rng.IntN(2) == 0 {
			r.Data = make([]byte, size)
			for j := range r.Data {
				r.Data[j] = byte(rng.IntN(4)) // compressible
			}
		}
		recs[i] = r
	}
	return recs
}

// aggregateAll adds recs to a, draining whenever it is full, and checks the
// size accounting at every step.
func aggregateAll(t *testing.T, a *Aggregator, recs []Record) [][]Record {
	t.Helper()
	var batches [][]Record
	var cur []Record
	drain := func() Record {
		size, n := a.Size(), a.Len()
		out, err := a.Drain(nil)
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
		if a.comp == nil {
			if n == 1 && !bytes.Equal(out.Data, cur[0].Data) {
				t.Fatalf("single record drained as %x, want its own data", out.Data)
			}
			if n > 1 && len(out.Data) != size {
				t.Fatalf("drained %d bytes, Size said %d", len(out.Data), size)
			}
		} else if len(out.Data) > size {
			t.Fatalf("compressed drain of %d bytes exceeds Size %d", len(out.Data), size)
		}
		batches = append(batches, cur)
		cur = nil
		return out
	}
	var outs []Record
	for _, r := range recs {
		want := a.SizeWith(r)
		err := a.Add(r)
		if errors.Is(err, ErrFull) {
			if a.Len() < int(a.cfg.maxRecords) && want <= a.cfg.maxBytes {
				t.Fatalf("Add refused a record that fits: size would be %d of %d", want, a.cfg.maxBytes)
			}
			outs = append(outs, drain())
			want = a.SizeWith(r)
			err = a.Add(r)
		}
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
		if a.Size() != want {
			t.Fatalf("Size %d after Add, SizeWith said %d", a.Size(), want)
		}
		if a.Len() > 1 && a.Size() > a.cfg.maxBytes {
			t.Fatalf("aggregate of %d records is %d bytes, limit %d", a.Len(), a.Size(), a.cfg.maxBytes)
		}
		cur = append(cur, r)
	}
	if a.Len() > 0 {
		outs = append(outs, drain())
	}
	for i, out := range outs {
		checkDecodes(t, out, batches[i])
	}
	return batches
}

// checkDecodes de-aggregates out and compares with the records that went in.
func checkDecodes(t *testing.T, out Record, want []Record) {
	t.Helper()
	got, err := Deaggregate(out)
	if err != nil {
		t.Fatalf("Deaggregate: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Deaggregate returned %d records, want %d", len(got), len(want))
	}
	plain := len(want) == 1 && len(want[0].Tags) == 0 && !hasPrefix(out.Data, CompressedMagic[:])
	if len(want) > 1 {
		if out.PartitionKey != AggregatePartitionKey {
			t.Fatalf("aggregate partition key %q", out.PartitionKey)
		}
		k, _ := want[0].HashKey()
		if out.ExplicitHashKey != k.String() {
			t.Fatalf("aggregate explicit hash key %q, want first record's %v", out.ExplicitHashKey, k)
		}
	}
	for i, g := range got {
		w := want[i]
		if plain {
			// GetRecords returns no explicit hash key; a plain record's
			// key is its Kinesis record's.
			w.ExplicitHashKey = out.ExplicitHashKey
		}
		if g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(g.Data, w.Data) ||
			g.SubSequenceNumber != int64(i) || g.Aggregated == plain {
			t.Fatalf("record %d: got {%q %q %d bytes sub %d agg %v}, want {%q %q %d bytes}", i,
				g.PartitionKey, g.ExplicitHashKey, len(g.Data), g.SubSequenceNumber, g.Aggregated,
				w.PartitionKey, w.ExplicitHashKey, len(w.Data))
		}
		if gt := g.Tags(); len(gt) != len(w.Tags) || (len(w.Tags) > 0 && !slices.Equal(gt, w.Tags)) || g.TagsSize() != TagsSize(w.Tags) {
			t.Fatalf("record %d: tags %+v (%d bytes), want %+v", i, gt, g.TagsSize(), w.Tags)
		}
	}
}

func TestPropertyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []AggregatorOption
	}{
		{"defaults", nil},
		{"small", []AggregatorOption{WithMaxBytes(MinMaxBytes)}},
		{"2KB", []AggregatorOption{WithMaxBytes(2048)}},
		{"count3", []AggregatorOption{WithMaxRecords(3)}},
		{"1MiB", []AggregatorOption{WithMaxBytes(1 << 20)}},
		{"zstd", []AggregatorOption{WithCompression(CodecZstd), WithMinCompressSize(0)}},
		{"snappy", []AggregatorOption{WithCompression(CodecSnappy)}},
		{"gzip", []AggregatorOption{WithCompression(CodecGzip), WithMaxBytes(4096)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(0); seed < 4; seed++ {
				rng := rand.New(rand.NewPCG(seed, 99))
				a := mustAggregator(t, tc.opts...)
				batches := aggregateAll(t, a, randomRecords(rng, 1+rng.IntN(600)))
				if len(batches) == 0 {
					t.Fatal("no batches")
				}
			}
		})
	}
}

// TestSizeAccountingVarintBoundaries drives table indices and lengths across
// the one-, two- and three-byte varint boundaries.
func TestSizeAccountingVarintBoundaries(t *testing.T) {
	a := mustAggregator(t, WithMaxBytes(MaxMaxBytes))
	var recs []Record
	for i := 0; i < 20000; i++ {
		r := Record{PartitionKey: fmt.Sprintf("k%d", i), Data: make([]byte, i%130)}
		if i%3 == 0 {
			r.ExplicitHashKey = fmt.Sprint(i)
		}
		recs = append(recs, r)
	}
	recs = append(recs, Record{PartitionKey: "big", Data: make([]byte, 1<<21)})
	aggregateAll(t, a, recs)
}

func TestAddWithHashKey(t *testing.T) {
	a := mustAggregator(t)
	k := HashKey{Hi: 1, Lo: 2}
	if err := a.AddWithHashKey(Record{PartitionKey: "p", Data: []byte("1")}, k); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(Record{PartitionKey: "q", Data: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	out, err := a.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.ExplicitHashKey != k.String() {
		t.Fatalf("outer explicit hash key %q, want the given %v", out.ExplicitHashKey, k)
	}
	// An explicit hash key on the record wins over a supplied key.
	if err := a.AddWithHashKey(Record{PartitionKey: "p", ExplicitHashKey: "5", Data: nil}, k); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(Record{PartitionKey: "q"}); err != nil {
		t.Fatal(err)
	}
	if out, _ = a.Drain(nil); out.ExplicitHashKey != "5" {
		t.Fatalf("outer explicit hash key %q, want 5", out.ExplicitHashKey)
	}
}

func TestAddValidation(t *testing.T) {
	a := mustAggregator(t)
	for _, tc := range []struct {
		name string
		r    Record
		ok   bool
	}{
		{"empty key", Record{}, false},
		{"256 bytes", Record{PartitionKey: strings.Repeat("k", 256)}, true},
		{"257 bytes", Record{PartitionKey: strings.Repeat("k", 257)}, false},
		{"256 two-byte chars", Record{PartitionKey: strings.Repeat("é", 256)}, true},
		{"257 two-byte chars", Record{PartitionKey: strings.Repeat("é", 257)}, false},
		{"invalid UTF-8", Record{PartitionKey: "\xff"}, false},
		{"ehk 0", Record{PartitionKey: "p", ExplicitHashKey: "0"}, true},
		{"ehk max", Record{PartitionKey: "p", ExplicitHashKey: MaxHashKey.String()}, true},
		{"ehk 2^128", Record{PartitionKey: "p", ExplicitHashKey: "340282366920938463463374607431768211456"}, false},
		{"ehk leading zero", Record{PartitionKey: "p", ExplicitHashKey: "01"}, false},
		{"ehk sign", Record{PartitionKey: "p", ExplicitHashKey: "-1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := a.Len()
			err := a.Add(tc.r)
			if tc.ok != (err == nil) {
				t.Fatalf("Add: %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				if !errors.Is(err, ErrInvalidRecord) {
					t.Fatalf("error %v does not wrap ErrInvalidRecord", err)
				}
				if a.Len() != n {
					t.Fatal("rejected record was added")
				}
			}
			if verr := ValidateRecord(tc.r); (verr == nil) != tc.ok {
				t.Fatalf("ValidateRecord: %v, want ok=%v", verr, tc.ok)
			}
		})
	}
}

func TestFullLeavesAggregateUnchanged(t *testing.T) {
	a := mustAggregator(t, WithMaxBytes(200))
	if err := a.Add(Record{PartitionKey: "p", Data: make([]byte, 100)}); err != nil {
		t.Fatal(err)
	}
	before := a.Size()
	if a.Fits(Record{PartitionKey: "new", Data: make([]byte, 150)}) {
		t.Fatal("Fits reported a record that exceeds the limit")
	}
	if err := a.Add(Record{PartitionKey: "new", ExplicitHashKey: "9", Data: make([]byte, 150)}); !errors.Is(err, ErrFull) {
		t.Fatalf("Add: %v, want ErrFull", err)
	}
	if a.Size() != before || a.Len() != 1 || len(a.pkIndex) != 1 || len(a.ehkIndex) != 0 {
		t.Fatalf("refused Add changed the aggregate: size %d->%d, %d records, tables %d/%d",
			before, a.Size(), a.Len(), len(a.pkIndex), len(a.ehkIndex))
	}
	if !a.Fits(Record{PartitionKey: "p", Data: make([]byte, 10)}) {
		t.Fatal("Fits refused a record within the limit")
	}
}

// TestAddAllocatesNothing checks the steady state: once the buffers and
// tables have grown, adding and draining allocate nothing per user record.
func TestAddAllocatesNothing(t *testing.T) {
	a := mustAggregator(t)
	recs := benchRecords(1000, 100)
	k := recs[0].PartitionKey
	buf := make([]byte, 0, DefaultMaxBytes)
	cycle := func() {
		for _, r := range recs {
			if err := a.AddWithHashKey(r, PartitionKeyHash(r.PartitionKey)); errors.Is(err, ErrFull) {
				a.Reset()
			}
		}
		a.Reset()
	}
	cycle()
	if allocs := testing.AllocsPerRun(20, cycle); allocs != 0 {
		t.Fatalf("%v allocations per %d added records, want 0", allocs, len(recs))
	}
	fill := func() {
		for a.Add(Record{PartitionKey: k, Data: recs[0].Data}) == nil {
		}
		out, _ := a.Drain(buf)
		buf = out.Data[:0]
	}
	fill()
	// A drain of two or more records formats the outer explicit hash key:
	// one string per aggregate, nothing per record.
	if allocs := testing.AllocsPerRun(20, fill); allocs > 1 {
		t.Fatalf("%v allocations per filled and drained aggregate, want at most 1", allocs)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, opt := range []AggregatorOption{
		WithMaxRecords(0), WithMaxRecords(DefaultMaxRecords + 1), WithMaxBytes(MinMaxBytes - 1),
		WithMaxBytes(MaxMaxBytes + 1), WithCompression(Codec(9)), WithMinCompressSize(-1),
		WithCompressionLevel(-1), WithCompressionLevel(10),
	} {
		if _, err := NewAggregator(opt); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewAggregator: %v, want ErrInvalidOption", err)
		}
	}
	// Levels a codec does not have fail whatever the order of the options.
	for _, opts := range [][]AggregatorOption{
		{WithCompression(CodecZstd), WithCompressionLevel(ZstdSpeedBestCompression + 1)},
		{WithCompressionLevel(5), WithCompression(CodecZstd)},
		{WithCompression(CodecSnappy), WithCompressionLevel(1)},
	} {
		if _, err := NewAggregator(opts...); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewAggregator: %v, want ErrInvalidOption", err)
		}
	}
	for _, opt := range []DeaggregatorOption{
		WithMaxDecompressedSize(0), WithMaxDecompressedSize(1 << 30),
		WithShardHashKeyRange(HashKeyRange{Start: MaxHashKey, End: HashKey{}}),
	} {
		if _, err := NewDeaggregator(opt); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewDeaggregator: %v, want ErrInvalidOption", err)
		}
	}
}
