package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/clock"
)

// DefaultFailoverTime is how long a lease's counter may stay unchanged before observers
// consider it expired (Java KCL's failoverTimeMillis default).
const DefaultFailoverTime = 10 * time.Second

// HeldState is what a worker must do with a lease it holds.
type HeldState int

const (
	// Processing: the worker owns the lease and processes its shard.
	Processing HeldState = iota
	// HandoffRequested: the leader gave the lease to another worker; stop processing,
	// checkpoint, then call Coordinator.Release.
	HandoffRequested
)

func (s HeldState) String() string {
	if s == HandoffRequested {
		return "handoff-requested"
	}
	return "processing"
}

// Held is a lease the worker holds and what to do with it.
type Held struct {
	Lease Lease
	State HeldState
	// Term tells apart the times the coordinator held a lease: it is new each time the
	// coordinator starts holding one, so a lease lost and held again has another term.
	// Lease.Counter cannot tell them apart, as checkpoints move it too.
	Term uint64
}

// Coordinator keeps one worker's leases: it renews the leases it holds every third of the
// failover time, discovers leases the leader assigned to it, and reports changes through
// Changed and Held. It never takes leases on its own initiative: only the leader assigns.
//
// Graceful handoffs run as in Java KCL 3.x. The new owner never takes a lease whose
// checkpoint owner is another worker: it starts only once the old owner has released
// it. The old owner, told by its renewal (HandoffRequested), stops processing,
// checkpoints and releases; if it has not released within the handoff timeout of
// learning of the handoff, its coordinator stops holding the lease and transfers it to
// the new owner itself (Java's gracefulLeaseHandoffTimeoutMillis, 30 s by default). An
// old owner that dies stops renewing: the leader reassigns the lease once it expires.
// It is safe for concurrent use.
type Coordinator struct {
	store    *Store
	worker   string
	clock    clock.Clock
	log      *zap.Logger
	failover time.Duration
	handoff  time.Duration
	meter    *ThroughputMeter

	changed chan struct{}

	mu    sync.Mutex
	terms uint64
	held  map[string]*heldLease
	// awaiting is set when the last Discover found leases assigned to this worker that it
	// could not hold yet (another worker is still handing them over).
	awaiting bool
}

// heldLease is a lease the coordinator holds. Every write of its holder (renewal,
// checkpoint, prepared checkpoint) moves its counter and is conditional on it, so they
// take write in turn, each using the counter the one before left, as Java KCL
// synchronizes them on its held lease. Lease and State are guarded by Coordinator.mu;
// a goroutine holding write may then take Coordinator.mu, never the other way round.
type heldLease struct {
	write sync.Mutex
	Held
	// handoffSince is when the coordinator first saw the lease in HandoffRequested.
	handoffSince time.Time
}

// set records l as the stored state of h and reports whether h's state changed. It must
// be called with c.mu held.
func (c *Coordinator) set(h *heldLease, l Lease) bool {
	st := stateOf(&l, c.worker)
	changed := st != h.State
	if changed && st == HandoffRequested {
		h.handoffSince = c.clock.Now()
	}
	h.Lease, h.State = l, st
	return changed
}

// NewCoordinator returns the lease coordinator of worker.
func NewCoordinator(store *Store, worker string, opts ...Option) (*Coordinator, error) {
	if store == nil || worker == "" {
		return nil, fmt.Errorf("%w: coordinator needs a store and a worker ID", ErrInvalidOption)
	}
	o, err := newOptions("NewCoordinator", forCoordinator, opts)
	if err != nil {
		return nil, err
	}
	return &Coordinator{store: store, worker: worker, clock: o.clock, log: o.log,
		failover: o.failover, handoff: o.handoff, meter: o.meter,
		changed: make(chan struct{}, 1), held: map[string]*heldLease{}}, nil
}

// Worker returns the worker ID.
func (c *Coordinator) Worker() string { return c.worker }

// Changed returns a channel that receives a value (coalesced, never blocking the
// coordinator) whenever the set or state of held leases changes.
func (c *Coordinator) Changed() <-chan struct{} { return c.changed }

func (c *Coordinator) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Held returns the leases held, sorted by key.
func (c *Coordinator) Held() []Held {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Held, 0, len(c.held))
	for _, h := range c.held {
		out = append(out, Held{Lease: h.Lease.Clone(), State: h.State, Term: h.Term})
	}
	slices.SortFunc(out, func(a, b Held) int {
		switch {
		case a.Lease.Key < b.Lease.Key:
			return -1
		case a.Lease.Key > b.Lease.Key:
			return 1
		}
		return 0
	})
	return out
}

// Checkpointer returns a Checkpointer for the held lease key, starting from its stored
// checkpoint and pending checkpoint. Its writes are fenced by the lease counter as Java
// KCL's are: each uses the counter of the coordinator's held lease, after any renewal in
// progress, and records the counter it wrote. Once the coordinator stops holding this
// lease (lost, released, or held again after a loss) they fail with ErrLeaseLost.
func (c *Coordinator) Checkpointer(key string) (*checkpoint.Checkpointer, error) {
	c.mu.Lock()
	h, ok := c.held[key]
	var l Lease
	if ok {
		l = h.Lease.Clone()
	}
	c.mu.Unlock()
	if !ok {
		return nil, &Error{Op: "checkpointer", Table: c.store.tables.Lease, Key: key, Err: ErrLeaseLost}
	}
	return checkpoint.New(heldCheckpoints{c: c, h: h}, key, c.worker, l.Checkpoint, checkpoint.WithPending(l.PendingCheckpoint, l.PendingCheckpointState))
}

