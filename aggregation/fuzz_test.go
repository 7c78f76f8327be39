package aggregation

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

func fuzzSeeds(f *testing.F) [][]byte {
	seeds := [][]byte{nil, {}, []byte("plain"), Magic[:], CompressedMagic[:], validAggregate}
	for _, codec := range []Codec{CodecNone, CodecZstd, CodecSnappy, CodecGzip} {
		a, err := NewAggregator(WithCompression(codec), WithMinCompressSize(0))
		if err != nil {
			f.Fatal(err)
		}
		for _, r := range []Record{
			{PartitionKey: "k", Data: bytes.Repeat([]byte("ab"), 40)},
			{PartitionKey: "ключ", ExplicitHashKey: "0", Data: nil},
			{PartitionKey: "k", ExplicitHashKey: MaxHashKey.String(), Data: []byte{1}},
			{PartitionKey: "t", Data: []byte("tagged"), Tags: []Tag{{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, {Key: "k"}}},
		} {
			if err := a.Add(r); err != nil {
				f.Fatal(err)
			}
		}
		out, err := a.Drain(nil)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, out.Data)
	}
	return seeds
}

// FuzzDeaggregate feeds arbitrary record data to the deaggregator: it must
// never panic, must either decode or return the input whole as one plain
// record with a *MalformedError, and decoded user records must lie inside
// the input (or a bounded decompressed buffer).
func FuzzDeaggregate(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	d, err := NewDeaggregator(WithMaxDecompressedSize(1 << 20))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := Record{PartitionKey: "outer", Data: data}
		got, err := d.Append(nil, in)
		if err != nil {
			var me *MalformedError
			if !errors.As(err, &me) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not a *MalformedError", err)
			}
			if len(got) != 1 || got[0].Aggregated || !bytes.Equal(got[0].Data, data) || got[0].PartitionKey != "outer" {
				t.Fatalf("malformed input not returned whole: %+v", got)
			}
			return
		}
		if !hasPrefix(data, Magic[:]) && !hasPrefix(data, CompressedMagic[:]) {
			if len(got) != 1 || got[0].Aggregated {
				t.Fatalf("plain input decoded as %+v", got)
			}
			return
		}
		total := 0
		last := int64(-1)
		for _, u := range got {
			if !u.Aggregated || u.SubSequenceNumber <= last {
				t.Fatalf("bad user record %+v after sub-sequence number %d", u, last)
			}
			last = u.SubSequenceNumber
			total += len(u.Data)
			// A record's tags lie in its data's spare capacity, and only there.
			if n := u.TagsSize(); cap(u.Data)-len(u.Data) != n || (n > 0) != (len(u.Tags()) > 0) {
				t.Fatalf("record %d: %d tag bytes, capacity %d over %d bytes of data, tags %+v", u.SubSequenceNumber, n, cap(u.Data), len(u.Data), u.Tags())
			}
			total += u.TagsSize()
		}
		if limit := max(len(data), 1<<20); total > limit {
			t.Fatalf("decoded %d bytes of data from %d bytes of input", total, len(data))
		}
	})
}

