package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/checkpoint"
)

// Shard is what shard sync knows about one shard of the stream (from ListShards).
type Shard struct {
	// ID is the shard ID.
	ID string
	// ParentShardIDs are the parent and adjacent parent shard IDs, if any.
	ParentShardIDs []string
	// StartingHashKey and EndingHashKey are the shard's hash key range (decimal).
	StartingHashKey, EndingHashKey string
	// StreamIdentifier is account:stream:creationEpoch for multi-stream applications, empty
	// otherwise.
	StreamIdentifier string
	// Start is where the shard's new lease starts; zero for CreateLeases' initial
	// position.
	Start checkpoint.Value
}

// CreateLeases creates a lease for every shard without one, unassigned, at the shard's
// Start (initial when Start is zero), with its parents and hash key range recorded. It
// returns the keys it created. Existing leases are left untouched.
//
// Leases are written up to storeConcurrency at a time, in waves: a shard whose parent is
// among shards is created only after its parent's lease, so no reader ever sees a child
// whose parent lease is still missing (a missing parent counts as processed).
func CreateLeases(ctx context.Context, s *Store, shards []Shard, initial checkpoint.Value) ([]string, error) {
	if initial.IsZero() || initial.IsShardEnd() {
		return nil, fmt.Errorf("%w: initial position %v", ErrInvalidOption, initial)
	}
	for i := range shards {
		if st := shards[i].Start; !st.IsZero() && st.IsShardEnd() {
			return nil, fmt.Errorf("%w: shard %s starts at %v", ErrInvalidOption, shards[i].ID, st)
		}
	}
	pending := make(map[string]bool, len(shards))
	for i := range shards {
		pending[shards[i].ID] = true
	}
	var created []string
	rest := shards
	for len(rest) > 0 {
		var wave, later []Shard
		for _, sh := range rest {
			if slices.ContainsFunc(sh.ParentShardIDs, func(p string) bool { return pending[p] }) {
				later = append(later, sh)
			} else {
				wave = append(wave, sh)
			}
		}
		if len(wave) == 0 {
			wave, later = later, nil // a parent cycle cannot occur in Kinesis; create the rest
		}
		ok := make([]bool, len(wave))
		keys := make([]string, len(wave))
		err := concurrently(ctx, len(wave), storeConcurrency, func(ctx context.Context, i int) error {
			sh := wave[i]
			start := initial
			if !sh.Start.IsZero() {
				start = sh.Start
			}
			l := Lease{Key: sh.ID, Checkpoint: start, ParentShardIDs: sh.ParentShardIDs,
				StartingHashKey: sh.StartingHashKey, EndingHashKey: sh.EndingHashKey}
			if sh.StreamIdentifier != "" {
				l.Key = MultiStreamKey(sh.StreamIdentifier, sh.ID)
				l.StreamIdentifier, l.ShardID = sh.StreamIdentifier, sh.ID
			}
			keys[i] = l.Key
			var err error
			ok[i], err = s.CreateIfAbsent(ctx, l)
			return err
		})
		for i := range wave {
			if ok[i] {
				created = append(created, keys[i])
			}
			delete(pending, wave[i].ID)
		}
		if err != nil {
			return created, err
		}
		rest = later
	}
	return created, nil
}

// storeConcurrency is how many lease requests CreateLeases, the Assigner, RenewAll and
// Discover have in flight at once: enough that a leader places 10,000 leases in seconds
// and a worker takes up a hundred newly assigned leases in a few round trips, few enough
// that a table's capacity is not hit in a burst.
const storeConcurrency = 16

