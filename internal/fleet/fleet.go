// Package fleet runs a consumer fleet (many consumer.Workers of one application, in one
// process, each with its own SDK clients) against the bundled engine and measures what the
// lease protocol promises at scale: convergence to a fair share, rebalancing after workers
// join and leave, failover of dead workers' shards (also of workers that die right after
// joining or right after being assigned leases), leader failover, the start of an ended
// shard's children, exclusive processing, one leader at a time, and the DynamoDB capacity
// the fleet consumes in steady state.
//
// It sits beside the data flow, driving consumer/ and lease/ from outside: cmd/freshet-bench
// fleet prints its Result, and its test runs a small fleet in make test.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/sinkproc"
	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/internal/hashkey"
	"github.com/freshet/freshet/lease"
)

// ErrInvalidConfig reports a bad Config.
var ErrInvalidConfig = errors.New("fleet: invalid config")

// Config sizes a fleet run.
type Config struct {
	// Leases is the number of shards (one lease each) of the stream.
	Leases int
	// Workers is the number of workers the fleet starts with.
	Workers int
	// Steady is how long steady-state DynamoDB consumption is measured.
	Steady time.Duration
	// FailoverTime is the workers' failover time (10 s when zero).
	FailoverTime time.Duration
	// RecordsPerSecond is the total rate of 100-byte records put on the stream (one per
	// lease per 10 s when zero).
	RecordsPerSecond float64
	// IdleTime is the pause of a shard's poller at the tip of its shard (2 s when zero).
	IdleTime time.Duration
	// Timeout bounds each phase (30 failover times when zero).
	Timeout time.Duration
	// Logger receives the workers' logs (none when nil).
	Logger *zap.Logger
	// Progress, when set, is called with a line at each phase.
	Progress func(string)
	// Backend is the engine the run drives; nil starts the bundled engine in this
	// process for the run. A benchmark passes one in a child process (sinkproc.Sink) so
	// that this process's CPU time is the fleet's alone.
	Backend Backend
	// Engine, when set, is called with the run's engine once it has started, before
	// any worker: a benchmark reads its call counters (Backend.Usage) from it.
	Engine func(Backend)
}

// Backend is what a run needs of the engine: its endpoint, a stream, and what it has
// served. *sinkproc.Sink is one; Run wraps the engine it starts in another.
type Backend interface {
	AWSConfig() aws.Config
	CreateStream(name string, shards int) error
	Usage() (sinkproc.Usage, error)
}

// local is the bundled engine in this process.
type local struct{ e *engine.Engine }

func (l local) AWSConfig() aws.Config                 { return l.e.AWSConfig() }
func (l local) CreateStream(name string, n int) error { return l.e.Streams.CreateStream(name, n) }
func (l local) Usage() (sinkproc.Usage, error)        { return sinkproc.UsageOf(l.e), nil }

// ShardLimit is the shard limit an engine for a fleet of leases shards needs (the
// stream, and the children of its splits).
func ShardLimit(leases int) int { return 2*leases + 16 }

