package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/internal/clock"
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
// failover time, discovers leases the leader assigned to it (waiting for a graceful
// handoff to finish, or taking the lease when the previous owner exceeds the handoff
// timeout or stops renewing for the failover time), and reports changes through Changed and Held. It never takes leases on its own
// initiative: only the leader assigns. It is safe for concurrent use.
type Coordinator struct {
	store    *Store
	worker   string
	clock    clock.Clock
	log      *zap.Logger
	failover time.Duration
	handoff  time.Duration
	meter    *ThroughputMeter

	changed chan struct{}

	mu      sync.Mutex
	terms   uint64
	held    map[string]*heldLease
	waiting map[string]handoffWait // assigned to us, previous owner still checkpointing
}

// heldLease is a lease the coordinator holds. Every write of its holder (renewal,
// checkpoint, prepared checkpoint) moves its counter and is conditional on it, so they
// take write in turn, each using the counter the one before left, as Java KCL
// synchronizes them on its held lease. Lease and State are guarded by Coordinator.mu;
// a goroutine holding write may then take Coordinator.mu, never the other way round.
type heldLease struct {
	write sync.Mutex
	Held
}

// handoffWait is what a new owner knows of a handoff it waits for.
type handoffWait struct {
	since        time.Time // first seen assigned to us
	counter      int64     // last counter seen
	counterSince time.Time // when that counter was first seen
}

// CoordinatorOption configures a Coordinator.
type CoordinatorOption func(*Coordinator) error

// WithFailoverTime sets the failover time (DefaultFailoverTime by default).
func WithFailoverTime(d time.Duration) CoordinatorOption {
	return func(c *Coordinator) error {
		if d <= 0 {
			return fmt.Errorf("%w: failover time %v", ErrInvalidOption, d)
		}
		c.failover = d
		return nil
	}
}

// WithHandoffTimeout sets how long a new owner waits for the previous owner to release a
// lease before taking it (30 s by default, as Java KCL).
func WithHandoffTimeout(d time.Duration) CoordinatorOption {
	return func(c *Coordinator) error {
		if d <= 0 {
			return fmt.Errorf("%w: handoff timeout %v", ErrInvalidOption, d)
		}
		c.handoff = d
		return nil
	}
}

// WithCoordinatorClock sets the clock (clock.Real by default).
func WithCoordinatorClock(k clock.Clock) CoordinatorOption {
	return func(c *Coordinator) error {
		if k == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		c.clock = k
		return nil
	}
}

// WithCoordinatorLogger sets the logger (no-op by default).
func WithCoordinatorLogger(l *zap.Logger) CoordinatorOption {
	return func(c *Coordinator) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		c.log = l
		return nil
	}
}

// WithThroughputMeter sets the meter whose rates are written with each renewal.
func WithThroughputMeter(m *ThroughputMeter) CoordinatorOption {
	return func(c *Coordinator) error { c.meter = m; return nil }
}

// NewCoordinator returns the lease coordinator of worker.
func NewCoordinator(store *Store, worker string, opts ...CoordinatorOption) (*Coordinator, error) {
	if store == nil || worker == "" {
		return nil, fmt.Errorf("%w: coordinator needs a store and a worker ID", ErrInvalidOption)
	}
	c := &Coordinator{store: store, worker: worker, clock: clock.Real, log: zap.NewNop(),
		failover: DefaultFailoverTime, handoff: 30 * time.Second,
		changed: make(chan struct{}, 1), held: map[string]*heldLease{}, waiting: map[string]handoffWait{}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
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
			st := stateOf(&nl, c.worker)
			changed = st != h.State
			h.Lease, h.State = nl, st
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
		c.meter.Forget(key)
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
	var errs []error
	changed := false
	for _, h := range todo {
		h.write.Lock()
		c.mu.Lock()
		l, still := h.Lease, c.held[h.Lease.Key] == h
		c.mu.Unlock()
		if !still {
			h.write.Unlock()
			continue
		}
		if c.meter != nil {
			l.ThroughputKBps = c.meter.Sample(l.Key)
		}
		nl, err := c.store.Renew(ctx, l)
		c.mu.Lock()
		switch {
		case c.held[l.Key] != h:
		case err == nil:
			st := stateOf(&nl, c.worker)
			if st != h.State {
				changed = true
			}
			h.Lease, h.State = nl, st
		case errors.Is(err, ErrLeaseLost):
			c.drop(l.Key)
			changed = true
		default:
			errs = append(errs, err)
		}
		c.mu.Unlock()
		h.write.Unlock()
	}
	if changed {
		c.notify()
	}
	return errors.Join(errs...)
}

// Discover reads the owner index (one Query: followers never scan the lease table) for
// leases the leader assigned to this worker and starts holding those whose previous owner
// released them. It takes over a lease whose previous owner exceeded the handoff timeout,
// or stopped renewing it for the failover time. moved reports that a lease held for
// processing no longer names this worker as its owner in the index (the leader handed it
// to another worker): renewing now tells which, sooner than the next renewal.
func (c *Coordinator) Discover(ctx context.Context) (moved bool, err error) {
	keys, err := c.store.ListKeysOwnedBy(ctx, c.worker)
	if err != nil {
		return false, err
	}
	now := c.clock.Now()
	owned := make(map[string]bool, len(keys))
	for _, k := range keys {
		owned[k] = true
	}
	c.mu.Lock()
	for key, h := range c.held {
		if h.State == Processing && !owned[key] {
			moved = true
		}
	}
	c.mu.Unlock()
	var errs []error
	changed := false
	for _, key := range keys {
		c.mu.Lock()
		_, held := c.held[key]
		c.mu.Unlock()
		if held {
			continue
		}
		l, err := c.store.Get(ctx, key)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		if l.Owner != c.worker {
			continue
		}
		if l.CheckpointOwner != "" && l.CheckpointOwner != c.worker {
			c.mu.Lock()
			w, ok := c.waiting[key]
			if !ok {
				w = handoffWait{since: now, counter: l.Counter, counterSince: now}
			} else if w.counter != l.Counter {
				w.counter, w.counterSince = l.Counter, now
			}
			c.waiting[key] = w
			c.mu.Unlock()
			// The previous owner renews while it finishes; one that stopped renewing for the
			// failover time is gone and will never release.
			if now.Sub(w.since) < c.handoff && now.Sub(w.counterSince) < c.failover {
				continue
			}
			c.log.Info("handoff timed out or previous owner stopped renewing; taking lease", zap.String("lease", key), zap.String("from", l.CheckpointOwner))
			if l, err = c.store.Take(ctx, l, c.worker); err != nil {
				if !errors.Is(err, ErrConflict) {
					errs = append(errs, err)
				}
				continue
			}
		}
		c.mu.Lock()
		delete(c.waiting, key)
		c.terms++
		c.held[key] = &heldLease{Held: Held{Lease: l, State: Processing, Term: c.terms}}
		if c.meter != nil {
			c.meter.Seed(key, l.ThroughputKBps)
		}
		c.mu.Unlock()
		changed = true
	}
	c.mu.Lock()
	for key := range c.waiting {
		if !owned[key] {
			delete(c.waiting, key)
		}
	}
	c.mu.Unlock()
	if changed {
		c.notify()
	}
	return moved, errors.Join(errs...)
}

// Release gives up the held lease key (after a handoff request, or at shutdown, once the
// processor has stopped and checkpointed) and stops holding it.
func (c *Coordinator) Release(ctx context.Context, key string) error {
	c.mu.Lock()
	_, ok := c.held[key]
	delete(c.held, key)
	c.mu.Unlock()
	if c.meter != nil {
		c.meter.Forget(key)
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
