package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/consumer/internal/fetch"
	"github.com/freshet/freshet/internal/retrypolicy"
	"github.com/freshet/freshet/lease"
)

// Sentinel errors of a Worker.
var (
	// ErrRunning is returned by Run when the worker is already running.
	ErrRunning = errors.New("consumer: worker already running")
	// ErrClosed is returned by Run on a worker that has stopped.
	ErrClosed = errors.New("consumer: worker stopped")
)

// KinesisAPI is the part of *kinesis.Client a Worker uses.
type KinesisAPI interface {
	fetch.PollingAPI
	fetch.ConsumerAPI
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)
}

// DynamoDBAPI is the part of *dynamodb.Client a Worker uses for its lease,
// coordinator-state and worker-metrics tables (package lease's interface).
type DynamoDBAPI = lease.DynamoDBAPI

// streamInfo is one consumed stream, resolved.
type streamInfo struct {
	Stream
	arn         string
	identifier  string // account:stream:creationEpoch
	consumerARN string
	auto        bool // AUTO record distribution when resolved
}

// running is the shard consumer of one held lease.
type running struct {
	key      string
	consumer *shardConsumer
	done     chan struct{}
}

// renewal is the last successful renewal of a held lease on this worker's clock.
type renewal struct {
	term uint64 // the term of the held lease renewed (lease.Held.Term)
	sent time.Time
}

// Worker consumes the shards of one or more streams together with the other workers of
// the same application, in the Java KCL 3.x model: one worker, elected through the
// coordinator-state table, is the leader; it creates leases for new shards and assigns
// leases to workers (unassigned and expired ones outright, and for rebalancing by
// graceful handoff); every worker renews the leases it holds, discovers the leases
// assigned to it, and runs a shard consumer for each. A worker fences itself: it
// processes nothing once its last successful worker-metrics write started a failover
// time ago, which lets the leader take a silent worker's leases from its row alone
// (lease.WithSelfFence).
type Worker struct {
	cfg config
	kin KinesisAPI
	// cbor is on while GetRecords goes out in CBOR; the first undecodable CBOR
	// response turns it off for every shard of the worker.
	cbor    atomic.Bool
	store   *lease.Store
	factory ProcessorFactory
	metrics Metrics
	log     *zap.Logger

	coord    *lease.Coordinator
	elector  *lease.LeaderElector
	assigner *lease.Assigner
	reporter *lease.Reporter
	meter    *lease.ThroughputMeter
	budget   *fetch.Budget

	runMu   sync.Mutex
	started bool

	mu           sync.Mutex
	streams      []*streamInfo
	consumers    map[string]*running
	renewed      map[string]renewal
	shuttingDown bool
	hard         context.Context
	abort        context.CancelFunc

	syncNow   chan struct{}
	reconcile chan struct{}
	renewNow  chan struct{}
	// leadNow wakes the assignment loop when this worker becomes the leader;
	// discoverNow wakes the lease loop when the leader assigned this worker a lease.
	leadNow     chan struct{}
	discoverNow chan struct{}
	consWG      sync.WaitGroup
	// lastRound is the leader's last assignment round (nil until this worker led one).
	lastRound atomic.Pointer[lease.Round]
}

