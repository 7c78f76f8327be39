package consumer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/checkpoint"
)

// BenchmarkConvertAggregated measures de-aggregation of a GetRecords batch into processor
// records: 100 Kinesis records of 100 user records of ~14 bytes each.
func BenchmarkConvertAggregated(b *testing.B) {
	var batch []types.Record
	bytes := 0
	for i := 0; i < 100; i++ {
		r := aggregate(b, sq(i), 100)
		bytes += len(r.Data)
		batch = append(batch, r)
	}
	h := benchConsumer(b)
	b.ReportAllocs()
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	var scratch []aggregation.UserRecord
	for i := 0; i < b.N; i++ {
		var out []Record
		out, scratch = h.convert(batch, scratch)
		if len(out) != 10000 {
			b.Fatal(len(out))
		}
	}
	b.ReportMetric(float64(b.N)*10000/b.Elapsed().Seconds(), "records/s")
}

func benchConsumer(b *testing.B) *shardConsumer {
	cfg := defaultConfig()
	cp, err := checkpoint.New(newMemStore("w"), "k", "w", checkpoint.TrimHorizon)
	if err != nil {
		b.Fatal(err)
	}
	sc, err := newShardConsumer(context.Background(), shardEnv{cfg: &cfg}, ShardInfo{ShardID: "s", LeaseKey: "s"}, &recProc{}, cp, checkpoint.TrimHorizon)
	if err != nil {
		b.Fatal(err)
	}
	return sc
}

// BenchmarkLanes runs one shard of 8,000 user records over 1,000 keys through a handler
// that takes 20 ms per call, with 1 lane and with 8 (100 records per call), and reports
// each rate and their ratio (speedup-x: the issue asks for at least 6).
func BenchmarkLanes(b *testing.B) {
	const records, perCall, delay = 8000, 100, 20 * time.Millisecond
	s := newShardScript(b, records, 1000, 0, nil)
	run := func(lanes int) time.Duration {
		var handled atomic.Int64
		proc, _ := HandlerFunc(func(ctx context.Context, _ ShardInfo, recs []Record) error {
			time.Sleep(delay)
			handled.Add(int64(len(recs)))
			return nil
		})(ShardInfo{})
		h := newHarnessFor(b, context.Background(), newMemStore("w1"), checkpoint.TrimHorizon, s.batches("", perCall, true), proc, withLanes(lanes, perCall, FailurePolicy{}))
		start := time.Now()
		h.start()
		if r := h.wait(b); r != reasonShardEnd {
			b.Fatalf("%d lanes: stopped with %v", lanes, r)
		}
		if n := handled.Load(); n != records {
			b.Fatalf("%d lanes: handled %d of %d records", lanes, n, records)
		}
		return time.Since(start)
	}
	b.ReportAllocs()
	var one, eight time.Duration
	for i := 0; i < b.N; i++ {
		one += run(1)
		eight += run(8)
	}
	b.ReportMetric(float64(b.N)*records/one.Seconds(), "records/s-1lane")
	b.ReportMetric(float64(b.N)*records/eight.Seconds(), "records/s-8lanes")
	b.ReportMetric(one.Seconds()/eight.Seconds(), "speedup-x")
}

// BenchmarkLanesOverhead runs 50,000 user records (plain and aggregated) through a
// handler that does nothing, with 1 and 8 lanes: the cost of dispatch, the low
// watermark and checkpointing per record.
func BenchmarkLanesOverhead(b *testing.B) {
	const records = 50000
	s := newShardScript(b, records, 1000, 4, nil)
	batches := s.batches("", 1000, true)
	for _, lanes := range []int{1, 8} {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			var handled atomic.Int64
			proc, _ := HandlerFunc(func(ctx context.Context, _ ShardInfo, recs []Record) error {
				handled.Add(int64(len(recs)))
				return nil
			})(ShardInfo{})
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				handled.Store(0)
				h := newHarnessFor(b, context.Background(), newMemStore("w1"), checkpoint.TrimHorizon, batches, proc, withLanes(lanes, 1000, FailurePolicy{}))
				h.start()
				if r := h.wait(b); r != reasonShardEnd {
					b.Fatalf("stopped with %v", r)
				}
				if n := handled.Load(); n != records {
					b.Fatalf("handled %d of %d", n, records)
				}
			}
			b.ReportMetric(float64(b.N)*records/b.Elapsed().Seconds(), "records/s")
		})
	}
}