// Result is the JSON line of a fleet run. Times are in seconds.
type Result struct {
	Leases           int     `json:"leases"`
	Workers          int     `json:"workers"`
	FailoverTimeS    float64 `json:"failover_time_s"`
	AssignIntervalS  float64 `json:"assignment_interval_s"`
	FirstPlanS       float64 `json:"first_plan_s"`
	ConvergeS        float64 `json:"converge_s"`
	ConvergeRounds   float64 `json:"converge_rounds_after_first_plan"`
	RebalanceAddS    float64 `json:"rebalance_add_s"`
	RebalanceRemoveS float64 `json:"rebalance_remove_s"`
	// FailoverP50S, FailoverP99S and FailoverMaxS are over every lease a killed worker
	// held (the 10% killed, the worker killed right after being assigned, the one killed
	// right after joining), from its kill to a processor started elsewhere.
	FailoverP50S    float64 `json:"failover_p50_s"`
	FailoverP99S    float64 `json:"failover_p99_s"`
	FailoverMaxS    float64 `json:"failover_max_s"`
	FailoverSamples int     `json:"failover_samples"`
	// FailoverWorkersP99S is the p99 over the leases of the workers killed before the
	// leader (the dead leader's leases wait for a new leader first: see
	// LeaderLeasesFailoverS).
	FailoverWorkersP99S float64 `json:"failover_p99_without_leader_s"`
	// LeaderFailoverS is from killing the leader to another worker leading;
	// LeaderLeasesFailoverS to the last of the dead leader's leases processed again.
	LeaderFailoverS       float64 `json:"leader_failover_s"`
	LeaderLeasesFailoverS float64 `json:"leader_leases_failover_s"`
	// ChildrenStartS is from a split shard's end (ShardEnded) to both children processed.
	ChildrenStartS     float64 `json:"children_start_s"`
	MaxLeasesPerWorker int     `json:"max_leases_per_worker"`
	LeaseMoves         int     `json:"lease_moves"`
	// DoubleProcessing counts batches delivered by a processor after a processor of the
	// same lease started on another live worker; MaxLeaders the most workers seen leading
	// at once.
	DoubleProcessing int `json:"double_processing"`
	MaxLeaders       int `json:"max_leaders"`
	// Steady-state DynamoDB consumption (engine accounting, all three tables).
	DDBReadUnitsPerS  float64 `json:"ddb_read_units_per_s"`
	DDBWriteUnitsPerS float64 `json:"ddb_write_units_per_s"`
	// DDBReadUnitsPerSByOp splits the read units by operation (GetItem, Query, Scan,
	// BatchGetItem).
	DDBReadUnitsPerSByOp map[string]float64 `json:"ddb_read_units_per_s_by_op"`
	RecordsDelivered     int64              `json:"records_delivered"`
	PeakRSSMB            float64            `json:"peak_rss_mb"`
	WallS                float64            `json:"wall_s"`
}

const (
	app    = "fleet"
	stream = "fleet"
)

// proc is one processor instance: a lease processed by one worker from start to stop.
type proc struct {
	key    string
	worker int
	start  time.Time
	active atomic.Bool
}

// tracker records every processor's life and the properties checked across the run.
type tracker struct {
	mu        sync.Mutex
	procs     map[string][]*proc // by lease key, in start order
	dead      map[int]bool
	pending   map[string]time.Time // lease -> kill time of the worker that held it
	failovers []time.Duration
	ended     map[string]time.Time // lease -> ShardEnded
	moves     int
	double    int
	delivered atomic.Int64
}

func (tr *tracker) started(key string, worker int) *proc {
	p := &proc{key: key, worker: worker, start: time.Now()}
	p.active.Store(true)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ps := tr.procs[key]
	if n := len(ps); n > 0 && ps[n-1].worker != worker {
		tr.moves++
	}
	tr.procs[key] = append(ps, p)
	if k, ok := tr.pending[key]; ok && !tr.dead[worker] {
		tr.failovers = append(tr.failovers, p.start.Sub(k))
		delete(tr.pending, key)
	}
	return p
}

// delivering checks that no processor of the same lease started after p on another live
// worker.
func (tr *tracker) delivering(p *proc) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, q := range tr.procs[p.key] {
		if q != p && q.worker != p.worker && q.start.After(p.start) && !tr.dead[q.worker] && !tr.dead[p.worker] {
			tr.double++
			return
		}
	}
}

// killed marks worker dead and starts the failover clock of keys, the leases it owned.
func (tr *tracker) killed(worker int, at time.Time, keys []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.dead[worker] = true
	for _, key := range keys {
		tr.pending[key] = at
	}
}

// waiting returns how many of keys still wait for a processor elsewhere.
func (tr *tracker) waiting(keys []string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, k := range keys {
		if _, ok := tr.pending[k]; ok {
			n++
		}
	}
	return n
}