// New returns a Worker for application app: it reads the configured streams (WithStream,
// at least one) with kin, keeps its leases, leader lock and worker metrics in DynamoDB
// through ddb, in Java KCL 3.x's tables and item formats (named after the application, or
// WithLeaseTable; in the layout Java KCL 3.5 would use, found when Run starts, unless
// WithLeaseTables fixes it; created on first Run), and creates a processor per shard
// with factory.
// Options are validated here; bad ones fail with an error wrapping ErrInvalidOption.
func New(app string, kin KinesisAPI, ddb DynamoDBAPI, factory ProcessorFactory, opts ...Option) (*Worker, error) {
	cfg := defaultConfig()
	cfg.application = app
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if kin == nil || ddb == nil || factory == nil {
		return nil, fmt.Errorf("%w: Kinesis client, DynamoDB client and processor factory are required", ErrInvalidOption)
	}
	if err := cfg.checkDestinations(); err != nil {
		return nil, err
	}
	if cfg.workerID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.workerID = app + "-" + hex.EncodeToString(b[:])
	}
	w := &Worker{cfg: cfg, kin: kin, factory: factory, metrics: cfg.metrics, log: cfg.logger,
		consumers: map[string]*running{}, renewed: map[string]renewal{},
		syncNow: make(chan struct{}, 1), reconcile: make(chan struct{}, 1), renewNow: make(chan struct{}, 1),
		leadNow: make(chan struct{}, 1), discoverNow: make(chan struct{}, 1)}
	w.cbor.Store(cfg.cbor)
	if w.metrics == nil {
		w.metrics = nopMetrics{}
	}
	var err error
	sopts := []lease.Option{lease.WithClock(cfg.clock), lease.WithLogger(cfg.logger),
		lease.WithTablePollInterval(100 * time.Millisecond)}
	if !cfg.fixedLayout {
		sopts = append(sopts, lease.WithLayoutDetection())
	}
	if w.store, err = lease.NewStore(ddb, cfg.tables, sopts...); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	w.meter = lease.NewThroughputMeter(cfg.clock)
	w.budget = fetch.NewBudget(cfg.maxPrefetchedBytes)
	if w.coord, err = lease.NewCoordinator(w.store, cfg.workerID, lease.WithFailoverTime(cfg.failoverTime),
		lease.WithHandoffTimeout(cfg.handoffTimeout), lease.WithClock(cfg.clock),
		lease.WithLogger(cfg.logger), lease.WithThroughputMeter(w.meter)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	ropts := []lease.Option{lease.WithClock(cfg.clock), lease.WithLogger(cfg.logger), lease.WithSelfFence(cfg.failoverTime),
		lease.WithReportIntervals(min(time.Second, cfg.reportInterval()), cfg.reportInterval())}
	if cfg.cpuMetrics {
		if s, err := lease.NewCPUSampler(nil, cfg.clock); err == nil {
			ropts = append(ropts, lease.WithCPUSampler(s))
		} else {
			cfg.logger.Info("consumer: no CPU accounting; the leader balances by throughput", zap.Error(err))
		}
	}
	if w.reporter, err = lease.NewReporter(w.store, cfg.workerID, ropts...); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	// The leader fences itself on its heartbeats too, so that a new leader takes its
	// leases when it takes the lock, not a failover time later.
	if w.elector, err = lease.NewLeaderElector(w.store, cfg.workerID, lease.WithLeaderLeaseDuration(cfg.leaderLockDuration(), cfg.renewInterval),
		lease.WithClock(cfg.clock), lease.WithLogger(cfg.logger), lease.WithLeaderFence(w.reporter)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	if w.assigner, err = lease.NewAssigner(w.store, lease.WithClock(cfg.clock), lease.WithLogger(cfg.logger),
		lease.WithFailoverTime(cfg.failoverTime), lease.WithHandoffTimeout(cfg.handoffTimeout),
		lease.WithPlan(cfg.plan, max(1, int(cfg.rebalanceInterval/cfg.assignInterval))),
		lease.WithLiveness(cfg.livenessWindow(), cfg.confirmWindow()), lease.WithLeaseScanInterval(cfg.leaseScanInterval),
		lease.WithLeaderElector(w.elector)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	return w, nil
}

// ID returns the worker's identifier in the lease table.
func (w *Worker) ID() string { return w.cfg.workerID }

// HeldLeases returns the keys of the leases the worker holds, sorted.
func (w *Worker) HeldLeases() []string {
	hs := w.coord.Held()
	keys := make([]string, 0, len(hs))
	for _, h := range hs {
		keys = append(keys, h.Lease.Key)
	}
	return keys
}

// LastAssignment returns the last assignment round this worker ran as the leader: the
// plan's basis (CPU, throughput or lease count), each worker's projected load in that
// basis, the mean lease throughput it saw and the moves applied. ok is false when the
// worker has not led a round yet.
func (w *Worker) LastAssignment() (r lease.Round, ok bool) {
	if p := w.lastRound.Load(); p != nil {
		return *p, true
	}
	return lease.Round{}, false
}

// IsLeader reports whether the worker currently holds the leader lock.
func (w *Worker) IsLeader() bool { return w.elector.IsLeader() }

// Abort stops the worker at once, as if its process died: no processor is told, no
// checkpoint is taken and no lease or lock is released, so the leader reassigns its
// shards after the failover time. It is meant for failover drills and tests; Run returns
// once the worker's goroutines have stopped.
func (w *Worker) Abort() {
	w.mu.Lock()
	cancel := w.abort
	w.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Run consumes until ctx ends, then shuts down gracefully: fetching stops, each
// processor gets ShutdownRequested and may checkpoint, and the leases and the leader lock
// are released, all within the shutdown timeout. It returns nil after a graceful
// shutdown or an Abort, or the error that stopped the worker (creating the tables,
// resolving the streams or registering the stream consumer). A Worker runs once: Run
// returns ErrRunning while it runs and ErrClosed afterwards.
func (w *Worker) Run(ctx context.Context) error {
	w.runMu.Lock()
	if w.started {
		w.runMu.Unlock()
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.hard != nil && w.hard.Err() == nil {
			return ErrRunning
		}
		return ErrClosed
	}
	w.started = true
	// hard lives until the shutdown deadline (or Abort); ctx only starts the shutdown.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	w.mu.Lock()
	w.abort, w.hard = cancelHard, hard
	w.mu.Unlock()
	w.runMu.Unlock()
	defer cancelHard()

	setup, cancelSetup := context.WithCancel(hard)
	stop := context.AfterFunc(ctx, cancelSetup)
	err := w.setup(setup)
	stop()
	cancelSetup()
	if err != nil {
		if hard.Err() != nil || ctx.Err() != nil {
			return nil
		}
		return err
	}

	loops, stopLoops := context.WithCancel(hard)
	defer stopLoops()
	var wg sync.WaitGroup
	wg.Add(5)
	go func() { defer wg.Done(); w.leaseLoop(hard, loops) }()
	elected := make(chan struct{})
	go func() { defer wg.Done(); defer close(elected); w.electionLoop(loops) }()
	go func() { defer wg.Done(); w.leaderLoop(loops) }()
	go func() { defer wg.Done(); w.syncLoop(loops) }()
	go func() { defer wg.Done(); _ = w.reporter.Run(loops) }()

	select {
	case <-ctx.Done():
	case <-hard.Done():
	}
	aborted := hard.Err() != nil
	w.mu.Lock()
	w.shuttingDown = true
	w.mu.Unlock()
	stopLoops()
	if !aborted {
		// The leader lock goes first, once the election loop's last tick returned:
		// another worker leads while the shard consumers stop, and the leader's fence
		// on its heartbeats (lease.WithLeaderFence) does not cut their shutdown short.
		<-elected
		rctx, cancel := context.WithTimeout(hard, w.cfg.shutdownTimeout)
		if err := w.elector.Release(rctx); err != nil {
			w.log.Debug("consumer: releasing the leader lock failed", zap.Error(err))
		}
		cancel()
		w.shutdown(hard)
	}
	cancelHard()
	wg.Wait()
	w.consWG.Wait()
	w.log.Info("consumer: worker stopped", zap.String("worker", w.cfg.workerID), zap.Bool("aborted", aborted))
	return nil
}

// setup creates the tables and resolves the streams.
func (w *Worker) setup(ctx context.Context) error {
	if err := w.store.CreateTables(ctx, w.cfg.tableSettings); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	return w.resolveStreams(ctx)
}

// shutdown asks every shard consumer to stop, waits for them within the shutdown
// timeout (they release their leases as they stop), then releases what is left and
// deletes the worker's metrics row. Run has released the leader lock before.
func (w *Worker) shutdown(hard context.Context) {
	deadline, cancel := context.WithTimeout(hard, w.cfg.shutdownTimeout)
	defer cancel()
	w.mu.Lock()
	rs := make([]*running, 0, len(w.consumers))
	for _, r := range w.consumers {
		rs = append(rs, r)
	}
	w.mu.Unlock()
	for _, r := range rs {
		r.consumer.requestShutdown()
	}
	for _, r := range rs {
		select {
		case <-r.done:
		case <-deadline.Done():
			w.log.Warn("consumer: shutdown timeout reached; leases left to expire", zap.String("worker", w.cfg.workerID))
			return
		}
	}
	for _, h := range w.coord.Held() {
		w.release(deadline, h.Lease.Key)
	}
	if err := w.store.DeleteWorkerMetrics(deadline, w.cfg.workerID); err != nil {
		w.log.Debug("consumer: deleting worker metrics failed", zap.Error(err))
	}
}

// release gives up a held lease, retrying transient failures a few times. A lease that
// cannot be released expires and is reassigned after the failover time.
func (w *Worker) release(ctx context.Context, key string) {
	w.mu.Lock()
	delete(w.renewed, key)
	w.mu.Unlock()
	err := w.coord.Release(ctx, key)
	for attempt := 0; err != nil && !errors.Is(err, lease.ErrLeaseLost) && attempt < 4 && ctx.Err() == nil; attempt++ {
		if clock.Sleep(ctx, w.cfg.clock, w.cfg.retryBase<<attempt) != nil {
			break
		}
		err = w.store.Release(ctx, key, w.cfg.workerID)
	}
	if err != nil {
		w.log.Debug("consumer: releasing lease failed", zap.String("lease", key), zap.Error(err))
	}
}

// resolveStreams finds each stream's ARN and identifier and registers the fan-out
// consumer when configured.
func (w *Worker) resolveStreams(ctx context.Context) error {
	var out []*streamInfo
	for _, s := range w.cfg.streams {
		si := &streamInfo{Stream: s}
		var d *kinesis.DescribeStreamSummaryOutput
		err := retry(ctx, w.cfg, func() error {
			var err error
			d, err = w.kin.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.Name)})
			return err
		})
		if err != nil {
			return fmt.Errorf("consumer: describe stream %s: %w", s.Name, err)
		}
		sd := d.StreamDescriptionSummary
		si.arn = aws.ToString(sd.StreamARN)
		si.auto = sd.RecordDistributionStrategy == types.RecordDistributionStrategyAuto
		account := "000000000000"
		if parts := strings.Split(si.arn, ":"); len(parts) >= 5 && parts[4] != "" {
			account = parts[4]
		}
		epoch := int64(0)
		if sd.StreamCreationTimestamp != nil {
			epoch = sd.StreamCreationTimestamp.Unix()
		}
		si.identifier = account + ":" + s.Name + ":" + strconv.FormatInt(epoch, 10)
		if w.cfg.retrieval == FanOut {
			arn, err := fetch.RegisterConsumer(ctx, w.kin, w.cfg.clock, si.arn, w.cfg.consumerName, time.Second)
			if err != nil {
				return fmt.Errorf("consumer: %w", err)
			}
			si.consumerARN = arn
		}
		out = append(out, si)
	}
	w.mu.Lock()
	w.streams = out
	w.mu.Unlock()
	return nil
}

