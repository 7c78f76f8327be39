package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/metrics"
)

// API is the part of *kinesis.Client a Consumer uses.
type API interface {
	ReceiveQueueRecords(ctx context.Context, in *kinesis.ReceiveQueueRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.ReceiveQueueRecordsOutput, error)
	AcknowledgeQueueRecords(ctx context.Context, in *kinesis.AcknowledgeQueueRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.AcknowledgeQueueRecordsOutput, error)
	UpdateQueueRecordsVisibility(ctx context.Context, in *kinesis.UpdateQueueRecordsVisibilityInput, optFns ...func(*kinesis.Options)) (*kinesis.UpdateQueueRecordsVisibilityOutput, error)
}

// Record is one delivery of a queue record.
type Record struct {
	// ID identifies the record: the same in every delivery and in every queue of the
	// stream, so handlers can be idempotent.
	ID string
	// PartitionKey is the key the record was written with; empty when it had none
	// (streams with AUTO record distribution).
	PartitionKey string
	// Data is the payload. The handler may keep it.
	Data []byte
	// ArrivalTime is when the stream accepted the record; FirstReceiveTime when the
	// queue first delivered it.
	ArrivalTime, FirstReceiveTime time.Time
	// ReceiveCount counts the deliveries of the record, this one included, since it was
	// last restored.
	ReceiveCount int

	receipt string
}

// HasPartitionKey reports whether the record was written with a partition key.
func (r *Record) HasPartitionKey() bool { return r.PartitionKey != "" }

// ReceiptHandle is the handle of this delivery, for the queue's own operations.
func (r *Record) ReceiptHandle() string { return r.receipt }

func recordOf(q types.QueueRecord) *Record {
	r := &Record{ID: aws.ToString(q.RecordId), PartitionKey: aws.ToString(q.PartitionKey), Data: q.Data,
		ReceiveCount: int(aws.ToInt32(q.ReceiveCount)), receipt: aws.ToString(q.ReceiptHandle)}
	if q.ApproximateArrivalTimestamp != nil {
		r.ArrivalTime = *q.ApproximateArrivalTimestamp
	}
	if q.FirstReceiveTimestamp != nil {
		r.FirstReceiveTime = *q.FirstReceiveTimestamp
	}
	return r
}

// Handler processes one record. A nil error acknowledges it; an error (or a panic)
// leaves it to the failure policy. ctx ends when the shutdown timeout passes.
type Handler func(ctx context.Context, r *Record) error

// BatchHandler processes the records of one receive (up to ten). It returns nil when
// all succeeded, or one error per record (nil for those that succeeded); a slice of
// another length fails the whole batch.
type BatchHandler func(ctx context.Context, recs []*Record) []error

// Stats counts a Consumer's work since it was created.
type Stats struct {
	// Receives counts ReceiveQueueRecords calls answered, EmptyReceives those with no
	// record, ReceiveErrors those that failed.
	Receives, EmptyReceives, ReceiveErrors int64
	// Received counts records received; Succeeded and Failed the handler outcomes.
	Received, Succeeded, Failed int64
	// Acknowledged counts acknowledgements the queue confirmed; AckFailed those it
	// refused or that could not be sent (the record will be delivered again).
	Acknowledged, AckFailed int64
	// Extended counts visibility extensions of records still being handled or waiting;
	// Released counts records made visible at once (FailureRetryNow, or not started at
	// shutdown).
	Extended, Released int64
	// InFlight and InFlightBytes are the records (and their data bytes) held now.
	InFlight, InFlightBytes int64
}

type counters struct {
	receives, emptyReceives, receiveErrors atomic.Int64
	received, succeeded, failed            atomic.Int64
	acknowledged, ackFailed                atomic.Int64
	extended, released                     atomic.Int64
}

// Consumer consumes one queue. Create it with New, run it with Run or RunBatch (once).
type Consumer struct {
	api   API
	queue string
	cfg   config
	c     counters

	mu       sync.Mutex
	cond     *sync.Cond
	recs     int   // records in flight, reserved ones included
	bytes    int64 // data bytes in flight
	stopping bool
	flight   map[string]*item // by receipt handle
	started  atomic.Bool
	fatal    error
	dims     []metrics.Dimension
}

// item is one record held by the consumer.
type item struct {
	rec      *Record
	size     int64
	deadline time.Time // when its visibility ends, as last set
}

