package producer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
)

// startEngine starts an engine with one stream of shards shards.
func startEngine(t *testing.T, cfg streams.Config, shards int) *engine.Engine {
	t.Helper()
	e := enginetest.Start(t, engine.Config{Streams: cfg, FaultSeed: 7})
	if err := e.Streams.CreateStream(testStream, shards); err != nil {
		t.Fatal(err)
	}
	return e
}

func newEngineProducer(t *testing.T, e *engine.Engine, opts ...Option) *Producer {
	t.Helper()
	opts = append([]Option{WithStream(testStream), WithBackoff(time.Millisecond, 50*time.Millisecond), WithLinger(5 * time.Millisecond)}, opts...)
	p, err := New(enginetest.Kinesis(e), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// readEngine reads everything the engine stored, shard by shard in order, as a Java KCL
// reader does: each Kinesis record is de-aggregated with the hash key range of the shard
// that stored it (aggregation.WithShardHashKeyRange), and an aggregate holding a user
// record outside that range is dropped whole. It also returns, per shard, how many
// aggregates were dropped (aggregates a stale shard map sent across a shard boundary).
func readEngine(t *testing.T, e *engine.Engine) (recs []stored, straddling map[string]int) {
	t.Helper()
	infos, err := e.Streams.Shards(testStream)
	if err != nil {
		t.Fatal(err)
	}
	filters := map[string]*aggregation.Deaggregator{}
	for _, s := range infos {
		d, err := aggregation.NewDeaggregator(aggregation.WithShardHashKeyRange(s.HashKeyRange))
		if err != nil {
			t.Fatal(err)
		}
		filters[s.ID] = d
	}
	all, err := e.Streams.Records(testStream)
	if err != nil {
		t.Fatal(err)
	}
	straddling = map[string]int{}
	for ki, r := range all {
		d := filters[r.ShardID]
		if d == nil {
			t.Fatalf("record in unknown shard %s", r.ShardID)
		}
		kr := aggregation.Record{PartitionKey: r.PartitionKey, Data: r.Data}
		urs, err := d.Deaggregate(kr)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := aggregation.Deaggregate(kr)
		if err != nil {
			t.Fatal(err)
		}
		if len(whole) != len(urs) {
			straddling[r.ShardID]++
			continue
		}
		for _, u := range urs {
			recs = append(recs, stored{pk: u.PartitionKey, data: string(u.Data), shardID: r.ShardID, inRange: true, kinesis: ki, subIndex: int(u.SubSequenceNumber)})
		}
	}
	return recs, straddling
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func assertEngineExactlyOnce(t *testing.T, recs []stored, n int) {
	t.Helper()
	count := make(map[string]int, n)
	for _, r := range recs {
		if r.inRange {
			count[r.data]++
		}
	}
	for i := 0; i < n; i++ {
		if c := count[string(recordData(i))]; c != 1 {
			t.Fatalf("record %d stored %d times in its shard (want 1)", i, c)
		}
	}
}

// TestEngineNoLossUnderFaults: 20% of entries throttled and 5% internal failures in the
// engine: every record succeeds and is in the stream exactly once.
func TestEngineNoLossUnderFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"cbor", []Option{WithCBOR(true)}},
		{"json", []Option{WithCBOR(false)}},
		{"ordered", []Option{WithOrdering(true), WithCBOR(true)}},
		{"plain", []Option{WithAggregation(false), WithCBOR(true)}},
		{"plain-json", []Option{WithAggregation(false), WithCBOR(false)}},
		{"plain-unordered", []Option{WithAggregation(false), WithCBOR(true), WithOrdering(false)}},
		{"direct", []Option{WithDirectPutRecords(true), WithCBOR(true)}},
		{"direct-plain-json", []Option{WithDirectPutRecords(true), WithAggregation(false), WithCBOR(false)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEngine(t, streams.Config{}, 8)
			if err := e.Streams.SetEntryFaults(streams.EntryFaults{ThrottleRate: 0.20, InternalFailureRate: 0.05}); err != nil {
				t.Fatal(err)
			}
			// The cases not named direct take the SDK's path (the default is direct).
			direct := strings.HasPrefix(tc.name, "direct")
			p := newEngineProducer(t, e, append([]Option{WithAggregationMaxCount(25), WithDirectPutRecords(direct)}, tc.opts...)...)
			if direct != (p.direct != nil) {
				t.Fatalf("direct PutRecords path in use %v, want %v", p.direct != nil, direct)
			}
			n, keys := scale(10000, 1000000), 1000
			o := putAll(t, p, n, keys)
			if failed := o.check(t, n); len(failed) > 0 {
				t.Fatalf("%d records failed, first: %v", len(failed), failed[0].Err)
			}
			recs, _ := readEngine(t, e)
			assertEngineExactlyOnce(t, recs, n)
			if c := e.Streams.Counters(); c.FaultedEntries == 0 {
				t.Fatal("no fault injected")
			}
			if tc.name == "ordered" || tc.name == "plain" || tc.name == "plain-json" || tc.name == "direct-plain-json" {
				assertKeyOrder(t, recs, n)
			}
		})
	}
}

