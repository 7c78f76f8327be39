package lease_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/lease/leasetest"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// loopClock is the clock of one Run loop over a shared manual clock. It remembers the
// deadline of the loop's last timer: while that deadline is in the future the loop has
// finished its step and waits, so the test may move time on.
type loopClock struct {
	*clock.Manual
	mu       sync.Mutex
	deadline time.Time
}

func (c *loopClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.Manual.Now()
	ch := c.Manual.After(d)
	c.deadline = now.Add(d)
	return ch
}

func (c *loopClock) waiting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline.After(c.Manual.Now())
}

// harness runs Run loops on one manual clock and moves time only while every running
// loop waits for its timer, so each step of each loop happens at a known instant.
type harness struct {
	t   *testing.T
	clk *clock.Manual

	mu    sync.Mutex
	loops map[string]*loopClock
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, clk: clock.NewManual(epoch), loops: map[string]*loopClock{}}
}

// clock returns the clock for the loop called name.
func (h *harness) clock(name string) *loopClock {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &loopClock{Manual: h.clk}
	h.loops[name] = c
	return c
}

// start runs loop name in a goroutine and returns a function that cancels it and returns
// what Run returned. The loop's clock must come from h.clock(name).
func (h *harness) start(name string, run func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	h.t.Cleanup(cancel)
	h.settle()
	return func() error {
		h.mu.Lock()
		delete(h.loops, name)
		h.mu.Unlock()
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			h.t.Fatalf("loop %s did not return after its context ended", name)
			return nil
		}
	}
}

// settle waits until every running loop waits for its timer.
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		busy := ""
		h.mu.Lock()
		for name, c := range h.loops {
			if !c.waiting() {
				busy = name
				break
			}
		}
		h.mu.Unlock()
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("loop %s never came back to its timer", busy)
		}
		time.Sleep(time.Millisecond)
	}
}

// advance moves the clock by d and waits until the loops have done what became due.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clk.Advance(d)
	h.settle()
}

// advanceUntil advances in steps of step until cond holds, at most max in total, and
// returns the instant cond first held.
func (h *harness) advanceUntil(step, max time.Duration, what string, cond func() bool) time.Time {
	h.t.Helper()
	start := h.clk.Now()
	for !cond() {
		if h.clk.Now().Sub(start) >= max {
			h.t.Fatalf("%s: not within %v", what, max)
		}
		h.advance(step)
	}
	return h.clk.Now()
}

var errPartitioned = errors.New("network partition")

// partitionDB cuts one worker off DynamoDB when down is set, as a crash or a network
// partition would: nothing it sends arrives.
type partitionDB struct {
	lease.DynamoDBAPI
	down atomic.Bool
}

func (p *partitionDB) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, o ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	if p.down.Load() {
		return nil, errPartitioned
	}
	return p.DynamoDBAPI.CreateTable(ctx, in, o...)
}

func (p *partitionDB) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, o ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	if p.down.Load() {
		return nil, errPartitioned
	}
	return p.DynamoDBAPI.DescribeTable(ctx, in, o...)
}

func (p *partitionDB) UpdateContinuousBackups(ctx context.Context, in *dynamodb.UpdateContinuousBackupsInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateContinuousBackupsOutput, error) {
	if p.down.Load() {
		return nil, errPartitioned
	}
	return p.DynamoDBAPI.UpdateContinuousBackups(ctx, in, o...)
}

func (p *partitionDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if p.down.Load() {
		return nil, errPartitioned
	}
	return p.DynamoDBAPI.GetItem(ctx, in, o...)
}

func (p *partitionDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if p.down.Load() {
		return nil, errPartitioned
	}
	return p.DynamoDBAPI.PutItem(ctx, in, o...)
}

func (p *partitionDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if p.down.Load() {
		return nil, errPartitioned
	}
	return p.DynamoDBAPI.UpdateItem(ctx, in, o...)
}

func (p *partitionDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if p.down.Load() {
		return nil, errPartitioned
	}
	return p.DynamoDBAPI.DeleteItem(ctx, in, o...)
}

func (p *partitionDB) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	if p.down.Load() {
		return nil, errPartitioned
	}
	return p.DynamoDBAPI.Scan(ctx, in, o...)
}

func (p *partitionDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if p.down.Load() {
		return nil, errPartitioned
	}
	return p.DynamoDBAPI.Query(ctx, in, o...)
}

