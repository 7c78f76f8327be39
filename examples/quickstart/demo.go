package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/producer"
)

// demo is one run of the launch: the stream, the writer, the consumer fleet and the
// accounting they share.
type demo struct {
	o      options
	c      *curve
	t      *target
	ledger *ledger
	prod   *producer.Producer

	sentiment [numSentiments]atomic.Uint64

	mu         sync.Mutex
	workers    []*demoWorker
	lag        map[string]int64 // MillisBehindLatest of each shard's latest batch
	maxLag     int64
	events     []string
	killed     map[string]bool // lease keys held by killed workers at the kill
	failedOver map[string]bool // of those, the ones another worker started
}

// demoWorker is one consumer worker of the demo's application.
type demoWorker struct {
	id     string
	w      *consumer.Worker
	cancel context.CancelFunc
	done   chan error
	state  string // "running", "killed", "stopped"; guarded by demo.mu
	// running is true until the worker is killed or stopped.
	running atomic.Bool
}

func (d *demo) event(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, fmt.Sprintf(format, args...))
}

// runDemo runs the launch against t and returns its summary.
func runDemo(ctx context.Context, o options, c *curve, t *target, stdout io.Writer, ansi bool) (summary, error) {
	d := &demo{o: o, c: c, t: t, ledger: newLedger(), lag: map[string]int64{}, killed: map[string]bool{}, failedOver: map[string]bool{}}
	if err := d.createStream(ctx); err != nil {
		return summary{}, err
	}
	if t.Engine == nil && !o.Keep {
		defer d.cleanup()
	}
	prod, err := producer.New(t.Kinesis,
		producer.WithStream(o.Stream),
		producer.WithMetrics(producer.MetricsDetailed, producer.GranularityGlobal),
	)
	if err != nil {
		return summary{}, err
	}
	d.prod = prod

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	for i := 1; i <= o.Workers; i++ {
		if err := d.startWorker(runCtx, fmt.Sprintf("worker-%d", i)); err != nil {
			return summary{}, err
		}
	}

	fmt.Fprintf(stdout, "Launch of %.0f posts over %v: %.0f posts/s at the start, %.0f at the viral peak (about %.1f MiB/s of %d-byte posts; a shard takes 1 MiB/s).\n",
		c.Total(), o.Duration, c.Rate(0), c.Peak(), c.Peak()*float64(o.PostSize)/(1<<20), o.PostSize)
	fmt.Fprintf(stdout, "Stream %s: ON_DEMAND on %s; %d consumer workers of application %s.\n\n", o.Stream, t.Name, o.Workers, o.App)
	watcher := newShardWatcher(t.Kinesis, o.Stream)
	view := newLiveView(stdout, ansi, o.Every)
	in, out := newRateMeter(time.Second), newRateMeter(time.Second)
	start := time.Now()
	var counts shardCounts
	var lastPoll time.Time
	refresh := func(now time.Time) {
		elapsed := now.Sub(start)
		if now.Sub(lastPoll) >= time.Second || lastPoll.IsZero() {
			if c, err := watcher.Poll(ctx); err == nil {
				counts = c
			}
			lastPoll = now
		}
		view.Update(d.snapshot(elapsed, counts, in, out))
	}

	// The producer follows the curve on its own goroutine; the view refreshes here.
	prodDone := make(chan error, 1)
	scaleCtx, stopScaling := context.WithCancel(runCtx)
	defer stopScaling()
	go func() {
		err := d.produce(runCtx, start)
		stopScaling()
		prodDone <- err
	}()
	if t.Engine != nil {
		go d.scaleWhileProducing(scaleCtx, start)
	}
	killAt, joinAt := d.failoverTimes()
	killed, joined := false, false
	tick := time.NewTicker(o.Refresh)
	defer tick.Stop()
	var prodErr error
	producing := true
	// After the last post the consumers drain the stream: the wait ends when every
	// post is consumed, or when none was for drainStall (the rest is then lost).
	var lastConsumed uint64
	var lastProgress time.Time
loop:
	for {
		select {
		case <-ctx.Done():
			return summary{}, ctx.Err()
		case prodErr = <-prodDone:
			producing = false
			if prodErr != nil {
				break loop
			}
			lastProgress = time.Now()
			d.event("launch over: waiting for the consumers to catch up")
		case now := <-tick.C:
			elapsed := now.Sub(start)
			if !killed && elapsed >= killAt {
				killed = true
				d.killWorker()
			}
			if !joined && elapsed >= joinAt {
				joined = true
				if err := d.startWorker(runCtx, fmt.Sprintf("worker-%d", o.Workers+1)); err != nil {
					return summary{}, err
				}
			}
			refresh(now)
			if !producing {
				tot := d.ledger.Totals()
				if tot.Lost == 0 {
					break loop
				}
				if tot.Consumed != lastConsumed {
					lastConsumed, lastProgress = tot.Consumed, now
				}
				if now.Sub(lastProgress) > d.drainStall() {
					d.event("no post consumed for %v: giving up on %d posts", d.drainStall(), tot.Lost)
					break loop
				}
			}
		}
	}
	refresh(time.Now())
	view.Finish()
	if prodErr != nil {
		return summary{}, prodErr
	}
	d.stopWorkers()
	if c, err := watcher.Poll(ctx); err == nil {
		counts = c
	}
	return d.summary(time.Since(start), counts, in, out), nil
}