// heldCheckpoints is the checkpoint.Store of one held lease.
type heldCheckpoints struct {
	c *Coordinator
	h *heldLease
}

func (w heldCheckpoints) WriteCheckpoint(ctx context.Context, _, _ string, cp checkpoint.Value) error {
	return w.c.writeHeld(ctx, "checkpoint", w.h, func(l Lease) (Lease, error) { return w.c.store.WriteCheckpoint(ctx, l, cp) })
}

func (w heldCheckpoints) WritePendingCheckpoint(ctx context.Context, _, _ string, cp checkpoint.Value, state []byte) error {
	return w.c.writeHeld(ctx, "prepare", w.h, func(l Lease) (Lease, error) {
		return w.c.store.WritePendingCheckpoint(ctx, l, cp, state)
	})
}

// writeHeld runs write with the held lease h, after any other write of h in progress, and
// keeps the lease it returns. A lease no longer held (or held anew) fails with
// ErrLeaseLost; a write that finds the lease lost drops it, as a failed renewal does.
func (c *Coordinator) writeHeld(ctx context.Context, op string, h *heldLease, write func(Lease) (Lease, error)) error {
	h.write.Lock()
	defer h.write.Unlock()
	c.mu.Lock()
	key := h.Lease.Key
	if c.held[key] != h {
		c.mu.Unlock()
		return &Error{Op: op, Table: c.store.tables.Lease, Key: key, Err: ErrLeaseLost}
	}
	l := h.Lease
	c.mu.Unlock()
	nl, err := write(l)
	if err != nil && !errors.Is(err, ErrLeaseLost) {
		return err
	}
	c.mu.Lock()
	changed := false
	if c.held[key] == h {
		if err == nil {
			changed = c.set(h, nl)
		} else {
			c.drop(key)
			changed = true
		}
	}
	c.mu.Unlock()
	if changed {
		c.notify()
	}
	return err
}

// drop stops holding key. It must be called with c.mu held.
func (c *Coordinator) drop(key string) {
	delete(c.held, key)
	if c.meter != nil {
		c.meter.forget(key)
	}
	c.log.Info("lease lost", zap.String("lease", key))
}

func stateOf(l *Lease, worker string) HeldState {
	if l.CheckpointOwner == worker && l.Owner != worker {
		return HandoffRequested
	}
	return Processing
}

// RenewAll renews every held lease once. Leases whose renewal fails with ErrLeaseLost
// are dropped; other errors leave the lease held until it would expire. A renewal waits
// for a checkpoint of the same lease in progress and uses the counter it wrote.
func (c *Coordinator) RenewAll(ctx context.Context) error {
	c.mu.Lock()
	todo := make([]*heldLease, 0, len(c.held))
	for _, h := range c.held {
		todo = append(todo, h)
	}
	c.mu.Unlock()
	errs := make([]error, len(todo))
	var changed atomic.Bool
	// Renewals of distinct leases are independent conditional writes: a worker holding a
	// hundred leases renews them in a few round trips, well within its renew interval.
	_ = concurrently(ctx, len(todo), storeConcurrency, func(ctx context.Context, i int) error {
		h := todo[i]
		h.write.Lock()
		defer h.write.Unlock()
		c.mu.Lock()
		l, still := h.Lease, c.held[h.Lease.Key] == h
		c.mu.Unlock()
		if !still {
			return nil
		}
		if c.meter != nil {
			l.ThroughputKBps = c.meter.sample(l.Key)
		}
		nl, err := c.store.Renew(ctx, l)
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case c.held[l.Key] != h:
		case err == nil:
			if c.set(h, nl) {
				changed.Store(true)
			}
		case errors.Is(err, ErrLeaseLost):
			c.drop(l.Key)
			changed.Store(true)
		default:
			errs[i] = err
		}
		return nil
	})
	if c.transferOverdue(ctx, &errs) {
		changed.Store(true)
	}
	if changed.Load() {
		c.notify()
	}
	return errors.Join(errs...)
}

