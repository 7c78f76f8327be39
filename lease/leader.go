package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/clock"
)

// The leader lock item, in the format of the DynamoDB lock client Java KCL 3.x uses: key
// "Leader" in the coordinator-state table (or leaseKey "Leader" in the single-table
// layout).
const (
	leaderLockKey         = "Leader"
	attrLockOwnerName     = "ownerName"
	attrLockLeaseDuration = "leaseDuration"
	attrLockRecordVersion = "recordVersionNumber"
	attrLockIsReleased    = "isReleased"
	// attrLockFence is Freshet's own: the holder fences itself on its heartbeats
	// (WithLeaderFence), so a new leader that takes the lock on expiry may take the
	// holder's leases at once.
	attrLockFence       = "freshetLeaderFence"
	lockIsReleasedValue = "1"
	// attrLockHints is Freshet's own: set by a Freshet leader when it takes the lock, it
	// tells followers that the leader leaves discovery hints in their metrics rows
	// (docs/lease-cost.md, "Discovery hints"). A Java leader's lock has none.
	attrLockHints           = "freshetLeaderHints"
	defaultLeaderLease      = 2 * time.Minute
	defaultLeaderHeartbeats = 30 * time.Second
)

// LeaderElector elects one leader among the workers through the leader lock item. The
// holder heartbeats by replacing the item's record version number; another worker takes
// the lock over when it has seen the same record version for the lock's lease duration on
// its own clock, or at once when the lock is released. It is safe for concurrent use.
type LeaderElector struct {
	store     *Store
	worker    string
	clock     clock.Clock
	log       *zap.Logger
	duration  time.Duration
	heartbeat time.Duration
	fence     *Reporter // WithLeaderFence; nil without

	mu          sync.Mutex
	myRVN       string
	leaderUntil time.Time
	// pendingRVN is the record version of a heartbeat whose outcome is unknown (the
	// response was lost): the item may hold it, and the next heartbeat accepts either.
	pendingRVN string
	seenRVN    string
	seenSince  time.Time
	seenDur    time.Duration
	seenOwner  string
	// seenHints is whether the lock item last read names a leader that leaves hints.
	seenHints bool
	// tickStart is when the last Tick began: heartbeats are paced from it, so a slow
	// heartbeat does not push the next one back.
	tickStart time.Time
	// predecessor is, after this worker took the lock on expiry from a holder that fences
	// on it, that holder's metrics row as read (consistently) before the takeover, until
	// the Assigner takes it (WithLeaderElector).
	predecessor *WorkerMetrics
}

// NewLeaderElector returns an elector for worker over store's coordinator state.
func NewLeaderElector(store *Store, worker string, opts ...Option) (*LeaderElector, error) {
	if store == nil || worker == "" {
		return nil, fmt.Errorf("%w: leader elector needs a store and a worker ID", ErrInvalidOption)
	}
	o, err := newOptions("NewLeaderElector", forLeader, opts)
	if err != nil {
		return nil, err
	}
	return &LeaderElector{store: store, worker: worker, clock: o.clock, log: o.log,
		duration: o.leaderLease, heartbeat: o.heartbeat, fence: o.lockFence}, nil
}

// holding records a confirmed heartbeat or acquisition that started at start. rejoin is
// passed to the fence (Reporter.holdLock). It must be called with e.mu held.
func (e *LeaderElector) holding(next string, start, rejoin time.Time) {
	e.myRVN, e.pendingRVN, e.leaderUntil = next, "", start.Add(e.duration)
	if e.fence != nil {
		e.fence.holdLock(start.Add(e.duration-e.duration/50), rejoin)
	}
}

// takePredecessor returns, once, the metrics row of the holder this worker last took the
// lock from on expiry, read before the takeover, if that holder fences on the lock.
func (e *LeaderElector) takePredecessor() (WorkerMetrics, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.predecessor
	e.predecessor = nil
	if p == nil {
		return WorkerMetrics{}, false
	}
	return *p, true
}

// IsLeader reports whether this worker holds the lock: its last successful acquisition or
// heartbeat started less than the lease duration ago, so no other worker can have taken
// the lock over.
func (e *LeaderElector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.myRVN != "" && e.clock.Now().Before(e.leaderUntil)
}

