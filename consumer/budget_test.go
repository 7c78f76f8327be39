package consumer

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestWorkerBoundsPrefetchedBytes checks that the records a worker has read ahead of its
// processors stay within WithMaxPrefetchedBytes across all shards (plus one response
// per shard), while every record is still delivered once, in order; and, as a control,
// that the same slow processors with the default bound let far more pile up, so the
// bound is what holds memory down.
func TestWorkerBoundsPrefetchedBytes(t *testing.T) {
	const (
		shards   = 4
		perShard = 120
		size     = 1000 // bytes of data per record
		perCall  = 10   // records per GetRecords call
		limit    = 8 << 10
		bound    = limit + shards*perCall*(size+32)
	)
	run := func(t *testing.T, opts ...Option) (peak int64) {
		s := newMemStream("orders", shards)
		kin := &memKinesis{streams: map[string]*memStream{"orders": s}}
		p := &producer{s: s}
		p.put(shards*10, shards*perShard)
		// Pad each record to size bytes, keeping its key#n prefix for the order check.
		s.mu.Lock()
		for i := range s.shards {
			for j := range s.shards[i].recs {
				d := s.shards[i].recs[j].Data
				s.shards[i].recs[j].Data = append(d, bytes.Repeat([]byte{' '}, size-len(d))...)
			}
		}
		s.mu.Unlock()
		c := newCollector()
		var w atomic.Pointer[Worker]
		var peakUsed atomic.Int64
		slow := HandlerFunc(func(ctx context.Context, shard ShardInfo, recs []Record) error {
			if wk := w.Load(); wk != nil {
				if u := wk.budget.Used(); u > peakUsed.Load() {
					peakUsed.Store(u)
				}
			}
			time.Sleep(5 * time.Millisecond)
			for i := range recs {
				recs[i].Data = bytes.TrimRight(recs[i].Data, " ")
			}
			return c.handle(ctx, shard, recs)
		})
		o := append(testOptions("a"), WithPolling(perCall, 20, 5*time.Millisecond))
		tw := startWorker(t, kin, leaseDB(t), slow, append(o, opts...)...)
		w.Store(tw.w)
		waitUntil(t, func() bool { d, _ := c.count(); return d == p.n })
		if len(c.violations) > 0 {
			t.Fatalf("order violations: %v", c.violations[:min(5, len(c.violations))])
		}
		if d, total := c.count(); total != d {
			t.Fatalf("%d deliveries of %d records", total, d)
		}
		tw.shutdown(t)
		return peakUsed.Load()
	}
	bounded := run(t, WithMaxPrefetchedBytes(limit))
	if bounded > bound {
		t.Fatalf("%d bytes read ahead with a bound of %d, want at most %d (one response per shard over it)", bounded, limit, bound)
	}
	unbounded := run(t)
	if unbounded <= bound {
		t.Fatalf("control: only %d bytes read ahead with the default bound; the test cannot tell the bound works", unbounded)
	}
	t.Logf("peak read ahead: %d bytes with a %d-byte bound, %d with the default", bounded, limit, unbounded)
}

// TestWithMaxPrefetchedBytesValidates checks the option's range.
func TestWithMaxPrefetchedBytesValidates(t *testing.T) {
	for _, n := range []int64{0, -1} {
		c := defaultConfig()
		if err := WithMaxPrefetchedBytes(n)(&c); !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("WithMaxPrefetchedBytes(%s) = %v, want ErrInvalidOption", strconv.FormatInt(n, 10), err)
		}
	}
	c := defaultConfig()
	if err := WithMaxPrefetchedBytes(1)(&c); err != nil || c.maxPrefetchedBytes != 1 {
		t.Fatalf("WithMaxPrefetchedBytes(1) = %v, bound %d", err, c.maxPrefetchedBytes)
	}
	if defaultConfig().maxPrefetchedBytes != DefaultMaxPrefetchedBytes {
		t.Fatal("default bound is not DefaultMaxPrefetchedBytes")
	}
}
