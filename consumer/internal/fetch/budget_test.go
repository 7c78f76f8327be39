package fetch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// TestBudgetBoundsFetchedBytesAcrossShards checks that pollers sharing a budget stop
// reading once their unprocessed batches fill it (the bytes held stay within the budget
// plus one response per shard, although each poller's prefetch depth alone would allow
// far more), that released bytes let them read on until every record is delivered in
// order, and that closing a fetcher returns the bytes of the batches nobody took.
func TestBudgetBoundsFetchedBytesAcrossShards(t *testing.T) {
	const (
		shards   = 8
		records  = 200
		limit    = 40
		maxBatch = 3 * 4 // MaxRecords records of at most 4 data bytes ("d199")
	)
	budget := NewBudget(limit)
	var ps []*Poller
	var fakes []*fakeShard
	for i := 0; i < shards; i++ {
		sh := &fakeShard{}
		sh.add(records)
		cfg := fastConfig(Position{Type: types.ShardIteratorTypeTrimHorizon})
		cfg.Prefetch = 20
		cfg.Budget = budget
		p, err := NewPoller(context.Background(), sh, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
		fakes = append(fakes, sh)
	}
	// Nobody reads: the pollers fill the budget and stop calling.
	waitFor(t, func() bool { return budget.Used() >= limit })
	time.Sleep(50 * time.Millisecond)
	if used := budget.Used(); used > limit+shards*maxBatch {
		t.Fatalf("%d bytes fetched and unprocessed, want at most %d (budget %d + one response per shard)", used, limit+shards*maxBatch, limit)
	}
	calls := 0
	for _, sh := range fakes {
		sh.mu.Lock()
		calls += sh.calls
		sh.mu.Unlock()
	}
	if max := (limit+shards*maxBatch)/2 + shards; calls > max {
		t.Fatalf("%d GetRecords calls with the budget full, want at most %d", calls, max)
	}
	// Processing releases the bytes: every shard, read by its own consumer, reads to its
	// last record, in order.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, shards)
	for i, p := range ps {
		go func() {
			var got []string
			for len(got) < records {
				b, err := p.Next(ctx)
				if err != nil {
					errs <- fmt.Errorf("shard %d: Next after %d records: %w", i, len(got), err)
					return
				}
				for _, r := range b.Records {
					got = append(got, *r.SequenceNumber)
				}
				if used := budget.Used(); used > limit+shards*maxBatch {
					errs <- fmt.Errorf("%d bytes unprocessed while reading, want at most %d", used, limit+shards*maxBatch)
					return
				}
				budget.Release(b.Bytes)
			}
			if !equal(got, want(0, records)) {
				errs <- fmt.Errorf("shard %d: got %d records out of order or duplicated", i, len(got))
				return
			}
			errs <- nil
		}()
	}
	for range ps {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Closing the fetchers returns what they fetched and nobody took.
	for _, p := range ps {
		p.Close()
	}
	if used := budget.Used(); used != 0 {
		t.Fatalf("%d bytes still charged after every fetcher closed", used)
	}
}

// TestBudgetWaitEndsWithContext checks that a fetcher waiting for room stops when its
// context ends.
func TestBudgetWaitEndsWithContext(t *testing.T) {
	b := NewBudget(10)
	b.charge(10)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if b.wait(ctx) {
		t.Fatal("wait reported room in a full budget")
	}
	b.Release(1)
	if !b.wait(context.Background()) {
		t.Fatal("no room after a release")
	}
	var none *Budget
	none.charge(5)
	none.Release(5)
	if !none.wait(context.Background()) || none.Used() != 0 {
		t.Fatal("a nil budget bounds something")
	}
}
