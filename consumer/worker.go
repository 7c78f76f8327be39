package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/consumer/internal/fetch"
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

// streamInfo is one consumed stream, resolved.
type streamInfo struct {
	Stream
	arn         string
	identifier  string // account:stream:creationEpoch
	consumerARN string
}

// held is one lease this worker holds.
type held struct {
	row       leaseRow
	renewedAt time.Time // when the last successful renewal was sent
	consumer  *shardConsumer
	stream    *streamInfo
}

// observation tracks another worker's lease for expiry on this worker's clock.
type observation struct {
	owner   string
	counter int64
	since   time.Time
}

// Worker consumes the shards of one or more streams together with the other workers of
// the same application, through the lease table.
type Worker struct {
	cfg     config
	kin     KinesisAPI
	table   leaseTable
	factory ProcessorFactory
	metrics Metrics
	log     *zap.Logger

	runMu   sync.Mutex
	running bool
	stopped bool

	mu       sync.Mutex
	streams  []*streamInfo
	held     map[string]*held
	observed map[string]observation
	syncNow  chan struct{}
	abort    context.CancelFunc
	hard     context.Context

	ensureTable func(ctx context.Context) error
	consWG      sync.WaitGroup
}

// newWorker returns a Worker over any lease table (New uses DynamoDB).
func newWorker(app string, kin KinesisAPI, table leaseTable, factory ProcessorFactory, opts ...Option) (*Worker, error) {
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
	if kin == nil || table == nil || factory == nil {
		return nil, fmt.Errorf("%w: Kinesis client, lease table and processor factory are required", ErrInvalidOption)
	}
	if cfg.workerID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.workerID = app + "-" + hex.EncodeToString(b[:])
	}
	m := cfg.metrics
	if m == nil {
		m = nopMetrics{}
	}
	return &Worker{cfg: cfg, kin: kin, table: table, factory: factory, metrics: m, log: cfg.logger,
		held: map[string]*held{}, observed: map[string]observation{}, syncNow: make(chan struct{}, 1)}, nil
}

// ID returns the worker's identifier in the lease table.
func (w *Worker) ID() string { return w.cfg.workerID }

