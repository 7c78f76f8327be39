package producer

import (
	"context"
	"testing"
	"time"
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
// whose range does not hold all its records (its strays are written again); that
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
