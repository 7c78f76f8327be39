package consumer

import (
	"time"

	"github.com/freshet/freshet/checkpoint"
)

// Hook is a value that implements one or more of the Hook* interfaces of this package;
// WithHooks registers it. The worker finds the interfaces a hook implements once, in
// New, by type assertion, so new hook interfaces can be added without breaking anyone,
// and an event no hook wants costs nothing.
//
// Hooks are called synchronously from the worker's goroutines (a shard's consumer for
// batches and checkpoints), possibly concurrently for different shards: they must be
// safe for concurrent use and return quickly.
type Hook any

// HookLeaseGained is called when the worker starts processing a shard whose lease it
// took (assigned by the leader, taken over after a failure, or handed over).
type HookLeaseGained interface {
	OnLeaseGained(LeaseEvent)
}

// HookLeaseLost is called when a lease was taken away while the worker processed its
// shard (renewal refused, or reassigned after the worker stalled); graceful handoffs
// and shutdowns are not losses.
type HookLeaseLost interface {
	OnLeaseLost(LeaseEvent)
}

// HookBatchProcessed is called after every ProcessRecords call, failed ones included
// (a failed batch is delivered again, with Attempt one higher).
type HookBatchProcessed interface {
	OnBatchProcessed(BatchProcessed)
}

// HookCheckpointWritten is called after every checkpoint write to the lease table, with
// its outcome: the processor's checkpoints (committed or prepared) and SHARD_END.
type HookCheckpointWritten interface {
	OnCheckpointWritten(CheckpointWritten)
}

// LeaseEvent describes a lease gained or lost.
type LeaseEvent struct {
	// WorkerID is this worker's identifier.
	WorkerID string
	// Shard is the lease's shard.
	Shard ShardInfo
}

// BatchProcessed describes one ProcessRecords call.
type BatchProcessed struct {
	// Shard is the shard the batch came from.
	Shard ShardInfo
	// Records is the number of user records in the batch, after de-aggregation.
	Records int
	// Bytes is the sum of their data bytes.
	Bytes int
	// MillisBehindLatest is how far the batch was behind the tip of the shard.
	MillisBehindLatest int64
	// Duration is how long the processor took.
	Duration time.Duration
	// Attempt is 0 for the first delivery of the batch, n for its n-th redelivery.
	Attempt int
	// Err is the processor's error, nil on success.
	Err error
}

// CheckpointWritten describes one checkpoint write.
type CheckpointWritten struct {
	// Shard is the shard checkpointed.
	Shard ShardInfo
	// Checkpoint is the value written (a sequence and sub-sequence number, or
	// SHARD_END).
	Checkpoint checkpoint.Value
	// Pending reports a prepared checkpoint (Checkpointer.Prepare) rather than a
	// committed one.
	Pending bool
	// Err is nil when the write succeeded; otherwise the lease table's error (matching
	// checkpoint.ErrLeaseLost when the lease was gone).
	Err error
}

// hooks are the registered hooks, by the interfaces they implement.
type hooks struct {
	leaseGained []HookLeaseGained
	leaseLost   []HookLeaseLost
	batch       []HookBatchProcessed
	checkpoint  []HookCheckpointWritten
}

// add registers h under every hook interface it implements; it reports false for a
// value that implements none.
func (hs *hooks) add(h Hook) bool {
	found := false
	if x, ok := h.(HookLeaseGained); ok {
		hs.leaseGained, found = append(hs.leaseGained, x), true
	}
	if x, ok := h.(HookLeaseLost); ok {
		hs.leaseLost, found = append(hs.leaseLost, x), true
	}
	if x, ok := h.(HookBatchProcessed); ok {
		hs.batch, found = append(hs.batch, x), true
	}
	if x, ok := h.(HookCheckpointWritten); ok {
		hs.checkpoint, found = append(hs.checkpoint, x), true
	}
	return found
}

func (hs *hooks) gained(ev LeaseEvent) {
	for _, h := range hs.leaseGained {
		h.OnLeaseGained(ev)
	}
}

func (hs *hooks) lost(ev LeaseEvent) {
	for _, h := range hs.leaseLost {
		h.OnLeaseLost(ev)
	}
}

func (hs *hooks) processed(ev BatchProcessed) {
	for _, h := range hs.batch {
		h.OnBatchProcessed(ev)
	}
}

// observe makes cp report its writes for shard to the checkpoint hooks.
func (hs *hooks) observe(cp *checkpoint.Checkpointer, shard ShardInfo) {
	if len(hs.checkpoint) == 0 {
		return
	}
	cp.SetObserver(func(w checkpoint.Written) {
		ev := CheckpointWritten{Shard: shard, Checkpoint: w.Checkpoint, Pending: w.Pending, Err: w.Err}
		for _, h := range hs.checkpoint {
			h.OnCheckpointWritten(ev)
		}
	})
}
