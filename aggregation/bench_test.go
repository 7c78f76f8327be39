package aggregation

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/freshet/freshet/internal/cputime"
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
// aggregate with Append; bytes are aggregate input bytes, so MB/s is input
// throughput and MB/cpu-s input throughput per core.
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
				cpu := startCPUMeter(b)
				for i := 0; i < b.N; i++ {
					dst, err = d.Append(dst[:0], rec)
					if err != nil {
						b.Fatal(err)
					}
				}
				cpu.report(b, int64(len(rec.Data)))
			})
		}
	}
}

// cpuMeter measures the process CPU time of a benchmark loop, so that MB/s
// per core can be read on a shared machine where wall time is noisy. It
// counts every goroutine of the process (the GC workers too), which is
// what a consumer pays.
type cpuMeter struct{ start int64 }

// startCPUMeter resets the benchmark timer and starts measuring.
func startCPUMeter(b *testing.B) cpuMeter {
	b.ResetTimer()
	return cpuMeter{start: int64(cputime.Process())}
}

// report adds cpu-ns/op and MB/cpu-s (input bytes per CPU-second) metrics.
func (m cpuMeter) report(b *testing.B, bytesPerOp int64) {
	end := int64(cputime.Process())
	if m.start == 0 || end <= m.start || b.N == 0 {
		return
	}
	ns := float64(end-m.start) / float64(b.N)
	b.ReportMetric(ns, "cpu-ns/op")
	b.ReportMetric(float64(bytesPerOp)/ns*1e3, "MB/cpu-s")
}

// benchBatch returns n full KPL aggregates (up to 51,200 bytes each, the KPL
// default) of user records of size bytes, each with different data, as
// GetRecords would return them from a KPL producer.
func benchBatch(b *testing.B, n, size int) []Record {
	recs := benchRecords(n*(DefaultMaxBytes/size+1), size)
	a, err := NewAggregator()
	if err != nil {
		b.Fatal(err)
	}
	var out []Record
	for _, r := range recs {
		if len(out) == n {
			break
		}
		if err := a.Add(r); errors.Is(err, ErrFull) {
			agg, err := a.Drain(nil)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, agg)
			if err := a.Add(r); err != nil {
				b.Fatal(err)
			}
		} else if err != nil {
			b.Fatal(err)
		}
	}
	if len(out) != n {
		b.Fatalf("built %d aggregates, want %d", len(out), n)
	}
	return out
}

// BenchmarkDeaggregateBatch measures de-aggregating a GetRecords batch of
// full KPL aggregates with MD5 verification on: "batch" is AppendBatch with
// MD5 lanes where the CPU has them, "scalar" is AppendBatch with crypto/md5
// only, "append" is one Append per record. One op is one batch; bytes are
// aggregate input bytes, so MB/cpu-s is input throughput per core (MB/s is
// per wall-clock second, which on a shared machine mostly measures the
// neighbours).
func BenchmarkDeaggregateBatch(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, n := range []int{1, 16, 100} {
			for _, mode := range []string{"batch", "scalar", "append"} {
				b.Run(fmt.Sprintf("%dB/%d/%s", size, n, mode), func(b *testing.B) {
					batch := benchBatch(b, n, size)
					total := 0
					for _, r := range batch {
						total += len(r.Data)
					}
					d, err := NewDeaggregator(WithSIMDChecksums(mode == "batch"))
					if err != nil {
						b.Fatal(err)
					}
					run := func(dst []UserRecord, ends []int) ([]UserRecord, []int) {
						if mode == "append" {
							for _, r := range batch {
								if dst, err = d.Append(dst, r); err != nil {
									b.Fatal(err)
								}
								ends = append(ends, len(dst))
							}
							return dst, ends
						}
						if dst, ends, err = d.AppendBatch(dst, ends, batch); err != nil {
							b.Fatal(err)
						}
						return dst, ends
					}
					dst, ends := run(nil, nil)
					b.ReportMetric(float64(len(dst))/float64(n), "records/aggregate")
					b.SetBytes(int64(total))
					b.ReportAllocs()
					cpu := startCPUMeter(b)
					for i := 0; i < b.N; i++ {
						dst, ends = run(dst[:0], ends[:0])
					}
					cpu.report(b, int64(total))
				})
			}
		}
	}
}

// BenchmarkProducerBatch measures the producer's aggregation path: user
// records of 100 B spread over 8 aggregators (one per predicted shard),
// each drained when full into a PutRecords batch of 20 or 100 aggregates.
// "drain" computes each aggregate's MD5 in Drain (crypto/md5); "seal"
// drains with DrainUnsealed and seals each full batch with one
// Sealer.Seal. One op is one user record; bytes are user-record data
// bytes, so MB/cpu-s is producer input per core.
func BenchmarkProducerBatch(b *testing.B) {
	const shards, size = 8, 100
	for _, batch := range []int{20, 100} {
		for _, mode := range []string{"drain", "seal"} {
			b.Run(fmt.Sprintf("%d/%s", batch, mode), func(b *testing.B) {
				recs := benchRecords(8192, size)
				aggs := make([]*Aggregator, shards)
				for i := range aggs {
					a, err := NewAggregator()
					if err != nil {
						b.Fatal(err)
					}
					aggs[i] = a
				}
				// Buffers cycle through the batch as a producer's
				// PutRecords buffers would once a call completes.
				bufs := make([][]byte, batch)
				for i := range bufs {
					bufs[i] = make([]byte, 0, DefaultMaxBytes)
				}
				datas := make([][]byte, 0, batch)
				var unsealed [][]byte
				var sealer Sealer
				drained := 0
				drain := func(a *Aggregator) {
					buf := bufs[len(datas)]
					var rec Record
					var err error
					if mode == "drain" {
						rec, err = a.Drain(buf)
					} else {
						var sealed bool
						rec, sealed, err = a.DrainUnsealed(buf)
						if !sealed {
							unsealed = append(unsealed, rec.Data)
						}
					}
					if err != nil {
						b.Fatal(err)
					}
					bufs[len(datas)] = rec.Data
					datas = append(datas, rec.Data)
					drained++
					if len(datas) == batch {
						if err := sealer.Seal(unsealed); err != nil {
							b.Fatal(err)
						}
						datas, unsealed = datas[:0], unsealed[:0]
					}
				}
				b.SetBytes(size)
				b.ReportAllocs()
				cpu := startCPUMeter(b)
				for i := 0; i < b.N; i++ {
					r := recs[i%len(recs)]
					a := aggs[i%shards]
					if err := a.Add(r); errors.Is(err, ErrFull) {
						drain(a)
						if err := a.Add(r); err != nil {
							b.Fatal(err)
						}
					} else if err != nil {
						b.Fatal(err)
					}
				}
				cpu.report(b, size)
				if drained > 0 {
					b.ReportMetric(float64(b.N)/float64(drained), "records/aggregate")
				}
			})
		}
	}
}
