package consumer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/consumer/internal/fetch"
	"github.com/freshet/freshet/internal/retrypolicy"
	"github.com/freshet/freshet/metrics"
)

// shardState is where a shard consumer is in its life.
type shardState int32

const (
	stateWaitingOnParents shardState = iota
	stateInitializing
	stateProcessing
	stateShardEnding
	stateShuttingDown
	stateLeaseLost
	stateDone
)

func (s shardState) String() string {
	return [...]string{"WaitingOnParents", "Initializing", "Processing", "ShardEnding", "ShuttingDown", "LeaseLost", "Done"}[s]
}

// stopReason says why a shard consumer stopped.
type stopReason int32

const (
	reasonNone stopReason = iota
	reasonShutdown
	reasonLeaseLost
	reasonShardEnd
	reasonFailed
	reasonAborted
)

// shardEnv is what a shard consumer needs from its worker. Functions make it easy to
// fake in tests.
type shardEnv struct {
	cfg *config
	// held reports whether the lease is still held on the worker's clock.
	held func() bool
	// parentsDone reports whether every parent is checkpointed at SHARD_END.
	parentsDone func(ctx context.Context) (bool, error)
	// childrenFound records the children of an ended shard (creates their leases).
	childrenFound func(ctx context.Context, children []types.ChildShard) error
	// newFetcher starts the shard's fetcher at pos.
	newFetcher func(ctx context.Context, pos fetch.Position) (fetch.Fetcher, error)
	// fetched counts the bytes of new user records read from the shard (for the
	// lease's throughput); may be nil.
	fetched func(n int)
	// budget bounds the bytes fetched and not yet processed across the worker's
	// shards; each batch's bytes are released once the consumer is done with it.
	budget  *fetch.Budget
	metrics Metrics
	log     *zap.Logger
}

// shardConsumer drives one Processor through the KCL lifecycle for one held lease.
type shardConsumer struct {
	env   shardEnv
	shard ShardInfo
	proc  Processor
	cp    *checkpoint.Checkpointer
	start checkpoint.Value
	deagg *aggregation.Deaggregator
	dims  []Dimension

	parent      context.Context // canceled when the worker aborts
	leaseCtx    context.Context // canceled when the lease is lost or the worker aborts
	leaseCancel context.CancelFunc
	loopCtx     context.Context // also canceled on a shutdown request
	loopCancel  context.CancelFunc

	mu     sync.Mutex
	reason stopReason
	state  shardState
	done   chan struct{}

	// skipSeq and skipSub drop the already checkpointed user records of the aggregate a
	// restart resumes in.
	skipSeq string
	skipSub int64
	ends    []int // scratch: end of each Kinesis record's user records

	// processing is the stream's failure policy and lanes; runner applies the policy to
	// a custom processor's batches.
	processing processing
	runner     *policyRunner
}

func newShardConsumer(parent context.Context, env shardEnv, shard ShardInfo, proc Processor, cp *checkpoint.Checkpointer, start checkpoint.Value) (*shardConsumer, error) {
	if env.metrics == nil {
		env.metrics = nopMetrics{}
	}
	if env.log == nil {
		env.log = zap.NewNop()
	}
	var dopts []aggregation.DeaggregatorOption
	// On an AUTO stream shards do not own hash keys: filtering by range would drop
	// records the service placed there on purpose.
	if env.cfg.hashRangeFilter && !shard.AutoDistribution {
		r, err := aggregation.ParseHashKeyRange(shard.StartingHashKey, shard.EndingHashKey)
		if err != nil {
			// A lease without a usable range (written by an old client): deliver every
			// user record rather than guess a range and drop some.
			env.log.Warn("consumer: lease has no usable hash key range; user records of this shard are not filtered",
				zap.String("lease", shard.LeaseKey), zap.Error(err))
		} else {
			dopts = append(dopts, aggregation.WithShardHashKeyRange(r))
		}
	}
	d, err := aggregation.NewDeaggregator(dopts...)
	if err != nil {
		return nil, err
	}
	sc := &shardConsumer{env: env, shard: shard, proc: proc, cp: cp, start: start, deagg: d, done: make(chan struct{}),
		dims: []Dimension{{Name: metrics.DimShardID, Value: shard.ShardID}}}
	if env.cfg.multiStream {
		sc.dims = append(sc.dims, Dimension{Name: metrics.DimStreamID, Value: shard.StreamName})
	}
	env.cfg.hooks.observe(cp, shard)
	sc.parent = parent
	sc.leaseCtx, sc.leaseCancel = context.WithCancel(parent)
	sc.loopCtx, sc.loopCancel = context.WithCancel(sc.leaseCtx)
	sc.processing = env.cfg.processingFor(shard.StreamName)
	if _, managed := proc.(*handlerProcessor); !managed && sc.processing.lanes > 1 {
		env.log.Error("consumer: lanes need a HandlerFunc processor; this custom Processor runs one lane",
			zap.String("lease", shard.LeaseKey), zap.Int("lanes", sc.processing.lanes))
		sc.processing.lanes = 1
	}
	sc.runner = &policyRunner{sc: sc, pol: sc.processing.policy, stop: sc.loopCtx.Done()}
	return sc, nil
}