// transferOverdue stops holding every lease whose handoff this worker has not finished
// within the handoff timeout, and transfers it to its new owner (removing this worker
// as its checkpoint owner), as Java KCL's LeaseGracefulShutdownHandler does when the
// shard consumer does not shut down in time. A checkpoint in progress finishes first;
// the shard consumer then finds the lease lost. It reports whether it dropped a lease.
func (c *Coordinator) transferOverdue(ctx context.Context, errs *[]error) bool {
	now := c.clock.Now()
	c.mu.Lock()
	var overdue []*heldLease
	for _, h := range c.held {
		if h.State == HandoffRequested && now.Sub(h.handoffSince) >= c.handoff {
			overdue = append(overdue, h)
		}
	}
	c.mu.Unlock()
	dropped := false
	for _, h := range overdue {
		h.write.Lock()
		c.mu.Lock()
		key, to, still := h.Lease.Key, h.Lease.Owner, c.held[h.Lease.Key] == h
		if still {
			c.drop(key)
			dropped = true
		}
		c.mu.Unlock()
		if still {
			c.log.Warn("handoff not finished within the handoff timeout; transferring the lease to its new owner",
				zap.String("lease", key), zap.String("to", to), zap.Duration("timeout", c.handoff))
			if err := c.store.Release(ctx, key, c.worker); err != nil && !errors.Is(err, ErrLeaseLost) {
				*errs = append(*errs, err)
			}
		}
		h.write.Unlock()
	}
	return dropped
}

// Discover reads the owner index (one Query: followers never scan the lease table) for
// leases the leader assigned to this worker and starts holding those no other worker is
// still handing over: a lease whose checkpoint owner names another worker waits for that
// worker's release (or transfer at its handoff timeout, or the leader's reassignment once
// it expires), as Java KCL's lease discovery does. moved reports that a lease held for
// processing no longer names this worker as its owner in the index (the leader handed it
// to another worker): renewing now tells which, sooner than the next renewal.
func (c *Coordinator) Discover(ctx context.Context) (moved bool, err error) {
	keys, err := c.store.ListKeysOwnedBy(ctx, c.worker)
	if err != nil {
		return false, err
	}
	owned := make(map[string]bool, len(keys))
	for _, k := range keys {
		owned[k] = true
	}
	var fresh []string
	c.mu.Lock()
	for key, h := range c.held {
		if h.State == Processing && !owned[key] {
			moved = true
		}
	}
	for _, key := range keys {
		if _, held := c.held[key]; !held {
			fresh = append(fresh, key)
		}
	}
	c.mu.Unlock()
	errs := make([]error, len(fresh))
	var changed atomic.Bool
	// Each newly assigned lease is read consistently before it is held; the reads are
	// independent, so a worker given dozens of leases at once reads them in a few round
	// trips instead of one after the other.
	_ = concurrently(ctx, len(fresh), storeConcurrency, func(ctx context.Context, i int) error {
		if c.take(ctx, fresh[i], &errs[i]) {
			changed.Store(true)
		}
		return nil
	})
	c.mu.Lock()
	c.awaiting = false
	for _, key := range fresh {
		if _, held := c.held[key]; !held {
			c.awaiting = true
		}
	}
	c.mu.Unlock()
	if changed.Load() {
		c.notify()
	}
	return moved, errors.Join(errs...)
}

// Awaiting reports whether the last Discover found leases assigned to this worker that it
// could not hold yet: their previous owner is still handing them over (or the read of
// them failed). A worker that discovers only on the leader's hints looks again every
// assignment interval while this holds, since the release that ends a handoff leaves no
// hint.
func (c *Coordinator) Awaiting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.awaiting
}

// take reads the lease key the owner index assigned to this worker and holds it, unless
// it is another worker's or its previous owner is still handing it over (it names
// another checkpoint owner). It reports whether it now holds the lease; a failure goes
// to *errp.
func (c *Coordinator) take(ctx context.Context, key string, errp *error) bool {
	l, err := c.store.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			*errp = err
		}
		return false
	}
	if l.Owner != c.worker || l.CheckpointOwner != "" && l.CheckpointOwner != c.worker {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, held := c.held[key]; held {
		return false
	}
	c.terms++
	h := &heldLease{Held: Held{Term: c.terms}}
	c.set(h, l)
	c.held[key] = h
	if c.meter != nil {
		c.meter.seed(key, l.ThroughputKBps)
	}
	return true
}

// Release gives up the held lease key (after a handoff request, or at shutdown, once the
// processor has stopped and checkpointed) and stops holding it.
func (c *Coordinator) Release(ctx context.Context, key string) error {
	c.mu.Lock()
	_, ok := c.held[key]
	delete(c.held, key)
	c.mu.Unlock()
	if c.meter != nil {
		c.meter.forget(key)
	}
	if !ok {
		return &Error{Op: "release", Table: c.store.tables.Lease, Key: key, Err: ErrLeaseLost}
	}
	c.notify()
	return c.store.Release(ctx, key, c.worker)
}

// Run renews every third of the failover time and discovers assigned leases every
// twentieth of it (the leader's assignment interval), until ctx ends. A lease discovered
// is renewed at once: the leader expects a worker to renew a lease it was given within a
// few assignment intervals. Errors are logged and retried.
func (c *Coordinator) Run(ctx context.Context) error {
	nextRenew := c.clock.Now()
	for {
		before := len(c.Held())
		if _, err := c.Discover(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("lease discovery", zap.Error(err))
		}
		if now := c.clock.Now(); !now.Before(nextRenew) || len(c.Held()) > before {
			nextRenew = now.Add(c.failover / 3)
			if err := c.RenewAll(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("lease renewal", zap.Error(err))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.clock.After(max(time.Millisecond, min(c.failover/20, nextRenew.Sub(c.clock.Now())))):
		}
	}
}
