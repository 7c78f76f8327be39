package producer

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/internal/cputime"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
)

// benchPut puts b.N records of 100 bytes over 1,000 keys through p, waits for every
// outcome, and reports the process CPU time per record (cpu-ns/op) beside wall time:
// on a shared machine CPU time is the steadier figure.
func benchPut(b *testing.B, p *Producer) {
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
	cpu0 := cputime.Process()
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
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
	b.StopTimer()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = p.Close(cctx)
}

// BenchmarkPut measures the producer's own hot path, Put -> predict -> aggregate ->
// collect -> send -> resolve, against an in-memory client that accepts everything (no
// HTTP, no signing, no engine).
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
			benchPut(b, p)
		})
	}
}

// BenchmarkPutEngine measures the full path, Put -> aggregate -> PutRecords (SDK,
// SigV4) -> bundled engine over loopback HTTP -> outcome, with 8 shards and limits off.
// cpu-ns/op includes the engine's share.
func BenchmarkPutEngine(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []Option
	}{
		{"cbor", nil},
		{"json", []Option{WithCBOR(false)}},
		{"cbor-ordered", []Option{WithOrdering(true)}},
		{"plain", []Option{WithAggregation(false)}},
		{"plain-json", []Option{WithAggregation(false), WithCBOR(false)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := enginetest.Start(b, engine.Config{Streams: streams.Config{}})
			if err := e.Streams.CreateStream(testStream, 8); err != nil {
				b.Fatal(err)
			}
			p, err := New(kinesis.NewFromConfig(e.AWSConfig()), append([]Option{WithStream(testStream), WithMetrics(MetricsNone, GranularityGlobal)}, bc.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			benchPut(b, p)
		})
	}
}
