//go:build unix

package consumer

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/consumer/internal/fetch"
)

// countingProc counts records and checkpoints after every batch, as most processors do.
type countingProc struct{ n int }

func (p *countingProc) Initialize(context.Context, InitializeInput) error { return nil }
func (p *countingProc) ProcessRecords(ctx context.Context, in ProcessRecordsInput) error {
	p.n += len(in.Records)
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *countingProc) LeaseLost(context.Context, LeaseLostInput) {}
func (p *countingProc) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *countingProc) ShutdownRequested(context.Context, ShutdownRequestedInput) error { return nil }

// BenchmarkShardConsumer measures a shard consumer's cost per user record from fetched
// batch to processor: b.N user records in aggregates of 100, ten aggregates a batch,
// de-aggregated and delivered, a checkpoint after every batch, then SHARD_END. No hooks;
// metrics to an in-memory recorder. It reports process CPU per user record
// (cpu-ns/record), the steadier figure on a shared machine.
func BenchmarkShardConsumer(b *testing.B) {
	const perAgg, perBatch = 100, 10
	agg := aggregate(b, sq(0), perAgg)
	aggs := (b.N + perAgg - 1) / perAgg
	batches := make([]fetch.Batch, 0, aggs/perBatch+1)
	for i := 0; i < aggs; i += perBatch {
		recs := make([]types.Record, 0, perBatch)
		for j := i; j < min(i+perBatch, aggs); j++ {
			recs = append(recs, types.Record{SequenceNumber: aws.String(fmt.Sprintf("49600000000000000000%012d", j)), PartitionKey: agg.PartitionKey, Data: agg.Data})
		}
		batches = append(batches, fetch.Batch{Records: recs, MillisBehindLatest: 1})
	}
	batches[len(batches)-1].ShardEnd = true
	batches[len(batches)-1].ChildShards = []types.ChildShard{{ShardId: aws.String("shardId-000000000002")}}
	proc := &countingProc{}
	h := newHarnessFor(b, context.Background(), newMemStore("w1"), checkpoint.TrimHorizon, batches, proc)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := benchCPU()
	h.start()
	if r := h.wait(b); r != reasonShardEnd {
		b.Fatalf("stopped with %v", r)
	}
	cpu := benchCPU() - cpu0
	b.StopTimer()
	if proc.n != aggs*perAgg {
		b.Fatalf("%d records processed, want %d", proc.n, aggs*perAgg)
	}
	b.ReportMetric(float64(cpu)/float64(proc.n), "cpu-ns/record")
}

// benchCPU returns the process's CPU time (user and system).
func benchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
