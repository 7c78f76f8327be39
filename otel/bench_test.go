//go:build unix

package otelfreshet

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/internal/cputime"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/producer"
)

// discardExporter drops every span: the benchmarks measure span work, not an export.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// benchTracer returns a Tracer on an SDK provider with sampler s that batches spans to
// an exporter that drops them.
func benchTracer(b *testing.B, s sdktrace.Sampler) *Tracer {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(s), sdktrace.WithBatcher(discardExporter{}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr, err := NewTracer(WithTracerProvider(tp))
	if err != nil {
		b.Fatal(err)
	}
	return tr
}

// nopProcessor takes every batch and checkpoints nothing.
type nopProcessor struct{}

func (nopProcessor) Initialize(context.Context, consumer.InitializeInput) error         { return nil }
func (nopProcessor) ProcessRecords(context.Context, consumer.ProcessRecordsInput) error { return nil }
func (nopProcessor) LeaseLost(context.Context, consumer.LeaseLostInput)                 {}
func (nopProcessor) ShardEnded(context.Context, consumer.ShardEndedInput) error         { return nil }
func (nopProcessor) ShutdownRequested(context.Context, consumer.ShutdownRequestedInput) error {
	return nil
}

// BenchmarkTraceSend measures the tracer's producer side per record: the send span
// started, its W3C context written into the record's tags, the span ended with the
// record's outcome; every span sampled, or none (the context is still written).
func BenchmarkTraceSend(b *testing.B) {
	for _, bc := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{{"sampled", sdktrace.AlwaysSample()}, {"unsampled", sdktrace.NeverSample()}} {
		b.Run(bc.name, func(b *testing.B) {
			tr := benchTracer(b, bc.sampler)
			ctx := context.Background()
			data := make([]byte, 100)
			res := producer.Result{Stream: "s", ShardID: "shardId-000000000001", SequenceNumber: "49600000000000000000000000000000000000000000000000000001", Attempts: make([]producer.Attempt, 1)}
			b.ReportAllocs()
			for b.Loop() {
				rec := producer.Record{Stream: "s", PartitionKey: "key-1", Data: data}
				tr.OnRecordPut(ctx, &rec)(res)
				if len(rec.Tags) != 1 {
					b.Fatalf("tags %v", rec.Tags)
				}
			}
		})
	}
}

// BenchmarkTraceProcess measures the tracer's consumer side per record: a batch of 500
// records carrying trace contexts, one process span per record linked to its producer
// span. It reports ns and allocations per record.
func BenchmarkTraceProcess(b *testing.B) {
	tr := benchTracer(b, sdktrace.AlwaysSample())
	const n = 500
	prs := make([]producer.Record, n)
	for i := range prs {
		prs[i] = producer.Record{PartitionKey: "key-" + strconv.Itoa(i), Data: []byte("x")}
		tr.OnRecordPut(context.Background(), &prs[i])(producer.Result{})
	}
	recs := consumerRecords(b, prs...)
	proc, err := tr.Processor(func(consumer.ShardInfo) (consumer.Processor, error) { return nopProcessor{}, nil })(
		consumer.ShardInfo{StreamName: "s", ShardID: "shardId-000000000001"})
	if err != nil {
		b.Fatal(err)
	}
	in := consumer.ProcessRecordsInput{Shard: consumer.ShardInfo{StreamName: "s", ShardID: "shardId-000000000001"}, Records: recs}
	ctx := context.Background()
	b.ReportAllocs()
	batches := 0
	for b.Loop() {
		if err := proc.ProcessRecords(ctx, in); err != nil {
			b.Fatal(err)
		}
		batches++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(batches*n), "ns/record")
}

// BenchmarkPutEngineTraced measures a producer's whole path through the bundled engine
// (aggregated, 100-byte records over 1,000 keys, 4 shards) without and with the tracer
// hook; cpu-ns/op is the process's CPU per record, the engine's share included.
func BenchmarkPutEngineTraced(b *testing.B) {
	for _, traced := range []bool{false, true} {
		b.Run(fmt.Sprint("traced=", traced), func(b *testing.B) {
			e := enginetest.Start(b, engine.Config{})
			if err := e.Streams.CreateStream("bench", 4); err != nil {
				b.Fatal(err)
			}
			opts := []producer.Option{producer.WithStream("bench"), producer.WithMetrics(producer.MetricsNone, producer.GranularityGlobal)}
			if traced {
				opts = append(opts, producer.WithHooks(benchTracer(b, sdktrace.AlwaysSample())))
			}
			p, err := producer.New(enginetest.Kinesis(e), opts...)
			if err != nil {
				b.Fatal(err)
			}
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = "key-" + strconv.Itoa(i)
			}
			data := make([]byte, 100)
			ctx := context.Background()
			if _, err := p.PutSync(ctx, producer.Record{PartitionKey: "warm", Data: data}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cputime.Process()
			i := 0
			for b.Loop() {
				if err := p.Put(ctx, producer.Record{PartitionKey: keys[i%len(keys)], Data: data}, nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
			b.StopTimer()
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