// retry calls f until it succeeds, fails 9 times or ctx ends.
func retry(ctx context.Context, cfg config, f func() error) error {
	b := retrypolicy.Backoff{Min: cfg.retryBase, Max: cfg.retryMax}
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil || ctx.Err() != nil || attempt >= 8 {
			return err
		}
		if clock.Sleep(ctx, cfg.clock, b.Delay(attempt)) != nil {
			return ctx.Err()
		}
	}
}

// shardOfKey returns the shard ID of a lease key of stream s; false when the key belongs
// to another stream.
func (w *Worker) shardOfKey(s *streamInfo, key string) (string, bool) {
	if !w.cfg.multiStream {
		return key, true
	}
	ident, shard, err := lease.ParseMultiStreamKey(key)
	if err != nil || ident != s.identifier {
		return "", false
	}
	return shard, true
}

// streamOf finds the stream and shard of a lease key; nil when the key belongs to a
// stream this worker does not consume.
func (w *Worker) streamOf(key string) (*streamInfo, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.streams {
		if id, ok := w.shardOfKey(s, key); ok {
			return s, id
		}
	}
	return nil, ""
}

func (w *Worker) requestSync() { signal(w.syncNow) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// leaseLoop renews the held leases every renew interval and discovers the leases the
// leader assigned to this worker every assignment interval, in one goroutine so that
// each lease's last renewal is known exactly; it starts and stops shard consumers as the
// set of held leases changes. Renewal goes on until hard ends, so leases stay held while
// processors finish during a graceful shutdown; discovery stops with loops.
func (w *Worker) leaseLoop(hard, loops context.Context) {
	nextRenew := w.cfg.clock.Now()
	var d discovery
	d.fast(nextRenew, 2*w.cfg.failoverTime) // a worker that starts expects leases soon
	for {
		if now := w.cfg.clock.Now(); !now.Before(nextRenew) {
			// Paced from the start of a round, so a slow round does not delay the next.
			nextRenew = now.Add(w.cfg.renewInterval)
			w.renewAll(hard)
		}
		live := w.reporter.Live()
		if loops.Err() == nil && live && d.due(w) {
			t0 := w.cfg.clock.Now()
			moved, err := w.coord.Discover(loops)
			if took := w.cfg.clock.Since(t0); took > w.cfg.renewInterval {
				w.log.Warn("consumer: lease discovery slow", zap.Duration("took", took))
			}
			if err != nil && loops.Err() == nil {
				w.log.Debug("consumer: lease discovery failed", zap.Error(err))
			}
			switch {
			case w.unrenewed():
				// A newly assigned lease is renewed at once: its consumer starts only after
				// a renewal this worker timed itself.
				w.renewAll(hard)
			case moved && w.cfg.clock.Since(nextRenew.Add(-w.cfg.renewInterval)) >= w.cfg.assignInterval:
				// The leader handed a lease to another worker (or it was taken): renew now
				// to learn which, instead of at the next renewal. The handoff then takes
				// an assignment interval, not a renewal interval.
				w.renewAll(hard)
			}
		}
		if !live {
			// Fenced: its leases may have moved meanwhile; once live again it looks for
			// new ones at the assignment interval for a while.
			d.fast(w.cfg.clock.Now(), w.cfg.failoverTime/2)
		}
		w.reconcileLeases()
		wait := w.cfg.assignInterval
		if loops.Err() != nil {
			wait = w.cfg.renewInterval
		}
		select {
		case <-hard.Done():
			return
		case <-w.cfg.clock.After(max(0, min(wait, nextRenew.Sub(w.cfg.clock.Now())))):
		case <-w.coord.Changed():
		case <-w.reconcile:
		case <-w.discoverNow:
			d.poked = true
		case <-w.reporter.Hinted():
		case <-w.renewNow:
			nextRenew = w.cfg.clock.Now()
		}
	}
}

// discovery decides when the lease loop queries the owner index (docs/lease-cost.md,
// "Discovery hints"). A Freshet leader leaves a hint in a worker's metrics row when it
// gives the worker leases, asks it to hand one off, or expects to give it a silent
// worker's leases; the worker's next report returns the hint at no read cost. The loop
// therefore queries the index only when a hint came, when the leader asked this worker
// itself (it leads), for a while after a hint, after starting or after being fenced,
// while a lease assigned to it is still being handed over by its previous owner, every
// assignment interval while the leader leaves no hints (a Java leader), and otherwise
// every discovery fallback interval.
type discovery struct {
	// fastUntil is when the loop returns to querying only on hints.
	fastUntil time.Time
	// last is when the index was last queried.
	last time.Time
	// poked is set when this worker, leading, assigned itself a lease.
	poked bool
}

// fast makes the loop query every assignment interval until at least now + d.
func (d *discovery) fast(now time.Time, dur time.Duration) {
	if until := now.Add(dur); until.After(d.fastUntil) {
		d.fastUntil = until
	}
}

// due reports whether the loop queries the owner index now, taking the hints the
// worker's reports returned, and if so records the query.
func (d *discovery) due(w *Worker) bool {
	now := w.cfg.clock.Now()
	h := w.reporter.TakeHint()
	if h.Assigned {
		// The leader places leases over several rounds: later ones come within an
		// assignment interval rather than a report interval.
		d.fast(now, w.cfg.failoverTime/2)
	}
	if h.Expect > 0 {
		// The report may have returned the hint up to a report interval after it was
		// written, so the take comes within Expect of now, or a little after.
		d.fast(now, h.Expect+4*w.cfg.assignInterval)
	}
	due := h.Assigned || h.Expect > 0 || d.poked || now.Before(d.fastUntil) || w.coord.Awaiting() ||
		!w.elector.LeaderHints() || now.Sub(d.last) >= w.cfg.discoveryFallback()
	if due {
		d.last, d.poked = now, false
	}
	return due
}

// unrenewed reports whether a held lease has no renewal timed by this worker yet.
func (w *Worker) unrenewed() bool {
	hs := w.coord.Held()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range hs {
		if r, ok := w.renewed[h.Lease.Key]; !ok || r.term != h.Term {
			return true
		}
	}
	return false
}

// renewAll renews every held lease and records, for each one renewed, when the renewal
// was sent: other workers cannot consider the lease expired before the failover time has
// passed since then.
func (w *Worker) renewAll(ctx context.Context) {
	if !w.reporter.Live() {
		// Fenced: its leases may be another worker's by now. It processes nothing, and
		// renews only once a metrics write succeeds again, so only renewals sent after
		// that prove a lease still its own.
		return
	}
	before := map[string]int64{}
	for _, h := range w.coord.Held() {
		before[h.Lease.Key] = h.Lease.Counter
	}
	sent := w.cfg.clock.Now()
	if err := w.coord.RenewAll(ctx); err != nil && ctx.Err() == nil {
		w.metrics.Record(MetricLeaseRenewFailure, UnitCount, 1, w.workerDim())
		w.log.Debug("consumer: renewing leases failed", zap.Error(err))
	}
	if took := w.cfg.clock.Since(sent); took > w.cfg.renewInterval {
		w.log.Warn("consumer: lease renewal slow", zap.Duration("took", took), zap.Int("leases", len(before)))
	}
	after := w.coord.Held()
	var lost []*running
	w.mu.Lock()
	for _, h := range after {
		if c, ok := before[h.Lease.Key]; ok && c != h.Lease.Counter {
			w.renewed[h.Lease.Key] = renewal{term: h.Term, sent: sent}
		}
		delete(before, h.Lease.Key)
	}
	// Leases held before and not after were lost (another worker was given them): their
	// consumers stop now, before discovery can see the lease assigned here again.
	for key := range before {
		delete(w.renewed, key)
		if r := w.consumers[key]; r != nil {
			lost = append(lost, r)
		}
	}
	w.mu.Unlock()
	for _, r := range lost {
		r.consumer.leaseLost()
	}
	w.metrics.Record(MetricLeasesHeld, UnitCount, float64(len(after)), w.workerDim())
}

func (w *Worker) workerDim() Dimension {
	return Dimension{Name: "WorkerIdentifier", Value: w.cfg.workerID}
}

// isHeld reports whether the lease key is held, its last renewal was sent less than the
// failover time ago (until then no leader can have found its counter expired) and the
// worker's self-fence permits it (until then no leader can have found its worker-metrics
// row silent; see lease.WithSelfFence).
func (w *Worker) isHeld(key string) bool {
	w.mu.Lock()
	r, ok := w.renewed[key]
	w.mu.Unlock()
	return ok && w.cfg.clock.Since(r.sent) < w.cfg.failoverTime && w.reporter.Permits(r.sent)
}

// reconcileLeases starts a shard consumer for each lease held for processing, asks the
// consumers of leases being handed off to stop (they release the lease once their
// processor has checkpointed), and tells the consumers of leases no longer held that
// they lost them.
func (w *Worker) reconcileLeases() {
	hs := w.coord.Held()
	held := make(map[string]bool, len(hs))
	var toRelease []string
	var toStart []lease.Held
	w.mu.Lock()
	down := w.shuttingDown
	for _, h := range hs {
		key := h.Lease.Key
		held[key] = true
		r := w.consumers[key]
		switch h.State {
		case lease.HandoffRequested:
			if r != nil {
				r.consumer.requestHandoff()
			} else {
				toRelease = append(toRelease, key)
			}
		default:
			rn, ok := w.renewed[key]
			if r == nil && !down && ok && rn.term == h.Term {
				toStart = append(toStart, h)
			}
		}
	}
	var lost []*running
	for key, r := range w.consumers {
		if !held[key] {
			lost = append(lost, r)
		}
	}
	w.mu.Unlock()
	for _, r := range lost {
		r.consumer.leaseLost()
	}
	for _, key := range toRelease {
		w.mu.Lock()
		hard := w.hard
		w.mu.Unlock()
		w.release(hard, key)
	}
	for _, h := range toStart {
		w.startConsumer(h.Lease)
	}
}

// startConsumer starts the shard consumer of a lease this worker was assigned.
func (w *Worker) startConsumer(l lease.Lease) {
	key := l.Key
	s, shardID := w.streamOf(key)
	w.mu.Lock()
	hard := w.hard
	w.mu.Unlock()
	if s == nil {
		w.log.Warn("consumer: assigned a lease of a stream this worker does not consume; releasing it", zap.String("lease", key))
		w.release(hard, key)
		return
	}
	info := ShardInfo{StreamName: s.Name, StreamARN: s.arn, ShardID: shardID, LeaseKey: key, ParentShardIDs: l.ParentShardIDs,
		StartingHashKey: l.StartingHashKey, EndingHashKey: l.EndingHashKey, AutoDistribution: s.auto}
	cp, err := w.coord.Checkpointer(key)
	if err != nil {
		w.log.Debug("consumer: checkpointer", zap.String("lease", key), zap.Error(err))
		return
	}
	proc, err := w.factory(info)
	if err == nil && proc == nil {
		err = errors.New("nil processor")
	}
	if err != nil {
		w.log.Error("consumer: processor factory failed; releasing the lease", zap.String("lease", key), zap.Error(err))
		w.release(hard, key)
		return
	}
	env := shardEnv{
		cfg:     &w.cfg,
		held:    func() bool { return w.isHeld(key) },
		metrics: w.metrics,
		log:     w.log,
		fetched: func(n int) { w.meter.Add(key, n) },
		budget:  w.budget,
		parentsDone: func(ctx context.Context) (bool, error) {
			return w.store.ParentsDone(ctx, &l)
		},
		childrenFound: func(ctx context.Context, children []types.ChildShard) error {
			return w.childrenFound(ctx, s, key, children)
		},
		newFetcher: func(ctx context.Context, pos fetch.Position) (fetch.Fetcher, error) {
			return w.newFetcher(ctx, s, shardID, pos)
		},
	}
	sc, err := newShardConsumer(hard, env, info, proc, cp, l.Checkpoint)
	if err != nil {
		w.release(hard, key)
		return
	}
	r := &running{key: key, consumer: sc, done: make(chan struct{})}
	w.mu.Lock()
	w.consumers[key] = r
	w.mu.Unlock()
	w.metrics.Record(MetricLeaseTaken, UnitCount, 1, w.workerDim())
	w.cfg.hooks.gained(LeaseEvent{WorkerID: w.cfg.workerID, Shard: info})
	w.log.Debug("consumer: processing shard", zap.String("worker", w.cfg.workerID), zap.String("lease", key), zap.Stringer("from", l.Checkpoint), zap.Int64("counter", l.Counter))
	w.consWG.Add(1)
	go func() {
		defer w.consWG.Done()
		reason := sc.run()
		w.log.Debug("consumer: shard consumer stopped", zap.String("worker", w.cfg.workerID), zap.String("lease", key), zap.Int32("reason", int32(reason)))
		switch reason {
		case reasonAborted, reasonLeaseLost:
			w.mu.Lock()
			delete(w.renewed, key)
			w.mu.Unlock()
		default:
			if reason == reasonShardEnd {
				w.requestSync()
			}
			rctx, cancel := context.WithTimeout(hard, w.cfg.failoverTime)
			w.release(rctx, key)
			cancel()
		}
		w.mu.Lock()
		if w.consumers[key] == r {
			delete(w.consumers, key)
		}
		w.mu.Unlock()
		close(r.done)
		signal(w.reconcile)
	}()
}

// electionLoop takes part in the leader election until ctx ends: the leader heartbeats
// every renew interval, a follower reads the lock as often and again just when the lock
// it watches would expire. The lock is released only by a graceful shutdown (Run), never
// by an Abort.
func (w *Worker) electionLoop(ctx context.Context) {
	was := false
	for {
		lead, err := w.elector.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Debug("consumer: leader election failed", zap.Error(err))
		}
		if lead && !was {
			signal(w.leadNow) // a new leader assigns at once
		}
		was = lead
		select {
		case <-ctx.Done():
			return
		case <-w.cfg.clock.After(w.elector.NextTick()):
		}
	}
}

