package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/lease/leasetest"
)

// lockGateDB passes a worker's calls through, except its writes of the leader lock item
// while failLock is set, and its reads of it too while failRead is.
type lockGateDB struct {
	lease.DynamoDBAPI
	failLock, failRead atomic.Bool
}

func isLockKey(key map[string]types.AttributeValue) bool {
	for _, v := range key {
		if s, ok := v.(*types.AttributeValueMemberS); ok && s.Value == "Leader" {
			return true
		}
	}
	return false
}

func (g *lockGateDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if g.failLock.Load() && isLockKey(in.Key) {
		return nil, errPartitioned
	}
	return g.DynamoDBAPI.UpdateItem(ctx, in, o...)
}

// putHookDB runs before, once, ahead of the first PutItem of the leader lock item.
type putHookDB struct {
	lease.DynamoDBAPI
	before func()
}

func (h *putHookDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if f := h.before; f != nil && isLockKey(in.Item) {
		h.before = nil
		f()
	}
	return h.DynamoDBAPI.PutItem(ctx, in, o...)
}

func (g *lockGateDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if g.failRead.Load() && isLockKey(in.Key) {
		return nil, errPartitioned
	}
	return g.DynamoDBAPI.GetItem(ctx, in, o...)
}

// leaderSim is a leader p (its own clock, skewed by skew) holding four leases and a
// follower n whose Assigner follows its elector, as consumer.Worker wires them: failover
// time 10 s, lock duration 6.67 s, heartbeats and renewals every 3.33 s, reports every
// 2.5 s, assignment rounds every 500 ms, advanced in 100 ms ticks. p renews only while its
// Reporter is live; at every tick the simulation checks that p is not permitted to
// process a lease another worker may process.
type leaderSim struct {
	t          *testing.T
	ctx        context.Context
	pclk, nclk *clock.Manual
	base       *lease.Store
	gate       *lockGateDB
	ep, en     *lease.LeaderElector
	rp, rn     *lease.Reporter
	a          *lease.Assigner
	keys       []string
	held       map[string]lease.Lease
	sent       map[string]time.Time // lease -> when p's last successful renewal was sent (p's clock)
	paused     bool
	quiet      bool // p writes no metrics rows
	hook       *putHookDB
	retired    bool         // p no longer takes part in the election
	nextP      [3]time.Time // p's next tick, report, renewal
	n          *simWorker   // n's election, reports and rounds
	i          int
	acquired   time.Time            // when n took the lock (n's clock)
	moved      map[string]time.Time // lease -> when it stopped being p's (n's clock)
	lastHB     time.Time            // start of p's last successful heartbeat (n's clock)
}

const (
	simFailover = 10 * time.Second
	simLock     = simFailover - simFailover/3
	simBeat     = simFailover / 3
)

// simWorker is a Freshet worker's election, metrics reports and, while it leads,
// assignment rounds, run as consumer.Worker runs them: heartbeats or watch at the
// elector's pace, a report every quarter of the failover time.
type simWorker struct {
	e    *lease.LeaderElector
	r    *lease.Reporter
	a    *lease.Assigner
	next [2]time.Time // next election tick, next report
}