// scaleWhileProducing runs the bundled engine's periodic work (on-demand scaling) from
// the start of the launch to the end of the viral peak. Afterwards the stream keeps its
// shards, as the service does: it merges cold shards only after hours, while the
// engine's demo-sized window would merge every shard left idle for a few seconds.
func (d *demo) scaleWhileProducing(ctx context.Context, start time.Time) {
	_, peakEnd := d.c.PeakWindow()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < peakEnd {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			d.t.Engine.Streams.Maintain()
		}
	}
}

// failoverTimes places the worker kill just after the viral peak starts and the new
// worker's arrival a little later, so failover and rebalancing happen under load.
func (d *demo) failoverTimes() (kill, join time.Duration) {
	peakStart, peakEnd := d.c.PeakWindow()
	kill = peakStart + (peakEnd-peakStart)/4
	join = kill + (peakEnd-peakStart)/4
	return kill, join
}

// failoverTime is the consumers' lease failover time, scaled to the run (KCL's default
// is 10 s; a much shorter one makes leases flap on a loaded machine).
func (d *demo) failoverTime() time.Duration {
	return min(max(d.o.Duration/15, 2*time.Second), 10*time.Second)
}

// drainStall is how long the drain waits without progress before it gives up.
func (d *demo) drainStall() time.Duration {
	return 20*time.Second + 3*d.failoverTime()
}

// createStream creates the ON_DEMAND stream (pre-scaled with warm throughput if asked)
// and waits until it is ACTIVE.
func (d *demo) createStream(ctx context.Context) error {
	in := &kinesis.CreateStreamInput{
		StreamName:        aws.String(d.o.Stream),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand},
	}
	if d.o.WarmThroughput > 0 {
		in.WarmThroughputMiBps = aws.Int32(int32(d.o.WarmThroughput))
	}
	if _, err := d.t.Kinesis.CreateStream(ctx, in); err != nil {
		var inUse *types.ResourceInUseException
		if errors.As(err, &inUse) {
			return fmt.Errorf("stream %s already exists: pick another --stream or delete it: %w", d.o.Stream, err)
		}
		return fmt.Errorf("create stream %s: %w", d.o.Stream, err)
	}
	waiter := kinesis.NewStreamExistsWaiter(d.t.Kinesis, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 5*time.Second
	})
	if err := waiter.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(d.o.Stream)}, 5*time.Minute); err != nil {
		return fmt.Errorf("wait for stream %s: %w", d.o.Stream, err)
	}
	return nil
}

// cleanup deletes the stream and the application's tables on a real service.
func (d *demo) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = d.t.Kinesis.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(d.o.Stream), EnforceConsumerDeletion: aws.Bool(true)})
	deleteTables(ctx, d.t.DynamoDB, d.o.App)
}