func newRVN() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (e *LeaderElector) lockKey() (string, map[string]types.AttributeValue) {
	table, attr := e.store.tables.stateTable()
	return table, map[string]types.AttributeValue{attr: str(leaderLockKey)}
}

// Tick performs one step of the election: a heartbeat when leading, otherwise an attempt
// to acquire or take over the lock. It returns whether this worker leads afterwards.
func (e *LeaderElector) Tick(ctx context.Context) (bool, error) {
	table, key := e.lockKey()
	start := e.clock.Now()
	e.mu.Lock()
	mine, pending, until := e.myRVN, e.pendingRVN, e.leaderUntil
	e.tickStart = start
	e.mu.Unlock()

	if mine != "" {
		next := newRVN()
		cond := "#rvn = :mine AND #on = :me AND attribute_not_exists(#rel)"
		values := map[string]types.AttributeValue{":next": str(next), ":mine": str(mine), ":me": str(e.worker), ":ld": str(strconv.FormatInt(e.duration.Milliseconds(), 10))}
		if pending != "" {
			cond = "(#rvn = :mine OR #rvn = :pending) AND #on = :me AND attribute_not_exists(#rel)"
			values[":pending"] = str(pending)
		}
		_, err := e.store.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(table),
			Key:                       key,
			UpdateExpression:          aws.String("SET #rvn = :next, #ld = :ld"),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  map[string]string{"#rvn": attrLockRecordVersion, "#on": attrLockOwnerName, "#ld": attrLockLeaseDuration, "#rel": attrLockIsReleased},
			ExpressionAttributeValues: values,
		})
		view := lockUnread
		if isConditionFailed(err) || err != nil && e.fence != nil && !e.clock.Now().Before(until) {
			// A failed condition: a retried request whose first attempt succeeded, or the
			// lock is another's. Fenced on its heartbeats and unable to write the lock: a
			// read may show that another worker took it, which ends the fence's wait.
			var rvn string
			if view, rvn = e.readLock(ctx, table, key); view == lockMine && rvn == next {
				err = nil
			}
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		switch {
		case err == nil:
			e.holding(next, start, time.Time{})
			return true, nil
		case view == lockOther || view == lockReleased:
			e.log.Info("lost leadership", zap.String("worker", e.worker))
			e.myRVN, e.pendingRVN = "", ""
			e.settled(view)
			return false, nil
		case isConditionFailed(err):
			// The lock names this worker at a record version it does not know, or could
			// not be read: it leads no more, and its fence on the lock stays armed until a
			// read settles whether another worker took the lock.
			e.log.Info("lost leadership", zap.String("worker", e.worker))
			e.myRVN, e.pendingRVN = "", ""
			return false, nil
		}
		// Unknown outcome (a dropped response may hide a success): the item holds mine or
		// next, and the next heartbeat accepts both. Keep leading only while the last
		// confirmed heartbeat is fresh.
		e.pendingRVN = next
		return e.myRVN != "" && e.clock.Now().Before(e.leaderUntil), &Error{Op: "leader-heartbeat", Table: table, Err: err}
	}

	// The watch reads eventually consistent, half the cost of a consistent read. A stale
	// read cannot make two leaders: it returns only a record version some heartbeat
	// already wrote (so timing it from the read's return still outlasts that
	// heartbeat's lease), and the takeover is conditional on that record version, which
	// any later heartbeat replaced. A lagging read only delays a takeover, by its lag.
	var rejoin time.Time
	if e.fence != nil && e.fence.lockArmed() {
		// It left the lock without knowing whether another worker took it on expiry (a
		// release or a heartbeat whose outcome is unknown): a consistent read settles it.
		// Should it acquire the lock again unsettled, another worker may have led and taken
		// its leases meanwhile, so the fence treats the acquisition as a loss first.
		view, _ := e.readLock(ctx, table, key)
		e.mu.Lock()
		e.settled(view)
		e.mu.Unlock()
		rejoin = e.clock.Now()
	}
	out, err := e.store.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(false)})
	if err != nil {
		return false, &Error{Op: "leader-get", Table: table, Err: err}
	}
	// A record version is timed from when the read returned, not from when it was sent:
	// the heartbeat that wrote it may have started after a slow read was sent, but not
	// after it returned, so the leader's own lease (from its heartbeat's start) always
	// ends before this worker may take the lock over.
	read := e.clock.Now()
	cond := "attribute_not_exists(#rvn)"
	names := map[string]string{"#rvn": attrLockRecordVersion}
	values := map[string]types.AttributeValue{}
	var predecessor *WorkerMetrics
	if len(out.Item) > 0 {
		owner := stringAttr(out.Item, attrLockOwnerName)
		rvn := stringAttr(out.Item, attrLockRecordVersion)
		_, released := out.Item[attrLockIsReleased]
		dur := e.duration
		if ms, err := strconv.ParseInt(stringAttr(out.Item, attrLockLeaseDuration), 10, 64); err == nil && ms > 0 {
			dur = time.Duration(ms) * time.Millisecond
		}
		e.mu.Lock()
		if rvn != e.seenRVN {
			e.seenRVN, e.seenSince, e.seenOwner = rvn, read, owner
		}
		_, e.seenHints = out.Item[attrLockHints]
		e.seenHints = e.seenHints && !released
		e.seenDur = dur
		if released {
			e.seenDur = 0
		}
		expired := !read.Before(e.seenSince.Add(dur))
		e.mu.Unlock()
		if !released && owner != e.worker && !expired {
			return false, nil
		}
		cond = "#rvn = :seen"
		values[":seen"] = str(rvn)
		if !released && owner != e.worker {
			// A takeover on expiry: it fails if the holder released the lock meanwhile, so
			// a holder whose release was confirmed is never taken for fenced. A holder that
			// fences on the lock has stopped processing by now (WithLeaderFence); its row,
			// read before the takeover, lets the Assigner take its leases at once if the row
			// is still the same after it read them.
			cond += " AND attribute_not_exists(#rel)"
			names["#rel"] = attrLockIsReleased
			if _, fenced := out.Item[attrLockFence]; fenced {
				if m, err := e.store.getWorkerMetrics(ctx, owner, true); err == nil && m.SelfFence > 0 {
					predecessor = &m
				}
			}
		}
	}
	next := newRVN()
	item := map[string]types.AttributeValue{
		attrLockOwnerName:     str(e.worker),
		attrLockLeaseDuration: str(strconv.FormatInt(e.duration.Milliseconds(), 10)),
		attrLockRecordVersion: str(next),
		attrEntityType:        str(entityLeader),
		attrLockHints:         str("1"),
	}
	if e.fence != nil {
		item[attrLockFence] = str("1")
	}
	for k, v := range key {
		item[k] = v
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(table), Item: item, ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	_, err = e.store.db.PutItem(ctx, in)
	switch {
	case err == nil:
		e.mu.Lock()
		if e.fence != nil && !e.fence.lockArmed() {
			rejoin = time.Time{}
		}
		e.holding(next, start, rejoin)
		e.predecessor = predecessor
		e.mu.Unlock()
		e.log.Info("became leader", zap.String("worker", e.worker))
		return true, nil
	case isConditionFailed(err):
		return false, nil
	}
	return false, &Error{Op: "leader-acquire", Table: table, Err: err}
}