// requestShutdown asks for a graceful stop: fetching stops, ShutdownRequested is called.
func (sc *shardConsumer) requestShutdown() {
	sc.setReason(reasonShutdown)
	sc.loopCancel()
}

// requestHandoff asks for a graceful stop because the leader gave the lease to another
// worker: as for a shutdown, fetching stops and ShutdownRequested may checkpoint; the
// worker then releases the lease to its new owner.
func (sc *shardConsumer) requestHandoff() { sc.requestShutdown() }

// leaseLost stops the consumer at once; the processor hears LeaseLost.
func (sc *shardConsumer) leaseLost() {
	sc.mu.Lock()
	if sc.reason == reasonNone || sc.reason == reasonShutdown {
		sc.reason = reasonLeaseLost
	}
	sc.mu.Unlock()
	sc.cp.LeaseLost()
	sc.leaseCancel()
}

func (sc *shardConsumer) setReason(r stopReason) {
	sc.mu.Lock()
	if sc.reason == reasonNone {
		sc.reason = r
	}
	sc.mu.Unlock()
}

func (sc *shardConsumer) stopReason() stopReason {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.reason
}

func (sc *shardConsumer) setState(s shardState) {
	sc.mu.Lock()
	sc.state = s
	sc.mu.Unlock()
}

// State returns the consumer's current state.
func (sc *shardConsumer) State() shardState {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.state
}

// Done is closed when the consumer has stopped.
func (sc *shardConsumer) Done() <-chan struct{} { return sc.done }

// checkHeld turns a lease the worker no longer holds into a lease loss.
func (sc *shardConsumer) checkHeld() bool {
	if sc.stopReason() == reasonLeaseLost {
		return false
	}
	if !sc.env.held() {
		sc.leaseLost()
		return false
	}
	return true
}

func (sc *shardConsumer) backoff(attempt int) retrypolicy.Backoff {
	return retrypolicy.Backoff{Min: sc.env.cfg.processorRetry, Max: sc.env.cfg.processorRetryMax}
}

// pause waits d or until ctx ends.
func (sc *shardConsumer) pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-sc.env.cfg.clock.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// run executes the lifecycle and returns why it stopped.
func (sc *shardConsumer) run() stopReason {
	defer close(sc.done)
	defer sc.leaseCancel()
	r := sc.lifecycle()
	if sc.parent.Err() != nil {
		// The worker died: nobody is told, nothing is written.
		sc.setState(stateDone)
		return reasonAborted
	}
	sc.setReason(r)
	r = sc.stopReason()
	switch r {
	case reasonLeaseLost:
		sc.setState(stateLeaseLost)
		sc.env.metrics.Record(MetricLeaseLost, UnitCount, 1, sc.dims...)
		sc.env.cfg.hooks.lost(LeaseEvent{WorkerID: sc.env.cfg.workerID, Shard: sc.shard})
		sc.cp.LeaseLost()
		sc.proc.LeaseLost(context.WithoutCancel(sc.leaseCtx), LeaseLostInput{Shard: sc.shard})
	case reasonShutdown:
		sc.setState(stateShuttingDown)
		if sc.checkHeld() {
			ctx := sc.leaseCtx
			if err := sc.proc.ShutdownRequested(ctx, ShutdownRequestedInput{Shard: sc.shard, Checkpointer: sc.cp}); err != nil {
				sc.env.log.Warn("consumer: ShutdownRequested failed", zap.String("shard", sc.shard.LeaseKey), zap.Error(err))
			}
		} else {
			sc.proc.LeaseLost(context.WithoutCancel(sc.leaseCtx), LeaseLostInput{Shard: sc.shard})
			r = reasonLeaseLost
		}
	}
	sc.setState(stateDone)
	return r
}

