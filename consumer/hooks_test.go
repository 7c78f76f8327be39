package consumer

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/consumer/internal/fetch"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/fault"
)

// hookLog implements every consumer hook and keeps what it saw.
type hookLog struct {
	mu      sync.Mutex
	gained  []LeaseEvent
	lost    []LeaseEvent
	batches []BatchProcessed
	writes  []CheckpointWritten
}

func (h *hookLog) OnLeaseGained(e LeaseEvent) {
	h.mu.Lock()
	h.gained = append(h.gained, e)
	h.mu.Unlock()
}
func (h *hookLog) OnLeaseLost(e LeaseEvent) { h.mu.Lock(); h.lost = append(h.lost, e); h.mu.Unlock() }
func (h *hookLog) OnBatchProcessed(b BatchProcessed) {
	h.mu.Lock()
	h.batches = append(h.batches, b)
	h.mu.Unlock()
}
func (h *hookLog) OnCheckpointWritten(w CheckpointWritten) {
	h.mu.Lock()
	h.writes = append(h.writes, w)
	h.mu.Unlock()
}

// TestShardHooks: a processor that fails twice, checkpoints, and then loses its lease:
// the batch hook sees each attempt with its error and records, the checkpoint hook each
// write with its value (and the refused one after the loss), the lease hook the loss.
func TestShardHooks(t *testing.T) {
	h := &hookLog{}
	batches := []fetch.Batch{{Records: plainRecs(0, 3), MillisBehindLatest: 7}, {Records: plainRecs(3, 5)}, {Records: plainRecs(5, 6)}}
	proc := &recProc{failFirst: 2, checkpoint: true}
	var hn *harness
	calls := 0
	proc.onBatch = func() {
		calls++
		if calls == 2 {
			// The lease moves to another worker: the next checkpoint is refused, and the
			// consumer notices the loss before the next batch.
			hn.store.mu.Lock()
			hn.store.owner = "w2"
			hn.store.mu.Unlock()
		}
	}
	hn = newHarness(t, checkpoint.TrimHorizon, batches, proc, func(c *config, _ *ShardInfo) {
		c.workerID = "w1"
		c.hooks.add(h)
	})
	hn.start()
	if r := hn.wait(t); r != reasonLeaseLost {
		t.Fatalf("stopped with %v", r)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.batches) != 4 {
		t.Fatalf("%d batch events: %+v", len(h.batches), h.batches)
	}
	for i, b := range h.batches[:3] {
		if b.Records != 3 || b.Bytes != 3 || b.MillisBehindLatest != 7 || b.Attempt != i || (b.Err == nil) != (i == 2) || b.Shard.ShardID != "shardId-000000000001" {
			t.Fatalf("batch event %d: %+v", i, b)
		}
	}
	if b := h.batches[3]; b.Records != 2 || b.Attempt != 0 || !errors.Is(b.Err, checkpoint.ErrLeaseLost) {
		t.Fatalf("last batch event %+v", b)
	}
	if len(h.writes) != 2 || h.writes[0].Err != nil || h.writes[0].Checkpoint.SequenceNumber != sq(2) ||
		!errors.Is(h.writes[1].Err, checkpoint.ErrLeaseLost) || h.writes[1].Checkpoint.SequenceNumber != sq(4) {
		t.Fatalf("checkpoint events %+v", h.writes)
	}
	if len(h.lost) != 1 || h.lost[0].WorkerID != "w1" || h.lost[0].Shard.ShardID != "shardId-000000000001" {
		t.Fatalf("lease lost events %+v", h.lost)
	}
}

// TestWorkerHooksUnderFaults runs a worker whose lease table (the engine's DynamoDB)
// fails half of its UpdateItem calls (the SDK retries them, so about one checkpoint
// write in eight fails): every
// shard's lease gain is hooked once, the batch hook accounts for every record
// processed, and the checkpoint hook sees the failed writes and, last for each shard,
// the checkpoint the lease table holds.
func TestWorkerHooksUnderFaults(t *testing.T) {
	s := newMemStream("orders", 4)
	kin := &memKinesis{streams: map[string]*memStream{"orders": s}}
	p := &producer{s: s}
	p.put(40, 1000)
	e := enginetest.Start(t, engine.Config{FaultSeed: 3})
	db := enginetest.DynamoDB(e)
	c := newCollector()
	h := &hookLog{}
	mem := NewMemoryMetrics()
	r := startWorker(t, kin, db, c.factory(), append(testOptions("w1"), WithHooks(h), WithMetrics(mem), WithPolling(20, 2, time.Millisecond))...)
	waitUntil(t, func() bool { d, _ := c.count(); return d == p.n })
	// Every write fails (the SDK's own retries too) while the next records are handled:
	// their checkpoints fail; the leases outlive the outage (2 s failover time).
	e.Faults.Set("DynamoDB.UpdateItem", fault.Rule{ErrorRate: 1, ErrorCode: "InternalServerError"})
	p.put(40, 1000)
	waitUntil(t, func() bool { d, _ := c.count(); return d == p.n })
	time.Sleep(100 * time.Millisecond)
	e.Faults.Reset()
	p.put(40, 1000)
	waitUntil(t, func() bool { d, _ := c.count(); return d == p.n })
	r.shutdown(t)

	h.mu.Lock()
	defer h.mu.Unlock()
	gained := map[string]int{}
	for _, g := range h.gained {
		if g.WorkerID != "w1" || g.Shard.StreamName != "orders" {
			t.Fatalf("lease gained %+v", g)
		}
		gained[g.Shard.ShardID]++
	}
	if taken, _ := mem.Total(MetricLeaseTaken); len(gained) != 4 || float64(len(h.gained)) != taken {
		t.Fatalf("leases gained %v, TakenLeases %v", gained, taken)
	}
	if lost, _ := mem.Total(MetricLeaseLost); float64(len(h.lost)) != lost {
		t.Fatalf("%d lease lost events, LostLeases %v", len(h.lost), lost)
	}
	processed := 0
	for _, b := range h.batches {
		if b.Err == nil {
			processed += b.Records
		}
	}
	if _, total := c.count(); processed != total {
		t.Fatalf("batch hook saw %d records processed, the processor %d", processed, total)
	}
	if sum, _ := mem.Total(MetricRecordsProcessed); float64(processed) != sum {
		t.Fatalf("batch hook %d records, RecordsProcessed %v", processed, sum)
	}
	failed := 0
	last := map[string]checkpoint.Value{}
	for _, w := range h.writes {
		if w.Err != nil {
			failed++
			continue
		}
		last[w.Shard.ShardID] = w.Checkpoint
	}
	if failed == 0 {
		t.Fatalf("none of %d checkpoint writes failed: no fault reached the hook", len(h.writes))
	}
	ls := leases(t, db)
	for id, l := range ls {
		if last[id] != l.Checkpoint {
			t.Fatalf("shard %s: last checkpoint hooked %v, lease table %v", id, last[id], l.Checkpoint)
		}
	}
	t.Logf("%d batches, %d checkpoint writes (%d failed), %d leases gained, %d lost", len(h.batches), len(h.writes), failed, len(h.gained), len(h.lost))
}

func TestWithHooksValidates(t *testing.T) {
	for _, h := range []Hook{nil, "not a hook"} {
		var c config
		if err := WithHooks(h)(&c); !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("hook %v: %v", h, err)
		}
	}
}