// lastStart returns the latest start among keys' current processors.
func (tr *tracker) lastStart(keys []string) time.Time {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var t time.Time
	for _, k := range keys {
		if ps := tr.procs[k]; len(ps) > 0 && ps[len(ps)-1].start.After(t) {
			t = ps[len(ps)-1].start
		}
	}
	return t
}

// trackedProcessor reports its life to the tracker and checkpoints every batch.
type trackedProcessor struct {
	tr     *tracker
	key    string
	worker int
	p      *proc // set by Initialize
}

// Initialize runs once the lease is held and its parents are done, just before the first
// read: the processor's life, for the tracker, starts here.
func (tp *trackedProcessor) Initialize(context.Context, consumer.InitializeInput) error {
	if tp.p == nil {
		tp.p = tp.tr.started(tp.key, tp.worker)
	}
	return nil
}

func (tp *trackedProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	if len(in.Records) == 0 {
		return nil
	}
	tp.tr.delivering(tp.p)
	tp.tr.delivered.Add(int64(len(in.Records)))
	if err := in.Checkpointer.Checkpoint(ctx); err != nil && !errors.Is(err, checkpoint.ErrLeaseLost) {
		return err
	}
	return nil
}

func (tp *trackedProcessor) LeaseLost(context.Context, consumer.LeaseLostInput) { tp.stop() }

// stop ends the processor's life (it may end before Initialize).
func (tp *trackedProcessor) stop() {
	if tp.p != nil {
		tp.p.active.Store(false)
	}
}

func (tp *trackedProcessor) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	tp.tr.mu.Lock()
	if _, ok := tp.tr.ended[tp.p.key]; !ok {
		tp.tr.ended[tp.p.key] = time.Now()
	}
	tp.tr.mu.Unlock()
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		return err
	}
	tp.stop()
	return nil
}

func (tp *trackedProcessor) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	tp.stop()
	return in.Checkpointer.Checkpoint(ctx)
}

// member is one worker of the fleet.
type member struct {
	idx    int
	w      *consumer.Worker
	cancel context.CancelFunc
	done   chan error
	dead   atomic.Bool
}

// run is one fleet run in progress.
type run struct {
	cfg     Config
	e       Backend
	kin     *kinesis.Client
	open    int          // open shards of the stream (one more after the split)
	store   *lease.Store // the test's own view of the lease table
	tr      *tracker
	mu      sync.Mutex
	members []*member
	res     Result
	leaders atomic.Int32
	// beforeLeader is how many failovers were measured before the leader was killed
	// (guarded by tr.mu).
	beforeLeader int
}