// lifecycle runs until the shard ends, the lease is lost or shutdown is requested.
func (sc *shardConsumer) lifecycle() stopReason {
	ctx := sc.loopCtx
	log := sc.env.log.With(zap.String("shard", sc.shard.LeaseKey))

	sc.setState(stateWaitingOnParents)
	for attempt := 0; ; attempt++ {
		if !sc.checkHeld() {
			return reasonLeaseLost
		}
		ok, err := sc.env.parentsDone(ctx)
		if ctx.Err() != nil {
			return sc.interrupted()
		}
		if err != nil {
			log.Debug("consumer: checking parents failed", zap.Error(err))
		}
		if ok {
			break
		}
		if !sc.pause(ctx, sc.env.cfg.parentPollInterval) {
			return sc.interrupted()
		}
	}

	sc.setState(stateInitializing)
	if sc.start.SequenceNumber == checkpoint.SentinelShardEnd {
		// Processed to its end before: nothing to read, the children may go on.
		return reasonShardEnd
	}
	pos := sc.startPosition()
	pending, state := sc.cp.Pending()
	for attempt := 0; ; attempt++ {
		if !sc.checkHeld() {
			return reasonLeaseLost
		}
		err := sc.proc.Initialize(ctx, InitializeInput{Shard: sc.shard, Checkpoint: sc.start, PendingCheckpoint: pending, PendingState: state})
		if err == nil {
			break
		}
		if r, stop := sc.processorFailed(ctx, "Initialize", err, attempt); stop {
			return r
		}
	}

	f, err := sc.env.newFetcher(sc.loopCtx, pos)
	if err != nil {
		log.Error("consumer: starting fetcher failed", zap.Error(err))
		return reasonFailed
	}
	defer f.Close()
	var lanes *laneSet
	if h, ok := sc.proc.(*handlerProcessor); ok {
		lanes = newLaneSet(sc, h.fn, sc.processing)
		defer lanes.close()
	}

	sc.setState(stateProcessing)
	var recs []aggregation.UserRecord
	held := 0 // bytes of the batch in hand, released when done with it
	defer func() { sc.env.budget.Release(held) }()
	for {
		sc.env.budget.Release(held)
		held = 0
		b, err := f.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return sc.interrupted()
			}
			log.Error("consumer: reading shard failed", zap.Error(err))
			return reasonFailed
		}
		held = b.Bytes
		fetchedAt := sc.env.cfg.clock.Now()
		sc.env.metrics.Record(MetricMillisBehindLatest, UnitMilliseconds, float64(b.MillisBehindLatest), sc.dims...)
		if b.CallTime > 0 {
			sc.env.metrics.Record(MetricGetRecordsTime, UnitMilliseconds, float64(b.CallTime)/float64(time.Millisecond), sc.dims...)
		}
		var out []Record
		out, recs = sc.convert(b.Records, recs[:0])
		if sc.env.fetched != nil && len(out) > 0 {
			// Only new records count: a restart re-reads its checkpointed aggregate,
			// which would show as a burst of throughput right after a lease moved.
			n := 0
			for i := range out {
				n += len(out[i].Data)
			}
			sc.env.fetched(n)
		}
		switch {
		case lanes != nil:
			if !sc.checkHeld() {
				return reasonLeaseLost
			}
			if err := lanes.dispatch(out); err != nil {
				return sc.interrupted()
			}
		case len(out) > 0 || sc.env.cfg.callEmptyBatches:
			if r, stop := sc.deliver(ctx, out, b, fetchedAt); stop {
				return r
			}
		default:
			if !sc.checkHeld() {
				return reasonLeaseLost
			}
			sc.observeSequential(nil, 0)
		}
		if b.ShardEnd {
			if lanes != nil {
				if !lanes.drain() {
					return sc.interrupted()
				}
				lanes.close()
			}
			return sc.shardEnd(ctx, b.ChildShards)
		}
	}
}

// interrupted tells why the loop context ended.
func (sc *shardConsumer) interrupted() stopReason {
	if sc.parent.Err() != nil {
		return reasonAborted
	}
	if r := sc.stopReason(); r != reasonNone {
		return r
	}
	return reasonShutdown
}

