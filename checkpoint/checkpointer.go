package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Sentinel errors of the Checkpointer. Every error it returns is a *Error that wraps one
// of them.
var (
	// ErrLeaseLost reports that this worker no longer owns the lease: nothing was written.
	ErrLeaseLost = errors.New("checkpoint: lease lost")
	// ErrBackwards reports a checkpoint before the one already stored.
	ErrBackwards = errors.New("checkpoint: would move backwards")
	// ErrBeyondDelivered reports a checkpoint past the last record delivered to the
	// processor.
	ErrBeyondDelivered = errors.New("checkpoint: beyond the last delivered record")
	// ErrShardNotEnded reports a SHARD_END checkpoint before the shard's end was reached.
	ErrShardNotEnded = errors.New("checkpoint: shard end not reached")
	// ErrNoPending reports a commit without a matching prepared checkpoint.
	ErrNoPending = errors.New("checkpoint: no prepared checkpoint")
	// ErrInvalidOption reports a bad argument to New.
	ErrInvalidOption = errors.New("checkpoint: invalid option")
)

// Error describes a refused or failed checkpoint. It unwraps to one of the package's
// sentinel errors, or to the store's error.
type Error struct {
	// Op is "checkpoint", "prepare" or "commit".
	Op string
	// LeaseKey is the lease being checkpointed.
	LeaseKey string
	// Requested is the checkpoint asked for.
	Requested Value
	// Stored is the last checkpoint known to be stored.
	Stored Value
	// Delivered is the last record delivered to the processor.
	Delivered Value
	// Err is the cause.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s at %s (stored %s, delivered %s): %v",
		e.Op, e.LeaseKey, e.Requested, e.Stored, e.Delivered, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Store persists checkpoints in the lease table; the lease coordinator implements it for
// each lease it holds (lease.Coordinator.Checkpointer). Both methods are conditional
// writes: they succeed only while owner may checkpoint the lease (it is the lease owner
// and no handoff is under way, or it is the checkpoint owner of a lease being handed
// off) and, in the lease package's implementation, while the lease counter is the one
// its holder last wrote, as in Java KCL; otherwise they write nothing and return an
// error matching ErrLeaseLost.
type Store interface {
	// WriteCheckpoint stores cp as the lease's checkpoint and clears any pending
	// checkpoint.
	WriteCheckpoint(ctx context.Context, leaseKey, owner string, cp Value) error
	// WritePendingCheckpoint stores cp as the lease's pending checkpoint together with
	// the application's state (nil for none).
	WritePendingCheckpoint(ctx context.Context, leaseKey, owner string, cp Value, state []byte) error
}

// Checkpointer records the progress of one record processor on one leased shard. The
// consumer creates one per lease it starts processing, tells it what it delivered
// (Delivered, ShardEnded) and when the lease is lost (LeaseLost), and hands it to the
// processor, which calls Checkpoint, CheckpointAt or Prepare. It is safe for concurrent
// use; writes are serialized so a checkpoint never moves backwards.
type Checkpointer struct {
	store    Store
	leaseKey string
	owner    string

	writeMu sync.Mutex // serializes store writes

	mu         sync.Mutex
	stored     Value
	delivered  Value
	pending    Value
	pendingSt  []byte
	shardEnded bool
	lost       bool
	observer   func(Written)
}

// Written describes one write of a checkpoint to the store, successful or not.
type Written struct {
	// LeaseKey is the lease written to.
	LeaseKey string
	// Checkpoint is the value written.
	Checkpoint Value
	// Pending reports a pending (prepared) checkpoint rather than a committed one.
	Pending bool
	// Err is nil when the store took the write; otherwise the store's error (matching
	// ErrLeaseLost when the lease was gone).
	Err error
}

// SetObserver sets fn to be called after every write this Checkpointer makes to its
// store, with its outcome (not for requests refused before writing, nor for no-ops).
// The consumer sets it to fire its checkpoint hooks; a later call replaces it. fn runs
// on the goroutine that checkpoints and must return quickly.
func (c *Checkpointer) SetObserver(fn func(Written)) {
	c.mu.Lock()
	c.observer = fn
	c.mu.Unlock()
}

// Option configures a Checkpointer.
type Option func(*Checkpointer) error

// WithPending tells the Checkpointer about a pending (prepared, not committed) checkpoint
// already stored in the lease, so Pending reports it to the processor.
func WithPending(cp Value, state []byte) Option {
	return func(c *Checkpointer) error {
		if !cp.IsZero() && !cp.IsSentinel() {
			if _, err := ParseSequenceNumber(cp.SequenceNumber); err != nil {
				return fmt.Errorf("%w: pending checkpoint: %v", ErrInvalidOption, err)
			}
		}
		c.pending = cp
		c.pendingSt = append([]byte(nil), state...)
		return nil
	}
}

// New returns a Checkpointer for the lease leaseKey held by owner, whose stored checkpoint
// is current (the lease's checkpoint when the consumer took it).
func New(store Store, leaseKey, owner string, current Value, opts ...Option) (*Checkpointer, error) {
	switch {
	case store == nil:
		return nil, fmt.Errorf("%w: nil store", ErrInvalidOption)
	case leaseKey == "":
		return nil, fmt.Errorf("%w: empty lease key", ErrInvalidOption)
	case owner == "":
		return nil, fmt.Errorf("%w: empty owner", ErrInvalidOption)
	}
	if !current.IsZero() {
		if _, err := Parse(current.SequenceNumber, current.SubSequenceNumber); err != nil {
			return nil, fmt.Errorf("%w: current checkpoint: %v", ErrInvalidOption, err)
		}
	}
	c := &Checkpointer{store: store, leaseKey: leaseKey, owner: owner, stored: current}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// LeaseKey returns the lease this Checkpointer writes to.
func (c *Checkpointer) LeaseKey() string { return c.leaseKey }

// Delivered records that every record up to and including v has been delivered to the
// processor. The consumer calls it before each ProcessRecords call; a v before the last
// delivered position is ignored.
func (c *Checkpointer) Delivered(v Value) {
	c.mu.Lock()
	if c.delivered.Compare(v) < 0 {
		c.delivered = v
	}
	c.mu.Unlock()
}

// Redeliver records that the records handed to the processor now end at v, which may be
// before the last delivered position: the consumer calls it when it hands part of a
// failed batch again (a bisected batch, or the rest after a partial failure), so that
// Checkpoint stores v and not the end of the whole batch. A v before the stored
// checkpoint is ignored.
func (c *Checkpointer) Redeliver(v Value) {
	c.mu.Lock()
	if c.stored.Compare(v) <= 0 {
		c.delivered = v
	}
	c.mu.Unlock()
}

// ShardEnded records that every record of a closed shard has been delivered, which makes
// SHARD_END a valid checkpoint.
func (c *Checkpointer) ShardEnded() {
	c.mu.Lock()
	c.shardEnded = true
	c.mu.Unlock()
}

// LeaseLost records that the lease is no longer held: every later call returns
// ErrLeaseLost without writing.
func (c *Checkpointer) LeaseLost() {
	c.mu.Lock()
	c.lost = true
	c.mu.Unlock()
}

// Stored returns the last checkpoint known to be stored.
func (c *Checkpointer) Stored() Value {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stored
}

// LastDelivered returns the last delivered position recorded by Delivered.
func (c *Checkpointer) LastDelivered() Value {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.delivered
}

// Pending returns the prepared checkpoint and application state stored in the lease, if
// any (zero Value otherwise).
func (c *Checkpointer) Pending() (Value, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending, append([]byte(nil), c.pendingSt...)
}

// Checkpoint stores the position of the last delivered record, or SHARD_END once the shard
// has ended. It returns nil without writing when that position is already stored. ctx
// bounds the store write.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	c.mu.Lock()
	target := c.delivered
	if c.shardEnded {
		target = ShardEnd
	}
	c.mu.Unlock()
	if target.IsZero() {
		return nil
	}
	return c.write(ctx, "checkpoint", target, nil, false)
}

// CheckpointAt stores the checkpoint at sequence number seq and sub-sequence number sub:
// every record up to and including it is processed. seq may be SHARD_END once the shard
// has ended. It fails with ErrBackwards before the stored checkpoint, ErrBeyondDelivered
// past the last delivered record, and ErrLeaseLost (writing nothing) without ownership.
func (c *Checkpointer) CheckpointAt(ctx context.Context, seq string, sub int64) error {
	v, err := c.parseTarget(seq, sub)
	if err != nil {
		return &Error{Op: "checkpoint", LeaseKey: c.leaseKey, Requested: Value{SequenceNumber: seq, SubSequenceNumber: sub}, Err: err}
	}
	return c.write(ctx, "checkpoint", v, nil, false)
}

// Prepared is a checkpoint stored as pending with application state, waiting for Commit.
type Prepared struct {
	c     *Checkpointer
	value Value
}

// Value returns the prepared position.
func (p *Prepared) Value() Value { return p.value }

// Commit stores the prepared position as the checkpoint and clears the pending one. It
// fails with ErrNoPending when a later Prepare or checkpoint replaced this one.
func (p *Prepared) Commit(ctx context.Context) error {
	p.c.mu.Lock()
	same := p.c.pending.Compare(p.value) == 0 && p.c.pending.SequenceNumber == p.value.SequenceNumber
	p.c.mu.Unlock()
	if !same {
		return &Error{Op: "commit", LeaseKey: p.c.leaseKey, Requested: p.value, Err: ErrNoPending}
	}
	return p.c.write(ctx, "commit", p.value, nil, false)
}

// Prepare stores the position of the last delivered record as the pending checkpoint with
// the application's state (the first phase of a two-phase checkpoint); Commit on the
// result makes it the checkpoint.
func (c *Checkpointer) Prepare(ctx context.Context, state []byte) (*Prepared, error) {
	c.mu.Lock()
	target := c.delivered
	if c.shardEnded {
		target = ShardEnd
	}
	c.mu.Unlock()
	if target.IsZero() {
		return nil, &Error{Op: "prepare", LeaseKey: c.leaseKey, Err: ErrBeyondDelivered}
	}
	if err := c.write(ctx, "prepare", target, state, true); err != nil {
		return nil, err
	}
	return &Prepared{c: c, value: target}, nil
}

// PrepareAt is Prepare at an explicit position, validated as CheckpointAt validates.
func (c *Checkpointer) PrepareAt(ctx context.Context, seq string, sub int64, state []byte) (*Prepared, error) {
	v, err := c.parseTarget(seq, sub)
	if err != nil {
		return nil, &Error{Op: "prepare", LeaseKey: c.leaseKey, Requested: Value{SequenceNumber: seq, SubSequenceNumber: sub}, Err: err}
	}
	if err := c.write(ctx, "prepare", v, state, true); err != nil {
		return nil, err
	}
	return &Prepared{c: c, value: v}, nil
}

func (c *Checkpointer) parseTarget(seq string, sub int64) (Value, error) {
	if seq == SentinelShardEnd {
		if sub != 0 {
			return Value{}, fmt.Errorf("%w: SHARD_END with sub-sequence number %d", ErrInvalidSequenceNumber, sub)
		}
		return ShardEnd, nil
	}
	if IsSentinel(seq) {
		return Value{}, fmt.Errorf("%w: a processor cannot checkpoint at %s", ErrInvalidSequenceNumber, seq)
	}
	return At(seq, sub)
}

// write validates target against the stored and delivered positions and writes it, as a
// checkpoint or, when pending, as a prepared checkpoint with state.
func (c *Checkpointer) write(ctx context.Context, op string, target Value, state []byte, pending bool) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()

	c.mu.Lock()
	e := &Error{Op: op, LeaseKey: c.leaseKey, Requested: target, Stored: c.stored, Delivered: c.delivered}
	switch {
	case c.lost:
		e.Err = ErrLeaseLost
	case target.IsShardEnd() && !c.shardEnded:
		e.Err = ErrShardNotEnded
	case !target.IsShardEnd() && target.Compare(c.delivered) > 0:
		e.Err = ErrBeyondDelivered
	case target.Compare(c.stored) < 0:
		e.Err = ErrBackwards
	}
	noop := !pending && target.Compare(c.stored) == 0 && target.SequenceNumber == c.stored.SequenceNumber && c.pending.IsZero()
	c.mu.Unlock()
	if e.Err != nil {
		return e
	}
	if noop {
		return nil
	}

	var err error
	if pending {
		err = c.store.WritePendingCheckpoint(ctx, c.leaseKey, c.owner, target, state)
	} else {
		err = c.store.WriteCheckpoint(ctx, c.leaseKey, c.owner, target)
	}
	c.mu.Lock()
	observer := c.observer
	defer func() {
		c.mu.Unlock()
		if observer != nil {
			observer(Written{LeaseKey: c.leaseKey, Checkpoint: target, Pending: pending, Err: err})
		}
	}()
	if err != nil {
		if errors.Is(err, ErrLeaseLost) {
			c.lost = true
		}
		e.Err = err
		return e
	}
	if pending {
		c.pending = target
		c.pendingSt = append([]byte(nil), state...)
	} else {
		c.stored = target
		c.pending = Value{}
		c.pendingSt = nil
	}
	return nil
}