// HeldLeases returns the keys of the leases the worker holds, sorted.
func (w *Worker) HeldLeases() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := make([]string, 0, len(w.held))
	for k := range w.held {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Abort stops the worker at once, as if its process died: no processor is told, no
// checkpoint is taken and no lease is released, so other workers take its shards after
// the failover time. It is meant for failover drills and tests; Run returns.
func (w *Worker) Abort() {
	w.mu.Lock()
	cancel := w.abort
	w.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Run consumes until ctx ends, then shuts down gracefully: fetching stops, each
// processor gets ShutdownRequested and may checkpoint, and the leases are released, all
// within the shutdown timeout. It returns nil after a graceful shutdown, or the error
// that stopped the worker (resolving the streams or registering the stream consumer).
func (w *Worker) Run(ctx context.Context) error {
	w.runMu.Lock()
	if w.running {
		w.runMu.Unlock()
		return ErrRunning
	}
	if w.stopped {
		w.runMu.Unlock()
		return ErrClosed
	}
	w.running = true
	w.runMu.Unlock()
	defer func() {
		w.runMu.Lock()
		w.running, w.stopped = false, true
		w.runMu.Unlock()
	}()

	// hard lives until the shutdown deadline (or Abort); ctx only starts the shutdown.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	w.mu.Lock()
	w.abort, w.hard = cancelHard, hard
	w.mu.Unlock()

	if w.ensureTable != nil {
		if err := w.ensureTable(ctx); err != nil {
			return err
		}
	}
	if err := w.resolveStreams(ctx); err != nil {
		return err
	}
	loops, stopLoops := context.WithCancel(hard)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.renewLoop(hard, loops) }()
	go func() { defer wg.Done(); w.coordinateLoop(loops) }()

	select {
	case <-ctx.Done():
	case <-hard.Done():
	}
	aborted := hard.Err() != nil
	stopLoops()
	if !aborted {
		w.shutdown(hard)
	}
	cancelHard()
	wg.Wait()
	w.consWG.Wait()
	w.log.Info("consumer: worker stopped", zap.String("worker", w.cfg.workerID), zap.Bool("aborted", aborted))
	return nil
}

// shutdown asks every shard consumer to stop, waits for them within the shutdown
// timeout, and releases the leases.
func (w *Worker) shutdown(hard context.Context) {
	deadline, cancel := context.WithTimeout(hard, w.cfg.shutdownTimeout)
	defer cancel()
	w.mu.Lock()
	var cons []*shardConsumer
	for _, h := range w.held {
		if h.consumer != nil {
			cons = append(cons, h.consumer)
		}
	}
	w.mu.Unlock()
	for _, c := range cons {
		c.requestShutdown()
	}
	for _, c := range cons {
		select {
		case <-c.Done():
		case <-deadline.Done():
			w.log.Warn("consumer: shutdown timeout reached; leases left to expire", zap.String("worker", w.cfg.workerID))
			return
		}
	}
	// Consumers release their own leases as they stop; release what is left.
	w.mu.Lock()
	rest := make([]*held, 0, len(w.held))
	for _, h := range w.held {
		rest = append(rest, h)
	}
	w.mu.Unlock()
	for _, h := range rest {
		w.release(deadline, h)
	}
}

func (w *Worker) release(ctx context.Context, h *held) {
	w.mu.Lock()
	if w.held[h.row.Key] != h {
		w.mu.Unlock()
		return
	}
	delete(w.held, h.row.Key)
	row := h.row
	w.mu.Unlock()
	if err := w.table.Release(ctx, row, w.cfg.workerID); err != nil {
		w.log.Debug("consumer: releasing lease failed", zap.String("lease", row.Key), zap.Error(err))
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

// retry calls f until it succeeds, fails permanently or ctx ends.
func retry(ctx context.Context, cfg config, f func() error) error {
	b := fetch.Backoff{Base: cfg.retryBase, Max: cfg.retryMax}
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil || ctx.Err() != nil || attempt >= 8 {
			return err
		}
		select {
		case <-cfg.clock.After(b.Delay(attempt)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// leaseKey is the lease key of shardID of stream s.
func (w *Worker) leaseKey(s *streamInfo, shardID string) string {
	if w.cfg.multiStream {
		return s.identifier + ":" + shardID
	}
	return shardID
}

// streamOf finds the stream and shard of a lease key; nil when the key belongs to a
// stream this worker does not consume.
func (w *Worker) streamOf(row leaseRow) (*streamInfo, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.cfg.multiStream {
		if len(w.streams) == 0 {
			return nil, ""
		}
		return w.streams[0], row.Key
	}
	i := strings.LastIndexByte(row.Key, ':')
	if i < 0 {
		return nil, ""
	}
	for _, s := range w.streams {
		if s.identifier == row.Key[:i] {
			return s, row.Key[i+1:]
		}
	}
	return nil, ""
}

// renewLoop renews the held leases every renew interval until hard ends. It keeps
// running during a graceful shutdown so leases stay held while processors finish.
func (w *Worker) renewLoop(hard, loops context.Context) {
	for {
		w.renewAll(hard)
		select {
		case <-w.cfg.clock.After(w.cfg.renewInterval):
		case <-hard.Done():
			return
		}
	}
}

func (w *Worker) renewAll(ctx context.Context) {
	w.mu.Lock()
	hs := make([]*held, 0, len(w.held))
	for _, h := range w.held {
		hs = append(hs, h)
	}
	w.mu.Unlock()
	for _, h := range hs {
		sent := w.cfg.clock.Now()
		w.mu.Lock()
		row := h.row
		w.mu.Unlock()
		nr, err := w.table.Renew(ctx, row, w.cfg.workerID)
		switch {
		case err == nil:
			w.mu.Lock()
			h.row.Counter, h.row.Owner = nr.Counter, nr.Owner
			h.renewedAt = sent
			w.mu.Unlock()
		case errors.Is(err, checkpoint.ErrLeaseLost):
			w.lose(h)
		default:
			if ctx.Err() != nil {
				return
			}
			w.metrics.Record(MetricLeaseRenewFailure, UnitCount, 1)
			w.log.Debug("consumer: renewing lease failed", zap.String("lease", row.Key), zap.Error(err))
		}
	}
	w.metrics.Record(MetricLeasesHeld, UnitCount, float64(len(hs)), Dimension{Name: "WorkerIdentifier", Value: w.cfg.workerID})
}

// lose forgets a lease another worker took and stops its consumer.
func (w *Worker) lose(h *held) {
	w.mu.Lock()
	if w.held[h.row.Key] == h {
		delete(w.held, h.row.Key)
	}
	w.mu.Unlock()
	if h.consumer != nil {
		h.consumer.leaseLost()
	}
	w.log.Info("consumer: lease lost", zap.String("worker", w.cfg.workerID), zap.String("lease", h.row.Key))
}

// isHeld reports whether the lease is held and was renewed within the failover time.
func (w *Worker) isHeld(h *held) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held[h.row.Key] == h && w.cfg.clock.Since(h.renewedAt) < w.cfg.failoverTime
}

// coordinateLoop syncs shards and takes leases until ctx ends.
func (w *Worker) coordinateLoop(ctx context.Context) {
	lastSync := time.Time{}
	for ctx.Err() == nil {
		force := false
		select {
		case <-w.syncNow:
			force = true
		default:
		}
		if force || lastSync.IsZero() || w.cfg.clock.Since(lastSync) >= w.cfg.shardSyncInterval {
			if err := w.syncShards(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				w.log.Debug("consumer: shard sync failed", zap.Error(err))
			} else {
				lastSync = w.cfg.clock.Now()
			}
		}
		if err := w.takeLeases(ctx); err != nil && ctx.Err() == nil {
			w.log.Debug("consumer: taking leases failed", zap.Error(err))
		}
		select {
		case <-w.cfg.clock.After(w.cfg.renewInterval):
		case <-w.syncNow:
			w.requestSync()
		case <-ctx.Done():
			return
		}
	}
}

func (w *Worker) requestSync() {
	select {
	case w.syncNow <- struct{}{}:
	default:
	}
}

// listShards returns every shard of s.
func (w *Worker) listShards(ctx context.Context, s *streamInfo) ([]types.Shard, error) {
	var shards []types.Shard
	var next *string
	for {
		in := &kinesis.ListShardsInput{NextToken: next}
		if next == nil {
			in.StreamName = aws.String(s.Name)
		}
		out, err := w.kin.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil || len(out.Shards) == 0 {
			return shards, nil
		}
		next = out.NextToken
	}
}

// syncShards creates leases for shards that have none. A shard whose parent has a lease
// starts at TRIM_HORIZON (nothing of it may be skipped); other shards start at the
// stream's initial position, and closed shards without a leased parent are skipped for
// LATEST and AT_TIMESTAMP (they hold only history before the start).
func (w *Worker) syncShards(ctx context.Context) error {
	rows, err := w.table.List(ctx)
	if err != nil {
		return err
	}
	existing := make(map[string]bool, len(rows))
	for _, r := range rows {
		existing[r.Key] = true
	}
	w.mu.Lock()
	streams := append([]*streamInfo(nil), w.streams...)
	w.mu.Unlock()
	var errs []error
	for _, s := range streams {
		shards, err := w.listShards(ctx, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("list shards of %s: %w", s.Name, err))
			continue
		}
		// Parents first so children see their parents' leases.
		sort.Slice(shards, func(i, j int) bool {
			return aws.ToString(shards[i].ShardId) < aws.ToString(shards[j].ShardId)
		})
		known := map[string]bool{}
		for _, sh := range shards {
			known[aws.ToString(sh.ShardId)] = true
		}
		for _, sh := range shards {
			id := aws.ToString(sh.ShardId)
			key := w.leaseKey(s, id)
			if existing[key] {
				continue
			}
			parents := shardParents(sh)
			start := s.InitialPosition.v
			leasedParent := false
			for _, p := range parents {
				if existing[w.leaseKey(s, p)] {
					leasedParent = true
				}
			}
			closed := sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil
			if leasedParent {
				start = checkpoint.TrimHorizon
			} else if start.SequenceNumber != checkpoint.SentinelTrimHorizon && closed {
				continue
			}
			row := leaseRow{Key: key, Checkpoint: start, Parents: parents, ShardID: id}
			if w.cfg.multiStream {
				row.StreamIdentifier = s.identifier
			}
			if err := w.table.Create(ctx, row); err != nil {
				errs = append(errs, err)
				continue
			}
			existing[key] = true
		}
	}
	return errors.Join(errs...)
}

func shardParents(sh types.Shard) []string {
	var ps []string
	if p := aws.ToString(sh.ParentShardId); p != "" {
		ps = append(ps, p)
	}
	if p := aws.ToString(sh.AdjacentParentShardId); p != "" {
		ps = append(ps, p)
	}
	return ps
}

// takeLeases takes expired and unowned leases, and one lease from the most loaded
// worker, until this worker holds its fair share (by lease count) of the unfinished
// leases.
func (w *Worker) takeLeases(ctx context.Context) error {
	rows, err := w.table.List(ctx)
	if err != nil {
		return err
	}
	now := w.cfg.clock.Now()
	me := w.cfg.workerID
	var available []leaseRow
	owners := map[string]int{me: 0}
	active := 0
	w.mu.Lock()
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		seen[r.Key] = true
		if r.Checkpoint.SequenceNumber == checkpoint.SentinelShardEnd {
			delete(w.observed, r.Key)
			continue
		}
		if s, _ := w.streamOfLocked(r); s == nil {
			continue
		}
		active++
		o, ok := w.observed[r.Key]
		if !ok || o.owner != r.Owner || o.counter != r.Counter {
			o = observation{owner: r.Owner, counter: r.Counter, since: now}
			w.observed[r.Key] = o
		}
		if _, mine := w.held[r.Key]; mine {
			owners[me]++
			continue
		}
		expired := r.Owner == "" || now.Sub(o.since) >= w.cfg.failoverTime
		if expired {
			available = append(available, r)
			continue
		}
		owners[r.Owner]++
	}
	for k := range w.observed {
		if !seen[k] {
			delete(w.observed, k)
		}
	}
	mine := owners[me]
	w.mu.Unlock()

	target := (active + len(owners) - 1) / len(owners)
	want := min(target-mine, w.cfg.maxLeasesToTake)
	if want <= 0 {
		return nil
	}
	// Prefer leases whose parents are done (they can start at once), then key order.
	sort.Slice(available, func(i, j int) bool { return available[i].Key < available[j].Key })
	var toTake []leaseRow
	toTake = append(toTake, available[:min(want, len(available))]...)
	if len(toTake) == 0 && target-mine >= 1 {
		// Nothing free: steal one lease from the most loaded worker above the target.
		victim, most := "", 0
		for o, n := range owners {
			if o != me && (n > most || n == most && o < victim) {
				victim, most = o, n
			}
		}
		if victim != "" && most > target {
			for _, r := range rows {
				if r.Owner == victim && r.Checkpoint.SequenceNumber != checkpoint.SentinelShardEnd {
					if s, _ := w.streamOf(r); s != nil {
						toTake = append(toTake, r)
						break
					}
				}
			}
		}
	}
	for _, r := range toTake {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sent := w.cfg.clock.Now()
		nr, err := w.table.Take(ctx, r, me)
		if err != nil {
			w.log.Debug("consumer: taking lease failed", zap.String("lease", r.Key), zap.Error(err))
			continue
		}
		w.metrics.Record(MetricLeaseTaken, UnitCount, 1, Dimension{Name: "WorkerIdentifier", Value: me})
		w.startConsumer(ctx, nr, sent)
	}
	return nil
}

func (w *Worker) streamOfLocked(row leaseRow) (*streamInfo, string) {
	if !w.cfg.multiStream {
		if len(w.streams) == 0 {
			return nil, ""
		}
		return w.streams[0], row.Key
	}
	i := strings.LastIndexByte(row.Key, ':')
	if i < 0 {
		return nil, ""
	}
	for _, s := range w.streams {
		if s.identifier == row.Key[:i] {
			return s, row.Key[i+1:]
		}
	}
	return nil, ""
}

// startConsumer starts the shard consumer of a lease just taken.
func (w *Worker) startConsumer(ctx context.Context, row leaseRow, renewedAt time.Time) {
	s, shardID := w.streamOf(row)
	h := &held{row: row, renewedAt: renewedAt, stream: s}
	w.mu.Lock()
	w.held[row.Key] = h
	w.mu.Unlock()
	info := ShardInfo{StreamName: s.Name, StreamARN: s.arn, ShardID: shardID, LeaseKey: row.Key, ParentShardIDs: row.Parents}
	var opts []checkpoint.Option
	if !row.Pending.IsZero() {
		opts = append(opts, checkpoint.WithPending(row.Pending, row.PendingState))
	}
	cp, err := checkpoint.New(w.table, row.Key, w.cfg.workerID, row.Checkpoint, opts...)
	if err != nil {
		w.log.Error("consumer: checkpointer", zap.String("lease", row.Key), zap.Error(err))
		w.release(ctx, h)
		return
	}
	proc, err := w.factory(info)
	if err != nil || proc == nil {
		w.log.Error("consumer: processor factory failed", zap.String("lease", row.Key), zap.Error(err))
		w.release(ctx, h)
		return
	}
	env := shardEnv{
		cfg:     &w.cfg,
		held:    func() bool { return w.isHeld(h) },
		metrics: w.metrics,
		log:     w.log,
		parentsDone: func(ctx context.Context) (bool, error) {
			return w.parentsDone(ctx, s, row.Parents)
		},
		childrenFound: func(ctx context.Context, children []types.ChildShard) error {
			return w.childrenFound(ctx, s, children)
		},
		newFetcher: func(ctx context.Context, pos fetch.Position) (fetch.Fetcher, error) {
			return w.newFetcher(ctx, s, shardID, pos)
		},
	}
	// The consumer lives until the worker's hard deadline, not the coordination loop.
	w.mu.Lock()
	hard := w.hard
	w.mu.Unlock()
	sc, err := newShardConsumer(hard, env, info, proc, cp, row.Checkpoint)
	if err != nil {
		w.release(ctx, h)
		return
	}
	w.mu.Lock()
	h.consumer = sc
	w.mu.Unlock()
	w.consWG.Add(1)
	go func() {
		defer w.consWG.Done()
		r := sc.run()
		switch r {
		case reasonAborted:
		case reasonLeaseLost:
			w.mu.Lock()
			if w.held[row.Key] == h {
				delete(w.held, row.Key)
			}
			w.mu.Unlock()
		default:
			if r == reasonShardEnd {
				w.requestSync()
			}
			rctx, cancel := context.WithTimeout(context.Background(), w.cfg.failoverTime)
			w.release(rctx, h)
			cancel()
		}
	}()
}

// parentsDone reports whether every parent of a shard is checkpointed at SHARD_END. A
// parent without a lease counts as done: it was never consumed (it predates the
// application's start) or its finished lease was cleaned up.
func (w *Worker) parentsDone(ctx context.Context, s *streamInfo, parents []string) (bool, error) {
	for _, p := range parents {
		row, found, err := w.table.Get(ctx, w.leaseKey(s, p))
		if err != nil {
			return false, err
		}
		if found && row.Checkpoint.SequenceNumber != checkpoint.SentinelShardEnd {
			return false, nil
		}
	}
	return true, nil
}

// childrenFound creates the leases of an ended shard's children (from ChildShards), at
// TRIM_HORIZON with their parents recorded, and asks for a shard sync, which finds the
// children itself where Kinesis reports none.
func (w *Worker) childrenFound(ctx context.Context, s *streamInfo, children []types.ChildShard) error {
	for _, c := range children {
		id := aws.ToString(c.ShardId)
		if id == "" {
			continue
		}
		row := leaseRow{Key: w.leaseKey(s, id), Checkpoint: checkpoint.TrimHorizon, Parents: append([]string(nil), c.ParentShards...), ShardID: id}
		if w.cfg.multiStream {
			row.StreamIdentifier = s.identifier
		}
		if err := w.table.Create(ctx, row); err != nil {
			return err
		}
	}
	w.requestSync()
	return nil
}

// newFetcher starts the configured fetcher for one shard.
func (w *Worker) newFetcher(ctx context.Context, s *streamInfo, shardID string, pos fetch.Position) (fetch.Fetcher, error) {
	if w.cfg.retrieval == FanOut {
		return fetch.NewFanOut(ctx, fetch.SubscribeToShardFunc(w.kin.SubscribeToShard), fetch.FanOutConfig{
			ConsumerARN: s.consumerARN, ShardID: shardID, Start: pos, Prefetch: w.cfg.prefetch,
			Retry: fetch.Backoff{Base: w.cfg.retryBase, Max: w.cfg.retryMax}, Clock: w.cfg.clock, Logger: w.log,
		})
	}
	return fetch.NewPoller(ctx, w.kin, fetch.PollingConfig{
		StreamName: s.Name, ShardID: shardID, Start: pos, MaxRecords: w.cfg.maxRecords, Prefetch: w.cfg.prefetch,
		IdleTime: w.cfg.idleTime, Throttle: fetch.Backoff{Base: w.cfg.throttleBase, Max: w.cfg.throttleMax},
		Retry: fetch.Backoff{Base: w.cfg.retryBase, Max: w.cfg.retryMax}, Clock: w.cfg.clock, Logger: w.log,
	})
}

// New returns a Worker for application app: it reads the configured streams (WithStream,
// at least one) with kin, keeps its leases in the DynamoDB lease table named after the
// application (WithLeaseTable), in Java KCL's item format, creating the table on first
// Run, and creates a processor per shard with factory. Options are validated here; bad
// ones fail with an error wrapping ErrInvalidOption.
func New(app string, kin KinesisAPI, ddb DynamoDBAPI, factory ProcessorFactory, opts ...Option) (*Worker, error) {
	if ddb == nil {
		return nil, fmt.Errorf("%w: nil DynamoDB client", ErrInvalidOption)
	}
	t := &ddbTable{api: ddb}
	w, err := newWorker(app, kin, t, factory, opts...)
	if err != nil {
		return nil, err
	}
	t.name = w.cfg.leaseTable
	w.ensureTable = func(ctx context.Context) error { return t.ensure(ctx, w.cfg) }
	return w, nil
}