// step runs what is due at now, and an assignment round if round is set and the worker
// leads; it reports whether the worker began to lead.
func (w *simWorker) step(t *testing.T, ctx context.Context, now time.Time, round bool) (began bool) {
	t.Helper()
	if !now.Before(w.next[0]) {
		was := w.e.IsLeader()
		if _, err := w.e.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		began = w.e.IsLeader() && !was
		w.next[0] = now.Add(w.e.NextTick())
	}
	if !now.Before(w.next[1]) {
		w.next[1] = now.Add(simFailover / 4)
		if err := w.r.Report(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if round && w.e.IsLeader() {
		if _, err := w.a.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return began
}

func newLeaderSim(t *testing.T, skew time.Duration, fenceLock bool) *leaderSim {
	t.Helper()
	e := enginetest.Start(t, engine.Config{})
	db := enginetest.DynamoDB(e)
	base := leasetest.NewStore(t, db, false)
	s := &leaderSim{t: t, ctx: context.Background(), pclk: clock.NewManual(epoch.Add(skew)), nclk: clock.NewManual(epoch),
		base: base, gate: &lockGateDB{DynamoDBAPI: db}, hook: &putHookDB{DynamoDBAPI: db}, held: map[string]lease.Lease{},
		sent: map[string]time.Time{}, moved: map[string]time.Time{}}
	ps, err := lease.NewStore(s.gate, base.Tables())
	if err != nil {
		t.Fatal(err)
	}
	ns, err := lease.NewStore(s.hook, base.Tables())
	if err != nil {
		t.Fatal(err)
	}
	reporter := func(st *lease.Store, w string, clk clock.Clock) *lease.Reporter {
		r, err := lease.NewReporter(st, w, lease.WithClock(clk), lease.WithSelfFence(simFailover),
			lease.WithReportIntervals(time.Second, simFailover/4))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	s.rp, s.rn = reporter(ps, "p", s.pclk), reporter(base, "n", s.nclk)
	popts := []lease.Option{lease.WithClock(s.pclk), lease.WithLeaderLeaseDuration(simLock, simBeat)}
	if fenceLock {
		popts = append(popts, lease.WithLeaderFence(s.rp))
	}
	if s.ep, err = lease.NewLeaderElector(ps, "p", popts...); err != nil {
		t.Fatal(err)
	}
	if s.en, err = lease.NewLeaderElector(ns, "n", lease.WithClock(s.nclk), lease.WithLeaderLeaseDuration(simLock, simBeat),
		lease.WithLeaderFence(s.rn)); err != nil {
		t.Fatal(err)
	}
	if s.a, err = lease.NewAssigner(base, lease.WithClock(s.nclk), lease.WithFailoverTime(simFailover),
		lease.WithLiveness(2*simBeat+time.Second, simBeat), lease.WithLeaderElector(s.en)); err != nil {
		t.Fatal(err)
	}
	s.keys = takeNewLeases(t, s.ctx, base, "p", 4, s.held)
	s.nextP = [3]time.Time{s.pclk.Now(), s.pclk.Now(), s.pclk.Now()}
	s.n = &simWorker{e: s.en, r: s.rn, a: s.a, next: [2]time.Time{s.nclk.Now().Add(100 * time.Millisecond), s.nclk.Now()}}
	return s
}

// run advances the simulation by d.
func (s *leaderSim) run(d time.Duration) {
	s.t.Helper()
	for end := s.nclk.Now().Add(d); s.nclk.Now().Before(end); {
		s.tick()
	}
}

func (s *leaderSim) tick() {
	s.t.Helper()
	s.i++
	s.pclk.Advance(100 * time.Millisecond)
	s.nclk.Advance(100 * time.Millisecond)
	s.check() // p's processing may run before its election or reporting does
	if !s.paused {
		now := s.pclk.Now()
		if !s.retired && !now.Before(s.nextP[0]) {
			start := s.nclk.Now()
			if lead, _ := s.ep.Tick(s.ctx); lead && s.ep.IsLeader() {
				s.lastHB = start
			}
			s.nextP[0] = now.Add(s.ep.NextTick())
			s.check()
		}
		if !s.quiet && !now.Before(s.nextP[1]) {
			s.nextP[1] = now.Add(simFailover / 4)
			if err := s.rp.Report(s.ctx); err != nil {
				s.t.Fatal(err)
			}
		}
		s.check()
		if s.rp.Live() && !now.Before(s.nextP[2]) {
			s.nextP[2] = now.Add(simBeat)
			for k, l := range s.held {
				at := s.pclk.Now()
				nl, err := s.base.Renew(s.ctx, l)
				switch {
				case err == nil:
					s.held[k], s.sent[k] = nl, at
				case errors.Is(err, lease.ErrLeaseLost):
					delete(s.held, k)
				default:
					s.t.Fatal(err)
				}
			}
		}
	}
	if s.n.step(s.t, s.ctx, s.nclk.Now(), s.i%5 == 0) {
		s.acquired = s.nclk.Now()
	}
	s.check()
}

// check fails if p may process a lease that another worker may process (one that names
// neither p as its owner nor as the checkpoint owner of a handoff).
func (s *leaderSim) check() {
	s.t.Helper()
	for _, k := range s.keys {
		l, err := s.base.Get(s.ctx, k)
		if err != nil {
			s.t.Fatal(err)
		}
		if l.Owner == "p" || l.CheckpointOwner == "p" {
			continue
		}
		if _, ok := s.moved[k]; !ok {
			s.moved[k] = s.nclk.Now()
		}
		if _, held := s.held[k]; held && s.pclk.Since(s.sent[k]) < simFailover && s.rp.Permits(s.sent[k]) {
			s.t.Fatalf("at %v p may still process %s, which %s owns", s.nclk.Now().Sub(epoch), k, l.Owner)
		}
	}
}

// permitted reports whether p may process every lease it holds.
func (s *leaderSim) permitted() bool {
	for k := range s.held {
		if s.pclk.Since(s.sent[k]) >= simFailover || !s.rp.Permits(s.sent[k]) {
			return false
		}
	}
	return len(s.held) > 0
}

// start runs until p leads and n has seen it for a while, and checks nothing moved.
func (s *leaderSim) start() {
	s.t.Helper()
	s.run(5 * time.Second)
	if !s.ep.IsLeader() || s.en.IsLeader() || !s.permitted() {
		s.t.Fatalf("before the fault: p leads %v, n leads %v, p permitted %v", s.ep.IsLeader(), s.en.IsLeader(), s.permitted())
	}
	if len(s.moved) > 0 {
		s.t.Fatalf("leases moved before the fault: %v", s.moved)
	}
}

// TestLeaderFenceTakeover: a leader that fences on its heartbeats (WithLeaderFence) and
// stops (paused, whatever its clock says) loses its leases to the new leader within the
// new leader's warm-up of taking the lock, a failover time sooner than by its row, and
// may not process them when it wakes up; a leader without that fence keeps the row rule.
func TestLeaderFenceTakeover(t *testing.T) {
	for _, tc := range []struct {
		name      string
		skew      time.Duration
		fenceLock bool
	}{
		{"paused leader wakes up", 0, true},
		{"paused leader wakes up, its clock an hour ahead", time.Hour, true},
		{"paused leader wakes up, its clock an hour behind", -time.Hour, true},
		{"paused leader without the lock fence", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newLeaderSim(t, tc.skew, tc.fenceLock)
			s.start()
			// Paused right after a report: when its leases move, its metrics row's fence is
			// still open, and only the lock's fence stops it.
			for r := s.nextP[1]; s.nextP[1].Equal(r); {
				s.tick()
			}
			s.paused = true
			paused, lastHB := s.nclk.Now(), s.lastHB
			for len(s.moved) < len(s.keys) && s.nclk.Since(paused) < 25*time.Second {
				s.tick()
			}
			if s.acquired.IsZero() {
				t.Fatal("n never took the lock over")
			}
			if d := s.acquired.Sub(lastHB); d < simLock || d > simFailover+time.Second {
				t.Fatalf("n took the lock %v after p's last heartbeat started, want within [%v, %v]", d, simLock, simFailover+time.Second)
			}
			for _, k := range s.keys {
				at, ok := s.moved[k]
				if !ok {
					t.Fatalf("%s never taken from the paused leader", k)
				}
				from, to := s.acquired, s.acquired.Add(simFailover/4+time.Second) // n's warm-up: its own row shows life
				if !tc.fenceLock {
					from, to = s.acquired.Add(simFailover), s.acquired.Add(simFailover+time.Second) // a failover time after n first saw p's row
				}
				if at.Before(from) || at.After(to) {
					t.Fatalf("%s taken %v after the pause, %v after n took the lock; want within [%v, %v] of the lock",
						k, at.Sub(paused), at.Sub(s.acquired), from.Sub(s.acquired), to.Sub(s.acquired))
				}
			}
			// p wakes up at once: fenced, then it learns it lost the lock, writes its row
			// and finds its renewals refused.
			s.paused = false
			s.run(10 * time.Second)
			if len(s.held) != 0 || s.ep.IsLeader() {
				t.Fatalf("after waking up p holds %v and leads %v", s.held, s.ep.IsLeader())
			}
		})
	}
}

// TestLeaderFenceHeartbeatsFail: a leader whose heartbeats fail while its metrics writes
// and renewals succeed stops renewing and processing a lock duration after its last
// heartbeat started; the new leader, which sees its row change after taking the lock,
// does not take its leases at once. Once the old leader reads the lock taken (its writes
// of it fail, not its reads) it goes on as a follower, permitted again after its next
// metrics write, and keeps its leases; cut off from the lock item altogether it stays
// fenced, and its leases expire by their counters.
func TestLeaderFenceHeartbeatsFail(t *testing.T) {
	for _, unreachable := range []bool{false, true} {
		t.Run(fmt.Sprintf("lock item unreachable %v", unreachable), func(t *testing.T) {
			s := newLeaderSim(t, 0, true)
			s.start()
			s.gate.failLock.Store(true)
			s.gate.failRead.Store(unreachable)
			lastHB := s.lastHB
			for s.acquired.IsZero() && s.nclk.Since(lastHB) < 2*simFailover {
				s.tick()
				if s.rp.Live() && s.nclk.Since(lastHB) >= simLock-simLock/50 {
					t.Fatalf("p live %v after its last heartbeat started", s.nclk.Since(lastHB))
				}
			}
			if s.acquired.IsZero() {
				t.Fatal("n never took the lock over")
			}
			if !unreachable {
				// A heartbeat (every quarter heartbeat period after a failed one) reads the
				// lock taken; then a report, then a renewal.
				s.run(simBeat/4 + simFailover/4 + simBeat + 500*time.Millisecond)
				if !s.permitted() || s.ep.IsLeader() {
					t.Fatalf("p permitted %v, leads %v %v after n took the lock", s.permitted(), s.ep.IsLeader(), s.nclk.Since(s.acquired))
				}
				s.run(2 * simFailover)
				if len(s.moved) != 0 || !s.permitted() {
					t.Fatalf("leases moved %v from a live follower, p permitted %v", s.moved, s.permitted())
				}
				return
			}
			s.run(3*simFailover + time.Second)
			for _, k := range s.keys {
				at, ok := s.moved[k]
				if !ok {
					t.Fatalf("%s never taken from the fenced leader", k)
				}
				// Expired by its counter: a failover time after n first saw it (its first
				// round, which scans), judged on n's scans (every 20 s after its warm-up),
				// not at once by the lock.
				if d := at.Sub(s.acquired); d < simFailover || d > 3*simFailover+time.Second {
					t.Fatalf("%s taken %v after n took the lock, want by expiry, within [%v, %v]", k, d, simFailover, 3*simFailover+time.Second)
				}
			}
			if s.permitted() {
				t.Fatal("p, cut off from the lock, permitted")
			}
		})
	}
}

// TestLeaderFenceRelease: a leader that releases the lock (confirmed) is not fenced by
// it: the new leader takes the lock at once, not on expiry, leaves the old leader's
// leases alone, and the old leader goes on processing them. After a release that fails
// the old leader stays fenced on its last confirmed heartbeat, and the new leader, which
// takes the lock on expiry, takes its leases at once without ever sharing one.
func TestLeaderFenceRelease(t *testing.T) {
	t.Run("confirmed", func(t *testing.T) {
		s := newLeaderSim(t, 0, true)
		s.start()
		if err := s.ep.Release(s.ctx); err != nil {
			t.Fatal(err)
		}
		s.retired = true
		released := s.nclk.Now()
		for s.nclk.Since(released) < 2*simFailover {
			s.tick()
			if !s.permitted() {
				t.Fatalf("p not permitted %v after a confirmed release", s.nclk.Since(released))
			}
		}
		if s.acquired.IsZero() || s.acquired.Sub(released) > simBeat+time.Second || len(s.moved) != 0 {
			t.Fatalf("n took the lock %v after the release; leases moved %v", s.acquired.Sub(released), s.moved)
		}
	})
	t.Run("failed", func(t *testing.T) {
		// The lock may still be p's: p goes on fenced on its last confirmed heartbeat, so
		// n, which takes the lock on expiry, may take p's leases at once. p writes one row
		// after the failed release, then none: n finds its row unchanged.
		s := newLeaderSim(t, 0, true)
		s.start()
		lastHB := s.lastHB
		s.gate.failLock.Store(true)
		if err := s.ep.Release(s.ctx); err == nil {
			t.Fatal("release succeeded through a failing table")
		}
		s.retired = true
		s.gate.failLock.Store(false)
		if !s.permitted() {
			t.Fatal("p not permitted right after a release that failed, within its lock's fence")
		}
		for r := s.nextP[1]; s.nextP[1].Equal(r); {
			s.tick()
		}
		s.quiet = true
		for len(s.moved) < len(s.keys) && s.nclk.Since(lastHB) < 2*simFailover {
			s.tick() // each tick checks that p may not process what n owns
			if s.nclk.Since(lastHB) >= simLock-simLock/50 && s.permitted() {
				t.Fatalf("p permitted %v after its last confirmed heartbeat started", s.nclk.Since(lastHB))
			}
		}
		if s.acquired.IsZero() || len(s.moved) != len(s.keys) {
			t.Fatalf("n took the lock %v; leases moved %v", !s.acquired.IsZero(), s.moved)
		}
		for k, at := range s.moved {
			if d := at.Sub(s.acquired); d > simFailover/4+time.Second {
				t.Fatalf("%s moved %v after n took the lock", k, d)
			}
		}
	})
}

// TestLeaderFenceReleaseBeforeTakeover: a leader whose release of the lock lands between
// a follower's read of the expired lock and its takeover is not fenced by the lock any
// more, so the takeover must fail (it is conditional on the lock not being released):
// the follower then takes the released lock, and does not take the old leader's leases
// at once, though its row has not changed since (the old leader may process them until
// its row's fence closes).
func TestLeaderFenceReleaseBeforeTakeover(t *testing.T) {
	s := newLeaderSim(t, 0, true)
	s.start()
	for r := s.nextP[1]; s.nextP[1].Equal(r); {
		s.tick()
	}
	s.retired, s.quiet = true, true // p stops heartbeating and reporting; it renews
	released := false
	s.hook.before = func() {
		if err := s.ep.Release(s.ctx); err != nil {
			t.Error(err)
		}
		released = true
	}
	quiet := s.nclk.Now()
	for s.acquired.IsZero() && s.nclk.Since(quiet) < simFailover {
		s.tick()
	}
	if !released || s.acquired.IsZero() {
		t.Fatalf("released %v, n took the lock %v", released, !s.acquired.IsZero())
	}
	for s.nclk.Since(quiet) < simFailover-simFailover/50-100*time.Millisecond {
		s.tick()
		if !s.permitted() {
			t.Fatalf("p not permitted %v after its last report, before its row's fence", s.nclk.Since(quiet))
		}
	}
	if len(s.moved) != 0 {
		t.Fatalf("leases moved %v while p may process them", s.moved)
	}
}
