package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/lease/leasetest"
)

// assignFixture is a lease table with one lease per key, a leader's Assigner on a manual
// clock (failover 10 s, liveness 4 s, confirmation 1 s) and helpers acting as workers.
type assignFixture struct {
	t     *testing.T
	ctx   context.Context
	store *lease.Store
	clk   *clock.Manual
	a     *lease.Assigner
}

func newAssignFixture(t *testing.T, keys ...string) *assignFixture {
	t.Helper()
	e := enginetest.Start(t, engine.Config{})
	f := &assignFixture{t: t, ctx: context.Background(), store: leasetest.NewStore(t, enginetest.DynamoDB(e), false),
		clk: clock.NewManual(epoch)}
	for _, k := range keys {
		if _, err := f.store.CreateIfAbsent(f.ctx, lease.Lease{Key: k, Checkpoint: checkpoint.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
	}
	f.newAssigner(1000)
	return f
}

// newAssigner replaces the fixture's Assigner (rebalancing every n-th round; opts apply
// after the fixture's own) and lets it warm up: its first rounds, over the liveness
// window, only observe. The clock ends 4 s later than it started.
func (f *assignFixture) newAssigner(every int, opts ...lease.Option) {
	f.t.Helper()
	var err error
	f.a, err = lease.NewAssigner(f.store, append([]lease.Option{lease.WithClock(f.clk), lease.WithFailoverTime(10 * time.Second),
		lease.WithLiveness(4*time.Second, time.Second), lease.WithPlan(lease.PlanConfig{}, every), lease.WithLeaseScanInterval(time.Nanosecond)},
		opts...)...)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if r := f.round(); !r.WarmingUp || len(r.Applied) != 0 {
			f.t.Fatalf("warm-up round %d: %+v", i, r)
		}
		f.clk.Advance(time.Second)
	}
}

// report writes w's metrics row at the manual clock's time, as a Freshet worker that
// reports every second does.
func (f *assignFixture) report(w string) {
	f.t.Helper()
	if err := f.store.PutWorkerMetrics(f.ctx, lease.WorkerMetrics{WorkerID: w, LastUpdate: f.clk.Now(), ReportInterval: time.Second}); err != nil {
		f.t.Fatal(err)
	}
}

// reportJava writes w's metrics row as a Java KCL 3.5 worker does: sup and slu, no
// report interval.
func (f *assignFixture) reportJava(w string) {
	f.t.Helper()
	now := f.clk.Now()
	if err := f.store.PutWorkerMetrics(f.ctx, lease.WorkerMetrics{WorkerID: w, LastUpdate: now,
		SupportCode: 1, SupportCodeUpdate: now}); err != nil {
		f.t.Fatal(err)
	}
}

// TestAssignerWaitsJavaReportInterval: an idle Java worker (no lease, a row every 30 s)
// stays eligible between its reports: when the Freshet worker holding the only lease
// dies, the lease goes to the Java worker 15 s after its last report, where a Freshet
// worker silent as long (15 of its 1 s reports) would get nothing. A Java worker silent
// for longer than its report interval gets nothing either.
func TestAssignerWaitsJavaReportInterval(t *testing.T) {
	for _, tc := range []struct {
		name    string
		silence time.Duration // since the Java worker's last report when the lease expires
		want    string
	}{
		{"between reports", 0, "java-1"},
		{"reports stopped", 35 * time.Second, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAssignFixture(t, "shardId-0")
			f.report("freshet-1")
			f.round()
			f.clk.Advance(time.Second)
			f.report("freshet-1")
			f.round()
			if o := f.get("shardId-0").Owner; o != "freshet-1" {
				t.Fatalf("lease owned by %q, want the only live worker", o)
			}
			f.renew("shardId-0")
			f.clk.Advance(time.Second)
			f.reportJava("java-1")
			f.round()
			f.clk.Advance(time.Second)
			f.reportJava("java-1")
			f.round()
			f.clk.Advance(tc.silence)
			f.round()
			// freshet-1 dies: after the failover time its lease is placed again.
			for i := 0; i < 14; i++ {
				f.clk.Advance(time.Second)
				f.round()
			}
			if o := f.get("shardId-0").Owner; o != tc.want && !(tc.want == "" && o == "freshet-1") {
				t.Fatalf("lease owned by %q %v after the Java worker's last report; want %q", o, 14*time.Second+tc.silence, tc.want)
			}
		})
	}
}