// FuzzCompressedFrame builds frames from a codec byte, a declared length and
// an arbitrary payload (optionally a real compressed aggregate), and checks
// that decoding never panics and never yields more than the limit.
func FuzzCompressedFrame(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if hasPrefix(s, CompressedMagic[:]) && len(s) >= frameHeaderSize {
			f.Add(s[4], binary.BigEndian.Uint32(s[5:]), s[frameHeaderSize:])
		}
	}
	f.Add(byte(CodecZstd), uint32(1<<31), []byte{0x28, 0xB5, 0x2F, 0xFD})
	f.Add(byte(CodecGzip), uint32(100), []byte{0x1F, 0x8B, 8, 0})
	f.Add(byte(CodecSnappy), uint32(100), []byte{0x64, 0x00})
	const limit = 64 << 10
	d, err := NewDeaggregator(WithMaxDecompressedSize(limit))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, codec byte, size uint32, payload []byte) {
		data := frame(Codec(codec), size, payload)
		got, err := d.Append(nil, Record{PartitionKey: "p", Data: data})
		if err != nil {
			if len(got) != 1 || !bytes.Equal(got[0].Data, data) || got[0].Aggregated {
				t.Fatalf("malformed frame not returned whole: %+v", got)
			}
			if size > limit && !errors.Is(err, ErrDecompressedTooLarge) && Codec(codec) >= CodecZstd && Codec(codec) <= CodecGzip {
				t.Fatalf("frame declaring %d > %d failed with %v", size, limit, err)
			}
			return
		}
		if size > limit {
			t.Fatalf("frame declaring %d bytes accepted with limit %d", size, limit)
		}
		total := 0
		for _, u := range got {
			total += len(u.Data)
		}
		if total > int(size) {
			t.Fatalf("%d bytes of user data from a frame declaring %d", total, size)
		}
	})
}

// FuzzRoundTrip builds user records from fuzz input, aggregates them (with
// and without compression) and checks that de-aggregation returns them.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("k\x00data\x00ключ\x01\x00\x00"), uint8(0))
	f.Add(bytes.Repeat([]byte("key\x00value\x00"), 50), uint8(1))
	f.Add([]byte("k\x00\x03tagged\x00"), uint8(0))
	var aggs [4]*Aggregator
	for c := range aggs {
		a, err := NewAggregator(WithCompression(Codec(c)), WithMinCompressSize(0), WithMaxBytes(1024))
		if err != nil {
			f.Fatal(err)
		}
		aggs[c] = a
	}
	f.Fuzz(func(t *testing.T, in []byte, codec uint8) {
		var recs []Record
		parts := bytes.Split(in, []byte{0})
		for i := 0; i+1 < len(parts); i += 2 {
			pk := string(parts[i])
			if !utf8.ValidString(pk) || pk == "" || len(pk) > MaxPartitionKeyLength {
				pk = "k"
			}
			r := Record{PartitionKey: pk, Data: parts[i+1]}
			if len(parts[i+1]) > 0 && parts[i+1][0]&1 == 1 {
				r.ExplicitHashKey = PartitionKeyHash(string(parts[i+1])).String()
			}
			if len(parts[i+1]) > 0 && parts[i+1][0]&2 == 2 {
				v := string(parts[i+1])
				if !utf8.ValidString(v) {
					v = ""
				}
				r.Tags = []Tag{{Key: "traceparent", Value: v}, {Key: "k"}}
			}
			recs = append(recs, r)
		}
		if len(recs) == 0 {
			return
		}
		a := aggs[codec%4]
		a.Reset()
		var batch []Record
		flush := func() {
			out, err := a.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			checkDecodes(t, out, batch)
			batch = nil
		}
		for _, r := range recs {
			want := a.SizeWith(r)
			if err := a.Add(r); errors.Is(err, ErrFull) {
				flush()
				want = a.SizeWith(r)
				if err := a.Add(r); err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if a.Size() != want {
				t.Fatalf("Size %d, SizeWith said %d", a.Size(), want)
			}
			batch = append(batch, r)
		}
		flush()
	})
}