// New returns a Consumer of the queue with the given ARN.
func New(api API, queueARN string, opts ...Option) (*Consumer, error) {
	if api == nil {
		return nil, fmt.Errorf("%w: nil API", ErrInvalidOption)
	}
	if !strings.HasPrefix(queueARN, "arn:") || !strings.Contains(queueARN, ":queue/") {
		return nil, fmt.Errorf("%w: queue ARN %q: want arn:aws:kinesis:<region>:<account>:queue/<id>", ErrInvalidOption, queueARN)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Consumer{api: api, queue: queueARN, cfg: cfg, flight: make(map[string]*item),
		dims: []metrics.Dimension{{Name: DimQueueARN, Value: queueARN}}}
	c.cond = sync.NewCond(&c.mu)
	return c, nil
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	inFlight, bytes := int64(len(c.flight)), c.bytes
	c.mu.Unlock()
	k := &c.c
	return Stats{
		Receives: k.receives.Load(), EmptyReceives: k.emptyReceives.Load(), ReceiveErrors: k.receiveErrors.Load(),
		Received: k.received.Load(), Succeeded: k.succeeded.Load(), Failed: k.failed.Load(),
		Acknowledged: k.acknowledged.Load(), AckFailed: k.ackFailed.Load(),
		Extended: k.extended.Load(), Released: k.released.Load(),
		InFlight: inFlight, InFlightBytes: bytes,
	}
}

// ErrAlreadyRun is returned by a second Run or RunBatch of one Consumer.
var ErrAlreadyRun = errors.New("queue: consumer already run")

// Run receives and handles records with h until ctx ends, then shuts down gracefully:
// receives stop, records not yet started are made visible again, running handlers get
// up to WithShutdownTimeout to finish, and what succeeded is acknowledged. It returns
// nil after a shutdown caused by ctx, or the error that made the queue unusable (it no
// longer exists, access denied, an invalid request).
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	return c.run(ctx, func(hctx context.Context, items []*item) []error {
		errs := make([]error, len(items))
		for i, it := range items {
			errs[i] = callSafe(func() error { return h(hctx, it.rec) })
		}
		return errs
	}, false)
}

// RunBatch is Run with a handler per receive batch.
func (c *Consumer) RunBatch(ctx context.Context, h BatchHandler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	return c.run(ctx, func(hctx context.Context, items []*item) []error {
		recs := make([]*Record, len(items))
		for i, it := range items {
			recs[i] = it.rec
		}
		var out []error
		err := callSafe(func() error { out = h(hctx, recs); return nil })
		errs := make([]error, len(items))
		switch {
		case err != nil:
			for i := range errs {
				errs[i] = err
			}
		case out == nil:
		case len(out) != len(items):
			for i := range errs {
				errs[i] = fmt.Errorf("queue: batch handler returned %d errors for %d records", len(out), len(items))
			}
		default:
			copy(errs, out)
		}
		return errs
	}, true)
}

func callSafe(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("queue: handler panicked: %v", p)
		}
	}()
	return f()
}

type handleFunc func(ctx context.Context, items []*item) []error

func (c *Consumer) run(ctx context.Context, handle handleFunc, batches bool) error {
	if !c.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	// Service calls that must outlive ctx: acknowledgements and releases at shutdown.
	svcCtx, cancelSvc := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSvc()

	work := make(chan []*item, c.cfg.maxInFlight)
	acks := make(chan *item, c.cfg.maxInFlight)
	releases := make(chan *item, c.cfg.maxInFlight)

	var recvWG, handlerWG, ackWG, visWG sync.WaitGroup
	for i := 0; i < c.cfg.receivers; i++ {
		recvWG.Add(1)
		go func() {
			defer recvWG.Done()
			c.receiver(recvCtx, stopRecv, work, batches)
		}()
	}
	for i := 0; i < c.cfg.handlers; i++ {
		handlerWG.Add(1)
		go func() {
			defer handlerWG.Done()
			c.handlerLoop(hctx, work, acks, releases, handle)
		}()
	}
	ackWG.Add(1)
	go func() {
		defer ackWG.Done()
		c.ackLoop(svcCtx, acks)
	}()
	visDone := make(chan struct{})
	visWG.Add(1)
	go func() {
		defer visWG.Done()
		c.visibilityLoop(svcCtx, releases, visDone)
	}()

	<-recvCtx.Done()
	c.mu.Lock()
	c.stopping = true
	c.cond.Broadcast()
	c.mu.Unlock()
	recvWG.Wait()
	close(work)
	finished := make(chan struct{})
	go func() { handlerWG.Wait(); close(finished) }()
	timer := time.NewTimer(c.cfg.shutdownTimeout)
	defer timer.Stop()
	select {
	case <-finished:
	case <-timer.C:
		c.cfg.log.Warn("queue: handlers still running at the shutdown timeout; cancelling them")
		cancelHandlers()
		<-finished
	}
	close(acks)
	close(releases)
	ackWG.Wait()
	close(visDone)
	visWG.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal
}