// workerStore returns a Store of its own for one worker over tables, and the switch that
// cuts it off.
func workerStore(t *testing.T, db lease.DynamoDBAPI, tables lease.Tables) (*lease.Store, *partitionDB) {
	t.Helper()
	p := &partitionDB{DynamoDBAPI: db}
	s, err := lease.NewStore(p, tables)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

const (
	leaderLease     = 20 * time.Second
	leaderHeartbeat = 5 * time.Second
)

func startElector(t *testing.T, h *harness, db lease.DynamoDBAPI, tables lease.Tables, id string) (*lease.LeaderElector, *partitionDB, func() error) {
	t.Helper()
	s, p := workerStore(t, db, tables)
	e, err := lease.NewLeaderElector(s, id, lease.WithClock(h.clock("elector-"+id)),
		lease.WithLeaderLeaseDuration(leaderLease, leaderHeartbeat))
	if err != nil {
		t.Fatal(err)
	}
	return e, p, h.start("elector-"+id, e.Run)
}

// TestLeaderElectorRunFailover runs two electors' Run loops: the first leads and keeps
// the lock with its heartbeats; when it dies (cut off, so its Run ends without releasing)
// the second takes over only once the lock's lease duration has passed since the last
// heartbeat, and never while the dead leader could still believe it leads.
func TestLeaderElectorRunFailover(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	db := enginetest.DynamoDB(e)
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprintf("single=%v", single), func(t *testing.T) {
			ctx := context.Background()
			tables := leasetest.NewStore(t, db, single).Tables()
			h := newHarness(t)
			a, aDB, stopA := startElector(t, h, db, tables, "a")
			if !a.IsLeader() {
				t.Fatal("the only elector did not lead after its first step")
			}
			b, _, stopB := startElector(t, h, db, tables, "b")
			defer stopB()
			for i := 0; i < 3*int(leaderLease/leaderHeartbeat); i++ {
				h.advance(leaderHeartbeat)
				if !a.IsLeader() || b.IsLeader() {
					t.Fatalf("at %v: a leads %v, b leads %v; want a alone", h.clk.Now().Sub(epoch), a.IsLeader(), b.IsLeader())
				}
			}
			if name, err := b.Leader(ctx); err != nil || name != "a" {
				t.Fatalf("Leader() = %q, %v", name, err)
			}
			// a heartbeated at this instant, then dies.
			lastBeat := h.clk.Now()
			aDB.down.Store(true)
			if err := stopA(); !errors.Is(err, errPartitioned) {
				t.Fatalf("dead leader's Run returned %v, want its failed release", err)
			}
			takeover := h.advanceUntil(time.Second, 2*leaderLease, "takeover", func() bool {
				if b.IsLeader() && a.IsLeader() {
					t.Fatalf("at %v both believe they lead", h.clk.Now().Sub(epoch))
				}
				return b.IsLeader()
			})
			if takeover.Before(lastBeat.Add(leaderLease)) {
				t.Fatalf("b took over %v after the last heartbeat, before the lease duration %v", takeover.Sub(lastBeat), leaderLease)
			}
			// A follower reads the lock every watch period: the heartbeat plus at most 2 s.
			if takeover.After(lastBeat.Add(leaderLease + leaderHeartbeat + min(leaderHeartbeat, 2*time.Second))) {
				t.Fatalf("b took over only %v after the last heartbeat", takeover.Sub(lastBeat))
			}
			if name, err := b.Leader(ctx); err != nil || name != "b" {
				t.Fatalf("Leader() after takeover = %q, %v", name, err)
			}
			// b keeps leading with its own heartbeats.
			for i := 0; i < 10; i++ {
				h.advance(leaderHeartbeat)
				if !b.IsLeader() {
					t.Fatalf("b lost the lead %v after taking over", h.clk.Now().Sub(takeover))
				}
			}
		})
	}
}

// TestLeaderElectorRunReleasesOnShutdown checks that a leader whose Run ends normally
// releases the lock, so another elector leads at its next step instead of waiting out the
// lease duration.
func TestLeaderElectorRunReleasesOnShutdown(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	db := enginetest.DynamoDB(e)
	ctx := context.Background()
	tables := leasetest.NewStore(t, db, false).Tables()
	h := newHarness(t)
	a, _, stopA := startElector(t, h, db, tables, "a")
	b, _, stopB := startElector(t, h, db, tables, "b")
	defer stopB()
	h.advance(leaderHeartbeat)
	if !a.IsLeader() || b.IsLeader() {
		t.Fatal("a should lead")
	}
	stopped := h.clk.Now()
	if err := stopA(); err != nil {
		t.Fatalf("Run after a clean shutdown = %v", err)
	}
	if a.IsLeader() {
		t.Fatal("a still believes it leads after releasing")
	}
	if name, err := b.Leader(ctx); err != nil || name != "" {
		t.Fatalf("Leader() after release = %q, %v; want none", name, err)
	}
	takeover := h.advanceUntil(time.Second, leaderLease, "takeover after release", b.IsLeader)
	if d := takeover.Sub(stopped); d > leaderHeartbeat {
		t.Fatalf("b took over %v after the release, want within one heartbeat (%v)", d, leaderHeartbeat)
	}
}

