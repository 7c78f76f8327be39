package lease_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/lease/leasetest"
)

const fenceFailover = 10 * time.Second

// gatedDB passes a worker's calls through, except that while fail is set its PutItem
// calls fail, and while delay is positive each PutItem waits until the simulation
// releases it (the write lands when released, delay of simulated time after it started).
type gatedDB struct {
	lease.DynamoDBAPI
	mu      sync.Mutex
	fail    bool
	delay   time.Duration
	waiting chan chan struct{}
}

var errInjected = errors.New("injected metrics write failure")

func (g *gatedDB) setFail(v bool) {
	g.mu.Lock()
	g.fail = v
	g.mu.Unlock()
}

func (g *gatedDB) setDelay(d time.Duration) {
	g.mu.Lock()
	g.delay = d
	g.mu.Unlock()
}

func (g *gatedDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	g.mu.Lock()
	fail, delay := g.fail, g.delay
	g.mu.Unlock()
	if fail {
		return nil, errInjected
	}
	if delay > 0 {
		release := make(chan struct{})
		g.waiting <- release
		<-release
	}
	return g.DynamoDBAPI.PutItem(ctx, in, opts...)
}

// fenceSim is a leader (its own clock) and a self-fencing worker w1 (its clock skewed by
// skew) holding four leases, with a healthy worker w2, advanced in 100 ms ticks. The
// worker reports every 2.5 s and renews every 3.3 s as consumer.Worker does (neither
// while its fence is closed); at every tick the simulation checks that w1 is not
// permitted to process a lease the leader has given to another worker.
type fenceSim struct {
	t          *testing.T
	e          *engine.Engine
	ctx        context.Context
	lclk, wclk *clock.Manual
	leader     *lease.Store
	worker     *lease.Store
	db         *gatedDB
	a          *lease.Assigner
	rep, rep2  *lease.Reporter
	keys       []string
	held       map[string]lease.Lease
	sent       map[string]time.Time // lease -> when w1's last successful renewal was sent (w1's clock)
	nextReport time.Time
	nextRenew  time.Time
	pending    *inflight // w1's report in flight, if any
	lastOK     time.Time // start of w1's last successful report (leader's clock)
	paused     bool
	taken      map[string]time.Time // lease -> when the leader gave it away (leader's clock)
}

func newFenceSim(t *testing.T, skew time.Duration, single bool) *fenceSim {
	t.Helper()
	e := enginetest.Start(t, engine.Config{})
	db := enginetest.DynamoDB(e)
	leader := leasetest.NewStore(t, db, single)
	g := &gatedDB{DynamoDBAPI: db, waiting: make(chan chan struct{})}
	worker, err := lease.NewStore(g, leader.Tables())
	if err != nil {
		t.Fatal(err)
	}
	s := &fenceSim{t: t, e: e, ctx: context.Background(), lclk: clock.NewManual(epoch), wclk: clock.NewManual(epoch.Add(skew)),
		leader: leader, worker: worker, db: g, held: map[string]lease.Lease{}, sent: map[string]time.Time{}, taken: map[string]time.Time{}}
	if s.a, err = lease.NewAssigner(leader, lease.WithClock(s.lclk), lease.WithFailoverTime(fenceFailover)); err != nil {
		t.Fatal(err)
	}
	if s.rep, err = lease.NewReporter(worker, "w1", lease.WithClock(s.wclk), lease.WithSelfFence(fenceFailover),
		lease.WithReportIntervals(time.Second, fenceFailover/4)); err != nil {
		t.Fatal(err)
	}
	if s.rep2, err = lease.NewReporter(leader, "w2", lease.WithClock(s.lclk), lease.WithSelfFence(fenceFailover),
		lease.WithReportIntervals(time.Second, fenceFailover/4)); err != nil {
		t.Fatal(err)
	}
	s.keys = takeNewLeases(t, s.ctx, leader, "w1", 4, s.held)
	s.nextReport, s.nextRenew = s.wclk.Now(), s.wclk.Now()
	return s
}