// reserve waits for room for at least one record and reserves up to ten; 0 when
// stopping.
func (c *Consumer) reserve() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.stopping && (c.recs >= c.cfg.maxInFlight || c.bytes >= c.cfg.maxInFlightData) {
		c.cond.Wait()
	}
	if c.stopping {
		return 0
	}
	n := min(maxReceive, c.cfg.maxInFlight-c.recs)
	c.recs += n
	return n
}

// unreserve gives back n reserved slots.
func (c *Consumer) unreserve(n int) {
	if n == 0 {
		return
	}
	c.mu.Lock()
	c.recs -= n
	c.cond.Broadcast()
	c.mu.Unlock()
}

// done ends an item's life in the consumer.
func (c *Consumer) done(it *item) {
	c.mu.Lock()
	delete(c.flight, it.rec.receipt)
	c.recs--
	c.bytes -= it.size
	c.cond.Broadcast()
	c.mu.Unlock()
}

// fatalCode reports service errors that retrying cannot fix.
func fatalCode(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "ResourceNotFoundException", "ValidationException", "AccessDeniedException", "InvalidArgumentException":
		return true
	}
	return false
}

func (c *Consumer) backoff(n int) time.Duration {
	d := c.cfg.retryBase << min(n, 20)
	if d > c.cfg.retryMax || d <= 0 {
		d = c.cfg.retryMax
	}
	return d/2 + rand.N(d/2+1)
}

func (c *Consumer) receiver(ctx context.Context, stop context.CancelFunc, work chan<- []*item, batches bool) {
	failures := 0
	vis := int32(c.cfg.visibility / time.Second)
	wait := int32(c.cfg.wait / time.Second)
	for ctx.Err() == nil {
		n := c.reserve()
		if n == 0 {
			return
		}
		start := time.Now()
		out, err := c.api.ReceiveQueueRecords(ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(c.queue),
			Limit: aws.Int32(int32(n)), VisibilityTimeoutSeconds: aws.Int32(vis), WaitTimeSeconds: aws.Int32(wait)})
		if err != nil {
			c.unreserve(n)
			if ctx.Err() != nil {
				return
			}
			c.c.receiveErrors.Add(1)
			c.count(MetricReceiveFailure, 1)
			if fatalCode(err) {
				c.cfg.log.Error("queue: receive failed; stopping", zap.String("queue", c.queue), zap.Error(err))
				c.mu.Lock()
				if c.fatal == nil {
					c.fatal = fmt.Errorf("queue: ReceiveQueueRecords on %s: %w", c.queue, err)
				}
				c.mu.Unlock()
				stop()
				return
			}
			c.cfg.log.Warn("queue: receive failed; retrying", zap.String("queue", c.queue), zap.Error(err))
			_ = clock.Sleep(ctx, nil, c.backoff(failures))
			failures++
			continue
		}
		failures = 0
		c.c.receives.Add(1)
		recs := out.QueueRecords
		c.millis(MetricReceiveTime, time.Since(start))
		c.count(MetricRecordsReceived, len(recs))
		if len(recs) > n {
			// More than asked for: hold them all, the bound is passed once.
			c.mu.Lock()
			c.recs += len(recs) - n
			c.mu.Unlock()
		} else {
			c.unreserve(n - len(recs))
		}
		if len(recs) == 0 {
			c.c.emptyReceives.Add(1)
			continue
		}
		c.c.received.Add(int64(len(recs)))
		items := make([]*item, len(recs))
		deadline := start.Add(c.cfg.visibility)
		c.mu.Lock()
		for i, q := range recs {
			it := &item{rec: recordOf(q), size: int64(len(q.Data)), deadline: deadline}
			items[i] = it
			c.bytes += it.size
			c.flight[it.rec.receipt] = it
		}
		held := len(c.flight)
		c.mu.Unlock()
		c.count(MetricRecordsInFlight, held)
		if batches {
			work <- items
		} else {
			for _, it := range items {
				work <- []*item{it}
			}
		}
	}
}