// cpuFS serves a cgroup v2 CPU account in which the process uses half a core of its one-core
// quota, as time passes on clk.
type cpuFS struct{ clk clock.Clock }

func (f cpuFS) Open(name string) (fs.File, error) {
	usage := f.clk.Now().Sub(epoch).Microseconds() / 2
	return fstest.MapFS{
		"sys/fs/cgroup/cpu.stat": {Data: fmt.Appendf(nil, "usage_usec %d\n", usage)},
		"sys/fs/cgroup/cpu.max":  {Data: []byte("100000 100000\n")},
	}.Open(name)
}

// fleetWorker is one worker's running loops.
type fleetWorker struct {
	id          string
	coord       *lease.Coordinator
	db          *partitionDB
	stopCoord   func() error
	stopReports func() error
}

const (
	failover = 9 * time.Second // renewals every 3 s, assignment rounds every 18 s
	report   = time.Second
)

func startWorker(t *testing.T, h *harness, db lease.DynamoDBAPI, tables lease.Tables, id string) *fleetWorker {
	t.Helper()
	s, p := workerStore(t, db, tables)
	w := &fleetWorker{id: id, db: p}
	rclk := h.clock("reporter-" + id)
	sampler, err := lease.NewCPUSampler(cpuFS{rclk}, rclk)
	if err != nil {
		t.Fatal(err)
	}
	r, err := lease.NewReporter(s, id, lease.WithClock(rclk), lease.WithReportIntervals(report, report), lease.WithCPUSampler(sampler))
	if err != nil {
		t.Fatal(err)
	}
	w.stopReports = h.start("reporter-"+id, r.Run)
	w.coord, err = lease.NewCoordinator(s, id, lease.WithClock(h.clock("coordinator-"+id)), lease.WithFailoverTime(failover))
	if err != nil {
		t.Fatal(err)
	}
	w.stopCoord = h.start("coordinator-"+id, w.coord.Run)
	return w
}

func (w *fleetWorker) holds(key string) bool {
	for _, h := range w.coord.Held() {
		if h.Lease.Key == key && h.State == lease.Processing {
			return true
		}
	}
	return false
}