// produce puts the launch's posts on the curve's schedule, then closes the producer,
// which flushes everything still buffered.
func (d *demo) produce(ctx context.Context, start time.Time) error {
	seed := d.o.Seed
	var next uint64
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		elapsed := time.Since(start)
		due := uint64(d.c.Due(elapsed))
		for ; next < due; next++ {
			p := generatePost(seed, next, d.o.PostSize)
			id := next
			d.ledger.Put(id)
			rec := producer.Record{PartitionKey: p.partitionKey(), Data: appendPost(nil, p)}
			if err := d.prod.Put(ctx, rec, func(r producer.Result) { d.putDone(id, r) }); err != nil {
				d.ledger.Failed(id, "Put: "+err.Error())
				return fmt.Errorf("put post %d: %w", id, err)
			}
		}
		if elapsed >= d.o.Duration {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return d.prod.Close(cctx)
}

// putDone records one post's outcome from the producer.
func (d *demo) putDone(id uint64, r producer.Result) {
	if r.Err == nil {
		d.ledger.Acked(id)
		return
	}
	reason := "error"
	switch {
	case errors.Is(r.Err, producer.ErrRecordExpired):
		reason = "RecordExpired"
	case errors.Is(r.Err, producer.ErrClosed):
		reason = "ProducerClosed"
	case len(r.Attempts) > 0 && r.Attempts[len(r.Attempts)-1].ErrorCode != "":
		reason = r.Attempts[len(r.Attempts)-1].ErrorCode
	}
	d.ledger.Failed(id, reason)
}

// producerCounts reads the throttled Kinesis records and the retries from the
// producer's metrics (KPL's ErrorsByCode and RetriesPerRecord).
func (d *demo) producerCounts() (throttled, retries uint64) {
	for _, m := range d.prod.Metrics() {
		if m.Stream != "" || m.ShardID != "" {
			continue
		}
		switch {
		case m.Name == producer.MetricErrorsByCode && m.ErrorCode == "ProvisionedThroughputExceededException":
			throttled += uint64(m.Sum)
		case m.Name == producer.MetricRetriesPerRecord:
			retries += uint64(m.Sum)
		}
	}
	return throttled, retries
}

// startWorker starts one consumer worker of the application.
func (d *demo) startWorker(ctx context.Context, id string) error {
	w, err := consumer.New(d.o.App, d.t.Kinesis, d.t.DynamoDB, d.processorFactory(id),
		consumer.WithStream(d.o.Stream, consumer.TrimHorizon()),
		consumer.WithWorkerID(id),
		consumer.WithFailoverTime(d.failoverTime()),
		consumer.WithShardSyncInterval(time.Second),
		consumer.WithShutdownTimeout(10*time.Second),
		// The demo's workers share one process, so they would all report the same CPU
		// and the leader could not tell them apart: balance by throughput instead.
		consumer.WithCPUMetrics(false),
	)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", id, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	dw := &demoWorker{id: id, w: w, cancel: cancel, done: make(chan error, 1), state: "running"}
	dw.running.Store(true)
	go func() { dw.done <- w.Run(wctx) }()
	d.mu.Lock()
	d.workers = append(d.workers, dw)
	joining := len(d.workers) > d.o.Workers
	d.mu.Unlock()
	if joining {
		d.event("%s joined the application", id)
	}
	return nil
}

// killWorker aborts the running worker holding the most leases, as if its process died.
// Workers are asked for their leases outside d.mu: they call processors, which take it.
func (d *demo) killWorker() {
	var victim *demoWorker
	var leases []string
	for _, w := range d.workerList() {
		if w.running.Load() {
			if held := w.w.HeldLeases(); victim == nil || len(held) > len(leases) {
				victim, leases = w, held
			}
		}
	}
	if victim == nil {
		return
	}
	d.mu.Lock()
	for _, k := range leases {
		d.killed[k] = true
	}
	victim.state = "killed"
	d.mu.Unlock()
	victim.running.Store(false)
	victim.w.Abort()
	d.event("%s killed holding %d leases: they fail over after %v", victim.id, len(leases), d.failoverTime())
}

// workerList returns the workers started so far.
func (d *demo) workerList() []*demoWorker {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*demoWorker(nil), d.workers...)
}

// stopWorkers shuts the running workers down gracefully and waits for them.
func (d *demo) stopWorkers() {
	ws := d.workerList()
	for _, w := range ws {
		w.running.Store(false)
		w.cancel()
	}
	for _, w := range ws {
		<-w.done
		d.mu.Lock()
		if w.state == "running" {
			w.state = "stopped"
		}
		d.mu.Unlock()
	}
}

// processorFactory returns the factory of worker id's shard processors.
func (d *demo) processorFactory(id string) consumer.ProcessorFactory {
	return func(shard consumer.ShardInfo) (consumer.Processor, error) {
		return &postProcessor{d: d, worker: id, shard: shard}, nil
	}
}

// postProcessor scores the posts of one shard and checkpoints after each batch.
type postProcessor struct {
	d      *demo
	worker string
	shard  consumer.ShardInfo
}

func (p *postProcessor) Initialize(ctx context.Context, in consumer.InitializeInput) error {
	d := p.d
	d.mu.Lock()
	takeover := d.killed[p.shard.LeaseKey] && !d.failedOver[p.shard.LeaseKey]
	if takeover {
		d.failedOver[p.shard.LeaseKey] = true
	}
	d.mu.Unlock()
	if takeover {
		d.event("%s took over %s from its last checkpoint", p.worker, p.shard.ShardID)
	}
	return nil
}

func (p *postProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	d := p.d
	for _, r := range in.Records {
		post, err := decodePost(r.Data)
		if err != nil {
			d.ledger.Consumed(^uint64(0), 0) // counted as unexpected
			continue
		}
		if d.ledger.Consumed(post.ID, recordFingerprint(p.shard.ShardID, r.SequenceNumber, r.SubSequenceNumber)) {
			d.sentiment[scoreSentiment(post.Text)].Add(1)
		}
	}
	d.mu.Lock()
	d.lag[p.shard.ShardID] = in.MillisBehindLatest
	d.maxLag = max(d.maxLag, in.MillisBehindLatest)
	d.mu.Unlock()
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *postProcessor) LeaseLost(ctx context.Context, in consumer.LeaseLostInput) {
	p.forget()
}