func (c *Consumer) handlerLoop(ctx context.Context, work <-chan []*item, acks, releases chan<- *item, handle handleFunc) {
	for items := range work {
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		if stopping {
			// Not started: give them back to the queue at once.
			for _, it := range items {
				releases <- it
			}
			continue
		}
		start := time.Now()
		errs := handle(ctx, items)
		c.millis(MetricHandlerTime, time.Since(start))
		ok, failed, bytes := 0, 0, int64(0)
		for i, it := range items {
			if errs[i] == nil {
				ok++
				bytes += it.size
			} else {
				failed++
			}
		}
		if ok > 0 {
			c.count(MetricRecordsProcessed, ok)
			c.cfg.metrics.Record(MetricDataBytesProcessed, metrics.UnitBytes, float64(bytes), c.dims...)
		}
		if failed > 0 {
			c.count(MetricRecordsFailed, failed)
		}
		for i, it := range items {
			if errs[i] == nil {
				c.c.succeeded.Add(1)
				acks <- it
				continue
			}
			c.c.failed.Add(1)
			c.cfg.log.Debug("queue: handler failed", zap.String("record", it.rec.ID), zap.Int("receiveCount", it.rec.ReceiveCount), zap.Error(errs[i]))
			if c.cfg.failure == FailureRetryNow {
				releases <- it
			} else {
				c.done(it)
			}
		}
	}
}

// retryableEntry reports per-entry failures worth sending again.
func retryableEntry(code string) bool {
	switch code {
	case "ThrottlingException", "InternalFailure", "InternalFailureException", "LimitExceededException":
		return true
	}
	return false
}