// concurrently calls f(ctx, i) for every i in [0, n), at most limit calls at once. After
// the first error no further call starts; it returns that error.
func concurrently(ctx context.Context, n, limit int, f func(ctx context.Context, i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if first != nil || next >= n || ctx.Err() != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for range min(n, limit) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, ok := take(); ok; i, ok = take() {
				if err := f(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// ParentsDone reports whether every parent of l has been processed to SHARD_END, which
// makes l eligible for processing. A parent without a lease counts as done: it was never
// consumed (it predates the application's start) or its finished lease was cleaned up
// after the stream's retention. Each parent is read consistently.
func (s *Store) ParentsDone(ctx context.Context, l *Lease) (bool, error) {
	for _, p := range l.ParentShardIDs {
		key := p
		if l.StreamIdentifier != "" {
			key = MultiStreamKey(l.StreamIdentifier, p)
		}
		pl, err := s.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if !pl.Checkpoint.IsShardEnd() {
			return false, nil
		}
	}
	return true, nil
}

// DeleteCompleted deletes, of leases (the lease table as the caller listed it), the
// leases of shards that are past the stream's retention (no longer in liveShards, the
// shard IDs ListShards returns) whose checkpoint is SHARD_END and whose children all
// have leases that started processing (a checkpoint past the starting sentinels) or are
// done. It returns the deleted keys. Each delete is conditional on the checkpoint still
// being SHARD_END, and a listing older than the table only keeps a lease longer (a
// child's checkpoint only moves on), so an eventually consistent listing will do.
func DeleteCompleted(ctx context.Context, s *Store, leases []Lease, liveShards map[string]bool) ([]string, error) {
	byKey := make(map[string]*Lease, len(leases))
	for i := range leases {
		byKey[leases[i].Key] = &leases[i]
	}
	var deleted []string
	var errs []error
	for i := range leases {
		l := &leases[i]
		if !l.Checkpoint.IsShardEnd() || liveShards[l.Shard()] || len(l.ChildShardIDs) == 0 {
			continue
		}
		done := true
		for _, c := range l.ChildShardIDs {
			key := c
			if l.StreamIdentifier != "" {
				key = MultiStreamKey(l.StreamIdentifier, c)
			}
			cl, ok := byKey[key]
			if !ok || cl.Checkpoint.IsStart() || cl.Checkpoint.IsZero() {
				done = false
				break
			}
		}
		if !done {
			continue
		}
		if err := s.deleteShardEnded(ctx, l.Key); err != nil {
			if !errors.Is(err, ErrConflict) {
				errs = append(errs, err)
			}
			continue
		}
		deleted = append(deleted, l.Key)
	}
	return deleted, errors.Join(errs...)
}

// ReplayOptions tune Replay.
type ReplayOptions struct {
	// Force resets leases that still have an owner. Without it Replay refuses
	// (ErrConflict) leases that are owned, since their application may be running.
	Force bool
}

// Replay sets the checkpoint of the leases keys to position (TRIM_HORIZON, LATEST,
// AT_TIMESTAMP or a sequence number) for an application that is stopped: pending
// checkpoints and owners are cleared and the counter incremented, so a restarted fleet
// reads the shards again from there.
func Replay(ctx context.Context, s *Store, keys []string, position checkpoint.Value, opts ReplayOptions) error {
	if position.IsZero() || position.IsShardEnd() {
		return fmt.Errorf("%w: replay position %v", ErrInvalidOption, position)
	}
	if !position.IsSentinel() {
		if _, err := checkpoint.ParseSequenceNumber(position.SequenceNumber); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidOption, err)
		}
	}
	values := map[string]types.AttributeValue{
		":seq": str(position.SequenceNumber), ":sub": num(position.SubSequenceNumber), ":zero": num(0), ":one": num(1),
	}
	update := "SET #cp = :seq, #cps = :sub, #sw = :zero, #c = #c + :one"
	remove := " REMOVE #pc, #pcs, #pst, #o, #co"
	if !position.Timestamp.IsZero() {
		update += ", #cpt = :ts"
		values[":ts"] = num(position.Timestamp.UnixMilli())
	} else {
		remove += ", #cpt"
	}
	cond := "attribute_exists(#k)"
	if !opts.Force {
		cond += " AND attribute_not_exists(#o)"
	}
	var errs []error
	for _, key := range keys {
		if _, err := s.update(ctx, key, update+remove, cond, values); err != nil {
			if isConditionFailed(err) {
				err = ErrConflict
			}
			errs = append(errs, s.fail("replay", key, err))
		}
	}
	return errors.Join(errs...)
}
