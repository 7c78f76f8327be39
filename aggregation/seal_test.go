package aggregation

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestDrainUnsealedSealMatchesDrain feeds the same random records to two
// aggregators, drains one with Drain and the other with DrainUnsealed, seals
// the unsealed records in batches, and checks that the records are
// identical, byte for byte, and that exactly the uncompressed KPL aggregates
// came back unsealed, with a zero trailer.
func TestDrainUnsealedSealMatchesDrain(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, tc := range []struct {
		name      string
		opts      []AggregatorOption
		noUnseals bool // every drain is a single record or a frame
	}{
		{name: "default"},
		{name: "small", opts: []AggregatorOption{WithMaxBytes(600)}},
		{name: "count2", opts: []AggregatorOption{WithMaxRecords(2)}},
		{name: "count1", opts: []AggregatorOption{WithMaxRecords(1)}, noUnseals: true},
		{name: "zstd", opts: []AggregatorOption{WithCompression(CodecZstd), WithMaxBytes(4096)}},
		{name: "snappy-min", opts: []AggregatorOption{WithCompression(CodecSnappy), WithMinCompressSize(4 << 10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, unsealed := mustAggregator(t, tc.opts...), mustAggregator(t, tc.opts...)
			var want, got []Record
			var pending [][]byte
			var sealer Sealer
			unseals := 0
			flush := func() {
				if err := sealer.Seal(pending); err != nil {
					t.Fatal(err)
				}
				pending = pending[:0]
			}
			drain := func() {
				w, err := ref.Drain(nil)
				if err != nil {
					t.Fatal(err)
				}
				n := unsealed.Len()
				g, sealed, err := unsealed.DrainUnsealed(nil)
				if err != nil {
					t.Fatal(err)
				}
				isKPL := hasPrefix(w.Data, Magic[:]) && n > 1
				if sealed == isKPL {
					t.Fatalf("%d records drained to %d bytes (KPL aggregate %v): sealed %v", n, len(w.Data), isKPL, sealed)
				}
				if !sealed {
					if !bytes.Equal(g.Data[len(g.Data)-md5.Size:], make([]byte, md5.Size)) {
						t.Fatalf("unsealed aggregate has trailer %x", g.Data[len(g.Data)-md5.Size:])
					}
					pending = append(pending, g.Data)
					unseals++
					if len(pending) == 1+rng.IntN(30) {
						flush()
					}
				}
				want, got = append(want, w), append(got, g)
			}
			for _, r := range randomRecords(rng, 1500) {
				if err := ref.Add(r); errors.Is(err, ErrFull) {
					drain()
					if err := ref.Add(r); err != nil {
						t.Fatal(err)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				if err := unsealed.Add(r); err != nil {
					t.Fatalf("the second aggregator disagrees: %v", err)
				}
				if rng.IntN(50) == 0 {
					drain()
				}
			}
			drain()
			flush()
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			if (unseals == 0) != tc.noUnseals {
				t.Fatalf("%d of %d drains unsealed", unseals, len(got))
			}
			for i := range want {
				if got[i].PartitionKey != want[i].PartitionKey || got[i].ExplicitHashKey != want[i].ExplicitHashKey ||
					!bytes.Equal(got[i].Data, want[i].Data) {
					t.Fatalf("record %d of %d: DrainUnsealed+Seal gave %q %q %x..., Drain %q %q %x...", i, len(want),
						got[i].PartitionKey, got[i].ExplicitHashKey, got[i].Data[:min(16, len(got[i].Data))],
						want[i].PartitionKey, want[i].ExplicitHashKey, want[i].Data[:min(16, len(want[i].Data))])
				}
			}
		})
	}
}

// TestDrainUnsealedSealedCases pins which drains come back sealed: a single
// record (plain) and a compressed frame are complete; two records without
// compression, or with compression that does not pay off, are not.
func TestDrainUnsealedSealedCases(t *testing.T) {
	big := bytes.Repeat([]byte("compressible "), 100)
	random := make([]byte, 2000)
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name   string
		opts   []AggregatorOption
		recs   []Record
		sealed bool
		prefix []byte
	}{
		{name: "single", recs: []Record{{PartitionKey: "k", Data: []byte("only")}}, sealed: true, prefix: []byte("only")},
		{name: "single-magic-data", recs: []Record{{PartitionKey: "k", Data: validAggregate}}, sealed: true, prefix: Magic[:]},
		{name: "two", recs: []Record{{PartitionKey: "k", Data: []byte("1")}, {PartitionKey: "m", Data: []byte("2")}}, sealed: false, prefix: Magic[:]},
		{name: "zstd-frame", opts: []AggregatorOption{WithCompression(CodecZstd)},
			recs: []Record{{PartitionKey: "k", Data: big}, {PartitionKey: "k", Data: big}}, sealed: true, prefix: CompressedMagic[:]},
		{name: "zstd-single-frame", opts: []AggregatorOption{WithCompression(CodecZstd)},
			recs: []Record{{PartitionKey: "k", Data: big}}, sealed: true, prefix: CompressedMagic[:]},
		{name: "zstd-not-smaller", opts: []AggregatorOption{WithCompression(CodecZstd)},
			recs: []Record{{PartitionKey: "k", Data: random[:1000]}, {PartitionKey: "k", Data: random[1000:]}}, sealed: false, prefix: Magic[:]},
		{name: "zstd-below-min", opts: []AggregatorOption{WithCompression(CodecZstd)},
			recs: []Record{{PartitionKey: "k", Data: []byte("1")}, {PartitionKey: "m", Data: []byte("2")}}, sealed: false, prefix: Magic[:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ref := mustAggregator(t, tc.opts...), mustAggregator(t, tc.opts...)
			for _, r := range tc.recs {
				if err := a.Add(r); err != nil {
					t.Fatal(err)
				}
				if err := ref.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			rec, sealed, err := a.DrainUnsealed(nil)
			if err != nil || sealed != tc.sealed || !hasPrefix(rec.Data, tc.prefix) {
				t.Fatalf("DrainUnsealed: sealed %v, data %x..., %v; want sealed %v, prefix %x", sealed, rec.Data[:min(8, len(rec.Data))], err, tc.sealed, tc.prefix)
			}
			want, err := ref.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			if sealed {
				if !bytes.Equal(rec.Data, want.Data) {
					t.Fatalf("sealed data differs from Drain's")
				}
				return
			}
			if err := Seal([][]byte{rec.Data}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.Data, want.Data) || rec.PartitionKey != want.PartitionKey || rec.ExplicitHashKey != want.ExplicitHashKey {
				t.Fatalf("sealed record differs from Drain's")
			}
		})
	}
	if _, sealed, err := mustAggregator(t).DrainUnsealed(nil); !errors.Is(err, ErrEmpty) || !sealed {
		t.Fatalf("empty DrainUnsealed: sealed %v, %v; want ErrEmpty", sealed, err)
	}
}

// TestSealRejects checks the contract on elements that are not unsealed
// aggregates: Seal names the first one and writes nothing, not even to the
// valid elements of the batch.
func TestSealRejects(t *testing.T) {
	unsealed := func() []byte {
		a := mustAggregator(t)
		for _, r := range []Record{{PartitionKey: "k", Data: []byte("1")}, {PartitionKey: "m", Data: []byte("2")}} {
			if err := a.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		rec, sealed, err := a.DrainUnsealed(nil)
		if err != nil || sealed {
			t.Fatalf("DrainUnsealed: sealed %v, %v", sealed, err)
		}
		return rec.Data
	}
	sealedAgg := append([]byte(nil), validAggregate...)
	trailerFlip := unsealed()
	trailerFlip[len(trailerFlip)-1] = 1
	noTable := kpl(0x1A, 0x05, 0x08, 0x00, 0x1A, 0x01, 0xAA)
	clear(noTable[len(noTable)-md5.Size:])
	for _, tc := range []struct {
		name string
		bad  []byte
	}{
		{name: "nil", bad: nil},
		{name: "plain", bad: []byte("a plain record that is long enough to be anything")},
		{name: "plain-zero-tail", bad: make([]byte, 64)},
		{name: "magic-only", bad: append(Magic[:len(Magic):len(Magic)], make([]byte, md5.Size)...)},
		{name: "frame", bad: frame(CodecSnappy, 40, make([]byte, 30))},
		{name: "sealed", bad: sealedAgg},
		{name: "trailer-not-zero", bad: trailerFlip},
		{name: "body-without-table", bad: noTable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good1, good2 := unsealed(), unsealed()
			batch := [][]byte{good1, tc.bad, good2}
			before := make([][]byte, len(batch))
			for i, d := range batch {
				before[i] = append([]byte(nil), d...)
			}
			for _, seal := range []func([][]byte) error{Seal, new(Sealer).Seal} {
				err := seal(batch)
				var se *SealError
				if !errors.As(err, &se) || se.Index != 1 || !errors.Is(err, ErrNotUnsealed) {
					t.Fatalf("Seal: %v, want a *SealError for element 1 matching ErrNotUnsealed", err)
				}
				for i, d := range batch {
					if !bytes.Equal(d, before[i]) {
						t.Fatalf("element %d changed by a failed Seal", i)
					}
				}
			}
		})
	}
	if err := Seal(nil); err != nil {
		t.Fatalf("Seal of nothing: %v", err)
	}
}

// TestSealBatchSizes seals batches of 1 to 100 aggregates of mixed sizes,
// some sharing one buffer without overlapping, and checks every trailer
// against crypto/md5.
func TestSealBatchSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	var pool [][]byte
	for len(pool) < 24 {
		rec := randomAggregate(rng, CodecNone, 64+rng.IntN(60<<10))
		if hasPrefix(rec.Data, Magic[:]) { // not a single record drained plain
			pool = append(pool, rec.Data)
		}
	}
	var s Sealer
	for _, n := range []int{1, 2, 3, 4, 16, 17, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var datas [][]byte
			total := 0
			for len(datas) < n {
				d := append([]byte(nil), pool[rng.IntN(len(pool))]...)
				clear(d[len(d)-md5.Size:])
				datas = append(datas, d)
				total += len(d)
			}
			// Every other aggregate moves into one shared buffer.
			arena := make([]byte, 0, total)
			for i := 0; i < len(datas); i += 2 {
				start := len(arena)
				arena = append(arena, datas[i]...)
				datas[i] = arena[start:len(arena):len(arena)]
			}
			if err := s.Seal(datas); err != nil {
				t.Fatal(err)
			}
			for i, d := range datas {
				if want := md5.Sum(d[len(Magic) : len(d)-md5.Size]); !bytes.Equal(d[len(d)-md5.Size:], want[:]) {
					t.Fatalf("element %d of %d: trailer %x, want %x", i, len(datas), d[len(d)-md5.Size:], want)
				}
				if _, err := Deaggregate(Record{PartitionKey: "a", Data: d}); err != nil {
					t.Fatalf("element %d of %d does not decode: %v", i, len(datas), err)
				}
			}
		})
	}
}

// TestSealAllocatesNothing checks that a Sealer reused for batches no larger
// than before allocates nothing.
func TestSealAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 8))
	var datas [][]byte
	for len(datas) < 40 {
		if d := randomAggregate(rng, CodecNone, 2<<10+rng.IntN(20<<10)).Data; hasPrefix(d, Magic[:]) {
			datas = append(datas, d)
		}
	}
	var s Sealer
	reset := func() {
		for _, d := range datas {
			clear(d[len(d)-md5.Size:])
		}
	}
	reset()
	if err := s.Seal(datas); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		reset()
		if err := s.Seal(datas[:1+rng.IntN(len(datas))]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Seal, want 0", allocs)
	}
}