func (c *Config) defaults() error {
	if c.Leases < 2 || c.Workers < 2 {
		return fmt.Errorf("%w: %d leases, %d workers (at least 2 each)", ErrInvalidConfig, c.Leases, c.Workers)
	}
	if c.FailoverTime == 0 {
		c.FailoverTime = 10 * time.Second
	}
	if c.RecordsPerSecond == 0 {
		c.RecordsPerSecond = float64(c.Leases) / 10
	}
	if c.IdleTime == 0 {
		c.IdleTime = 2 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * c.FailoverTime
	}
	if c.Steady <= 0 {
		c.Steady = c.FailoverTime
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	return nil
}

// Run runs the fleet through its phases and returns the measurements. It fails when a
// phase does not finish within the timeout; the properties (fair share, exclusive
// processing, one leader) are measured, not judged: the caller compares them with its
// targets.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	start := time.Now()
	e := cfg.Backend
	if e == nil {
		en, err := engine.Start(engine.Config{Streams: streams.Config{ShardLimit: ShardLimit(cfg.Leases)}})
		if err != nil {
			return Result{}, err
		}
		defer func() { _ = en.Close() }()
		e = local{en}
	}
	if cfg.Engine != nil {
		cfg.Engine(e)
	}
	if err := e.CreateStream(stream, cfg.Leases); err != nil {
		return Result{}, err
	}
	r := &run{cfg: cfg, e: e, kin: kinesis.NewFromConfig(e.AWSConfig()), open: cfg.Leases,
		tr: &tracker{procs: map[string][]*proc{}, dead: map[int]bool{}, pending: map[string]time.Time{}, ended: map[string]time.Time{}}}
	var err error
	if r.store, err = lease.NewStore(dynamodb.NewFromConfig(e.AWSConfig()), lease.DefaultTables(app)); err != nil {
		return Result{}, err
	}
	r.res = Result{Leases: cfg.Leases, Workers: cfg.Workers, FailoverTimeS: cfg.FailoverTime.Seconds(),
		AssignIntervalS: assignInterval(cfg.FailoverTime).Seconds()}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go r.produce(ctx)
	go r.watchLeaders(ctx)
	defer r.stopAll()
	err = r.phases(ctx)
	r.tr.mu.Lock()
	r.res.LeaseMoves, r.res.DoubleProcessing = r.tr.moves, r.tr.double
	f := slices.Clone(r.tr.failovers)
	nw := min(r.beforeLeader, len(f))
	r.tr.mu.Unlock()
	if fw := slices.Sorted(slices.Values(f[:nw])); len(fw) > 0 {
		r.res.FailoverWorkersP99S = pct(fw, 0.99)
	}
	slices.Sort(f)
	if len(f) > 0 {
		r.res.FailoverP50S, r.res.FailoverP99S, r.res.FailoverMaxS = pct(f, 0.5), pct(f, 0.99), f[len(f)-1].Seconds()
	}
	r.res.FailoverSamples = len(f)
	r.res.MaxLeaders = int(r.leaders.Load())
	r.res.RecordsDelivered = r.tr.delivered.Load()
	r.res.WallS = time.Since(start).Seconds()
	return r.res, err
}

// assignInterval is the consumer's default assignment interval.
func assignInterval(failover time.Duration) time.Duration {
	return max(20*time.Millisecond, failover/20)
}

func pct(sorted []time.Duration, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)].Seconds()
}

