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
)

// demo is one run of the launch: the stream, the writer, the consumer fleet and the
// accounting they share.
type demo struct {
	o      options
	c      *curve
	t      *target
	ledger *ledger
	writer postWriter

	sentiment [numSentiments]atomic.Uint64
	throttled atomic.Uint64 // throttled attempts reported by the writer
	retries   atomic.Uint64 // attempts beyond the first

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
	state  string // "running", "killed", "stopped"
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
	d.writer = newSDKWriter(t.Kinesis, o.Stream)

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	for i := 1; i <= o.Workers; i++ {
		if err := d.startWorker(runCtx, fmt.Sprintf("worker-%d", i)); err != nil {
			return summary{}, err
		}
	}

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
	go func() { prodDone <- d.produce(runCtx, start) }()
	killAt, joinAt := d.failoverTimes()
	killed, joined := false, false
	tick := time.NewTicker(o.Refresh)
	defer tick.Stop()
	var prodErr error
	producing := true
	drainUntil := time.Time{}
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
			drainUntil = time.Now().Add(d.drainTimeout())
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
				if tot.Lost == 0 || now.After(drainUntil) {
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

// failoverTimes places the worker kill just after the viral peak starts and the new
// worker's arrival a little later, so failover and rebalancing happen under load.
func (d *demo) failoverTimes() (kill, join time.Duration) {
	peakStart, peakEnd := d.c.PeakWindow()
	kill = peakStart + (peakEnd-peakStart)/4
	join = kill + (peakEnd-peakStart)/4
	return kill, join
}

// failoverTime is the consumers' lease failover time, scaled to the run.
func (d *demo) failoverTime() time.Duration {
	return min(max(d.o.Duration/20, time.Second), 10*time.Second)
}

// drainTimeout bounds the wait for the consumers after the last post.
func (d *demo) drainTimeout() time.Duration {
	return 30*time.Second + 3*d.failoverTime()
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

// produce writes the launch's posts on the curve's schedule, then flushes.
func (d *demo) produce(ctx context.Context, start time.Time) error {
	seed := d.o.Seed
	var next uint64
	var buf []byte
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		elapsed := time.Since(start)
		due := uint64(d.c.Due(elapsed))
		for ; next < due; next++ {
			p := generatePost(seed, next)
			buf = appendPost(buf[:0], p)
			data := append([]byte(nil), buf...)
			id := next
			d.ledger.Put(id)
			err := d.writer.Put(ctx, p.partitionKey(), data, func(r writeResult) { d.writeDone(id, r) })
			if err != nil {
				d.ledger.Failed(id, "Put: "+err.Error())
				return fmt.Errorf("put post %d: %w", id, err)
			}
		}
		if elapsed >= d.o.Duration {
			break
		}
		if err := d.writer.Flush(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return d.writer.Close(cctx)
}

func (d *demo) writeDone(id uint64, r writeResult) {
	if r.Throttled > 0 {
		d.throttled.Add(uint64(r.Throttled))
	}
	if r.Attempts > 1 {
		d.retries.Add(uint64(r.Attempts - 1))
	}
	if r.Err != nil {
		d.ledger.Failed(id, r.Code)
		return
	}
	d.ledger.Acked(id)
}

// startWorker starts one consumer worker of the application.
func (d *demo) startWorker(ctx context.Context, id string) error {
	w, err := consumer.New(d.o.App, d.t.Kinesis, d.t.DynamoDB, d.processorFactory(id),
		consumer.WithStream(d.o.Stream, consumer.TrimHorizon()),
		consumer.WithWorkerID(id),
		consumer.WithFailoverTime(d.failoverTime()),
		consumer.WithShardSyncInterval(time.Second),
		consumer.WithShutdownTimeout(10*time.Second),
	)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", id, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	dw := &demoWorker{id: id, w: w, cancel: cancel, done: make(chan error, 1), state: "running"}
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
func (d *demo) killWorker() {
	d.mu.Lock()
	var victim *demoWorker
	held := -1
	for _, w := range d.workers {
		if w.state != "running" {
			continue
		}
		if n := len(w.w.HeldLeases()); n > held {
			victim, held = w, n
		}
	}
	if victim == nil {
		d.mu.Unlock()
		return
	}
	leases := victim.w.HeldLeases()
	for _, k := range leases {
		d.killed[k] = true
	}
	victim.state = "killed"
	d.mu.Unlock()
	victim.w.Abort()
	d.event("%s killed holding %d leases: they fail over after %v", victim.id, len(leases), d.failoverTime())
}

// stopWorkers shuts the running workers down gracefully and waits for them.
func (d *demo) stopWorkers() {
	d.mu.Lock()
	ws := append([]*demoWorker(nil), d.workers...)
	d.mu.Unlock()
	for _, w := range ws {
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
		Throttled: d.throttled.Load(), Retries: d.retries.Load(),
	}
	if elapsed > d.o.Duration {
		s.Phase, s.TargetRate = "draining", 0
	}
	for i := range s.Sentiment {
		s.Sentiment[i] = d.sentiment[i].Load()
	}
	d.mu.Lock()
	for _, l := range d.lag {
		s.LagMillis = max(s.LagMillis, l)
	}
	for _, w := range d.workers {
		n := 0
		if w.state == "running" {
			n = len(w.w.HeldLeases())
		}
		s.Workers = append(s.Workers, workerLeases{Worker: w.id, Leases: n, State: w.state})
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
		Throttled: d.throttled.Load(), Retries: d.retries.Load(),
		PeakIn: in.Peak(), PeakOut: out.Peak(),
	}
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