// leaderLoop runs, while this worker leads, an assignment round every assignment
// interval. Followers do nothing here: they never scan the lease table.
func (w *Worker) leaderLoop(ctx context.Context) {
	for ctx.Err() == nil {
		if w.elector.IsLeader() {
			w.assignRound(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.cfg.clock.After(w.cfg.assignInterval):
		case <-w.leadNow:
		}
	}
}

// syncLoop syncs shards, while this worker leads, every shard sync interval, at once
// when it starts leading (within an assignment interval), and when a consumer found a
// shard end. It runs apart from the assignment rounds: a sync of thousands of shards can
// take longer than the failover time on a busy machine, and rounds must go on meanwhile
// (a gap in the rounds that long starts a new term, whose warm-up places nothing).
func (w *Worker) syncLoop(ctx context.Context) {
	var nextSync time.Time
	var st shardSyncState
	forced := false
	for ctx.Err() == nil {
		now := w.cfg.clock.Now()
		switch {
		case !w.elector.IsLeader():
			forced = false // shard ends are the leader's business
			nextSync = time.Time{}
			st = shardSyncState{} // a new leadership starts with a full sync
		case forced || !now.Before(nextSync):
			full := forced
			forced = false
			if err := w.syncShards(ctx, &st, full); err != nil {
				if ctx.Err() != nil {
					return
				}
				w.log.Debug("consumer: shard sync failed", zap.Error(err))
				forced = true
			} else {
				nextSync = now.Add(w.cfg.shardSyncInterval)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-w.cfg.clock.After(w.cfg.assignInterval):
		case <-w.syncNow:
			forced = true
		}
	}
}

// assignRound runs one round of the leader's Assigner, if this worker still leads.
func (w *Worker) assignRound(ctx context.Context) {
	if !w.elector.IsLeader() {
		return
	}
	t0 := w.cfg.clock.Now()
	r, err := w.assigner.RunOnce(ctx)
	if err != nil && ctx.Err() == nil {
		w.log.Debug("consumer: lease assignment failed", zap.Error(err))
	}
	if took := w.cfg.clock.Since(t0); took > w.cfg.assignInterval {
		w.log.Debug("consumer: assignment round slow", zap.Duration("took", took), zap.Int("moves", len(r.Plan.Moves)), zap.Bool("warmingUp", r.WarmingUp))
	}
	w.lastRound.Store(&r)
	if len(r.Applied) == 0 {
		return
	}
	w.log.Debug("consumer: leases assigned", zap.Any("moves", r.Applied), zap.Stringer("basis", r.Plan.Basis), zap.Float64("meanKBps", r.MeanKBps))
	for _, m := range r.Applied {
		if m.To == w.cfg.workerID {
			signal(w.discoverNow) // no need to wait for the next discovery
			return
		}
	}
}

// newFetcher starts the configured fetcher for one shard.
func (w *Worker) newFetcher(ctx context.Context, s *streamInfo, shardID string, pos fetch.Position) (fetch.Fetcher, error) {
	if w.cfg.retrieval == FanOut {
		return fetch.NewFanOut(ctx, fetch.SubscribeToShardFunc(w.kin.SubscribeToShard), fetch.FanOutConfig{
			ConsumerARN: s.consumerARN, ShardID: shardID, Start: pos, Prefetch: w.cfg.prefetch,
			Retry: w.cfg.readPolicy(), Clock: w.cfg.clock, Logger: w.log, Budget: w.budget,
		})
	}
	return fetch.NewPoller(ctx, w.kin, fetch.PollingConfig{
		StreamName: s.Name, ShardID: shardID, Start: pos, MaxRecords: w.cfg.maxRecords, Prefetch: w.cfg.prefetch,
		IdleTime: w.cfg.idleTime, Retry: w.cfg.readPolicy(), Clock: w.cfg.clock, Logger: w.log, CBOR: &w.cbor,
		Budget: w.budget,
	})
}