func (r *run) phases(ctx context.Context) error {
	cfg := r.cfg
	t0 := time.Now()
	for i := 0; i < cfg.Workers; i++ {
		if err := r.add(); err != nil {
			return err
		}
	}
	// Convergence, and the leader's first plan.
	var firstPlan time.Time
	conv, err := r.until(ctx, "converge", func() bool {
		if firstPlan.IsZero() {
			for _, m := range r.live() {
				if rd, ok := m.w.LastAssignment(); ok && len(rd.Applied) > 0 {
					firstPlan = time.Now()
				}
			}
		}
		return r.fair()
	})
	if err != nil {
		return err
	}
	r.res.FirstPlanS = firstPlan.Sub(t0).Seconds()
	r.res.ConvergeS = conv.Sub(t0).Seconds()
	r.res.ConvergeRounds = conv.Sub(firstPlan).Seconds() / assignInterval(cfg.FailoverTime).Seconds()
	cfg.Progress(fmt.Sprintf("converged in %.1f s (first plan at %.1f s)", r.res.ConvergeS, r.res.FirstPlanS))

	// Steady state: DynamoDB consumption, once the last moves' leases are taken up and
	// the workers' start-up discovery is over (a worker queries the owner index every
	// assignment interval for twice the failover time after it starts; docs/lease-cost.md,
	// "Discovery hints").
	_ = clock.Sleep(ctx, nil, max(cfg.FailoverTime/2, time.Until(t0.Add(2*cfg.FailoverTime+assignInterval(cfg.FailoverTime)))))
	r0, w0, by0, err := r.consumed()
	if err != nil {
		return err
	}
	s0 := time.Now()
	_ = clock.Sleep(ctx, nil, cfg.Steady)
	r1, w1, by1, err := r.consumed()
	if err != nil {
		return err
	}
	secs := time.Since(s0).Seconds()
	r.res.DDBReadUnitsPerS, r.res.DDBWriteUnitsPerS = (r1-r0)/secs, (w1-w0)/secs
	r.res.DDBReadUnitsPerSByOp = map[string]float64{}
	for op, v := range by1 {
		r.res.DDBReadUnitsPerSByOp[op] = (v - by0[op]) / secs
	}
	cfg.Progress(fmt.Sprintf("steady: %.1f read units/s, %.1f write units/s", r.res.DDBReadUnitsPerS, r.res.DDBWriteUnitsPerS))

	// 10% join, one more is killed as soon as it holds a lease (right after being
	// assigned) and another soon after joining (before any lease).
	k := max(1, cfg.Workers/10)
	tAdd := time.Now()
	for i := 0; i < k; i++ {
		if err := r.add(); err != nil {
			return err
		}
	}
	if err := r.add(); err != nil {
		return err
	}
	assigned := r.last()
	if err := r.add(); err != nil {
		return err
	}
	joined := r.last()
	go func() {
		deadline := time.Now().Add(cfg.Timeout)
		for time.Now().Before(deadline) && ctx.Err() == nil && len(assigned.w.HeldLeases()) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		r.kill(assigned)
	}()
	go func() {
		_ = clock.Sleep(ctx, nil, cfg.FailoverTime/4+100*time.Millisecond) // right after its second report
		r.kill(joined)
	}()
	added, err := r.until(ctx, "rebalance after join", func() bool { return assigned.dead.Load() && joined.dead.Load() && r.fair() })
	if err != nil {
		return err
	}
	r.res.RebalanceAddS = added.Sub(tAdd).Seconds()
	cfg.Progress(fmt.Sprintf("rebalanced after %d joined in %.1f s", k, r.res.RebalanceAddS))

	// 10% killed (never the leader).
	var victims []*member
	for _, m := range r.live() {
		if len(victims) < k && !m.w.IsLeader() {
			victims = append(victims, m)
		}
	}
	tKill := time.Now()
	var lost []string
	for _, m := range victims {
		lost = append(lost, r.kill(m)...)
	}
	removed, err := r.until(ctx, "rebalance after kills", func() bool { return r.tr.waiting(lost) == 0 && r.fair() })
	if err != nil {
		return err
	}
	r.res.RebalanceRemoveS = removed.Sub(tKill).Seconds()
	cfg.Progress(fmt.Sprintf("rebalanced after %d killed in %.1f s", k, r.res.RebalanceRemoveS))

	// A shard ends while a leader lives: its children start.
	if err := r.split(ctx); err != nil {
		return err
	}

	// The leader dies.
	var leader *member
	for _, m := range r.live() {
		if m.w.IsLeader() {
			leader = m
		}
	}
	if leader == nil {
		return errors.New("fleet: no leader")
	}
	r.tr.mu.Lock()
	r.beforeLeader = len(r.tr.failovers)
	r.tr.mu.Unlock()
	tLead := time.Now()
	theirs := r.kill(leader)
	next, err := r.until(ctx, "leader failover", func() bool {
		for _, m := range r.live() {
			if m.w.IsLeader() {
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	r.res.LeaderFailoverS = next.Sub(tLead).Seconds()
	if _, err := r.until(ctx, "dead leader's leases", func() bool { return r.tr.waiting(theirs) == 0 }); err != nil {
		return err
	}
	r.res.LeaderLeasesFailoverS = r.tr.lastStart(theirs).Sub(tLead).Seconds()
	cfg.Progress(fmt.Sprintf("leader failover %.1f s, its leases %.1f s", r.res.LeaderFailoverS, r.res.LeaderLeasesFailoverS))
	return nil
}

// split splits the shard of one lease at the middle of its hash key range and measures
// from the parent's end to both children processed.
func (r *run) split(ctx context.Context) error {
	first, err := r.kin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream), MaxResults: aws.Int32(1),
		ShardFilter: &ktypes.ShardFilter{Type: ktypes.ShardFilterTypeAtLatest}})
	if err != nil {
		return err
	}
	if len(first.Shards) == 0 {
		return errors.New("fleet: no open shard to split")
	}
	parent := first.Shards[0]
	rng, err := hashkey.ParseRange(aws.ToString(parent.HashKeyRange.StartingHashKey), aws.ToString(parent.HashKeyRange.EndingHashKey))
	if err != nil {
		return err
	}
	if _, err := r.kin.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: parent.ShardId,
		NewStartingHashKey: aws.String(rng.Midpoint().Add1().String())}); err != nil {
		return err
	}
	r.open++
	var children []string
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		page, err := r.kin.ListShards(ctx, in)
		if err != nil {
			return err
		}
		for _, s := range page.Shards {
			if aws.ToString(s.ParentShardId) == aws.ToString(parent.ShardId) {
				children = append(children, aws.ToString(s.ShardId))
			}
		}
		if page.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
	if len(children) != 2 {
		return fmt.Errorf("fleet: split of %s made %v", aws.ToString(parent.ShardId), children)
	}
	parentID := aws.ToString(parent.ShardId)
	_, err = r.until(ctx, "children start", func() bool {
		r.tr.mu.Lock()
		defer r.tr.mu.Unlock()
		_, ended := r.tr.ended[parentID]
		return ended && len(r.tr.procs[children[0]]) > 0 && len(r.tr.procs[children[1]]) > 0
	})
	if err != nil {
		return err
	}
	r.tr.mu.Lock()
	ended := r.tr.ended[parentID]
	r.tr.mu.Unlock()
	r.res.ChildrenStartS = r.tr.lastStart(children).Sub(ended).Seconds()
	r.cfg.Progress(fmt.Sprintf("children of an ended shard started %.2f s after its end", r.res.ChildrenStartS))
	return nil
}