// LeaderHints reports whether the leader leaves discovery hints in the followers'
// metrics rows: true while this worker leads, else whether the lock item it last read
// was taken by a Freshet leader (a Java leader's lock carries no such marker) and not
// released.
func (e *LeaderElector) LeaderHints() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.myRVN != "" && e.clock.Now().Before(e.leaderUntil) {
		return true
	}
	return e.seenHints && e.seenOwner != e.worker
}

// lockView is what a consistent read of the lock item shows the worker that reads it.
type lockView int

const (
	lockUnread   lockView = iota // not read, or the read failed
	lockMine                     // names this worker, not released
	lockReleased                 // names this worker, released
	lockOther                    // gone, or another worker's
)

// readLock reads the lock item consistently and returns what it shows this worker, and
// its record version.
func (e *LeaderElector) readLock(ctx context.Context, table string, key map[string]types.AttributeValue) (lockView, string) {
	out, err := e.store.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	switch {
	case err != nil:
		return lockUnread, ""
	case len(out.Item) == 0 || stringAttr(out.Item, attrLockOwnerName) != e.worker:
		return lockOther, ""
	}
	if _, released := out.Item[attrLockIsReleased]; released {
		return lockReleased, ""
	}
	return lockMine, stringAttr(out.Item, attrLockRecordVersion)
}