func (p *postProcessor) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		return err
	}
	p.forget()
	return nil
}

func (p *postProcessor) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	p.forget()
	return in.Checkpointer.Checkpoint(ctx)
}

// forget drops the shard's lag once this processor no longer reads it.
func (p *postProcessor) forget() {
	p.d.mu.Lock()
	delete(p.d.lag, p.shard.ShardID)
	p.d.mu.Unlock()
}

// recordFingerprint identifies one stored user record.
func recordFingerprint(shardID, seq string, sub int64) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, shardID)
	_, _ = h.Write([]byte{0})
	_, _ = io.WriteString(h, seq)
	_, _ = h.Write([]byte{0})
	_, _ = io.WriteString(h, strconv.FormatInt(sub, 10))
	return h.Sum64()
}

// snapshot gathers the live view's numbers.
func (d *demo) snapshot(elapsed time.Duration, counts shardCounts, in, out *rateMeter) snapshot {
	tot := d.ledger.Totals()
	s := snapshot{
		Elapsed: elapsed, Duration: d.o.Duration,
		Phase:      d.c.Phase(elapsed),
		TargetRate: d.c.Rate(elapsed),
		InRate:     in.Observe(elapsed, tot.Acked),
		OutRate:    out.Observe(elapsed, tot.Consumed),
		Produced:   tot.Acked, Consumed: tot.Consumed,
		OpenShards: counts.Open, ClosedShards: counts.Closed,
	}
	s.Throttled, s.Retries = d.producerCounts()
	if elapsed > d.o.Duration {
		s.Phase, s.TargetRate = "draining", 0
	}
	for i := range s.Sentiment {
		s.Sentiment[i] = d.sentiment[i].Load()
	}
	ws := d.workerList()
	held := make([]int, len(ws))
	for i, w := range ws {
		if w.running.Load() {
			held[i] = len(w.w.HeldLeases())
		}
	}
	d.mu.Lock()
	for _, l := range d.lag {
		s.LagMillis = max(s.LagMillis, l)
	}
	var plan lease.Round
	for _, w := range ws {
		if r, ok := w.w.LastAssignment(); ok && w.running.Load() && w.w.IsLeader() {
			plan = r
		}
	}
	for i, w := range ws {
		s.Workers = append(s.Workers, workerLeases{Worker: w.id, Leases: held[i], State: w.state, Load: plan.Plan.Load[w.w.ID()]})
	}
	if plan.Plan.Load != nil {
		s.Basis, s.MeanKBps = plan.Plan.Basis.String(), plan.MeanKBps
	}
	s.Events, d.events = d.events, nil
	d.mu.Unlock()
	return s
}

// summary builds the final account.
func (d *demo) summary(elapsed time.Duration, counts shardCounts, in, out *rateMeter) summary {
	s := summary{
		Target: d.t.Name, Stream: d.o.Stream, WarmThroughput: d.o.WarmThroughput,
		Elapsed: elapsed, Totals: d.ledger.Totals(),
		ShardsAtStart: counts.AtStart, ShardsCreated: counts.Created, ShardsClosed: counts.ClosedSince, OpenAtEnd: counts.Open,
		PeakIn: in.Peak(), PeakOut: out.Peak(),
	}
	s.Throttled, s.Retries = d.producerCounts()
	for i := range s.Sentiment {
		s.Sentiment[i] = d.sentiment[i].Load()
	}
	d.mu.Lock()
	s.MaxLagMillis = d.maxLag
	for _, w := range d.workers {
		switch {
		case w.state == "killed":
			s.WorkersKilled = append(s.WorkersKilled, w.id)
		case d.indexOf(w) >= d.o.Workers:
			s.WorkersJoined = append(s.WorkersJoined, w.id)
		}
	}
	s.Failovers = len(d.failedOver)
	d.mu.Unlock()
	if s.Totals.Lost > 0 {
		ids := d.ledger.MissingIDs(10)
		s.Notes = append(s.Notes, fmt.Sprintf("first lost post IDs: %v", ids))
	}
	if d.t.Engine != nil {
		ec := d.t.Engine.Streams.Counters()
		s.Notes = append(s.Notes, fmt.Sprintf("engine: %d records stored, %d entries throttled, %d splits, %d merges",
			ec.RecordsIn, ec.ThrottledRecords, ec.Splits, ec.Merges))
	}
	sort.Strings(s.WorkersKilled)
	return s
}

func (d *demo) indexOf(w *demoWorker) int {
	for i, x := range d.workers {
		if x == w {
			return i
		}
	}
	return -1
}