// processorFailed handles a processor error: a lost lease ends the consumer; anything
// else is retried after a backoff.
func (sc *shardConsumer) processorFailed(ctx context.Context, op string, err error, attempt int) (stopReason, bool) {
	if errors.Is(err, checkpoint.ErrLeaseLost) {
		sc.leaseLost()
		return reasonLeaseLost, true
	}
	if ctx.Err() != nil {
		return sc.interrupted(), true
	}
	sc.env.log.Warn("consumer: processor failed; retrying", zap.String("shard", sc.shard.LeaseKey), zap.String("call", op), zap.Error(err))
	if !sc.pause(ctx, sc.backoff(attempt).Delay(attempt)) {
		return sc.interrupted(), true
	}
	return reasonNone, false
}

// deliver hands one batch to a custom processor through the failure policy. Before each
// call the checkpointer learns the call's last record as delivered, so a processor that
// checkpoints (Checkpoint) never passes a record it was not given.
func (sc *shardConsumer) deliver(ctx context.Context, out []Record, b fetch.Batch, fetchedAt time.Time) (stopReason, bool) {
	call := func(callCtx context.Context, recs []Record, attempt int) error {
		if !sc.checkHeld() {
			return checkpoint.ErrLeaseLost
		}
		if len(recs) > 0 {
			last := recs[len(recs)-1]
			sc.cp.Redeliver(checkpoint.Value{SequenceNumber: last.SequenceNumber, SubSequenceNumber: last.SubSequenceNumber})
		}
		return sc.timedCall(recs, b.MillisBehindLatest, attempt, func() error {
			return sc.proc.ProcessRecords(callCtx, ProcessRecordsInput{
				Shard: sc.shard, Records: recs, MillisBehindLatest: b.MillisBehindLatest, FetchedAt: fetchedAt, Checkpointer: sc.cp,
			})
		})
	}
	var err error
	if len(out) == 0 {
		// An empty batch (WithEmptyBatches) has no record for the policy to give up:
		// it is retried until the processor takes it.
		for attempt := 0; ; attempt++ {
			if err = call(sc.leaseCtx, nil, attempt); err == nil || errors.Is(err, checkpoint.ErrLeaseLost) {
				break
			}
			if r, stop := sc.processorFailed(sc.loopCtx, "ProcessRecords", err, attempt); stop {
				return r, true
			}
		}
	} else {
		err = sc.runner.run(sc.leaseCtx, out, call, func(n int) { sc.observeSequential(out, n) })
	}
	switch {
	case err == nil:
		return reasonNone, false
	case errors.Is(err, checkpoint.ErrLeaseLost):
		sc.leaseLost()
		return reasonLeaseLost, true
	}
	return sc.interrupted(), true
}

// observeSequential records the age of the oldest unfinished record of a batch handed
// to a custom processor, n of whose records are finished.
func (sc *shardConsumer) observeSequential(out []Record, n int) {
	age, depth := 0.0, len(out)-n
	if n < len(out) && !out[n].ApproximateArrivalTimestamp.IsZero() {
		age = max(0, float64(sc.env.cfg.clock.Since(out[n].ApproximateArrivalTimestamp).Milliseconds()))
	}
	sc.env.metrics.Record(MetricLaneQueueDepth, UnitCount, float64(depth), sc.dims...)
	sc.env.metrics.Record(MetricOldestUnfinishedAge, UnitMilliseconds, age, sc.dims...)
}

// timedCall runs one handler call over recs, the attempt-th call on its first record,
// records its time and, on success, the records and bytes processed, and tells the
// batch hooks.
func (sc *shardConsumer) timedCall(recs []Record, millisBehind int64, attempt int, f func() error) error {
	start := sc.env.cfg.clock.Now()
	err := f()
	took := sc.env.cfg.clock.Since(start)
	sc.env.metrics.Record(MetricProcessTime, UnitMilliseconds, float64(took.Milliseconds()), sc.dims...)
	bytes := 0
	if err == nil || len(sc.env.cfg.hooks.batch) > 0 {
		for i := range recs {
			bytes += len(recs[i].Data)
		}
	}
	if len(sc.env.cfg.hooks.batch) > 0 {
		sc.env.cfg.hooks.processed(BatchProcessed{Shard: sc.shard, Records: len(recs), Bytes: bytes,
			MillisBehindLatest: millisBehind, Duration: took, Attempt: attempt, Err: err})
	}
	if err == nil {
		sc.env.metrics.Record(MetricRecordsProcessed, UnitCount, float64(len(recs)), sc.dims...)
		sc.env.metrics.Record(MetricDataBytesProcessed, UnitBytes, float64(bytes), sc.dims...)
	}
	return err
}