// settled passes to the fence on the lock what a read of the lock showed while this worker
// did not hold it: another worker's lock (which may have been taken on expiry, with this
// worker's leases) or this worker's released lock (which no worker takes for expired). A
// lock that still names this worker, or a failed read, leaves the fence armed. It must be
// called with e.mu held.
func (e *LeaderElector) settled(view lockView) {
	switch {
	case e.fence == nil:
	case view == lockOther:
		e.fence.lostLock(e.clock.Now())
	case view == lockReleased:
		e.fence.releasedLock()
	}
}

// NextTick returns how long to wait before the next Tick. While leading, heartbeats are
// paced from the start of the last one, every heartbeat period, or a quarter of it after
// a heartbeat whose outcome is unknown (so that dropped responses do not let the lock
// lapse): a heartbeat slowed by a busy table or machine does not delay the next, and the
// lock lapses only when heartbeats fail or take longer than the lease duration less the
// heartbeat period. A follower ticks every watch period (the heartbeat period plus the
// lesser of it and 2 s) or less, so that it ticks again just when the lock it watches
// would expire: a dead leader is replaced a lease duration after the follower first saw
// its last heartbeat, which is at most a watch period after it was written.
func (e *LeaderElector) NextTick() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	switch {
	case e.myRVN != "" && e.pendingRVN != "":
		return max(0, e.tickStart.Add(e.heartbeat/4).Sub(now))
	case e.myRVN != "":
		return max(0, e.tickStart.Add(e.heartbeat).Sub(now))
	case e.seenRVN == "":
		return e.heartbeat
	}
	until := e.seenSince.Add(e.seenDur).Sub(now)
	return max(e.heartbeat/20, min(e.watchPeriod(), until))
}

// watchPeriod is how often a follower reads the lock item: the heartbeat period plus the
// lesser of it and 2 s. With the consumer's lock duration (the failover time less a
// heartbeat period) a dead leader is replaced within the failover time plus that much
// (2 s at the default failover time), at 0.5 read units per follower per watch period.
func (e *LeaderElector) watchPeriod() time.Duration {
	return e.heartbeat + min(e.heartbeat, 2*time.Second)
}

// Leader returns the worker named in the lock item, empty when none holds it.
func (e *LeaderElector) Leader(ctx context.Context) (string, error) {
	l, err := e.store.LeaderLock(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		return "", nil
	case err != nil:
		return "", err
	case l.Released:
		return "", nil
	}
	return l.Owner, nil
}

// Release gives up the lock if this worker holds it, so another worker can lead at once.
func (e *LeaderElector) Release(ctx context.Context) error {
	e.mu.Lock()
	mine := e.myRVN
	e.myRVN = ""
	e.mu.Unlock()
	if mine == "" {
		return nil
	}
	table, key := e.lockKey()
	_, err := e.store.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       key,
		UpdateExpression:          aws.String("SET #rel = :one"),
		ConditionExpression:       aws.String("#rvn = :mine"),
		ExpressionAttributeNames:  map[string]string{"#rvn": attrLockRecordVersion, "#rel": attrLockIsReleased},
		ExpressionAttributeValues: map[string]types.AttributeValue{":mine": str(mine), ":one": str(lockIsReleasedValue)},
	})
	if e.fence != nil {
		// Only a confirmed release rules out a takeover on expiry, which would take this
		// worker's leases at once; after any other outcome the fence stays armed on the
		// last confirmed heartbeat until a read of the lock settles it.
		view := lockReleased
		if err != nil {
			view, _ = e.readLock(ctx, table, key)
		}
		e.mu.Lock()
		e.settled(view)
		e.mu.Unlock()
	}
	if err != nil && !isConditionFailed(err) {
		return &Error{Op: "leader-release", Table: table, Err: err}
	}
	return nil
}

// Run ticks (at the pace NextTick gives) until ctx ends, then releases the lock. Errors of
// single ticks are logged and retried at the next tick.
func (e *LeaderElector) Run(ctx context.Context) error {
	for {
		if _, err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("leader election", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return e.Release(rctx)
		case <-e.clock.After(e.NextTick()):
		}
	}
}

func stringAttr(item map[string]types.AttributeValue, name string) string {
	if s, ok := item[name].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}
