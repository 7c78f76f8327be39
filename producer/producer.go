package producer

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/internal/hashkey"
	"github.com/freshet/freshet/internal/kinesiswire"
	"github.com/freshet/freshet/internal/lanehash"
	"github.com/freshet/freshet/internal/retrypolicy"
	"github.com/freshet/freshet/internal/sdkhttp"
)

// Client is the part of *kinesis.Client the producer uses. Tests pass a fake.
type Client interface {
	// PutRecords writes a batch of records.
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	// ListShards lists a stream's shards and their hash key ranges.
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	// DescribeStreamSummary reads a stream's maximum record size.
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// Record is one user record to put.
type Record struct {
	// Stream is the stream name; the producer's WithStream stream when empty.
	Stream string
	// PartitionKey groups records: unless ExplicitHashKey is set, its MD5 decides the
	// shard. 1 to 256 Unicode characters; it may be empty only on a stream with AUTO
	// record distribution (Put fails with ErrInvalidRecord elsewhere), where the service
	// places every record itself and ignores keys for placement.
	PartitionKey string
	// ExplicitHashKey, when not empty, is a decimal integer in [0, 2^128-1] that decides
	// the shard instead of the partition key.
	ExplicitHashKey string
	// Data is the payload; it must not be nil (it may be empty). The producer copies it
	// before Put returns when aggregating, and when its client is the SDK's
	// *kinesis.Client (a plain record's request entry is encoded at Put); with another
	// Client and no aggregation it keeps a reference until the outcome: do not modify
	// it before then.
	Data []byte
	// Tags are carried with the record inside its KPL aggregate (the aggregated format's
	// per-record tags): a Freshet consumer hands them to the processor
	// (consumer.Record.Tags); the Java KCL and aws-kinesis-agg read the record and
	// ignore them. They need aggregation (the default): Put fails with
	// ErrInvalidRecord for a record with tags on a producer that does not aggregate.
	// Their bytes count toward the record's size. The tracing module puts a W3C trace
	// context here ("traceparent", "tracestate").
	Tags []Tag
}

// Tag is one key and value of a record's tags (aggregation.Tag).
type Tag = aggregation.Tag

// Attempt is one try to write a record.
type Attempt struct {
	// Start is when the PutRecords call began.
	Start time.Time
	// Duration is how long the call took.
	Duration time.Duration
	// ErrorCode is empty on success, otherwise the service's error code for the record
	// or a class of the call's failure ("Timeout", "Exception").
	ErrorCode string
	// ErrorMessage is the service's message, if any.
	ErrorMessage string
}

// Result is the outcome of one user record. It resolves exactly once.
type Result struct {
	// Stream is the stream the record was put to.
	Stream string
	// ShardID is the shard that stored the record (on failure, the predicted shard).
	ShardID string
	// SequenceNumber is the sequence number of the Kinesis record that carries it.
	SequenceNumber string
	// SubSequenceNumber is the record's index in its aggregate (0 when not aggregated).
	SubSequenceNumber int64
	// Aggregated reports whether the record was written inside a KPL aggregate.
	Aggregated bool
	// Attempts lists every try, oldest first. Records of one aggregate share the slice;
	// do not modify it.
	Attempts []Attempt
	// Err is nil on success; otherwise a *RecordError wrapping ErrRecordExpired,
	// ErrClosed, ErrThrottled or a *ServiceError.
	Err error
}

// Future is the pending outcome of one record put with PutAsync.
type Future struct {
	done chan struct{}
	res  Result
}

// Done is closed when the outcome is known.
func (f *Future) Done() <-chan struct{} { return f.done }

// Result returns the outcome; it blocks until Done is closed.
func (f *Future) Result() Result { <-f.done; return f.res }

// Wait waits for the outcome or for ctx to end, whichever is first. When ctx ends first
// it returns ctx's error; the record's outcome is still delivered later.
func (f *Future) Wait(ctx context.Context) (Result, error) {
	select {
	case <-f.done:
		return f.res, f.res.Err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Producer writes user records to Kinesis streams: it predicts each record's shard,
// aggregates records per shard, collects aggregates into PutRecords calls, limits the
// rate per shard, retries failures and reports one outcome per record. It is safe for
// concurrent use.
type Producer struct {
	cfg         config
	retry       retrypolicy.Policy // cfg.retry as the shared component
	recOverhead int64              // bookkeeping bytes charged per user record
	client      Client
	log         *zap.Logger
	// direct sends PutRecords itself (WithDirectPutRecords); nil for the SDK's path.
	direct   *kinesiswire.Direct
	callOpt  []func(*kinesis.Options) // JSON PutRecords (our serializer)
	cborOpt  []func(*kinesis.Options) // CBOR PutRecords
	calls    [][]*krec                // the dispatcher's scratch: calls of one pass
	buildGen uint64                   // the dispatcher's count of calls built (shard.buildGen)
	waves    atomic.Int64             // waves of more than one call started
	// waveSigned counts the bodies whose payload hash came from a wave.
	waveSigned atomic.Int64
	// waveLanes is how many calls' bodies can be hashed together: the SHA-256 lanes
	// of this CPU when the client is the SDK's own, whose PutRecords runs its
	// middleware stack, and so the producer's payload-hash step, synchronously; 1 for
	// any other Client, which may not run that step at all.
	waveLanes int
	// encodeAtPut is true when the client is the SDK's own, whose PutRecords runs the
	// kinesiswire protocol and so takes entries encoded ahead (kinesiswire.WithEncoded):
	// then plain records are encoded into their shard's slab as they are put, their
	// data still in the CPU's cache, and a call copies their entries.
	encodeAtPut bool
	keySeed     maphash.Seed // for keyHash
	// cborOn is true while PutRecords goes out in CBOR; it turns false for good when a
	// CBOR response cannot be decoded (see send).
	cborOn  atomic.Bool
	start   time.Time
	metrics *instruments

	mu      sync.Mutex
	streams map[string]*stream
	list    atomic.Pointer[[]*stream]
	def     atomic.Pointer[stream]
	epochs  []*epoch
	cur     atomic.Pointer[epoch]

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	flushing  atomic.Int32

	bufRecords atomic.Int64
	bufBytes   atomic.Int64
	waiting    atomic.Int32
	spaceMu    sync.Mutex
	spaceCh    chan struct{}

	// clock is a coarse producer time for stamping records: see clockTick.
	clock    atomic.Int64
	hashes   *hashCache
	dataFree chan []byte    // recycled aggregate buffers
	slabFree chan *krecSlab // recycled slabs of plain records
	bodyFree chan *[]byte   // recycled CBOR request bodies
	// bodyFreeBytes is the capacity of the bodies in bodyFree, kept under
	// maxFreeBodyBytes.
	bodyFreeBytes atomic.Int64

	wake     chan struct{}
	slots    chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	workers  sync.WaitGroup
	quit     chan struct{}
	loopDone chan struct{}
}

// epoch groups the records put between two flushes so Flush can wait for exactly the
// records put before it. pending starts at 1, the epoch's own token, released when a
// newer epoch replaces it.
type epoch struct {
	pending atomic.Int64
	done    chan struct{}
}

func newEpoch() *epoch {
	e := &epoch{done: make(chan struct{})}
	e.pending.Store(1)
	return e
}

func (e *epoch) release(n int64) {
	if e.pending.Add(-n) == 0 {
		close(e.done)
	}
}

// New returns a producer that writes through client. It starts one background goroutine
// (the dispatcher) and, with WithCloudWatch, a metrics publisher; Close stops them. Bad
// options fail with an error wrapping ErrInvalidOption.
func New(client Client, opts ...Option) (*Producer, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidOption)
	}
	cfg := defaultConfig()
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
	if _, err := cfg.newAggregator(0); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Producer{
		cfg:         cfg,
		retry:       cfg.retry.policy(),
		recOverhead: AggregatedRecordOverhead,
		client:      client,
		log:         cfg.logger,
		start:       time.Now(),
		streams:     make(map[string]*stream),
		hashes:      newHashCache(cfg.hashCacheSize),
		keySeed:     maphash.MakeSeed(),
		dataFree:    newDataFree(cfg.aggMaxBytes),
		slabFree:    make(chan *krecSlab, freeSlabs(&cfg)),
		bodyFree:    make(chan *[]byte, cfg.maxInFlight),
		wake:        make(chan struct{}, 1),
		slots:       make(chan struct{}, cfg.maxInFlight),
		ctx:         ctx,
		cancel:      cancel,
		quit:        make(chan struct{}),
		loopDone:    make(chan struct{}),
	}
	if !cfg.aggregate {
		p.recOverhead = PlainRecordOverhead
	}
	var err error
	if p.metrics, err = newInstruments(&p.cfg); err != nil {
		cancel()
		return nil, err
	}
	p.waveLanes = 1
	if c, sdk := client.(*kinesis.Client); sdk {
		p.waveLanes = lanehash.SHA256Lanes()
		p.encodeAtPut = true
		if cfg.direct {
			p.direct, err = kinesiswire.NewDirect(ctx, c.Options())
			if err != nil {
				p.log.Info("producer: PutRecords goes through the SDK's middleware stack", zap.Error(err))
			}
		}
	}
	noRetry := func(o *kinesis.Options) {
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = sdkhttp.ReadOnlyBodies(o.HTTPClient)
	}
	p.callOpt = []func(*kinesis.Options){noRetry, kinesiswire.UseJSON, usePayloadHash}
	p.cborOpt = []func(*kinesis.Options){noRetry, kinesiswire.UseCBOR, usePayloadHash}
	p.cborOn.Store(cfg.cbor)
	empty := []*stream{}
	p.list.Store(&empty)
	e := newEpoch()
	p.cur.Store(e)
	p.epochs = []*epoch{e}
	go p.loop()
	if p.metrics.cw != nil {
		p.workers.Add(1)
		go p.publishLoop()
	}
	return p, nil
}

// keyHash is the kh of a record of partition key pk.
func (p *Producer) keyHash(pk string) uint64 { return maphash.String(p.keySeed, pk) }

// now returns the producer's monotonic time in nanoseconds.
func (p *Producer) now() int64 { return int64(time.Since(p.start)) }

// clockTick is the longest the dispatcher lets the coarse clock lag while records are
// buffered, so a record's put time (and TTL) is exact to about this.
const clockTick = int64(10 * time.Millisecond)

// advanceClock moves the coarse clock forward to now.
func (p *Producer) advanceClock(now int64) {
	for {
		c := p.clock.Load()
		if now <= c || p.clock.CompareAndSwap(c, now) {
			return
		}
	}
}

// signal wakes the dispatcher without blocking.
func (p *Producer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Put validates rec and enqueues it, returning once the record is buffered; done (which
// may be nil) is called exactly once with the record's outcome, from a producer
// goroutine: it must not block for long. At the buffer bound Put blocks until there is
// room or ctx ends (returning ctx's error), or fails fast with ErrBufferFull under
// WithFailFast. The first Put to a stream also waits, under ctx, for its shard map.
// Invalid records (ErrInvalidRecord, ErrRecordTooLarge) and Puts after Close (ErrClosed)
// fail at once; when Put returns an error nothing was enqueued and done is never called.
func (p *Producer) Put(ctx context.Context, rec Record, done func(Result)) error {
	return p.put(ctx, rec, done, false)
}

// PutAsync is Put that returns a Future for the outcome.
func (p *Producer) PutAsync(ctx context.Context, rec Record) (*Future, error) {
	f := &Future{done: make(chan struct{})}
	if err := p.put(ctx, rec, func(r Result) { f.res = r; close(f.done) }, false); err != nil {
		return nil, err
	}
	return f, nil
}

// PutSync puts rec and waits for its outcome. It never waits out the linger: the
// record's shard buffer is sent at once, with whatever else it holds. When ctx ends
// before the outcome, PutSync returns ctx's error and the record may still be written.
func (p *Producer) PutSync(ctx context.Context, rec Record) (Result, error) {
	f := &Future{done: make(chan struct{})}
	if err := p.put(ctx, rec, func(r Result) { f.res = r; close(f.done) }, true); err != nil {
		return Result{}, err
	}
	return f.Wait(ctx)
}

func validPartitionKey(pk string) bool {
	if len(pk) == 0 {
		return false
	}
	if len(pk) <= MaxPartitionKeyLength {
		for i := 0; i < len(pk); i++ {
			if pk[i] >= utf8.RuneSelf {
				return utf8.ValidString(pk)
			}
		}
		return true
	}
	return utf8.ValidString(pk) && utf8.RuneCountInString(pk) <= MaxPartitionKeyLength
}

func (p *Producer) put(ctx context.Context, rec Record, done func(Result), urgent bool) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if rec.PartitionKey != "" && !validPartitionKey(rec.PartitionKey) {
		return fmt.Errorf("%w: partition key must be 1 to %d characters of valid UTF-8 (got %d bytes)", ErrInvalidRecord, MaxPartitionKeyLength, len(rec.PartitionKey))
	}
	if rec.Data == nil {
		return fmt.Errorf("%w: nil data", ErrInvalidRecord)
	}
	var hk hashkey.Key
	if rec.ExplicitHashKey != "" {
		k, err := hashkey.Parse(rec.ExplicitHashKey)
		if err != nil {
			return fmt.Errorf("%w: explicit hash key %q: %w", ErrInvalidRecord, rec.ExplicitHashKey, err)
		}
		hk = k
	}
	st := p.def.Load()
	if rec.Stream != "" || st == nil {
		var err error
		if st, err = p.stream(ctx, rec.Stream); err != nil {
			return err
		}
	}
	if len(p.cfg.hooks.recordPut) > 0 {
		// A copy for the hooks to change: only producers with such a hook pay for it.
		r := rec
		onResult := p.cfg.hooks.onRecordPut(ctx, &r)
		rec = r
		if onResult != nil {
			if err := p.enqueue(ctx, st, &rec, hk, chain(onResult, done), urgent); err != nil {
				onResult(Result{Stream: st.name, Err: err})
				return err
			}
			return nil
		}
	}
	return p.enqueue(ctx, st, &rec, hk, done, urgent)
}

// chain returns a callback calling first, then done (which may be nil).
func chain(first, done func(Result)) func(Result) {
	return func(r Result) {
		first(r)
		if done != nil {
			done(r)
		}
	}
}

// enqueue checks the record's tags and size, reserves buffer room and buffers it.
func (p *Producer) enqueue(ctx context.Context, st *stream, rec *Record, hk hashkey.Key, done func(Result), urgent bool) error {
	if rec.PartitionKey == "" && !st.auto.Load() {
		return fmt.Errorf("%w: no partition key: stream %s places records by partition key (only streams with AUTO record distribution take records without one)", ErrInvalidRecord, st.name)
	}
	size := len(rec.Data) + len(rec.PartitionKey)
	if len(rec.Tags) > 0 {
		if !p.cfg.aggregate {
			return fmt.Errorf("%w: tags are carried only in aggregates, and this producer does not aggregate", ErrInvalidRecord)
		}
		if st.auto.Load() {
			return fmt.Errorf("%w: tags are carried only in aggregates, and stream %s has AUTO record distribution, where records are sent plain", ErrInvalidRecord, st.name)
		}
		if err := aggregation.ValidateTags(rec.Tags); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
		}
		size += aggregation.TagsSize(rec.Tags)
	}
	if size > st.maxRecordSize {
		return fmt.Errorf("%w: %d bytes of data, partition key and tags exceed stream %s's maximum record size of %d", ErrRecordTooLarge, size, st.name, st.maxRecordSize)
	}
	if rec.ExplicitHashKey == "" {
		hk = p.hashes.get(rec.PartitionKey)
	}
	ep, err := p.reserve(ctx, int64(size)+p.recOverhead)
	if err != nil {
		return err
	}
	p.metrics.userReceived(st)
	st.enqueue(rec, hk, userRec{done: done, size: int32(size), ep: ep}, urgent)
	return nil
}

// reserve counts a record of size bytes (its data, partition key and recOverhead)
// against the buffer bound and the current flush epoch, waiting for room as configured.
func (p *Producer) reserve(ctx context.Context, size int64) (*epoch, error) {
	for {
		// Bytes are claimed with a compare-and-swap, so the gauge never shows more than
		// the bound (a single record larger than the bound is let through alone).
		b := p.bufBytes.Load()
		if b+size <= p.cfg.maxBufBytes || b == 0 {
			if p.bufBytes.CompareAndSwap(b, b+size) {
				if r := p.bufRecords.Add(1); r <= p.cfg.maxBufRecords || r == 1 {
					break
				}
				p.release(1, size-p.recOverhead)
			} else {
				continue
			}
		}
		if p.cfg.failFast {
			return nil, ErrBufferFull
		}
		if err := p.waitForSpace(ctx, size); err != nil {
			return nil, err
		}
	}
	for {
		ep := p.cur.Load()
		n := ep.pending.Load()
		if n > 0 && ep.pending.CompareAndSwap(n, n+1) {
			if p.closed.Load() {
				ep.release(1)
				p.release(1, size-p.recOverhead)
				return nil, ErrClosed
			}
			return ep, nil
		}
	}
}

func (p *Producer) waitForSpace(ctx context.Context, size int64) error {
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	for {
		p.spaceMu.Lock()
		if p.spaceCh == nil {
			p.spaceCh = make(chan struct{})
		}
		ch := p.spaceCh
		p.spaceMu.Unlock()
		if p.closed.Load() {
			return ErrClosed
		}
		if (p.bufRecords.Load() < p.cfg.maxBufRecords && p.bufBytes.Load()+size <= p.cfg.maxBufBytes) || p.bufRecords.Load() == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release returns the buffer room of records user records of bytes bytes (data and
// partition keys; their recOverhead is added here) and wakes blocked Puts.
func (p *Producer) release(records, bytes int64) {
	p.bufRecords.Add(-records)
	p.bufBytes.Add(-bytes - records*p.recOverhead)
	if p.waiting.Load() > 0 {
		p.broadcastSpace()
	}
}

func (p *Producer) broadcastSpace() {
	p.spaceMu.Lock()
	if p.spaceCh != nil {
		close(p.spaceCh)
		p.spaceCh = nil
	}
	p.spaceMu.Unlock()
}

// BufferedBytes returns the bytes of records put and not yet resolved, in flight
// included: their data and partition keys, plus a fixed charge per record for the
// producer's own bookkeeping (PlainRecordOverhead without aggregation,
// AggregatedRecordOverhead with it). It never exceeds the WithMaxBuffered bound, except
// while a single record larger than the bound is buffered alone.
func (p *Producer) BufferedBytes() int64 { return p.bufBytes.Load() }

// BufferedRecords returns the number of user records put and not yet resolved.
func (p *Producer) BufferedRecords() int64 { return p.bufRecords.Load() }

// Flush sends every buffered record without waiting out the linger, and waits until
// every record put before the call has its outcome, or ctx ends (returning ctx's error;
// the records keep going).
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	old := p.cur.Load()
	wait := append([]*epoch(nil), p.epochs...)
	ne := newEpoch()
	p.cur.Store(ne)
	p.epochs = append(p.epochs, ne)
	p.mu.Unlock()
	old.release(1)

	p.flushing.Add(1)
	defer p.flushing.Add(-1)
	p.signal()
	var err error
	for _, e := range wait {
		select {
		case <-e.done:
			continue
		case <-ctx.Done():
			err = ctx.Err()
		}
		break
	}
	p.mu.Lock()
	keep := p.epochs[:0]
	for _, e := range p.epochs {
		select {
		case <-e.done:
		default:
			keep = append(keep, e)
		}
	}
	clear(p.epochs[len(keep):])
	p.epochs = keep
	p.mu.Unlock()
	return err
}

// Close stops accepting records (Put then fails with ErrClosed), sends everything
// buffered and waits for the outcomes until ctx ends. Records still unresolved then fail
// with ErrClosed through their own outcome, in-flight calls are cancelled, and every
// producer goroutine has exited when Close returns. It returns ctx's error if the
// deadline cut the flush short. Calling Close again returns the first call's result.
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.broadcastSpace()
		p.closeErr = p.Flush(ctx)
		p.cancel()
		close(p.quit)
		<-p.loopDone
		p.workers.Wait()
		// Nothing sends any more: fail whatever is left.
		for _, st := range *p.list.Load() {
			st.failAll(ErrClosed)
		}
		pctx, cancel := context.WithTimeout(context.Background(), p.cfg.requestTimeout)
		p.publishOnce(pctx)
		cancel()
		if p.closeErr != nil {
			p.log.Warn("producer: closed with records unresolved", zap.Error(p.closeErr))
		}
	})
	return p.closeErr
}