// add starts one more worker.
func (r *run) add() error {
	r.mu.Lock()
	idx := len(r.members)
	r.mu.Unlock()
	cfg := r.cfg
	factory := func(s consumer.ShardInfo) (consumer.Processor, error) {
		return &trackedProcessor{tr: r.tr, key: s.LeaseKey, worker: idx}, nil
	}
	aws := r.e.AWSConfig()
	w, err := consumer.New(app, kinesis.NewFromConfig(aws), dynamodb.NewFromConfig(aws), factory,
		consumer.WithStream(stream, consumer.TrimHorizon()), consumer.WithWorkerID(fmt.Sprintf("worker-%03d", idx)),
		consumer.WithFailoverTime(cfg.FailoverTime), consumer.WithCPUMetrics(false), consumer.WithPolling(1000, 1, cfg.IdleTime),
		consumer.WithShutdownTimeout(5*time.Second), consumer.WithLogger(cfg.Logger))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{idx: idx, w: w, cancel: cancel, done: make(chan error, 1)}
	r.mu.Lock()
	r.members = append(r.members, m)
	r.mu.Unlock()
	go func() { m.done <- w.Run(ctx) }()
	return nil
}

// kill aborts m as if its process died, and returns the leases it was processing.
func (r *run) kill(m *member) []string {
	if m.dead.Swap(true) {
		return nil
	}
	at := time.Now()
	m.w.Abort()
	var keys []string
	leases, err := r.store.List(context.Background())
	if err != nil {
		r.cfg.Progress(fmt.Sprintf("listing leases: %v", err))
	}
	for i := range leases {
		l := &leases[i]
		if (l.Owner == m.w.ID() || l.CheckpointOwner == m.w.ID()) && !l.Checkpoint.IsShardEnd() {
			keys = append(keys, l.Key)
		}
	}
	r.tr.killed(m.idx, at, keys)
	return keys
}

// last returns the worker added last.
func (r *run) last() *member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.members[len(r.members)-1]
}

func (r *run) live() []*member {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*member
	for _, m := range r.members {
		if !m.dead.Load() {
			out = append(out, m)
		}
	}
	return out
}

