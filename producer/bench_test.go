package producer

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkPut measures the hot path, Put -> predict -> aggregate -> collect -> send ->
// resolve, against an in-memory client that accepts everything (no HTTP, no engine).
func BenchmarkPut(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []Option
	}{
		{"aggregated", nil},
		{"ordered", []Option{WithOrdering(true)}},
		{"plain", []Option{WithAggregation(false)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFake(8)
			f.discard = true
			p, err := New(f, append([]Option{WithStream(testStream), WithMetrics(MetricsNone, GranularityGlobal)}, bc.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = "key-" + strconv.Itoa(i)
			}
			data := make([]byte, 100)
			ctx := context.Background()
			done := func(Result) {}
			if _, err := p.PutSync(ctx, Record{PartitionKey: "warm", Data: data}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := p.Put(ctx, Record{PartitionKey: keys[i%len(keys)], Data: data}, done); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_ = p.Close(cctx)
		})
	}
}

// BenchmarkCBOREncode measures the PutRecords CBOR body encoding of 100 aggregates.
func BenchmarkCBOREncode(b *testing.B) {
	in := cborTestInput(100, 50000)
	buf := make([]byte, 0, 8<<20)
	b.SetBytes(100 * 50000)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendPutRecordsCBOR(buf[:0], in)
	}
}