// ackLoop sends acknowledgements in batches of ten, or after the ack interval.
func (c *Consumer) ackLoop(ctx context.Context, acks <-chan *item) {
	var batch []*item
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		if len(batch) > 0 {
			c.acknowledge(ctx, batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case it, ok := <-acks:
			if !ok {
				flush()
				return
			}
			if len(batch) == 0 {
				timer.Reset(c.cfg.ackInterval)
			}
			batch = append(batch, it)
			if len(batch) == maxBatch {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// acknowledge acknowledges items (at most ten), retrying transient failures a few
// times; every item is done afterwards.
func (c *Consumer) acknowledge(ctx context.Context, items []*item) {
	acked, refused := 0, 0
	defer func() {
		if acked > 0 {
			c.count(MetricRecordsAcknowledged, acked)
		}
		if refused > 0 {
			c.count(MetricAcknowledgeFailure, refused)
		}
	}()
	pending := append([]*item(nil), items...)
	for attempt := 0; len(pending) > 0; attempt++ {
		entries := make([]types.AcknowledgeQueueRecordsRequestEntry, len(pending))
		byHandle := make(map[string]*item, len(pending))
		for i, it := range pending {
			entries[i].ReceiptHandle = aws.String(it.rec.receipt)
			byHandle[it.rec.receipt] = it
		}
		out, err := c.api.AcknowledgeQueueRecords(ctx, &kinesis.AcknowledgeQueueRecordsInput{QueueARN: aws.String(c.queue), Entries: entries})
		if err != nil {
			if attempt < 5 && !fatalCode(err) && ctx.Err() == nil {
				_ = clock.Sleep(ctx, nil, c.backoff(attempt))
				continue
			}
			c.cfg.log.Warn("queue: acknowledgement failed; the records will be delivered again", zap.Int("records", len(pending)), zap.Error(err))
			for _, it := range pending {
				c.c.ackFailed.Add(1)
				refused++
				c.done(it)
			}
			return
		}
		for _, s := range out.Successful {
			if it := byHandle[aws.ToString(s.ReceiptHandle)]; it != nil {
				c.c.acknowledged.Add(1)
				acked++
				delete(byHandle, it.rec.receipt)
				c.done(it)
			}
		}
		pending = pending[:0]
		for _, f := range out.Failed {
			it := byHandle[aws.ToString(f.ReceiptHandle)]
			if it == nil {
				continue
			}
			delete(byHandle, it.rec.receipt)
			if retryableEntry(aws.ToString(f.ErrorCode)) && attempt < 5 {
				pending = append(pending, it)
				continue
			}
			c.cfg.log.Warn("queue: acknowledgement refused; the record may be delivered again", zap.String("record", it.rec.ID),
				zap.String("code", aws.ToString(f.ErrorCode)), zap.String("message", aws.ToString(f.ErrorMessage)))
			c.c.ackFailed.Add(1)
			refused++
			c.done(it)
		}
		// Entries the answer did not mention are not known to be acknowledged.
		for _, it := range byHandle {
			c.c.ackFailed.Add(1)
			refused++
			c.done(it)
		}
		if len(pending) > 0 {
			_ = clock.Sleep(ctx, nil, c.backoff(attempt))
		}
	}
}

// visibilityLoop extends the visibility of held records when half of it has passed,
// and makes released records visible at once, in batches of ten.
func (c *Consumer) visibilityLoop(ctx context.Context, releases <-chan *item, stop <-chan struct{}) {
	tick := time.NewTicker(max(c.cfg.visibility/8, 100*time.Millisecond))
	defer tick.Stop()
	var rel []*item
	flushReleases := func() {
		for len(rel) > 0 {
			n := min(len(rel), maxBatch)
			c.setVisibility(ctx, rel[:n], 0)
			for _, it := range rel[:n] {
				c.c.released.Add(1)
				c.done(it)
			}
			c.count(MetricRecordsReleased, n)
			rel = rel[n:]
		}
	}
	for {
		select {
		case it, ok := <-releases:
			if !ok {
				flushReleases()
				releases = nil
				continue
			}
			rel = append(rel, it)
			// Take whatever else is waiting, then send.
			for more := true; more && len(rel) < maxBatch; {
				select {
				case it, ok := <-releases:
					if !ok {
						releases = nil
						more = false
						break
					}
					rel = append(rel, it)
				default:
					more = false
				}
			}
			flushReleases()
		case <-tick.C:
			c.extend(ctx)
		case <-stop:
			flushReleases()
			return
		}
	}
}

// extend renews the visibility of the held records whose deadline is less than half
// a visibility timeout away.
func (c *Consumer) extend(ctx context.Context) {
	now := time.Now()
	c.mu.Lock()
	var due []*item
	for _, it := range c.flight {
		if it.deadline.Sub(now) < c.cfg.visibility/2 {
			due = append(due, it)
		}
	}
	c.mu.Unlock()
	for len(due) > 0 {
		n := min(len(due), maxBatch)
		ok := c.setVisibility(ctx, due[:n], c.cfg.visibility)
		extended := 0
		c.mu.Lock()
		for _, it := range due[:n] {
			if ok[it.rec.receipt] {
				it.deadline = now.Add(c.cfg.visibility)
				c.c.extended.Add(1)
				extended++
			}
		}
		c.mu.Unlock()
		if extended > 0 {
			c.count(MetricVisibilityExtended, extended)
		}
		due = due[n:]
	}
}

// setVisibility changes the visibility of up to ten items and returns the receipt
// handles the queue accepted.
func (c *Consumer) setVisibility(ctx context.Context, items []*item, d time.Duration) map[string]bool {
	entries := make([]types.UpdateQueueRecordsVisibilityRequestEntry, len(items))
	for i, it := range items {
		entries[i] = types.UpdateQueueRecordsVisibilityRequestEntry{ReceiptHandle: aws.String(it.rec.receipt), VisibilityTimeoutSeconds: aws.Int32(int32(d / time.Second))}
	}
	ok := make(map[string]bool, len(items))
	for attempt := 0; attempt < 3; attempt++ {
		out, err := c.api.UpdateQueueRecordsVisibility(ctx, &kinesis.UpdateQueueRecordsVisibilityInput{QueueARN: aws.String(c.queue), Entries: entries})
		if err != nil {
			if fatalCode(err) || ctx.Err() != nil {
				break
			}
			_ = clock.Sleep(ctx, nil, c.backoff(attempt))
			continue
		}
		for _, s := range out.Successful {
			ok[aws.ToString(s.ReceiptHandle)] = true
		}
		for _, f := range out.Failed {
			c.cfg.log.Debug("queue: visibility change refused", zap.String("code", aws.ToString(f.ErrorCode)), zap.String("message", aws.ToString(f.ErrorMessage)))
		}
		break
	}
	return ok
}