// TestEngineResharding splits and merges shards of the engine's stream while records
// flow: nothing is lost, and the records of any aggregate the stale shard map sent to
// a shard that does not hold them all are written again, whole.
func TestEngineResharding(t *testing.T) {
	for _, tc := range []struct{ ordered, aggregate, cbor, direct bool }{{false, true, true, false}, {true, true, true, false}, {true, false, true, false}, {true, false, false, false}, {true, true, true, true}} {
		ordered := tc.ordered
		t.Run(fmt.Sprintf("ordered=%v,aggregate=%v,cbor=%v,direct=%v", ordered, tc.aggregate, tc.cbor, tc.direct), func(t *testing.T) {
			e := startEngine(t, streams.Config{}, 4)
			p := newEngineProducer(t, e, WithOrdering(ordered), WithCBOR(tc.cbor), WithAggregationMaxCount(50), WithAggregation(tc.aggregate), WithDirectPutRecords(tc.direct))
			if tc.direct != (p.direct != nil) {
				t.Fatalf("direct PutRecords path in use %v, want %v", p.direct != nil, tc.direct)
			}
			n, keys := scale(20000, 1000000), 500
			o := newOutcomes(n)
			ctx := context.Background()
			reshard := func(step int) {
				infos, err := e.Streams.Shards(testStream)
				if err != nil {
					t.Fatal(err)
				}
				var open []streams.ShardInfo
				for _, s := range infos {
					if s.Open {
						open = append(open, s)
					}
				}
				switch step {
				case 0, 1:
					s := open[step]
					if err := e.Streams.SplitShard(testStream, s.ID, s.HashKeyRange.Midpoint()); err != nil {
						t.Fatal(err)
					}
				case 2:
					// Merge the two adjacent children of the first split.
					var a, b *streams.ShardInfo
					for i := range open {
						for j := range open {
							if open[i].HashKeyRange.End.Add1() == open[j].HashKeyRange.Start {
								a, b = &open[i], &open[j]
							}
						}
					}
					if err := e.Streams.MergeShards(testStream, a.ID, b.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i := 0; i < n; i++ {
				if i > 0 && i%(n/4) == 0 && i/(n/4) <= 3 {
					reshard(i/(n/4) - 1)
				}
				if err := p.Put(ctx, Record{PartitionKey: keyOf(i, keys), Data: recordData(i)}, o.cb(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if failed := o.check(t, n); len(failed) > 0 {
				t.Fatalf("%d failed: %v", len(failed), failed[0].Err)
			}
			recs, straddling := readEngine(t, e)
			assertEngineExactlyOnce(t, recs, n)
			// Only a reshard makes a prediction stale: straddling aggregates can only be in
			// shards a split or merge created.
			infos, err := e.Streams.Shards(testStream)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range infos {
				if straddling[s.ID] > 0 && s.ParentID == "" {
					t.Fatalf("%d straddling aggregates in shard %s, which no reshard created", straddling[s.ID], s.ID)
				}
			}
			t.Logf("aggregates stored across a shard boundary by a stale map (written again whole): %d of %d Kinesis records, by shard %v",
				sumCounts(straddling), e.Streams.Counters().RecordsIn, straddling)
			if c := e.Streams.Counters(); c.Splits != 2 || c.Merges != 1 {
				t.Fatalf("splits %d merges %d", c.Splits, c.Merges)
			}
			if ordered {
				assertKeyOrder(t, recs, n)
			}
		})
	}
}

// TestEngineLimits: with the engine's per-shard limits on and a small memory bound,
// every record gets through and the buffered bytes never exceed the bound.
func TestEngineLimits(t *testing.T) {
	// 2 shards at 256 KiB/s each (with the engine's minimum burst of one 1 MiB record):
	// 3.3 MB of records must be throttled and paced.
	e := startEngine(t, streams.Config{Limits: true, WriteBytesPerSecond: 256 << 10}, 2)
	const bound = 1 << 20
	p := newEngineProducer(t, e, WithCBOR(true), WithMaxBuffered(1<<20, bound), WithCollectionMaxBytes(256<<10),
		WithLinger(20*time.Millisecond), WithAdaptiveFloor(32<<10, 100))
	n, keys := scale(30000, 1000000), 1000
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if b := p.BufferedBytes(); b > peak.Load() {
				peak.Store(b)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	// On a busy machine the producer may not outrun the limit with n records: keep
	// putting until the engine has throttled (the bound keeps memory in check).
	o := newOutcomes(max(n, 150000))
	ctx := context.Background()
	for i := 0; i < len(o.res); i++ {
		if i >= n && (i%1000 != 0 || e.Streams.Counters().ThrottledRecords == 0) {
			n = i + 1
		} else if i >= n {
			break
		}
		if err := p.Put(ctx, Record{PartitionKey: keyOf(i, keys), Data: recordData(i)}, o.cb(i)); err != nil {
			t.Fatal(err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := p.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if failed := o.check(t, n); len(failed) > 0 {
		t.Fatalf("%d failed: %v", len(failed), failed[0].Err)
	}
	recs, _ := readEngine(t, e)
	assertEngineExactlyOnce(t, recs, n)
	if peak.Load() > bound {
		t.Fatalf("buffered bytes peaked at %d over the bound %d", peak.Load(), bound)
	}
	c := e.Streams.Counters()
	if c.ThrottledRecords == 0 {
		t.Fatal("the engine never throttled: the test did not reach the limits")
	}
	t.Logf("%d records, peak buffered %d bytes, throttled entries %d", n, peak.Load(), c.ThrottledRecords)
}

// TestEngineCloseDeadEndpoint: the engine goes away with records buffered; Close with a
// deadline returns, every record has an outcome and no goroutine is left.
func TestEngineCloseDeadEndpoint(t *testing.T) {
	base := runtime.NumGoroutine()
	e, err := engine.Start(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Streams.CreateStream(testStream, 4); err != nil {
		t.Fatal(err)
	}
	cfg := e.AWSConfig()
	tr := &http.Transport{}
	cfg.HTTPClient = &http.Client{Transport: tr}
	// Unordered, so that every record is attempted before the deadline (an ordered shard
	// sends one call at a time, and records still waiting at the deadline fail without
	// an attempt).
	p, err := New(kinesis.NewFromConfig(cfg), WithStream(testStream), WithCBOR(true), WithLinger(time.Millisecond), WithBackoff(time.Millisecond, 20*time.Millisecond), WithOrdering(false))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.PutSync(ctx, Record{PartitionKey: "warm", Data: []byte("up")}); err != nil {
		t.Fatal(err)
	}
	_ = e.Close()
	n := 3000
	o := newOutcomes(n)
	for i := 0; i < n; i++ {
		if err := p.Put(ctx, Record{PartitionKey: keyOf(i, 100), Data: recordData(i)}, o.cb(i)); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := p.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v", err)
	}
	failed := o.check(t, n)
	if len(failed) != n {
		t.Fatalf("%d of %d failed", len(failed), n)
	}
	for _, r := range failed {
		if !errors.Is(r.Err, ErrClosed) {
			t.Fatalf("outcome %v", r.Err)
		}
		if len(r.Attempts) == 0 {
			t.Fatalf("record failed without an attempt")
		}
	}
	tr.CloseIdleConnections()
	waitGoroutines(t, base)
}

// TestEngineOnDemandAutoSplit: an ON_DEMAND stream with low per-shard limits splits its
// hot shards while the producer writes to it. Every record succeeds and a KCL-style
// reader (hash-range filter) sees each exactly once; aggregates stored across a new
// shard boundary only appear in shards the scaling created.
func TestEngineOnDemandAutoSplit(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			e := enginetest.Start(t, engine.Config{Streams: streams.Config{
				Limits: true, WriteBytesPerSecond: 256 << 10, WriteRecordsPerSecond: 200,
				OnDemandShards: 2, OnDemandWindow: 200 * time.Millisecond, ShardLimit: 16,
			}})
			if err := e.Streams.CreateOnDemandStream(testStream, 0); err != nil {
				t.Fatal(err)
			}
			p := newEngineProducer(t, e, WithOrdering(ordered), WithAggregationMaxBytes(8<<10),
				WithAdaptiveFloor(32<<10, 20), WithShardRefreshInterval(time.Second))
			keys := 400
			o := newOutcomes(200000)
			ctx := context.Background()
			// Write until the stream has split at least twice (and at least minimum records).
			n := 0
			for ; n < len(o.res); n++ {
				if n >= 20000 && n%500 == 0 && e.Streams.Counters().Splits >= 2 {
					break
				}
				if err := p.Put(ctx, Record{PartitionKey: keyOf(n, keys), Data: recordData(n)}, o.cb(n)); err != nil {
					t.Fatal(err)
				}
			}
			fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if err := p.Flush(fctx); err != nil {
				t.Fatal(err)
			}
			if failed := o.check(t, n); len(failed) > 0 {
				t.Fatalf("%d of %d failed: %v", len(failed), n, failed[0].Err)
			}
			c := e.Streams.Counters()
			if c.Splits < 2 {
				t.Fatalf("the stream split %d times", c.Splits)
			}
			recs, straddling := readEngine(t, e)
			assertEngineExactlyOnce(t, recs, n)
			infos, err := e.Streams.Shards(testStream)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range infos {
				if straddling[s.ID] > 0 && s.ParentID == "" {
					t.Fatalf("%d straddling aggregates in shard %s, which no reshard created", straddling[s.ID], s.ID)
				}
			}
			if ordered {
				assertKeyOrder(t, recs, n)
			}
			t.Logf("%d records, %d splits, %d merges, %d throttled entries, %d shards now, straddling aggregates %d of %d",
				n, c.Splits, c.Merges, c.ThrottledRecords, len(infos), sumCounts(straddling), c.RecordsIn)
		})
	}
}
