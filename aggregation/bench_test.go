package aggregation

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchRecords returns n records of size bytes over 1,000 partition keys.
func benchRecords(n, size int) []Record {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%06d", rng.IntN(1_000_000))
	}
	recs := make([]Record, n)
	for i := range recs {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte('a' + rng.IntN(26))
		}
		recs[i] = Record{PartitionKey: keys[rng.IntN(len(keys))], Data: data}
	}
	return recs
}

// BenchmarkAggregate measures adding user records to an aggregator with the
// KPL defaults, draining into a reused buffer whenever it is full. One op is
// one user record; bytes are user-record data bytes.
func BenchmarkAggregate(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, codec := range []Codec{CodecNone, CodecZstd} {
			b.Run(fmt.Sprintf("%dB/%v", size, codec), func(b *testing.B) {
				recs := benchRecords(4096, size)
				a, err := NewAggregator(WithCompression(codec))
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 0, 64<<10)
				var drained, out int
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					r := recs[i%len(recs)]
					if err := a.Add(r); errors.Is(err, ErrFull) {
						rec, _ := a.Drain(buf)
						buf = rec.Data[:0]
						drained++
						out += len(rec.Data)
						if err := a.Add(r); err != nil {
							b.Fatal(err)
						}
					} else if err != nil {
						b.Fatal(err)
					}
				}
				if drained > 0 {
					b.ReportMetric(float64(b.N)/float64(drained), "records/aggregate")
					b.ReportMetric(float64(out)/float64(drained), "bytes/aggregate")
				}
			})
		}
	}
}

// BenchmarkAdd measures Add alone (Reset instead of Drain), the per-record
// cost a producer pays on Put.
func BenchmarkAdd(b *testing.B) {
	recs := benchRecords(4096, 100)
	a, err := NewAggregator()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.Add(recs[i%len(recs)]); err != nil {
			a.Reset()
		}
	}
}

func benchAggregate(b *testing.B, size int, opts ...AggregatorOption) Record {
	a, err := NewAggregator(opts...)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range benchRecords(2*DefaultMaxBytes/size, size) {
		if err := a.Add(r); err != nil {
			break
		}
	}
	rec, err := a.Drain(nil)
	if err != nil {
		b.Fatal(err)
	}
	return rec
}

// BenchmarkDeaggregate measures de-aggregating one full (51,200-byte)
// aggregate; bytes are aggregate input bytes, so MB/s is input throughput.
func BenchmarkDeaggregate(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, tc := range []struct {
			name  string
			agg   []AggregatorOption
			deagg []DeaggregatorOption
		}{
			{name: "md5", deagg: nil},
			{name: "nomd5", deagg: []DeaggregatorOption{WithChecksumVerification(false)}},
			{name: "zstd", agg: []AggregatorOption{WithCompression(CodecZstd)}},
		} {
			b.Run(fmt.Sprintf("%dB/%s", size, tc.name), func(b *testing.B) {
				rec := benchAggregate(b, size, tc.agg...)
				d, err := NewDeaggregator(tc.deagg...)
				if err != nil {
					b.Fatal(err)
				}
				dst, err := d.Append(nil, rec)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(dst)), "records/aggregate")
				b.SetBytes(int64(len(rec.Data)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					dst, err = d.Append(dst[:0], rec)
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
