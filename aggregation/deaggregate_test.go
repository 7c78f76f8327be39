package aggregation

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
)

// kpl wraps a protobuf body in magic and a correct MD5.
func kpl(body ...byte) []byte {
	sum := md5.Sum(body)
	out := append(append([]byte{}, Magic[:]...), body...)
	return append(out, sum[:]...)
}

// frame builds a compressed frame around payload.
func frame(codec Codec, size uint32, payload []byte) []byte {
	out := append([]byte{}, CompressedMagic[:]...)
	out = append(out, byte(codec))
	out = binary.BigEndian.AppendUint32(out, size)
	return append(out, payload...)
}

func zstdBytes(t testing.TB, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

// validAggregate is a KPL aggregate of two records with keys "k" and "m".
var validAggregate = kpl(
	0x0A, 0x01, 'k', 0x0A, 0x01, 'm', 0x12, 0x01, '7',
	0x1A, 0x05, 0x08, 0x00, 0x1A, 0x01, 0xAA,
	0x1A, 0x07, 0x08, 0x01, 0x10, 0x00, 0x1A, 0x01, 0xBB,
)

func TestDeaggregateValidVariants(t *testing.T) {
	want := []UserRecord{
		{PartitionKey: "k", Data: []byte{0xAA}, SubSequenceNumber: 0, Aggregated: true},
		{PartitionKey: "m", ExplicitHashKey: "7", Data: []byte{0xBB}, SubSequenceNumber: 1, Aggregated: true},
	}
	for _, tc := range []struct {
		name string
		data []byte
		want []UserRecord
	}{
		{"canonical", validAggregate, want},
		{"tables after records", kpl(
			0x1A, 0x05, 0x08, 0x00, 0x1A, 0x01, 0xAA,
			0x12, 0x01, '7',
			0x1A, 0x07, 0x08, 0x01, 0x10, 0x00, 0x1A, 0x01, 0xBB,
			0x0A, 0x01, 'k', 0x0A, 0x01, 'm',
		), want},
		{"fields out of order, tags, unknown fields", kpl(
			0x0A, 0x01, 'k', 0x0A, 0x01, 'm', 0x12, 0x01, '7',
			0x28, 0x05, // unknown varint field 5
			0x1A, 0x10, 0x1A, 0x01, 0xAA, 0x22, 0x04, 0x0A, 0x02, 't', 'g', 0x08, 0x00, 0x3D, 1, 2, 3, 4, // data, tag, pk, fixed32 field 7
			0x1A, 0x10, 0x10, 0x00, 0x08, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x1A, 0x01, 0xBB, // ehk, pk, fixed64 field 3?
		), nil},
		{"multi-byte index", kpl(
			0x0A, 0x01, 'k', 0x0A, 0x01, 'm', 0x12, 0x01, '7',
			0x1A, 0x06, 0x08, 0x80, 0x00, 0x1A, 0x01, 0xAA, // index 0 in two bytes
			0x1A, 0x07, 0x08, 0x01, 0x10, 0x00, 0x1A, 0x01, 0xBB,
		), want},
		{"no records", kpl(0x0A, 0x01, 'k'), []UserRecord{}},
		{"empty body", kpl(), []UserRecord{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Deaggregate(Record{PartitionKey: "outer", Data: tc.data})
			if tc.want == nil {
				// Record 2 carries field 3 with wire type 1 (fixed64): an
				// unknown field under protobuf rules, then its real data.
				if err != nil || len(got) != 2 || got[0].PartitionKey != "k" || !bytes.Equal(got[1].Data, []byte{0xBB}) || got[1].ExplicitHashKey != "7" {
					t.Fatalf("got %+v, %v", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Deaggregate: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d records, want %d: %+v", len(got), len(tc.want), got)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(g.Data, w.Data) ||
					g.SubSequenceNumber != w.SubSequenceNumber || g.Aggregated != w.Aggregated {
					t.Errorf("record %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestDeaggregateMalformed(t *testing.T) {
	bad := append([]byte{}, validAggregate...)
	bad[len(bad)-1] ^= 1
	zs := zstdBytes(t, validAggregate)
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"magic only", Magic[:], ErrTooShort},
		{"magic and short trailer", append(append([]byte{}, Magic[:]...), make([]byte, 15)...), ErrTooShort},
		{"bad MD5", bad, ErrChecksum},
		{"truncated varint", kpl(0x1A, 0x80), ErrProtobuf},
		{"overlong varint", kpl(0x28, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02), ErrProtobuf},
		{"field 0", kpl(0x00, 0x00), ErrProtobuf},
		{"group wire type", kpl(0x0B, 0x0C), ErrProtobuf},
		{"table overruns", kpl(0x0A, 0x05, 'k'), ErrProtobuf},
		{"record overruns", kpl(0x0A, 0x01, 'k', 0x1A, 0x09, 0x08, 0x00), ErrProtobuf},
		{"pk index out of range", kpl(0x0A, 0x01, 'k', 0x1A, 0x05, 0x08, 0x01, 0x1A, 0x01, 0xAA), ErrProtobuf},
		{"no pk table", kpl(0x1A, 0x05, 0x08, 0x00, 0x1A, 0x01, 0xAA), ErrProtobuf},
		{"ehk index out of range", kpl(0x0A, 0x01, 'k', 0x1A, 0x07, 0x08, 0x00, 0x10, 0x00, 0x1A, 0x01, 0xAA), ErrProtobuf},
		{"missing data", kpl(0x0A, 0x01, 'k', 0x1A, 0x02, 0x08, 0x00), ErrProtobuf},
		{"missing pk index", kpl(0x0A, 0x01, 'k', 0x1A, 0x03, 0x1A, 0x01, 0xAA), ErrProtobuf},
		{"data overruns record", kpl(0x0A, 0x01, 'k', 0x1A, 0x05, 0x08, 0x00, 0x1A, 0x05, 0xAA), ErrProtobuf},
		{"tag without key", kpl(0x0A, 0x01, 'k', 0x1A, 0x09, 0x08, 0x00, 0x1A, 0x01, 0xAA, 0x22, 0x02, 0x12, 0x00), ErrProtobuf},
		{"second record bad", kpl(0x0A, 0x01, 'k', 0x1A, 0x05, 0x08, 0x00, 0x1A, 0x01, 0xAA, 0x1A, 0x02, 0x08, 0x05), ErrProtobuf},
		{"frame header truncated", append(CompressedMagic[:], 1, 0, 0), ErrFraming},
		{"frame unknown codec", frame(9, uint32(len(validAggregate)), zs), ErrUnknownCodec},
		{"frame declares too much", frame(CodecZstd, DefaultMaxDecompressedSize+1, zs), ErrDecompressedTooLarge},
		{"frame declares below minimum", frame(CodecZstd, 19, zs), ErrFraming},
		{"frame declares less", frame(CodecZstd, uint32(len(validAggregate)-1), zs), ErrDecompress},
		{"frame declares more", frame(CodecZstd, uint32(len(validAggregate)+1), zs), ErrFraming},
		{"zstd garbage", frame(CodecZstd, 100, []byte("not zstd at all")), ErrDecompress},
		{"snappy garbage", frame(CodecSnappy, 100, []byte{0xFF, 0xFF, 0xFF}), ErrDecompress},
		{"snappy length mismatch", frame(CodecSnappy, 100, snappy.Encode(nil, validAggregate)), ErrFraming},
		{"gzip garbage", frame(CodecGzip, 100, []byte("nope")), ErrDecompress},
		{"gzip longer than declared", frame(CodecGzip, uint32(len(validAggregate)-1), gzipBytes(validAggregate)), ErrFraming},
		{"gzip shorter than declared", frame(CodecGzip, uint32(len(validAggregate)+1), gzipBytes(validAggregate)), ErrDecompress},
		{"frame of non-aggregate", frame(CodecZstd, 40, zstdBytes(t, make([]byte, 40))), ErrFraming},
		{"frame of corrupt aggregate", frame(CodecZstd, uint32(len(bad)), zstdBytes(t, bad)), ErrChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Record{PartitionKey: "outer", ExplicitHashKey: "42", Data: tc.data}
			prefix := []UserRecord{{PartitionKey: "earlier"}}
			got, err := (&Deaggregator{cfg: defaultDeaggregatorConfig()}).Append(prefix, in)
			if !errors.Is(err, ErrMalformed) || !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want ErrMalformed and %v", err, tc.want)
			}
			var me *MalformedError
			if !errors.As(err, &me) || me.Err != tc.want {
				t.Fatalf("error %#v is not a *MalformedError with cause %v", err, tc.want)
			}
			if len(got) != 2 || got[0].PartitionKey != "earlier" {
				t.Fatalf("got %d records, want the earlier one and one plain record: %+v", len(got), got)
			}
			p := got[1]
			if p.PartitionKey != "outer" || p.ExplicitHashKey != "42" || !bytes.Equal(p.Data, tc.data) || p.Aggregated || p.SubSequenceNumber != 0 {
				t.Fatalf("plain record %+v, want the input whole", p)
			}
		})
	}
}

func TestDeaggregatePlain(t *testing.T) {
	for _, data := range [][]byte{nil, {}, []byte("hello"), {0xF3, 0x89, 0x9A}, {0xF5, 'F', 'R'}} {
		got, err := Deaggregate(Record{PartitionKey: "p", Data: data})
		if err != nil || len(got) != 1 || got[0].Aggregated || !bytes.Equal(got[0].Data, data) || got[0].PartitionKey != "p" {
			t.Fatalf("Deaggregate(%x) = %+v, %v; want one plain record", data, got, err)
		}
	}
}

func TestChecksumVerificationOff(t *testing.T) {
	bad := append([]byte{}, validAggregate...)
	bad[len(bad)-1] ^= 1
	d, err := NewDeaggregator(WithChecksumVerification(false))
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Deaggregate(Record{PartitionKey: "p", Data: bad})
	if err != nil || len(got) != 2 || !got[0].Aggregated {
		t.Fatalf("with verification off: %+v, %v", got, err)
	}
}

// TestShardHashKeyRangeFilter: with the filter on, an aggregate whose user
// records all lie in the shard's range (by explicit hash key or by the MD5 of
// the partition key, the range's ends included) is delivered whole with its
// sub-sequence numbers, and an aggregate holding any record outside the range
// is dropped whole, its records in range too, as the Java KCL does; in both
// decoders (the one-pass decoder of the usual layout and the general one) and
// through AppendBatch. Plain records and malformed aggregates are never
// dropped.
func TestShardHashKeyRangeFilter(t *testing.T) {
	mid := FullHashKeyRange.Midpoint()
	low := HashKeyRange{Start: HashKey{}, End: mid}
	// Partition keys on each side of the midpoint.
	var lowPK, highPK string
	for i := 0; lowPK == "" || highPK == ""; i++ {
		pk := string(rune('a'+i%26)) + string(rune('a'+i/26))
		if low.Contains(PartitionKeyHash(pk)) {
			lowPK = pk
		} else {
			highPK = pk
		}
	}
	inLow := []Record{
		{PartitionKey: highPK, ExplicitHashKey: "0", Data: []byte("0")},          // low by EHK, the range's start
		{PartitionKey: lowPK, Data: []byte("1")},                                 // low by MD5
		{PartitionKey: highPK, ExplicitHashKey: mid.String(), Data: []byte("2")}, // low: the range's end
		{PartitionKey: lowPK, Data: []byte("3")},
	}
	highByEHK := Record{PartitionKey: lowPK, ExplicitHashKey: mid.Add1().String(), Data: []byte("h")}
	highByMD5 := Record{PartitionKey: highPK, Data: []byte("h")}
	with := func(at int, out Record) []Record {
		return slices.Insert(slices.Clone(inLow), at, out)
	}
	d := newTestDeaggregator(t, false, WithShardHashKeyRange(low))
	for _, tc := range []struct {
		name string
		recs []Record
		keep bool
	}{
		{"all in range", inLow, true},
		{"one out first, by explicit hash key", with(0, highByEHK), false},
		{"one out in the middle, by MD5", with(2, highByMD5), false},
		{"one out last, by explicit hash key", with(len(inLow), highByEHK), false},
		{"all out", []Record{highByMD5, highByEHK}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustAggregator(t)
			for _, r := range tc.recs {
				if err := a.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			agg, err := a.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			var want []int64
			if tc.keep {
				for i := range tc.recs {
					want = append(want, int64(i))
				}
			}
			check := func(how string, got []UserRecord) {
				t.Helper()
				var subs []int64
				for _, g := range got {
					subs = append(subs, g.SubSequenceNumber)
					if w := tc.recs[g.SubSequenceNumber]; string(g.Data) != string(w.Data) || g.PartitionKey != w.PartitionKey {
						t.Errorf("%s: record %d is %q/%q, want %q/%q", how, g.SubSequenceNumber, g.PartitionKey, g.Data, w.PartitionKey, w.Data)
					}
				}
				if !equalInts(subs, want) {
					t.Fatalf("%s: kept sub-sequence numbers %v, want %v", how, subs, want)
				}
			}
			got, err := d.Deaggregate(agg)
			if err != nil {
				t.Fatal(err)
			}
			check("Append", got)
			body := agg.Data[len(Magic) : len(agg.Data)-md5.Size]
			prefix := []UserRecord{{PartitionKey: "prefix"}}
			inOrder, ok := d.decodeInOrder(slices.Clone(prefix), body)
			if !ok {
				t.Fatal("one-pass decoder rejected the aggregator's body")
			}
			anyOrder, err := d.decodeAnyOrder(slices.Clone(prefix), body)
			d.release()
			if err != nil {
				t.Fatal(err)
			}
			for how, got := range map[string][]UserRecord{"one-pass decoder": inOrder, "general decoder": anyOrder} {
				if len(got) == 0 || got[0].PartitionKey != "prefix" {
					t.Fatalf("%s: records before the aggregate changed: %+v", how, got)
				}
				check(how, got[1:])
			}
			// Between two plain records in one batch: only the aggregate's
			// records are filtered.
			batch := []Record{{PartitionKey: highPK, Data: []byte("p0")}, agg, {PartitionKey: highPK, Data: []byte("p1")}}
			out, ends, err := d.AppendBatch(nil, nil, batch)
			if err != nil {
				t.Fatal(err)
			}
			if len(ends) != 3 || ends[0] != 1 || ends[2] != ends[1]+1 || string(out[0].Data) != "p0" || string(out[len(out)-1].Data) != "p1" {
				t.Fatalf("AppendBatch: plain records filtered or misplaced: ends %v, %d records", ends, len(out))
			}
			check("AppendBatch", out[ends[0]:ends[1]])
		})
	}
	// A malformed aggregate holding an out-of-range record is delivered
	// whole as one plain record, as without the filter.
	a := mustAggregator(t)
	for _, r := range with(1, highByMD5) {
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	agg, err := a.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	agg.Data[len(agg.Data)-1] ^= 1
	got, err := d.Deaggregate(agg)
	if !errors.Is(err, ErrMalformed) || len(got) != 1 || got[0].Aggregated {
		t.Fatalf("malformed aggregate: %+v, %v", got, err)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCompression(t *testing.T) {
	compressible := bytes.Repeat([]byte("clickstream event "), 40)
	for _, codec := range []Codec{CodecZstd, CodecSnappy, CodecGzip} {
		t.Run(codec.String(), func(t *testing.T) {
			a := mustAggregator(t, WithCompression(codec))
			recs := []Record{
				{PartitionKey: "p1", Data: compressible},
				{PartitionKey: "p2", ExplicitHashKey: "77", Data: compressible},
				{PartitionKey: "p1", Data: nil},
			}
			for _, r := range recs {
				if err := a.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			size := a.Size()
			out, err := a.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !hasPrefix(out.Data, CompressedMagic[:]) || out.Data[4] != byte(codec) {
				t.Fatalf("drained data %x is not a %v frame", out.Data[:min(9, len(out.Data))], codec)
			}
			if got := binary.BigEndian.Uint32(out.Data[5:]); int(got) != size {
				t.Fatalf("frame declares %d bytes, aggregate is %d", got, size)
			}
			if len(out.Data) >= size/2 {
				t.Fatalf("frame of %d bytes for a %d-byte aggregate of repetitive data", len(out.Data), size)
			}
			checkDecodes(t, out, recs)

			// A single compressible record is framed too, keeping its keys.
			one := Record{PartitionKey: "solo", ExplicitHashKey: "5", Data: compressible}
			if err := a.Add(one); err != nil {
				t.Fatal(err)
			}
			out, err = a.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !hasPrefix(out.Data, CompressedMagic[:]) || out.PartitionKey != "solo" || out.ExplicitHashKey != "5" {
				t.Fatalf("single record drained as %q/%q %x", out.PartitionKey, out.ExplicitHashKey, out.Data[:4])
			}
			checkDecodes(t, out, []Record{one})

			// Incompressible data stays a plain KPL aggregate.
			noise := make([]byte, 2000)
			rng := rand.New(rand.NewPCG(7, 7))
			for i := range noise {
				noise[i] = byte(rng.Uint32())
			}
			for _, r := range []Record{{PartitionKey: "x", Data: noise[:1000]}, {PartitionKey: "y", Data: noise[1000:]}} {
				if err := a.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			if out, _ = a.Drain(nil); !hasPrefix(out.Data, Magic[:]) {
				t.Fatalf("incompressible aggregate drained as %x, want a KPL aggregate", out.Data[:4])
			}
		})
	}
}

// TestCompressionLevel checks that every level of zstd and gzip produces
// frames that decode, and that the levels really differ: the best level is
// no larger than the fastest, and smaller on text with long-range repeats.
func TestCompressionLevel(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	words := []string{"click", "view", "scroll", "purchase", "/home", "/cart", "/item/", "user", "session"}
	var recs []Record
	for i := 0; i < 400; i++ {
		var b []byte
		for j := 0; j < 12; j++ {
			b = append(b, words[rng.IntN(len(words))]...)
			b = append(b, byte('0'+rng.IntN(10)), ' ')
		}
		recs = append(recs, Record{PartitionKey: fmt.Sprint("user-", rng.IntN(50)), Data: b})
	}
	for _, tc := range []struct {
		codec         Codec
		fastest, best int
		levels        []int
	}{
		{codec: CodecZstd, fastest: ZstdSpeedFastest, best: ZstdSpeedBestCompression, levels: []int{0, 1, 2, 3, 4}},
		{codec: CodecGzip, fastest: 1, best: 9, levels: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
	} {
		sizes := map[int]int{}
		for _, level := range tc.levels {
			a := mustAggregator(t, WithCompression(tc.codec), WithCompressionLevel(level), WithMaxBytes(MaxMaxBytes))
			for _, r := range recs {
				if err := a.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			out, err := a.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !hasPrefix(out.Data, CompressedMagic[:]) || out.Data[4] != byte(tc.codec) {
				t.Fatalf("%v level %d: not a %v frame", tc.codec, level, tc.codec)
			}
			checkDecodes(t, out, recs)
			sizes[level] = len(out.Data)
		}
		if sizes[tc.best] >= sizes[tc.fastest] {
			t.Errorf("%v: best level gives %d bytes, fastest %d; want smaller", tc.codec, sizes[tc.best], sizes[tc.fastest])
		}
	}
}

func TestMinCompressSize(t *testing.T) {
	a := mustAggregator(t, WithCompression(CodecZstd), WithMinCompressSize(10000))
	for _, r := range []Record{{PartitionKey: "a", Data: make([]byte, 1000)}, {PartitionKey: "b", Data: make([]byte, 1000)}} {
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if out, _ := a.Drain(nil); !hasPrefix(out.Data, Magic[:]) {
		t.Fatal("aggregate below the minimum size was compressed")
	}
}

// TestDecompressionBomb checks that a tiny frame that inflates enormously is
// rejected without allocating anywhere near its inflated size.
func TestDecompressionBomb(t *testing.T) {
	const inflated = 16 << 20
	zeros := make([]byte, inflated)
	bombs := map[Codec][]byte{
		CodecZstd:   zstdBytes(t, zeros),
		CodecGzip:   gzipBytes(zeros),
		CodecSnappy: snappy.Encode(nil, zeros),
	}
	zeros = nil
	d, err := NewDeaggregator(WithMaxDecompressedSize(1 << 20))
	if err != nil {
		t.Fatal(err)
	}
	// Warm the decoders up so that their own state is not counted.
	for _, c := range []Codec{CodecZstd, CodecGzip, CodecSnappy} {
		a := mustAggregator(t, WithCompression(c), WithMinCompressSize(0))
		_ = a.Add(Record{PartitionKey: "p", Data: make([]byte, 1000)})
		out, _ := a.Drain(nil)
		if _, err := d.Deaggregate(out); err != nil {
			t.Fatal(err)
		}
	}
	for codec, payload := range bombs {
		for _, declared := range []uint32{4096, 1 << 20, inflated} {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			got, err := d.Deaggregate(Record{PartitionKey: "p", Data: frame(codec, declared, payload)})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrMalformed) || len(got) != 1 || got[0].Aggregated {
				t.Fatalf("%v bomb declaring %d: %v, %d records", codec, declared, err, len(got))
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Errorf("%v bomb declaring %d allocated %d bytes", codec, declared, alloc)
			}
		}
	}
}

// TestRecordFastPathsMatchSlow checks the in-line decoding of Record
// messages against parseRecordSlow, the plain field-by-field decoder, on
// valid records and on damaged ones (lengths off by one or by 128, flipped
// bytes, truncation): an aggregate holding the record must decode to what
// parseRecordSlow says, or be malformed when it says the record is invalid.
func TestRecordFastPathsMatchSlow(t *testing.T) {
	const npk, nehk = 200, 3
	var tables []byte
	for i := 0; i < npk; i++ {
		k := fmt.Sprint("k", i)
		tables = append(append(append(tables, tagPartitionKeyTable), byte(len(k))), k...)
	}
	for i := 0; i < nehk; i++ {
		tables = append(append(tables, tagExplicitHashKeyTable, 1), byte('0'+i))
	}
	keys := func(pki, ehki int) (string, string) {
		ehk := ""
		if ehki >= 0 {
			ehk = string(rune('0' + ehki))
		}
		return fmt.Sprint("k", pki), ehk
	}
	rng := rand.New(rand.NewPCG(6, 6))
	d := newTestDeaggregator(t, false)
	check := func(rec []byte) {
		t.Helper()
		body := append(append([]byte(nil), tables...), tagRecords)
		body = appendVarint(body, uint64(len(rec)))
		body = append(body, rec...)
		got, err := d.Append(nil, Record{PartitionKey: "outer", Data: kpl(body...)})
		pki, ehki, data, _, werr := parseRecordSlow(rec, npk, nehk)
		if werr != nil {
			if !errors.Is(err, ErrProtobuf) {
				t.Fatalf("record %x: slow decoder says %v, Append gave %v %+v", rec, werr, err, got)
			}
			return
		}
		pk, ehk := keys(pki, ehki)
		if err != nil || len(got) != 1 || got[0].PartitionKey != pk || got[0].ExplicitHashKey != ehk || !bytes.Equal(got[0].Data, data) {
			t.Fatalf("record %x: got %+v %v, want pk %q ehk %q data %x", rec, got, err, pk, ehk, data)
		}
		if want := refTags(rec); !reflect.DeepEqual(got[0].Tags(), want) {
			t.Fatalf("record %x: tags %+v, want %+v", rec, got[0].Tags(), want)
		}
	}
	dataLens := []int{0, 1, 126, 127, 128, 129, 255, 256, 16383, 16384}
	for n := 0; n < 3000; n++ {
		pk := rng.IntN(npk + 20)
		rec := appendVarint([]byte{tagPartitionKeyIndex}, uint64(pk))
		if rng.IntN(3) == 0 {
			rec = appendVarint(append(rec, tagExplicitHashKeyIndex), uint64(rng.IntN(nehk+1)))
		}
		size := dataLens[rng.IntN(len(dataLens))]
		rec = appendVarint(append(rec, tagData), uint64(size))
		lenAt := len(rec) - varintSize(uint64(size))
		rec = append(rec, make([]byte, size)...)
		if rng.IntN(3) == 0 {
			// Tags after the data, as encoders write them, or before it.
			tag := []byte{tagTags, 6, tagTagKey, 1, byte('a' + n%26), tagTagValue, 1, 'v'}
			if rng.IntN(2) == 0 {
				rec = append(rec, tag...)
			} else {
				rec = append(tag, rec...)
				lenAt += len(tag)
			}
		}
		check(rec)
		// The same record with its data length damaged.
		for _, delta := range []int{-128, -1, 1, 128} {
			if size+delta < 0 {
				continue
			}
			bad := appendVarint(append([]byte(nil), rec[:lenAt]...), uint64(size+delta))
			check(append(bad, rec[lenAt+varintSize(uint64(size)):]...))
		}
		bad := append([]byte(nil), rec...)
		bad[rng.IntN(len(bad))] ^= byte(1 << rng.IntN(8))
		check(bad)
		check(rec[:rng.IntN(len(rec))])
	}
	// A two-byte length whose low and high parts, or-ed instead of added,
	// would seem to end exactly at the record's end.
	check(append([]byte{tagPartitionKeyIndex, 0, tagData, 0xFF, 0x01}, make([]byte, 127)...))
}

// encodeBody writes a protobuf AggregatedRecord body the way every known
// encoder does (tables, then records) from tables and records given as
// (pk index, ehk index or -1, data length).
func encodeBody(pks, ehks []string, recs [][3]int) []byte {
	var b []byte
	for _, k := range pks {
		b = appendVarint(append(b, tagPartitionKeyTable), uint64(len(k)))
		b = append(b, k...)
	}
	for _, k := range ehks {
		b = appendVarint(append(b, tagExplicitHashKeyTable), uint64(len(k)))
		b = append(b, k...)
	}
	for i, r := range recs {
		rec := appendVarint([]byte{tagPartitionKeyIndex}, uint64(r[0]))
		if r[1] >= 0 {
			rec = appendVarint(append(rec, tagExplicitHashKeyIndex), uint64(r[1]))
		}
		rec = appendVarint(append(rec, tagData), uint64(r[2]))
		for j := 0; j < r[2]; j++ {
			rec = append(rec, byte(i+j))
		}
		b = appendVarint(append(b, tagRecords), uint64(len(rec)))
		b = append(b, rec...)
	}
	return b
}

// checkDecodePathsAgree decodes body with the one-pass decoder and, when it
// accepts body, checks that the general decoder gives the same records.
// It returns whether the one-pass decoder accepted body.
func checkDecodePathsAgree(t testing.TB, d *Deaggregator, body []byte) bool {
	t.Helper()
	prefix := []UserRecord{{PartitionKey: "prefix"}}
	got, ok := d.decodeInOrder(append([]UserRecord(nil), prefix...), body)
	if !ok {
		if len(got) != 1 || got[0].PartitionKey != "prefix" {
			t.Fatalf("body %s: rejected, but dst changed to %+v", shortHex(body), got)
		}
		return false
	}
	want, err := d.decodeAnyOrder(append([]UserRecord(nil), prefix...), body)
	if err != nil {
		t.Fatalf("body %s: one-pass decoder accepted what the general one rejects (%v): %+v", shortHex(body), err, got)
	}
	if e := sameUserRecords(got, want); e != nil {
		t.Fatalf("body %s: %v", shortHex(body), e)
	}
	return true
}

// shortHex shows the length and start of b.
func shortHex(b []byte) string {
	if len(b) > 48 {
		return fmt.Sprintf("(%d bytes) %x...", len(b), b[:48])
	}
	return fmt.Sprintf("%x", b)
}

// TestDecodePathsAgree checks the one-pass decoder of the usual layout
// against the general two-pass decoder, on valid bodies with key indices
// and lengths around the one- and two-byte varint boundaries, with and
// without explicit hash keys and the hash-range filter, and on the same
// bodies damaged (a flipped byte, truncation, a byte inserted, a table entry
// moved after the records). Both must agree on every body the one-pass
// decoder accepts, and it must accept every valid body.
func TestDecodePathsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	shard := HashKeyRange{Start: HashKey{Hi: 1 << 62}, End: MaxHashKey}
	plainD := newTestDeaggregator(t, false)
	filterD := newTestDeaggregator(t, false, WithShardHashKeyRange(shard))
	dataLens := []int{0, 1, 2, 100, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 300, 16370, 16383, 16384}
	accepted, rejected := 0, 0
	for n := 0; n < 250; n++ {
		npk := []int{1, 3, 127, 128, 129, 300}[rng.IntN(6)]
		nehk := []int{0, 0, 2, 128, 200}[rng.IntN(5)]
		pks := make([]string, npk)
		for i := range pks {
			pks[i] = fmt.Sprint("pk-", i)
		}
		ehks := make([]string, nehk)
		for i := range ehks {
			ehks[i] = PartitionKeyHash(fmt.Sprint(i)).String()
		}
		recs := make([][3]int, 1+rng.IntN(40))
		for i := range recs {
			ehk := -1
			if nehk > 0 && rng.IntN(2) == 0 {
				ehk = rng.IntN(nehk)
			}
			recs[i] = [3]int{rng.IntN(npk), ehk, dataLens[rng.IntN(len(dataLens))]}
		}
		body := encodeBody(pks, ehks, recs)
		for _, d := range []*Deaggregator{plainD, filterD} {
			if !checkDecodePathsAgree(t, d, body) {
				t.Fatalf("valid body of %d records rejected by the one-pass decoder", len(recs))
			}
		}
		for k := 0; k < 8; k++ {
			bad := append([]byte(nil), body...)
			switch k % 4 {
			case 0:
				bad[rng.IntN(len(bad))] ^= byte(1 << rng.IntN(8))
			case 1:
				bad = bad[:rng.IntN(len(bad))]
			case 2:
				at := rng.IntN(len(bad))
				bad = append(bad[:at], append([]byte{byte(rng.Uint32())}, bad[at:]...)...)
			case 3:
				// The last partition key moved after the records: only the
				// general decoder can decode it.
				last := appendVarint([]byte{tagPartitionKeyTable}, uint64(len(pks[npk-1])))
				last = append(last, pks[npk-1]...)
				bad = append(encodeBody(pks[:npk-1], ehks, recs), last...)
			}
			if checkDecodePathsAgree(t, plainD, bad) {
				accepted++
			} else {
				rejected++
			}
			checkDecodePathsAgree(t, filterD, bad)
		}
	}
	if accepted == 0 || rejected == 0 {
		t.Fatalf("damaged bodies: %d accepted, %d rejected by the one-pass decoder; want some of each", accepted, rejected)
	}
}

// refTags decodes every tag field of the Record message rec, in order, wherever it
// lies; nil when it has none.
func refTags(rec []byte) []Tag {
	var tags []Tag
	for i := 0; i < len(rec); {
		field, wire, j := readTag(rec, i)
		e := skipField(rec, j, wire)
		if field == 4 && wire == wireBytes {
			s, _ := readBytes(rec, j)
			var t Tag
			for k := s; k < e; {
				f, w, l := readTag(rec, k)
				k = skipField(rec, l, w)
				if vs, ve := readBytes(rec, l); w == wireBytes && f == 1 {
					t.Key = string(rec[vs:ve])
				} else if w == wireBytes && f == 2 {
					t.Value = string(rec[vs:ve])
				}
			}
			tags = append(tags, t)
		}
		i = e
	}
	return tags
}