// fair reports whether every live worker holds within one lease of its fair share of the
// open leases, and records the largest holding.
func (r *run) fair() bool {
	ms := r.live()
	open := r.open
	share := float64(open) / float64(len(ms))
	total := 0
	ok := true
	for _, m := range ms {
		n := len(m.w.HeldLeases())
		total += n
		r.res.MaxLeasesPerWorker = max(r.res.MaxLeasesPerWorker, n)
		if math.Abs(float64(n)-share) > 1 {
			ok = false
		}
	}
	return ok && total >= open
}

// until polls cond every 20 ms until it holds, and returns when it first held.
func (r *run) until(ctx context.Context, what string, cond func() bool) (time.Time, error) {
	deadline := time.Now().Add(r.cfg.Timeout)
	for {
		if cond() {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			var held []int
			for _, m := range r.live() {
				held = append(held, len(m.w.HeldLeases()))
			}
			return time.Time{}, fmt.Errorf("fleet: %s not reached within %v (leases held by the live workers: %v; %s)", what, r.cfg.Timeout, held, r.leaderView())
		}
		if clock.Sleep(ctx, nil, 20*time.Millisecond) != nil {
			return time.Time{}, ctx.Err()
		}
	}
}

// leaderView describes the live leader's last round, for failure messages.
func (r *run) leaderView() string {
	for _, m := range r.live() {
		if rd, ok := m.w.LastAssignment(); ok && m.w.IsLeader() {
			return fmt.Sprintf("leader %s: basis %v, %d live, %d moves planned, %d applied, warming up %v, load %v",
				m.w.ID(), rd.Plan.Basis, rd.Live, len(rd.Plan.Moves), len(rd.Applied), rd.WarmingUp, rd.Plan.Load)
		}
	}
	return "no live leader"
}

// watchLeaders records the most live workers leading at once.
func (r *run) watchLeaders(ctx context.Context) {
	for clock.Sleep(ctx, nil, 10*time.Millisecond) == nil {
		n := int32(0)
		for _, m := range r.live() {
			if m.w.IsLeader() {
				n++
			}
		}
		if n > r.leaders.Load() {
			r.leaders.Store(n)
		}
	}
}

// produce puts 100-byte records with random partition keys at the configured rate.
func (r *run) produce(ctx context.Context) {
	k := r.kin
	const tick = 100 * time.Millisecond
	per := r.cfg.RecordsPerSecond * tick.Seconds()
	carry := 0.0
	data := make([]byte, 100)
	for clock.Sleep(ctx, nil, tick) == nil {
		carry += per
		n := int(carry)
		carry -= float64(n)
		for n > 0 {
			batch := min(n, 500)
			n -= batch
			entries := make([]ktypes.PutRecordsRequestEntry, batch)
			for i := range entries {
				entries[i] = ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(strconv.FormatUint(rand.Uint64(), 36)), Data: data}
			}
			_, _ = k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		}
	}
}

// consumed returns the read and write units the fleet's tables consumed so far, and the
// read units by operation.
func (r *run) consumed() (read, write float64, byOp map[string]float64, err error) {
	tables := lease.DefaultTables(app)
	u, err := r.e.Usage()
	if err != nil {
		return 0, 0, nil, err
	}
	byOp = map[string]float64{}
	for _, name := range []string{tables.Lease, tables.CoordinatorState, tables.WorkerMetrics} {
		c := u.Tables[name]
		read += c.ReadUnits
		write += c.WriteUnits
		for op, v := range c.ReadsByOperation {
			byOp[op] += v
		}
	}
	return read, write, byOp, nil
}

// stopAll shuts the live workers down gracefully and waits for every worker.
func (r *run) stopAll() {
	r.mu.Lock()
	ms := slices.Clone(r.members)
	r.mu.Unlock()
	for _, m := range ms {
		m.cancel()
	}
	for _, m := range ms {
		<-m.done
	}
}
