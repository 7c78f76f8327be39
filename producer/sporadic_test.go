package producer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshet/freshet/internal/engine/streams"
)

// slowedShards counts the shards of the test stream whose adaptive limiter has set a
// rate (they were slowed for throttling) and those waiting out a backoff.
func slowedShards(t *testing.T, p *Producer) (limited, backedOff int) {
	t.Helper()
	st, err := p.stream(context.Background(), testStream)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range st.shards.Load().shards {
		sh.mu.Lock()
		if sh.lim.rateBytes > 0 || sh.lim.rateRecs > 0 {
			limited++
		}
		if sh.failures > 0 {
			backedOff++
		}
		sh.mu.Unlock()
	}
	return limited, backedOff
}

// TestEngineSporadicThrottlesDoNotSlowShards: with 5% of entries throttled at random on
// shards far below any limit, the failed entries are retried without the shards being
// slowed (no adaptive rate is set) or backed off, every record is stored once, and in
// ordered mode every key's records are in Put order.
func TestEngineSporadicThrottlesDoNotSlowShards(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"aggregated", nil},
		{"aggregated-ordered", []Option{WithOrdering(true)}},
		{"plain-ordered", []Option{WithAggregation(false), WithOrdering(true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEngine(t, streams.Config{}, 4)
			if err := e.Streams.SetEntryFaults(streams.EntryFaults{ThrottleRate: 0.05, InternalFailureRate: 0.01}); err != nil {
				t.Fatal(err)
			}
			p := newEngineProducer(t, e, append([]Option{WithAggregationMaxCount(20)}, tc.opts...)...)
			n, keys := scale(20000, 200000), 200
			o := putAll(t, p, n, keys)
			if failed := o.check(t, n); len(failed) > 0 {
				t.Fatalf("%d records failed, first: %v", len(failed), failed[0].Err)
			}
			if c := e.Streams.Counters(); c.FaultedEntries < 20 {
				t.Fatalf("only %d entries faulted: the test did not exercise retries", c.FaultedEntries)
			}
			if limited, _ := slowedShards(t, p); limited > 0 {
				t.Fatalf("%d of 4 shards were slowed for sporadic throttles", limited)
			}
			recs, _ := readEngine(t, e)
			assertEngineExactlyOnce(t, recs, n)
			if p.cfg.ordered {
				assertKeyOrder(t, recs, n)
			}
		})
	}
}

// TestEngineSustainedThrottlingSlowsShards: a stream that throttles every entry for a
// while is a saturated one: its shards' adaptive limiters take over, and once it
// accepts again every record is written.
func TestEngineSustainedThrottlingSlowsShards(t *testing.T) {
	e := startEngine(t, streams.Config{}, 2)
	p := newEngineProducer(t, e, WithOrdering(true))
	if err := e.Streams.ThrottleStream(testStream, true); err != nil {
		t.Fatal(err)
	}
	n, keys := 2000, 50
	o := newOutcomes(n)
	var put atomic.Int64
	go func() {
		for i := 0; i < n; i++ {
			if err := p.Put(context.Background(), Record{PartitionKey: keyOf(i, keys), Data: recordData(i)}, o.cb(i)); err != nil {
				panic(fmt.Sprint("put: ", err))
			}
			put.Add(1)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if limited, _ := slowedShards(t, p); limited == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("shards throttled on every entry were never slowed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := e.Streams.ThrottleStream(testStream, false); err != nil {
		t.Fatal(err)
	}
	for put.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if failed := o.check(t, n); len(failed) > 0 {
		t.Fatalf("%d records failed, first: %v", len(failed), failed[0].Err)
	}
	recs, _ := readEngine(t, e)
	assertEngineExactlyOnce(t, recs, n)
	assertKeyOrder(t, recs, n)
}
