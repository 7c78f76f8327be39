package producer

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// straddlingRecords counts the Kinesis records that hold a user record outside the hash
// key range of the shard that stored them.
func straddlingRecords(recs []stored) int {
	type at struct {
		shard string
		k     int
	}
	seen := map[at]bool{}
	for _, r := range recs {
		if !r.inRange {
			seen[at{r.shardID, r.kinesis}] = true
		}
	}
	return len(seen)
}

// TestStaleMapRefreshedOnFirstMismatch: the only shard splits while twenty aggregates
// are buffered for it. The first aggregate sent with the stale map lands in a child
// whose range does not hold all its records (its records are all written again: a KCL reader drops it whole); that
// mismatch refreshes the map at once, and the nineteen aggregates still buffered for the
// closed shard are split by hash key instead of being sent whole: exactly one
// straddling aggregate.
func TestStaleMapRefreshedOnFirstMismatch(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(map[bool]string{false: "unordered", true: "ordered"}[ordered], func(t *testing.T) {
			f := newFake(1)
			p := newTestProducer(t, f, WithLinger(time.Hour), WithAggregationMaxCount(10), WithCollectionMaxCount(1),
				WithMaxInFlight(1), WithOrdering(ordered))
			ctx := context.Background()
			const n, keys = 200, 100
			o := newOutcomes(n)
			for i := 0; i < n; i++ {
				if err := p.Put(ctx, Record{PartitionKey: keyOf(i, keys), Data: recordData(i)}, o.cb(i)); err != nil {
					t.Fatal(err)
				}
			}
			f.split(0)
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if failed := o.check(t, n); len(failed) > 0 {
				t.Fatalf("%d failed: %v", len(failed), failed[0].Err)
			}
			recs := assertExactlyOnce(t, f, n, keys)
			if s := straddlingRecords(recs); s != 1 {
				t.Fatalf("%d straddling aggregates, want exactly the first one sent with the stale map", s)
			}
			if ordered {
				assertKeyOrder(t, recs, n)
			}
		})
	}
}

// pauseCore is a zap core that holds the first "shard map refreshed" entry reporting moved
// records until released: it stops the refresh after the map swap and before the moved
// records are queued in the new shards.
type pauseCore struct {
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (c *pauseCore) Enabled(zapcore.Level) bool        { return true }
func (c *pauseCore) With([]zapcore.Field) zapcore.Core { return c }
func (c *pauseCore) Sync() error                       { return nil }

func (c *pauseCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message == "producer: shard map refreshed" {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *pauseCore) Write(_ zapcore.Entry, fields []zapcore.Field) error {
	for _, f := range fields {
		if f.Key == "moved" && f.Integer > 0 {
			c.once.Do(func() {
				close(c.entered)
				<-c.release
			})
		}
	}
	return nil
}

// TestOrderedRefreshMovesBeforeNewShardsSend: the only shard splits while an aggregate of
// a key waits in it. The refresh swaps the map and retires the shard; records of the key
// put before the retired shard's records are queued again in the child must not be sent
// ahead of them.
func TestOrderedRefreshMovesBeforeNewShardsSend(t *testing.T) {
	f := newFake(1)
	core := &pauseCore{entered: make(chan struct{}), release: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(core.release)
		}
	}
	defer release()
	p := newTestProducer(t, f, WithOrdering(true), WithLinger(time.Hour), WithShardRefreshInterval(time.Second),
		WithLogger(zap.New(core)))
	ctx := context.Background()
	const n, half = 10, 5
	o := newOutcomes(n)
	put := func(i int) {
		if err := p.Put(ctx, Record{PartitionKey: keyOf(i, 1), Data: recordData(i)}, o.cb(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < half; i++ {
		put(i)
	}
	f.split(0)
	select {
	case <-core.entered:
	case <-time.After(time.Minute):
		t.Fatal("no refresh moved the buffered records")
	}
	for i := half; i < n; i++ {
		put(i)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(ctx) }()
	// Give the dispatcher the chance to send the new records while the old ones are in
	// transit: until something is stored, or a second passes.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if recs, err := f.readAll(); err != nil || len(recs) > 0 {
			break
		}
	}
	release()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if failed := o.check(t, n); len(failed) > 0 {
		t.Fatalf("%d failed: %v", len(failed), failed[0].Err)
	}
	recs := assertExactlyOnce(t, f, n, 1)
	assertKeyOrder(t, recs, n)
}