func (f *assignFixture) round() lease.Round {
	f.t.Helper()
	r, err := f.a.RunOnce(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *assignFixture) get(key string) lease.Lease {
	f.t.Helper()
	l, err := f.store.Get(f.ctx, key)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

// renew renews key as its current owner would.
func (f *assignFixture) renew(key string) {
	f.t.Helper()
	if _, err := f.store.Renew(f.ctx, f.get(key)); err != nil {
		f.t.Fatal(err)
	}
}

// showLife has each worker report twice, a second apart, with a round after each report,
// so the leader sees them live; it returns the second round.
func (f *assignFixture) showLife(ws ...string) lease.Round {
	f.t.Helper()
	for _, w := range ws {
		f.report(w)
	}
	f.round()
	f.clk.Advance(time.Second)
	for _, w := range ws {
		f.report(w)
	}
	return f.round()
}

// TestAssignerFreshRowIsNoProofOfLife checks that a worker gets leases only once the
// leader has seen its row change, and no more once it has been silent for the liveness
// window although its row is still fresh.
func TestAssignerFreshRowIsNoProofOfLife(t *testing.T) {
	f := newAssignFixture(t, "shardId-0", "shardId-1")
	f.report("w1")
	if r := f.round(); len(r.Applied) != 0 || r.Live != 0 {
		t.Fatalf("first sight of a row: %+v", r)
	}
	f.clk.Advance(2 * time.Second)
	f.report("w1")
	if r := f.round(); len(r.Applied) != 2 || r.Live != 1 {
		t.Fatalf("after a second report: %+v", r)
	}
	f.renew("shardId-0") // w1 confirms what it was given
	f.renew("shardId-1")
	// w2 reports twice, then dies; its row stays fresh (well within the metrics max age).
	f.report("w2")
	f.round()
	f.clk.Advance(time.Second)
	f.report("w2")
	if r := f.round(); r.Live != 2 {
		t.Fatalf("w2 reported twice: %+v", r)
	}
	f.clk.Advance(5 * time.Second)
	f.renew("shardId-0")
	f.renew("shardId-1")
	f.report("w1")
	if r := f.round(); r.Live != 1 {
		t.Fatalf("a worker silent for longer than the liveness window counted live: %+v", r)
	}
}

// TestAssignerNewLeaderWaitsFailoverTime checks that expiry is judged on the leader's
// clock from its first observation: a lease unrenewed for an hour by the stored update
// times is taken only a failover time after this leader first saw its counter.
func TestAssignerNewLeaderWaitsFailoverTime(t *testing.T) {
	f := newAssignFixture(t, "shardId-0")
	l := f.get("shardId-0")
	if _, err := f.store.Take(f.ctx, l, "dead"); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Hour) // the lease has not been renewed for an hour
	first := f.clk.Now()
	f.newAssigner(1000) // a new leader: its first observation is now
	for f.clk.Now().Before(first.Add(10 * time.Second)) {
		f.report("w1")
		f.round()
		if o := f.get("shardId-0").Owner; o != "dead" {
			t.Fatalf("lease taken by %s %v after the leader first saw it, before the failover time", o, f.clk.Now().Sub(first))
		}
		f.clk.Advance(time.Second)
	}
	f.report("w1")
	f.round()
	if o := f.get("shardId-0").Owner; o != "w1" {
		t.Fatalf("owner %q a failover time after the first observation, want w1", o)
	}
}

// TestAssignerReplacesUnconfirmedTake checks that a lease given to a worker that dies
// right after being assigned is placed again within the confirmation window, that the
// worker gets nothing more, and that it may again once it shows life.
func TestAssignerReplacesUnconfirmedTake(t *testing.T) {
	f := newAssignFixture(t, "shardId-0")
	if r := f.showLife("w1", "w2"); len(r.Applied) != 1 || r.Applied[0].To != "w1" {
		t.Fatalf("round %+v", r)
	}
	// w1 dies at once; w2 is alive.
	f.clk.Advance(500 * time.Millisecond)
	f.round()
	if o := f.get("shardId-0").Owner; o != "w1" {
		t.Fatalf("re-placed before the confirmation window: %s", o)
	}
	f.clk.Advance(500 * time.Millisecond)
	f.report("w2")
	f.round()
	if o := f.get("shardId-0").Owner; o != "w2" {
		t.Fatalf("owner %q after the confirmation window, want w2", o)
	}
	// w2 confirms; nothing moves any more.
	f.renew("shardId-0")
	f.clk.Advance(2 * time.Second)
	f.report("w2")
	f.round()
	if l := f.get("shardId-0"); l.Owner != "w2" {
		t.Fatalf("confirmed lease moved to %s", l.Owner)
	}
}

// startHandoff has w1 and w2 show life (the leader gives the lease key, the fixture's
// only one, to one of them), renews the lease as its owner, starts its handoff to the
// other worker and lets the leader see it. It returns the old and new owners and the
// lease as the handoff left it.
func (f *assignFixture) startHandoff(key string) (from, to string, h lease.Lease) {
	f.t.Helper()
	f.showLife("w1", "w2")
	from, to = f.get(key).Owner, "w1"
	if from == "w1" {
		to = "w2"
	}
	f.renew(key)
	f.round()
	h, err := f.store.Handoff(f.ctx, f.get(key), to)
	if err != nil {
		f.t.Fatal(err)
	}
	f.round()
	return from, to, h
}

// TestAssignerCompletedHandoffNotPresumedDead checks that a lease whose handoff the old
// owner completed, and whose new owner renewed it before the leader's next scan, stays
// with the new owner while it renews at its own pace (less often than the confirmation
// window): the leader never saw the released counter, so the counter it first sees is
// not proof that the new owner has not started processing.
func TestAssignerCompletedHandoffNotPresumedDead(t *testing.T) {
	f := newAssignFixture(t, "shardId-0")
	from, to, _ := f.startHandoff("shardId-0")
	if err := f.store.Release(f.ctx, "shardId-0", from); err != nil {
		t.Fatal(err)
	}
	f.renew("shardId-0") // the new owner's first renewal; it processes from now on
	f.round()
	// The new owner renews every 3 s; both workers report every second.
	for i := 1; i <= 8; i++ {
		f.clk.Advance(time.Second)
		f.report("w1")
		f.report("w2")
		if i%3 == 0 {
			f.renew("shardId-0")
		}
		f.round()
		if o := f.get("shardId-0").Owner; o != to {
			t.Fatalf("%d s after the handoff completed the lease moved from its renewing new owner %s to %s", i, to, o)
		}
	}
}

// TestAssignerNoHandoffFromDeadOwner checks that rebalancing starts a graceful handoff
// only from an owner that shows life; a silent owner's lease waits for its expiry.
func TestAssignerNoHandoffFromDeadOwner(t *testing.T) {
	keys := []string{"shardId-0", "shardId-1", "shardId-2", "shardId-3"}
	f := newAssignFixture(t, keys...)
	f.newAssigner(1)
	f.report("w1")
	f.round()
	f.clk.Advance(time.Second)
	f.report("w1")
	f.round()
	for _, k := range keys {
		f.renew(k)
	}
	f.round() // the renewals: evidence of w1's life, and the counters expiry starts from
	renewed := f.clk.Now()
	// w1 goes silent; w2 joins. w1 shows no life, so its leases cannot move by handoff:
	// the plan leaves them out and nothing moves until they expire; then w2 takes them
	// outright.
	for f.clk.Now().Before(renewed.Add(10 * time.Second)) {
		f.clk.Advance(time.Second)
		if f.clk.Now().Sub(renewed) >= 5*time.Second {
			f.report("w2") // w2 joins once w1 is silent for longer than the liveness window
		}
		r := f.round()
		for _, k := range keys {
			l := f.get(k)
			if l.HandoffPending() {
				t.Fatalf("handoff from a silent owner started: %+v", l)
			}
			if l.Owner != "w1" && f.clk.Now().Before(renewed.Add(10*time.Second)) {
				t.Fatalf("lease %s moved %v after the last renewal: %+v", k, f.clk.Now().Sub(renewed), l)
			}
		}
		if f.clk.Now().Sub(renewed) == 7*time.Second && (r.Live != 1 || len(r.Plan.Moves) != 0) {
			t.Fatalf("round %+v: want w2 alone live and no move planned for leases that cannot move yet", r)
		}
	}
	for _, k := range keys {
		if l := f.get(k); l.Owner != "w2" || l.HandoffPending() {
			t.Fatalf("lease %s after expiry: %+v", k, l)
		}
	}
}

// TestAssignerWaitsForJavaPickup: a Java KCL worker processes a lease from the moment its
// discovery finds it (every failover time by default) and renews it only at its next
// renewal, so its first renewal of a lease that became its own can come more than a
// failover time later. Whether the leader gave it the lease by Take or it became its own
// when the old owner completed a handoff, the leader must neither presume it dead on the
// confirmation window nor take the lease as expired after one failover time: either
// would start a second worker on a shard the Java worker already processes. Once it has
// renewed, the usual failover time applies again. The same holds when the leader changes
// right after the lease became the Java worker's: the new leader, which cannot know when
// that was, gives every Java holder's lease the pickup window from its own first sight.
func TestAssignerWaitsForJavaPickup(t *testing.T) {
	const pickup = 13 * time.Second // Java's discovery (10 s) and renewal (3.3 s) intervals at a 10 s failover time
	for _, tc := range []struct {
		name string
		give func(f *assignFixture) string // gives a lease to java-1 and returns its key
	}{
		{"taken", func(f *assignFixture) string {
			// Two unassigned leases, two live workers: the leader takes one to each.
			r := f.round()
			for _, m := range r.Applied {
				if m.To == "java-1" {
					return m.Key
				}
			}
			f.t.Fatalf("java-1 was given nothing: %+v", r)
			return ""
		}},
		{"handed off", func(f *assignFixture) string {
			// freshet-1 holds both leases; a rebalancing round hands one to java-1, and
			// freshet-1 finishes the handoff (checkpoint, release).
			for _, k := range []string{"shardId-0", "shardId-1"} {
				l := f.get(k)
				if _, err := f.store.Take(f.ctx, l, "freshet-1"); err != nil {
					f.t.Fatal(err)
				}
			}
			f.clk.Advance(time.Second)
			f.renew("shardId-0")
			f.renew("shardId-1")
			f.report("freshet-1")
			r := f.round()
			if len(r.Applied) != 1 || r.Applied[0].To != "java-1" {
				f.t.Fatalf("round %+v: want one handoff to java-1", r)
			}
			key := r.Applied[0].Key
			if l := f.get(key); !l.HandoffPending() {
				f.t.Fatalf("lease %s not in handoff: %+v", key, l)
			}
			if err := f.store.Release(f.ctx, key, "freshet-1"); err != nil {
				f.t.Fatal(err)
			}
			return key
		}},
	} {
		for _, newLeader := range []bool{false, true} {
			name := tc.name
			if newLeader {
				name += ", then a new leader"
			}
			t.Run(name, func(t *testing.T) { waitsForJavaPickup(t, tc.give, newLeader, pickup) })
		}
	}
}

func waitsForJavaPickup(t *testing.T, give func(f *assignFixture) string, newLeader bool, pickup time.Duration) {
	f := newAssignFixture(t, "shardId-0", "shardId-1")
	f.newAssigner(1)
	f.report("freshet-1")
	f.reportJava("java-1")
	f.round()
	f.clk.Advance(time.Second)
	f.report("freshet-1")
	f.reportJava("java-1")
	key := give(f)
	other := "shardId-0"
	if key == other {
		other = "shardId-1"
	}
	if l := f.get(other); l.Owner != "freshet-1" {
		t.Fatalf("lease %s owned by %q, want freshet-1", other, l.Owner)
	}
	f.renew(other)
	given := f.clk.Now()
	if newLeader {
		// The leader stops gracefully (its lock released) and another worker leads
		// at once: its first sight of the lease is now, its warm-up 4 s.
		f.newAssigner(1)
	}
	// Both workers stay alive (freshet-1 reports every second and renews what it
	// holds, java-1 reports every 5 s); java-1 renews its new lease only at the
	// pickup time, and every 3 s after that.
	for f.clk.Now().Before(given.Add(pickup + 10*time.Second)) {
		f.clk.Advance(time.Second)
		el := f.clk.Now().Sub(given)
		f.report("freshet-1")
		if el%(5*time.Second) == 0 {
			f.reportJava("java-1")
		}
		if el%(3*time.Second) == 0 {
			f.renew(other)
		}
		if el == pickup || el > pickup && (el-pickup)%(3*time.Second) == 0 {
			f.renew(key)
		}
		f.round()
		if l := f.get(key); l.Owner != "java-1" {
			t.Fatalf("%v after java-1 was given lease %s, before or after its first renewal at %v, the lease moved to %q",
				el, key, pickup, l.Owner)
		}
	}
}

// TestAssignerJavaHolderDiesBeforePickup: a lease given to a Java worker that never
// renews it is placed again, after two failover times at least, once the worker shows no
// life: its last report is older than Java's report interval and slack (32 s), or it let
// another lease it renewed expire (then it shows none until it shows some again); and at
// the latest six failover times after it was
// given, even to a worker that stays alive. The worker is given two leases; it renews
// only the other one, if at all.
func TestAssignerJavaHolderDiesBeforePickup(t *testing.T) {
	for _, tc := range []struct {
		name             string
		reportsFor       time.Duration // how long java-1 goes on reporting
		renewsOther      bool          // java-1 renews the other lease, every 3 s, as long
		wantMin, wantMax time.Duration // when the lease moves, after it was given
	}{
		{"dies", 20 * time.Second, false, 52 * time.Second, 54 * time.Second},
		{"dies holding another lease", 20 * time.Second, true, 28 * time.Second, 29 * time.Second},
		{"never picks up", time.Hour, false, 60 * time.Second, 61 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAssignFixture(t, "shardId-0", "shardId-1")
			f.reportJava("java-1")
			f.round()
			f.clk.Advance(time.Second)
			f.reportJava("java-1")
			if r := f.round(); len(r.Applied) != 2 || r.Applied[0].To != "java-1" || r.Applied[1].To != "java-1" {
				t.Fatalf("round %+v: want both leases taken for java-1", r)
			}
			given := f.clk.Now()
			// freshet-1 joins, stays alive and renews what it gets.
			var moved time.Duration
			for moved == 0 && f.clk.Now().Before(given.Add(90*time.Second)) {
				f.clk.Advance(time.Second)
				el := f.clk.Now().Sub(given)
				if el <= tc.reportsFor && el%(5*time.Second) == 0 {
					f.reportJava("java-1")
				}
				if tc.renewsOther && el <= tc.reportsFor && el%(3*time.Second) == 0 {
					f.renew("shardId-1")
				}
				f.report("freshet-1")
				if f.get("shardId-1").Owner == "freshet-1" {
					f.renew("shardId-1")
				}
				f.round()
				if o := f.get("shardId-0").Owner; o != "java-1" {
					moved = el
				}
			}
			if moved < tc.wantMin || moved > tc.wantMax {
				t.Fatalf("lease moved %v after it was given to java-1 (0: never); want at %v-%v", moved, tc.wantMin, tc.wantMax)
			}
			if o := f.get("shardId-0").Owner; o != "freshet-1" {
				t.Fatalf("lease owned by %q, want freshet-1", o)
			}
		})
	}
}