// stream returns the state of stream name ("" for the default), discovering its shards
// and limits on first use.
func (p *Producer) stream(ctx context.Context, name string) (*stream, error) {
	if name == "" {
		name = p.cfg.stream
		if name == "" {
			return nil, fmt.Errorf("%w: no stream (set Record.Stream or WithStream)", ErrInvalidRecord)
		}
	}
	for {
		p.mu.Lock()
		st, ok := p.streams[name]
		if !ok {
			st = newStream(p, name)
			p.streams[name] = st
			p.mu.Unlock()
			err := st.discover(ctx)
			p.mu.Lock()
			if err != nil {
				p.metrics.listFailed(st, err, false)
				delete(p.streams, name)
				st.err = err
			} else {
				list := append(append([]*stream(nil), *p.list.Load()...), st)
				p.list.Store(&list)
				if name == p.cfg.stream {
					p.def.Store(st)
				}
			}
			close(st.ready)
			p.mu.Unlock()
			if err != nil {
				return nil, err
			}
			p.signal()
			return st, nil
		}
		p.mu.Unlock()
		select {
		case <-st.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if st.err == nil {
			return st, nil
		}
		if p.closed.Load() {
			return nil, ErrClosed
		}
		if errors.Is(st.err, context.Canceled) || errors.Is(st.err, context.DeadlineExceeded) {
			continue
		}
		return nil, st.err
	}
}