// TestFleetRunLoops runs the Reporter, Coordinator and Assigner loops of a small fleet on a
// manual clock: a worker's coordinator discovers and renews its lease at every third of the
// failover time; when the worker dies its coordinator stops renewing, and the leader's
// assigner gives the lease to the surviving worker only after the failover time; a worker
// that shuts down cleanly releases its lease, which is reassigned at the next round.
func TestFleetRunLoops(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	db := enginetest.DynamoDB(e)
	ctx := context.Background()
	base := leasetest.NewStore(t, db, false)
	tables := base.Tables()
	const key = "shardId-000000000000"
	if _, err := base.CreateIfAbsent(ctx, lease.Lease{Key: key, Checkpoint: checkpoint.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	w1 := startWorker(t, h, db, tables, "w1")

	// The leader's assigner: metrics older than three reports mean a dead worker.
	as, _ := workerStore(t, db, tables)
	a, err := lease.NewAssigner(as, lease.WithClock(h.clock("assigner")), lease.WithFailoverTime(failover),
		lease.WithWorkerMetricsMaxAge(3*report+time.Second), lease.WithPlan(lease.PlanConfig{}, 1000), lease.WithLeaseScanInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	var leading atomic.Bool
	leading.Store(true)
	stopAssigner := h.start("assigner", func(ctx context.Context) error { return a.Run(ctx, leading.Load) })
	defer stopAssigner()

	got := func() lease.Lease {
		t.Helper()
		l, err := base.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	h.advanceUntil(time.Second, 2*2*failover, "w1 holds the lease", func() bool { return w1.holds(key) })
	if l := got(); l.Owner != "w1" {
		t.Fatalf("lease owned by %q", l.Owner)
	}
	metrics, err := base.ListWorkerMetrics(ctx)
	if err != nil || len(metrics) != 1 {
		t.Fatalf("worker metrics %+v, %v", metrics, err)
	}
	if cpu, ok := metrics[0].CPU(); !ok || cpu != 50 {
		t.Fatalf("reported CPU %v, %v; want 50", cpu, ok)
	}
	if m := metrics[0]; m.SupportCode != 1 || !m.SupportCodeUpdate.Equal(m.LastUpdate) || m.ReportInterval != report {
		t.Fatalf("row has sup %d, slu %v, report interval %v; want %d, %v (lut), %v", m.SupportCode, m.SupportCodeUpdate, m.ReportInterval,
			1, m.LastUpdate, report)
	}
	if !metrics[0].LastUpdate.Equal(h.clk.Now()) {
		t.Fatalf("metrics reported at %v, want every report interval (now %v)", metrics[0].LastUpdate, h.clk.Now())
	}

	// Renewals: one per third of the failover time, nothing in between.
	w2 := startWorker(t, h, db, tables, "w2")
	for i := 0; i < 6; i++ {
		before := got().Counter
		h.advance(failover/3 - time.Second)
		if c := got().Counter; c != before {
			t.Fatalf("counter moved from %d to %d before the renewal period", before, c)
		}
		h.advance(time.Second)
		if c := got().Counter; c != before+1 {
			t.Fatalf("counter %d after a renewal period, want %d", c, before+1)
		}
		if !w1.holds(key) || w2.holds(key) {
			t.Fatal("the lease changed hands while w1 renews")
		}
	}
	cp, err := w1.coord.Checkpointer(key)
	if err != nil {
		t.Fatal(err)
	}

	// w1 dies right after renewing: its loops end and it sends nothing more.
	lastRenewal := h.clk.Now()
	w1.db.down.Store(true)
	if err := w1.stopCoord(); err != nil {
		t.Fatal(err)
	}
	if err := w1.stopReports(); err != nil {
		t.Fatal(err)
	}
	dead := got()
	if dead.Owner != "w1" {
		t.Fatalf("a coordinator that stops released its lease: %+v", dead)
	}
	taken := h.advanceUntil(time.Second, 4*failover, "lease taken from the dead worker", func() bool {
		l := got()
		if l.Owner == "w1" && l.Counter != dead.Counter {
			t.Fatalf("the dead worker's lease counter moved: %d -> %d", dead.Counter, l.Counter)
		}
		// The leader may first hand the lease off (w1's metrics go stale before its lease
		// expires); w2 then takes it once w1 has not renewed for the failover time.
		return l.Owner == "w2" && l.CheckpointOwner == ""
	})
	if taken.Before(lastRenewal.Add(failover)) {
		t.Fatalf("lease taken %v after the last renewal, before the failover time", taken.Sub(lastRenewal))
	}
	if taken.After(lastRenewal.Add(failover + 2*2*failover)) {
		t.Fatalf("lease taken only %v after the last renewal", taken.Sub(lastRenewal))
	}
	h.advanceUntil(time.Second, failover, "w2 processes the lease", func() bool { return w2.holds(key) })
	metrics, err = base.ListWorkerMetrics(ctx)
	if err != nil || len(metrics) != 2 || metrics[0].WorkerID != "w1" || !metrics[0].LastUpdate.Equal(lastRenewal) ||
		!metrics[1].LastUpdate.Equal(h.clk.Now()) {
		t.Fatalf("metrics after w1 died: %+v, %v", metrics, err)
	}
	// The dead worker's late checkpoint is fenced off.
	w1.db.down.Store(false)
	cp.Delivered(checkpoint.Value{SequenceNumber: "100"})
	if err := cp.Checkpoint(ctx); !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Fatalf("checkpoint of the dead worker = %v, want ErrLeaseLost", err)
	}

	// While the assigner's worker is not the leader, it assigns nothing.
	w3 := startWorker(t, h, db, tables, "w3")
	leading.Store(false)
	// w2 shuts down cleanly: the consumer stops its processors, then releases each lease.
	if err := w2.stopCoord(); err != nil {
		t.Fatal(err)
	}
	if err := w2.coord.Release(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := w2.stopReports(); err != nil {
		t.Fatal(err)
	}
	released := h.clk.Now()
	if l := got(); l.Owner != "" {
		t.Fatalf("after release the lease is owned by %q", l.Owner)
	}
	h.advance(3 * 2 * failover)
	if l := got(); l.Owner != "" {
		t.Fatalf("a non-leader's assigner gave the lease to %q", l.Owner)
	}
	leading.Store(true)
	assigned := h.advanceUntil(time.Second, 2*2*failover, "released lease reassigned", func() bool { return got().Owner == "w3" })
	// A released lease needs no failover wait: the first round after leading again takes it.
	if d := assigned.Sub(released); d > 3*2*failover+2*failover {
		t.Fatalf("released lease reassigned %v after its release", d)
	}
	h.advanceUntil(time.Second, failover, "w3 processes the lease", func() bool { return w3.holds(key) })
	if err := w3.stopCoord(); err != nil {
		t.Fatal(err)
	}
	if err := w3.stopReports(); err != nil {
		t.Fatal(err)
	}
}