// tick advances both clocks by 100 ms and runs what is due: w1's report and renewals,
// w2's report, the leader's round; then checks exclusivity.
func (s *fenceSim) tick(i int) {
	s.t.Helper()
	s.lclk.Advance(100 * time.Millisecond)
	s.wclk.Advance(100 * time.Millisecond)
	s.db.mu.Lock()
	delay := s.db.delay
	s.db.mu.Unlock()
	if s.pending != nil && s.lclk.Since(s.pending.start) >= delay {
		s.land()
	}
	if !s.paused && s.pending == nil && !s.wclk.Now().Before(s.nextReport) {
		s.nextReport = s.wclk.Now().Add(fenceFailover / 4)
		s.report(delay)
	}
	s.check() // a worker may process before its next renewal
	if !s.paused && s.rep.Live() && !s.wclk.Now().Before(s.nextRenew) {
		s.nextRenew = s.wclk.Now().Add(fenceFailover / 3)
		for k, l := range s.held {
			at := s.wclk.Now()
			nl, err := s.worker.Renew(s.ctx, l)
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
	if i%25 == 0 {
		if err := s.rep2.Report(s.ctx); err != nil {
			s.t.Fatal(err)
		}
	}
	if i%5 == 0 {
		if _, err := s.a.RunOnce(s.ctx); err != nil {
			s.t.Fatal(err)
		}
	}
	s.check()
}

// report starts w1's report; with a delay its write stays in flight until released.
func (s *fenceSim) report(delay time.Duration) {
	s.t.Helper()
	f := &inflight{done: make(chan struct{}), start: s.lclk.Now()}
	go func() {
		defer close(f.done)
		f.err = s.rep.Report(s.ctx)
	}()
	if delay > 0 {
		select {
		case f.release = <-s.db.waiting:
			s.pending = f
			return
		case <-f.done:
		}
	}
	<-f.done
	if f.err == nil {
		s.lastOK = f.start
	}
}

// inflight is a report of w1's in flight.
type inflight struct {
	done    chan struct{}
	release chan struct{}
	start   time.Time
	err     error
}

// land lets the report in flight write and return.
func (s *fenceSim) land() {
	s.t.Helper()
	close(s.pending.release)
	<-s.pending.done
	if s.pending.err == nil {
		s.lastOK = s.pending.start
	}
	s.pending = nil
}

// check fails if w1 may process a lease that another worker may process. A lease the
// leader is handing off from w1 (owner another worker, checkpoint owner w1) is still w1's:
// its new owner starts only once w1 released it.
func (s *fenceSim) check() {
	s.t.Helper()
	for _, k := range s.keys {
		l, err := s.leader.Get(s.ctx, k)
		if err != nil {
			s.t.Fatal(err)
		}
		if l.Owner == "w1" || l.CheckpointOwner == "w1" {
			continue
		}
		if _, ok := s.taken[k]; !ok {
			s.taken[k] = s.lclk.Now()
		}
		if _, held := s.held[k]; held && s.wclk.Since(s.sent[k]) < fenceFailover && s.rep.Permits(s.sent[k]) {
			s.t.Fatalf("at %v w1 may still process %s, which %s owns (checkpoint owner %q)", s.lclk.Now().Sub(epoch), k, l.Owner, l.CheckpointOwner)
		}
	}
}

// TestSelfFenceTakeover: a self-fencing worker whose metrics writes fail, land late, or
// which pauses past the failover time, loses its leases to the leader within the
// failover time and a second of its last successful write's start (never sooner than
// the failover time), whatever the skew between its clock and the leader's; at no tick
// may it process a lease the leader gave away, also after it wakes up.
func TestSelfFenceTakeover(t *testing.T) {
	for _, tc := range []struct {
		name   string
		skew   time.Duration
		fault  func(s *fenceSim)
		heal   func(s *fenceSim)
		single bool
	}{
		{"metrics writes fail", 0, func(s *fenceSim) { s.db.setFail(true) }, nil, false},
		{"metrics writes fail, single-table layout", 0, func(s *fenceSim) { s.db.setFail(true) }, nil, true},
		{"metrics writes fail, worker clock an hour ahead", time.Hour, func(s *fenceSim) { s.db.setFail(true) }, nil, false},
		{"metrics writes fail, worker clock an hour behind", -time.Hour, func(s *fenceSim) { s.db.setFail(true) }, nil, false},
		{"metrics writes land after the failover time", 0, func(s *fenceSim) { s.db.setDelay(12 * time.Second) },
			func(s *fenceSim) { s.db.setDelay(0) }, false},
		{"worker paused past the failover time", 0, func(s *fenceSim) { s.paused = true }, func(s *fenceSim) { s.paused = false }, false},
		{"worker paused past the failover time, single-table layout", 0, func(s *fenceSim) { s.paused = true },
			func(s *fenceSim) { s.paused = false }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFenceSim(t, tc.skew, tc.single)
			i := 0
			for ; i < 50; i++ { // 5 s: the leader warms up and sees both workers report
				s.tick(i)
			}
			for _, k := range s.keys {
				// The first plan may hand leases off to w2; w1 never releases them.
				if l, _ := s.leader.Get(s.ctx, k); l.Owner != "w1" && l.CheckpointOwner != "w1" {
					t.Fatalf("before the fault: %+v", l)
				}
			}
			tc.fault(s)
			last := s.lastOK
			for ; i < 50+170; i++ { // 17 s
				if tc.heal != nil && i == 50+130 {
					tc.heal(s)
				}
				s.tick(i)
			}
			for _, k := range s.keys {
				at, ok := s.taken[k]
				if !ok {
					t.Fatalf("%s never taken from the silent worker", k)
				}
				if d := at.Sub(last); d < fenceFailover || d > fenceFailover+1500*time.Millisecond {
					t.Fatalf("%s taken %v after the start of the worker's last successful report, want within [%v, %v]",
						k, d, fenceFailover, fenceFailover+1500*time.Millisecond)
				}
			}
			if s.pending != nil {
				s.land()
			}
		})
	}
}

// rewritingDB writes a new row for worker w1 just before each consistent read of w1's
// row while on is set: the worker's write lands between the leader's reads of its leases
// and its second read of the row.
type rewritingDB struct {
	lease.DynamoDBAPI
	store *lease.Store
	clk   *clock.Manual
	on    bool
	hits  int
}

func (r *rewritingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if r.on && *in.TableName == r.store.Tables().WorkerMetrics {
		r.hits++
		now := r.clk.Now().Add(time.Duration(r.hits) * time.Millisecond)
		if err := r.store.PutWorkerMetrics(ctx, lease.WorkerMetrics{WorkerID: "w1", LastUpdate: now, Reported: now,
			ReportInterval: time.Second, SelfFence: fenceFailover}); err != nil {
			return nil, err
		}
	}
	return r.DynamoDBAPI.GetItem(ctx, in, opts...)
}

// TestSelfFenceRowReadAgainBeforeTakeover: the leader takes a silent worker's leases only
// if a consistent read of its row, after the leases were read, still finds the row it saw
// for the fence time; a worker whose write landed meanwhile keeps its leases. Without the
// late write the same leases move at the fence time, though their counters move.
func TestSelfFenceRowReadAgainBeforeTakeover(t *testing.T) {
	for _, late := range []bool{true, false} {
		t.Run(fmt.Sprintf("late write %v", late), func(t *testing.T) {
			e := enginetest.Start(t, engine.Config{})
			db := enginetest.DynamoDB(e)
			base := leasetest.NewStore(t, db, false)
			clk := clock.NewManual(epoch)
			rw := &rewritingDB{DynamoDBAPI: db, store: base, clk: clk}
			leader, err := lease.NewStore(rw, base.Tables())
			if err != nil {
				t.Fatal(err)
			}
			a, err := lease.NewAssigner(leader, lease.WithClock(clk), lease.WithFailoverTime(fenceFailover))
			if err != nil {
				t.Fatal(err)
			}
			const key = "shardId-0"
			if _, err := base.CreateIfAbsent(context.Background(), lease.Lease{Key: key, Owner: "w1", Checkpoint: checkpoint.TrimHorizon}); err != nil {
				t.Fatal(err)
			}
			report := func(w string) {
				now := clk.Now()
				if err := base.PutWorkerMetrics(context.Background(), lease.WorkerMetrics{WorkerID: w, LastUpdate: now, Reported: now,
					ReportInterval: time.Second, SelfFence: fenceFailover}); err != nil {
					t.Fatal(err)
				}
			}
			report("w1") // its last report until the late one
			rw.on = late
			var movedAt time.Duration
			for i := 0; i < 60 && movedAt == 0; i++ { // 30 s
				report("w2")
				if l, err := base.Get(context.Background(), key); err == nil && l.Owner == "w1" {
					if _, err := base.Renew(context.Background(), l); err != nil { // w1 renews: no counter expiry
						t.Fatal(err)
					}
				}
				if _, err := a.RunOnce(context.Background()); err != nil {
					t.Fatal(err)
				}
				if l, _ := base.Get(context.Background(), key); l.Owner != "w1" {
					movedAt = clk.Now().Sub(epoch)
				}
				clk.Advance(fenceFailover / 20)
			}
			switch {
			case late && (movedAt != 0 || rw.hits == 0):
				t.Fatalf("lease moved at %v (%d late writes): the row was not read again before the takeover", movedAt, rw.hits)
			case !late && (movedAt < fenceFailover || movedAt > fenceFailover+time.Second):
				t.Fatalf("lease moved at %v, want at the fence time %v", movedAt, fenceFailover)
			}
		})
	}
}

// TestJavaWorkerLeasesExpireByCounter: a worker whose row carries no self-fence (a Java
// KCL worker's) keeps the counter rule: its leases are not taken at the failover time
// after its last row, only once a scan of the lease table finds their counters
// unchanged for the failover time (within the failover time and a scan interval).
func TestJavaWorkerLeasesExpireByCounter(t *testing.T) {
	f := newAssignFixture(t, "shardId-0")
	var err error
	if f.a, err = lease.NewAssigner(f.store, lease.WithClock(f.clk), lease.WithFailoverTime(fenceFailover)); err != nil {
		t.Fatal(err)
	}
	l := f.get("shardId-0")
	if _, err := f.store.Take(f.ctx, l, "java-1"); err != nil {
		t.Fatal(err)
	}
	f.reportJava("java-1")
	f.renew("shardId-0")
	start := f.clk.Now()
	var movedAt time.Duration
	for movedAt == 0 && f.clk.Since(start) < 40*time.Second {
		f.report("freshet-1")
		f.round()
		if l := f.get("shardId-0"); l.Owner != "java-1" {
			movedAt = f.clk.Since(start)
		}
		f.clk.Advance(fenceFailover / 20)
	}
	if movedAt < fenceFailover+time.Second || movedAt > 3*fenceFailover+time.Second {
		t.Fatalf("Java worker's lease moved %v after its last renewal, want after a scan found it expired (within [%v, %v])",
			movedAt, fenceFailover+time.Second, 3*fenceFailover+time.Second)
	}
}

// TestAnnouncedLeasePlacedBeforeNextScan: a lease a worker creates and announces in its
// row (a child of a shard it ended) is placed at the leader's next round; one created
// without an announcement waits for the next scan of the lease table.
func TestAnnouncedLeasePlacedBeforeNextScan(t *testing.T) {
	f := newAssignFixture(t)
	var err error
	if f.a, err = lease.NewAssigner(f.store, lease.WithClock(f.clk), lease.WithFailoverTime(fenceFailover)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ { // past the warm-up; the first round scanned
		f.report("w1")
		f.round()
		f.clk.Advance(fenceFailover / 20)
	}
	for _, k := range []string{"shardId-announced", "shardId-quiet"} {
		if _, err := f.store.CreateIfAbsent(f.ctx, lease.Lease{Key: k, Checkpoint: checkpoint.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.store.AnnounceLeases(f.ctx, "w1", []string{"shardId-announced"}); err != nil {
		t.Fatal(err)
	}
	f.round()
	if l := f.get("shardId-announced"); l.Owner != "w1" {
		t.Fatalf("announced lease after one round: %+v", l)
	}
	if l := f.get("shardId-quiet"); l.Owner != "" {
		t.Fatalf("unannounced lease placed before a scan: %+v", l)
	}
	for i := 0; i < 40 && f.get("shardId-quiet").Owner == ""; i++ {
		f.clk.Advance(fenceFailover / 20)
		f.report("w1")
		f.round()
	}
	if l := f.get("shardId-quiet"); l.Owner != "w1" {
		t.Fatalf("unannounced lease after a scan interval: %+v", l)
	}
	if err := f.store.AnnounceLeases(f.ctx, "nobody", []string{"x"}); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("announcing in a missing row: %v, want ErrNotFound", err)
	}
}

// TestSingleTableRoundsReadRowsNotTable: in the single-table layout the worker-metrics
// rows live in the lease table; between its scans of the table (after the warm-up, every
// lease scan interval) the leader reads only the rows of the workers it knows.
func TestSingleTableRoundsReadRowsNotTable(t *testing.T) {
	s := newFenceSim(t, 0, true)
	i := 0
	for ; i < 50; i++ { // 5 s: warm-up, scanning every round
		s.tick(i)
	}
	reads := func() map[string]float64 { return s.e.Tables.ReadsByOperation()[s.leader.Tables().Lease] }
	before := reads()
	if before["Scan"] == 0 {
		t.Fatal("no scan during the warm-up")
	}
	for ; i < 150; i++ { // 10 s more, within the 20 s scan interval
		s.tick(i)
	}
	after := reads()
	// The first plan handed leases off to w2, which makes the leader scan once more a
	// failover time later (docs/lease-cost.md, "Joins"): one scan of this small table
	// is half a read unit.
	if d := after["Scan"] - before["Scan"]; d > 0.5 {
		t.Fatalf("the leader scanned the table between lease scans: %v read units", d)
	}
	if after["GetItem"] <= before["GetItem"] {
		t.Fatal("the leader read no worker-metrics rows between lease scans")
	}
	for _, k := range s.keys {
		if l, _ := s.leader.Get(s.ctx, k); l.Owner != "w1" && l.CheckpointOwner != "w1" {
			t.Fatalf("%s moved from a live worker: %+v", k, l)
		}
	}
}

// takeNewLeases creates n leases at TRIM_HORIZON, shardId-0 on, and takes each for
// owner, recording what the take returned in held; it returns their keys.
func takeNewLeases(t *testing.T, ctx context.Context, st *lease.Store, owner string, n int, held map[string]lease.Lease) []string {
	t.Helper()
	var keys []string
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("shardId-%d", i)
		keys = append(keys, k)
		if _, err := st.CreateIfAbsent(ctx, lease.Lease{Key: k, Checkpoint: checkpoint.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
		l, err := st.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if held[k], err = st.Take(ctx, l, owner); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestAnnouncementSurvivesReports: a worker's report replaces its whole metrics row, so
// the Reporter repeats the leases it announced in its reports for two report intervals.
// A report that lands between the announcement and the leader's next round keeps the
// lease announced, and the leader places it at that round, not at its next scan.
func TestAnnouncementSurvivesReports(t *testing.T) {
	f := newAssignFixture(t)
	var err error
	if f.a, err = lease.NewAssigner(f.store, lease.WithClock(f.clk), lease.WithFailoverTime(fenceFailover)); err != nil {
		t.Fatal(err)
	}
	const interval = time.Second
	r, err := lease.NewReporter(f.store, "w1", lease.WithClock(f.clk), lease.WithReportIntervals(interval/2, interval))
	if err != nil {
		t.Fatal(err)
	}
	report := func() {
		t.Helper()
		if err := r.Report(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 12; i++ { // past the warm-up; the first round scanned
		report()
		f.round()
		f.clk.Advance(fenceFailover / 20)
	}
	if _, err := f.store.CreateIfAbsent(f.ctx, lease.Lease{Key: "shardId-child", Checkpoint: checkpoint.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	if err := r.Announce(f.ctx, []string{"shardId-child"}); err != nil {
		t.Fatal(err)
	}
	report()
	if m, err := f.store.GetWorkerMetrics(f.ctx, "w1"); err != nil || !slices.Equal(m.NewLeases, []string{"shardId-child"}) {
		t.Fatalf("row after a report that followed the announcement: %+v, %v; want the announcement kept", m.NewLeases, err)
	}
	f.round()
	if l := f.get("shardId-child"); l.Owner != "w1" {
		t.Fatalf("announced lease after a report and one round: %+v", l)
	}
	f.clk.Advance(2 * interval)
	report()
	if m, err := f.store.GetWorkerMetrics(f.ctx, "w1"); err != nil || len(m.NewLeases) != 0 {
		t.Fatalf("row two report intervals after the announcement: %+v, %v; want none announced", m.NewLeases, err)
	}
}
