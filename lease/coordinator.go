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
	held    map[string]*Held
	waiting map[string]handoffWait // assigned to us, previous owner still checkpointing
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
		changed: make(chan struct{}, 1), held: map[string]*Held{}, waiting: map[string]handoffWait{}}
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
		out = append(out, Held{Lease: h.Lease.Clone(), State: h.State})
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
// checkpoint and pending checkpoint.
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
	return checkpoint.New(c.store, key, c.worker, l.Checkpoint, checkpoint.WithPending(l.PendingCheckpoint, l.PendingCheckpointState))
}

func stateOf(l *Lease, worker string) HeldState {
	if l.CheckpointOwner == worker && l.Owner != worker {
		return HandoffRequested
	}
	return Processing
}

// RenewAll renews every held lease once. Leases whose renewal fails with ErrLeaseLost
// are dropped; other errors leave the lease held until it would expire.
func (c *Coordinator) RenewAll(ctx context.Context) error {
	c.mu.Lock()
	todo := make([]Lease, 0, len(c.held))
	for _, h := range c.held {
		todo = append(todo, h.Lease)
	}
	c.mu.Unlock()
	errs := make([]error, len(todo))
	var changed atomic.Bool
	// Renewals of distinct leases are independent conditional writes: a worker holding a
	// hundred leases renews them in a few round trips, well within its renew interval.
	_ = concurrently(ctx, len(todo), storeConcurrency, func(ctx context.Context, i int) error {
		l := todo[i]
		if c.meter != nil {
			l.ThroughputKBps = c.meter.Sample(l.Key)
		}
		nl, err := c.store.Renew(ctx, l)
		c.mu.Lock()
		defer c.mu.Unlock()
		h, still := c.held[l.Key]
		switch {
		case !still:
		case err == nil:
			st := stateOf(&nl, c.worker)
			if st != h.State {
				changed.Store(true)
			}
			h.Lease, h.State = nl, st
		case errors.Is(err, ErrLeaseLost):
			delete(c.held, l.Key)
			if c.meter != nil {
				c.meter.Forget(l.Key)
			}
			changed.Store(true)
			c.log.Info("lease lost", zap.String("lease", l.Key))
		default:
			errs[i] = err
		}
		return nil
	})
	if changed.Load() {
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
		if c.take(ctx, fresh[i], now, &errs[i]) {
			changed.Store(true)
		}
		return nil
	})
	c.mu.Lock()
	for key := range c.waiting {
		if !owned[key] {
			delete(c.waiting, key)
		}
	}
	c.mu.Unlock()
	if changed.Load() {
		c.notify()
	}
	return moved, errors.Join(errs...)
}

// take reads the lease key the owner index assigned to this worker and holds it, unless
// it is another worker's or a handoff to this worker is still being finished by the
// previous owner. It reports whether it now holds the lease; a failure goes to *err.
func (c *Coordinator) take(ctx context.Context, key string, now time.Time, errp *error) bool {
	l, err := c.store.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			*errp = err
		}
		return false
	}
	if l.Owner != c.worker {
		return false
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
			return false
		}
		c.log.Info("handoff timed out or previous owner stopped renewing; taking lease", zap.String("lease", key), zap.String("from", l.CheckpointOwner))
		if l, err = c.store.Take(ctx, l, c.worker); err != nil {
			if !errors.Is(err, ErrConflict) {
				*errp = err
			}
			return false
		}
	}
	c.mu.Lock()
	delete(c.waiting, key)
	c.held[key] = &Held{Lease: l, State: Processing}
	if c.meter != nil {
		c.meter.Seed(key, l.ThroughputKBps)
	}
	c.mu.Unlock()
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