// FuzzAppendBatch cuts fuzz input into a batch of records (a two-byte
// big-endian length before each), repeats it so that large aggregates fill
// MD5 lanes, and checks that AppendBatch decodes it exactly as Append does
// record by record, with and without lanes and the hash-range filter.
func FuzzAppendBatch(f *testing.F) {
	seeds := fuzzSeeds(f)
	big := randomAggregate(rand.New(rand.NewPCG(1, 1)), CodecNone, 8<<10).Data
	seeds = append(seeds, big)
	var all []byte
	for _, s := range seeds {
		all = binary.BigEndian.AppendUint16(all, uint16(len(s)))
		all = append(all, s...)
		f.Add(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s, uint8(0), uint8(7))
	}
	f.Add(all, []byte{}, uint8(1), uint8(3))
	f.Add(binary.BigEndian.AppendUint16(nil, uint16(len(big))), big, uint8(2), uint8(15))
	shard := HashKeyRange{Start: HashKey{Hi: 1 << 63}, End: MaxHashKey}
	batchers := []*Deaggregator{
		newTestDeaggregator(f, true, WithMaxDecompressedSize(1<<20)),
		newTestDeaggregator(f, false, WithMaxDecompressedSize(1<<20)),
		newTestDeaggregator(f, true, WithMaxDecompressedSize(1<<20), WithShardHashKeyRange(shard)),
	}
	singles := []*Deaggregator{
		newTestDeaggregator(f, false, WithMaxDecompressedSize(1<<20)),
		newTestDeaggregator(f, false, WithMaxDecompressedSize(1<<20)),
		newTestDeaggregator(f, false, WithMaxDecompressedSize(1<<20), WithShardHashKeyRange(shard)),
	}
	f.Fuzz(func(t *testing.T, cut, tail []byte, mode, repeat uint8) {
		in := append(cut, tail...)
		var records []Record
		for len(in) >= 2 {
			n := min(int(binary.BigEndian.Uint16(in)), len(in)-2)
			records = append(records, Record{PartitionKey: "p", Data: in[2 : 2+n]})
			in = in[2+n:]
		}
		if len(in) > 0 {
			records = append(records, Record{PartitionKey: "q", Data: in})
		}
		one := records
		for i := 0; i < int(repeat%20); i++ {
			records = append(records, one...)
		}
		m := int(mode) % len(batchers)
		checkBatchMatches(t, batchers[m], singles[m], records)
	})
}

// FuzzDecodePathsAgree feeds arbitrary protobuf bodies to the one-pass
// decoder of the usual layout and checks that whatever it accepts, the
// general decoder decodes to the same records, with and without the
// hash-range filter.
func FuzzDecodePathsAgree(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if hasPrefix(s, Magic[:]) && len(s) >= overhead {
			f.Add(s[len(Magic) : len(s)-md5.Size])
		}
	}
	f.Add(encodeBody([]string{"a", "b"}, []string{"0"}, [][3]int{{0, -1, 3}, {1, 0, 0}, {0, 0, 200}}))
	shard := HashKeyRange{Start: HashKey{Hi: 1 << 63}, End: MaxHashKey}
	ds := []*Deaggregator{newTestDeaggregator(f, false), newTestDeaggregator(f, false, WithShardHashKeyRange(shard))}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, d := range ds {
			checkDecodePathsAgree(t, d, body)
		}
	})
}

// FuzzSeal hands arbitrary data to Seal: it must either reject it and leave
// it unchanged, or accept it (only an unsealed aggregate's shape) and change
// nothing but the trailer, to the MD5 of the body.
func FuzzSeal(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
		if hasPrefix(s, Magic[:]) && len(s) > overhead {
			f.Add(append(s[:len(s)-md5.Size:len(s)-md5.Size], make([]byte, md5.Size)...))
		}
	}
	var s Sealer
	f.Fuzz(func(t *testing.T, data []byte) {
		before := append([]byte(nil), data...)
		if err := s.Seal([][]byte{data}); err != nil {
			if !errors.Is(err, ErrNotUnsealed) {
				t.Fatalf("error %v does not match ErrNotUnsealed", err)
			}
			if !bytes.Equal(data, before) {
				t.Fatalf("rejected data changed")
			}
			return
		}
		n := len(data) - md5.Size
		if !hasPrefix(before, Magic[:]) || !bytes.Equal(before[n:], make([]byte, md5.Size)) {
			t.Fatalf("accepted data %x that is not an unsealed aggregate", before)
		}
		if want := md5.Sum(data[len(Magic):n]); !bytes.Equal(data[:n], before[:n]) || !bytes.Equal(data[n:], want[:]) {
			t.Fatalf("sealed %x to %x", before, data)
		}
	})
}