// TestAssignerFinishesOverdueHandoff: a handoff whose old owner keeps renewing but never
// releases is finished by the leader once it has been pending the handoff timeout (30 s)
// plus the failover time (10 s) since the leader first saw it, as Java KCL's leader
// does: the lease is taken for its new owner, and the old owner's next renewal fails.
// Like expiry, it is judged on the rounds that scan the lease table: between scans the
// leader's copy of a lease its owner renews is stale, and a take conditional on that
// counter would fail round after round, so the leader tries the take once.
func TestAssignerFinishesOverdueHandoff(t *testing.T) {
	for _, tc := range []struct {
		name string
		scan time.Duration
	}{
		{"every round scans", time.Nanosecond},
		{"scans every 25 s", 25 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAssignFixture(t, "shardId-0")
			core, logs := observer.New(zap.WarnLevel)
			f.newAssigner(1000, lease.WithLeaseScanInterval(tc.scan), lease.WithLogger(zap.New(core)))
			_, to, held := f.startHandoff("shardId-0")
			seen := f.clk.Now()
			// The leader sees the handoff at its next scan and takes the lease at its
			// first scan once the handoff has been pending 40 s since then.
			earliest, latest := 40*time.Second, 40*time.Second+2*tc.scan+time.Second
			var err error
			for {
				f.clk.Advance(time.Second)
				f.report("w1")
				f.report("w2")
				if held, err = f.store.Renew(f.ctx, held); err != nil { // the old owner renews, never releases
					break
				}
				f.round()
				cur := f.get("shardId-0")
				el := f.clk.Now().Sub(seen)
				if el < earliest && (!cur.HandoffPending() || cur.Owner != to) {
					t.Fatalf("%v after the handoff was seen: %+v, want it still pending", el, cur)
				}
				if !cur.HandoffPending() && (cur.Owner != to || el > latest) {
					t.Fatalf("%v after the handoff was seen: %+v, want it finished for %s within %v to %v", el, cur, to, earliest, latest)
				}
				if el > latest+time.Second {
					t.Fatalf("handoff still pending %v after it was seen: %+v", el, cur)
				}
			}
			if !errors.Is(err, lease.ErrLeaseLost) {
				t.Fatalf("old owner's renewal after the leader finished the handoff: %v, want ErrLeaseLost", err)
			}
			if el := f.clk.Now().Sub(seen); el < earliest {
				t.Fatalf("old owner lost the lease %v after the handoff was seen", el)
			}
			if n := logs.FilterMessageSnippet("handoff pending past").Len(); n != 1 {
				t.Fatalf("the leader tried to take the overdue lease %d times, want once", n)
			}
		})
	}
}