// shardEnd finishes a closed shard: children recorded, then SHARD_END checkpointed by
// the processor.
func (sc *shardConsumer) shardEnd(ctx context.Context, children []types.ChildShard) stopReason {
	sc.setState(stateShardEnding)
	sc.cp.ShardEnded()
	for attempt := 0; ; attempt++ {
		if !sc.checkHeld() {
			return reasonLeaseLost
		}
		err := sc.env.childrenFound(sc.leaseCtx, children)
		if err == nil {
			break
		}
		if r, stop := sc.processorFailed(sc.leaseCtx, "create child leases", err, attempt); stop {
			return r
		}
	}
	for attempt := 0; ; attempt++ {
		if !sc.checkHeld() {
			return reasonLeaseLost
		}
		err := sc.proc.ShardEnded(sc.leaseCtx, ShardEndedInput{Shard: sc.shard, Checkpointer: sc.cp})
		if err == nil && sc.cp.Stored().SequenceNumber == checkpoint.SentinelShardEnd {
			sc.env.metrics.Record(MetricShardEnd, UnitCount, 1, sc.dims...)
			return reasonShardEnd
		}
		if err == nil {
			err = errShardEndNotCheckpointed
		}
		if r, stop := sc.processorFailed(sc.leaseCtx, "ShardEnded", err, attempt); stop {
			return r
		}
	}
}

var errShardEndNotCheckpointed = errors.New("consumer: ShardEnded returned without checkpointing SHARD_END")

// startPosition turns the lease's checkpoint into a fetch position. A sequence number
// resumes AT that record, skipping its user records up to the checkpointed sub-sequence
// number, so a restart in the middle of an aggregate neither loses nor repeats records.
func (sc *shardConsumer) startPosition() fetch.Position {
	v := sc.start
	switch v.SequenceNumber {
	case checkpoint.SentinelLatest:
		return fetch.Position{Type: types.ShardIteratorTypeLatest}
	case checkpoint.SentinelAtTimestamp:
		return fetch.Position{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: v.Timestamp}
	case checkpoint.SentinelTrimHorizon, "":
		return fetch.Position{Type: types.ShardIteratorTypeTrimHorizon}
	}
	sc.skipSeq, sc.skipSub = v.SequenceNumber, v.SubSequenceNumber
	return fetch.Position{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: v.SequenceNumber}
}

// convert de-aggregates a batch into processor records, dropping the checkpointed part
// of the aggregate a restart resumed in. scratch is reused between batches; the returned
// records are allocated once per batch, at their exact count.
func (sc *shardConsumer) convert(in []types.Record, scratch []aggregation.UserRecord) ([]Record, []aggregation.UserRecord) {
	if len(in) == 0 {
		return nil, scratch
	}
	if cap(sc.ends) < len(in) {
		sc.ends = make([]int, len(in))
	}
	ends := sc.ends[:len(in)]
	scratch = scratch[:0]
	for i := range in {
		kr := &in[i]
		var err error
		scratch, err = sc.deagg.Append(scratch, aggregation.Record{PartitionKey: aws.ToString(kr.PartitionKey), Data: kr.Data})
		if err != nil {
			sc.env.log.Warn("consumer: malformed aggregate delivered whole", zap.String("shard", sc.shard.LeaseKey),
				zap.String("sequenceNumber", aws.ToString(kr.SequenceNumber)), zap.Error(err))
		}
		ends[i] = len(scratch)
	}
	out := make([]Record, 0, len(scratch))
	from := 0
	for i := range in {
		kr := &in[i]
		seq := aws.ToString(kr.SequenceNumber)
		var arrival time.Time
		if kr.ApproximateArrivalTimestamp != nil {
			arrival = *kr.ApproximateArrivalTimestamp
		}
		skip := i == 0 && sc.skipSeq != "" && seq == sc.skipSeq
		for j := from; j < ends[i]; j++ {
			u := &scratch[j]
			if skip && u.SubSequenceNumber <= sc.skipSub {
				continue
			}
			out = append(out, NewRecord(seq, arrival, u))
		}
		from = ends[i]
	}
	sc.skipSeq = ""
	clear(scratch)
	return out, scratch[:0]
}
