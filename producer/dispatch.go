package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/internal/kinesiswire"
	"github.com/freshet/freshet/internal/retrypolicy"
)

// loop is the dispatcher: it seals aggregates whose linger ran out, expires records past
// their TTL, collects waiting Kinesis records into PutRecords calls within the shards'
// rate limits and starts a sender goroutine per call, up to the in-flight bound.
func (p *Producer) loop() {
	defer close(p.loopDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var cand []*shard
	for {
		var next int64
		next, cand = p.collect(cand[:0])
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if next > 0 {
			timer.Reset(time.Duration(next))
		}
		select {
		case <-p.wake:
		case <-timer.C:
		case <-p.quit:
			return
		}
	}
}

const noDeadline = int64(1<<63 - 1)

// collect does one dispatcher pass and returns how long until the next one is due
// (0 for none).
func (p *Producer) collect(cand []*shard) (int64, []*shard) {
	now := p.now()
	p.advanceClock(now)
	buffered := false
	flushing := p.flushing.Load() > 0
	// A record waits at most its linger, and never more than half its TTL, before it is
	// due: whatever the settings, it gets sent well before it expires.
	linger := int64(min(p.cfg.linger, p.cfg.recordTTL/2))
	next := noDeadline
	var expired []*krec
	for _, st := range *p.list.Load() {
		if st.stale.Load() || now-st.lastRefresh.Load() >= int64(p.cfg.refreshEvery) {
			st.lastRefresh.Store(now)
			st.requestRefresh()
		}
		m := st.shards.Load()
		cand = cand[:0]
		totalRecs, totalBytes := 0, 0
		due := false
		blocked := p.cfg.ordered && (st.moving.Load() || st.retiredBusy.Load() > 0)
		for _, sh := range m.shards {
			sh.mu.Lock()
			buffered = buffered || len(sh.open) > 0 || sh.waiting() > 0
			if len(sh.open) > 0 {
				if flushing || sh.urgent || now-sh.openFirst >= linger {
					sh.seal()
				} else {
					next = min(next, sh.openFirst+linger)
				}
			}
			// A Kinesis record whose oldest user record expired loses its expired user
			// records; the others stay at the front, rebuilt, with their own deadlines.
			for sh.qLen() > 0 && sh.front().deadline <= now {
				live, dead := p.splitExpired(sh.popFront(), now)
				if dead != nil {
					expired = append(expired, dead)
				}
				if len(live) > 0 {
					// What is left has waited long enough: send it now.
					sh.pushFront(live)
					sh.urgent = true
					break
				}
			}
			if sh.heldN > 0 {
				var first int64
				expired, first = sh.expireHeld(now, expired)
				next = min(next, first)
			}
			if sh.waiting() == 0 {
				sh.urgent = false
				sh.mu.Unlock()
				continue
			}
			if sh.qLen() > 0 {
				next = min(next, sh.front().deadline)
			}
			if blocked || sh.waitsForCall() {
				sh.mu.Unlock()
				continue
			}
			if now < sh.retryAt {
				next = min(next, sh.retryAt)
				sh.mu.Unlock()
				continue
			}
			if ok, wait := sh.lim.ready(now); !ok {
				next = min(next, now+wait)
				sh.mu.Unlock()
				continue
			}
			cand = append(cand, sh)
			totalRecs += sh.waiting()
			totalBytes += sh.qBytes
			if flushing || sh.urgent || p.cfg.ordered || sh.heldN > 0 {
				due = true
			} else if d := sh.front().firstPut + linger; d <= now {
				due = true
			} else {
				next = min(next, d)
			}
			sh.mu.Unlock()
		}
		for _, k := range expired {
			p.metrics.expired(st, k)
			p.finish(k, &RecordError{Stream: st.name, ShardID: k.sh.id, Err: ErrRecordExpired, Last: k.lastErr}, true)
		}
		expired = expired[:0]
		if len(cand) == 0 || (!due && totalRecs < p.cfg.collectMaxCount && totalBytes < p.cfg.collectMaxBytes) {
			continue
		}
		if !due && p.awaitWave() {
			// Calls in flight will free their slots together soon: start the next
			// calls together too, so that their bodies share the hash lanes.
			continue
		}
		rand.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
		calls := p.calls[:0]
		callBytes := p.waveCallBytes(totalBytes)
	fill:
		for {
			select {
			case p.slots <- struct{}{}:
			default:
				// All calls in flight; a completion wakes the dispatcher.
				break fill
			}
			batch, full := p.build(st, cand, now, callBytes)
			if len(batch) == 0 || (!full && (!due || p.holdsPartialCall())) {
				p.unbuild(batch)
				<-p.slots
				break
			}
			calls = append(calls, batch)
		}
		p.launch(st, calls)
		clear(calls)
		p.calls = calls[:0]
	}
	if buffered {
		next = min(next, now+clockTick)
	}
	if next == noDeadline {
		return 0, cand
	}
	return max(next-now, int64(time.Millisecond)), cand
}

// orderedPlainCalls is how many calls an ordered plain producer has in flight before
// it holds back a call that is not full. Its shards never send two records of one key
// at once, so what it may send is bounded by the keys not in flight; started as soon
// as some keys come back, its calls would carry only the records of those keys (a few
// hundred records spread over many small calls, each paying the call's fixed cost).
// Held back while two calls are in flight, the next call takes the keys of every call
// that returned meanwhile.
const orderedPlainCalls = 2

// holdsPartialCall reports whether the dispatcher holds back a call that is not full:
// an ordered plain producer with orderedPlainCalls calls in flight besides the one
// being built (each that returns wakes the dispatcher, which builds again).
func (p *Producer) holdsPartialCall() bool {
	return p.cfg.ordered && !p.cfg.aggregate && len(p.slots)-1 >= orderedPlainCalls
}

// waveCallBytes is the byte size of the calls a pass makes from ready bytes of
// one stream. With SHA-256 lanes and free call slots, what is ready is spread
// over as many calls as there are lanes and slots (none under minWaveCallBytes),
// so that their bodies are hashed together (see payloadhash.go); otherwise a call
// takes up to the collection limit.
func (p *Producer) waveCallBytes(ready int) int {
	lanes := p.waveLanes
	free := cap(p.slots) - len(p.slots)
	k := min(lanes, free, ready/minWaveCallBytes)
	if k < 2 {
		return p.cfg.collectMaxBytes
	}
	return min(p.cfg.collectMaxBytes, max(minWaveCallBytes, (ready+k-1)/k))
}

// minWave is the fewest calls whose bodies are worth hashing together: SHA-256
// lanes beat crypto/sha256 from three messages of similar length (measured in
// internal/lanehash).
const minWave = 3

// awaitWave reports whether the dispatcher should hold calls that are ready but
// not due until more slots are free: with SHA-256 lanes, fewer than minWave free
// slots and calls in flight that will free theirs. Records that are due (linger
// passed, flush, close, TTL) never wait for it, and neither do ordered producers:
// with one call in flight per aggregating shard, holding a shard's next call back costs more
// than the lanes save (measured: ordered 1M x 100 B took 1.2-1.3 s with the wait,
// 1.0-1.1 s without).
func (p *Producer) awaitWave() bool {
	if p.cfg.ordered || p.waveLanes < minWave || cap(p.slots) < 2*minWave {
		return false
	}
	busy := len(p.slots)
	return busy > 0 && cap(p.slots)-busy < minWave
}

// launch starts a sender per call; calls started together form a wave.
func (p *Producer) launch(st *stream, calls [][]*krec) {
	if len(calls) == 0 {
		return
	}
	p.workers.Add(len(calls))
	if len(calls) == 1 || p.waveLanes < 2 {
		for _, batch := range calls {
			go p.send(st, batch, nil)
		}
		return
	}
	w := newWave(len(calls), &p.waveSigned, p.cfg.waveGrace)
	p.waves.Add(1)
	for i, batch := range calls {
		go p.send(st, batch, &waveMember{w: w, i: i})
	}
}

var batchPool = sync.Pool{New: func() any { s := make([]*krec, 0, MaxPutRecordsCount); return &s }}

// buildTurn is how many records build takes from a shard in one turn of its round
// robin: a turn locks the shard once, not once per record.
const buildTurn = 16

// build takes waiting Kinesis records from the candidate shards, round robin (up to
// buildTurn at a time), into one PutRecords call of at most maxBytes. It reports
// whether the call is full.
func (p *Producer) build(st *stream, cand []*shard, now int64, maxBytes int) ([]*krec, bool) {
	bp := batchPool.Get().(*[]*krec)
	batch := (*bp)[:0]
	bytes := 0
	full := false
	p.buildGen++
	for progress := true; progress && !full; {
		progress = false
		for _, sh := range cand {
			sh.mu.Lock()
			took := false
			for i := 0; i < buildTurn && !full && p.takeOne(sh, &batch, &bytes, maxBytes, &full, now); i++ {
				took = true
			}
			if sh.waiting() == 0 && len(sh.open) == 0 {
				sh.urgent = false
			}
			sh.mu.Unlock()
			progress = progress || took
			if full {
				break
			}
		}
	}
	*bp = batch
	return batch, full
}

// takeOne moves the first waiting record of sh into the batch if the shard's state, its
// limiter and the batch's limits allow. sh.mu must be held.
func (p *Producer) takeOne(sh *shard, batch *[]*krec, bytes *int, maxBytes int, full *bool, now int64) bool {
	if sh.retired || sh.waiting() == 0 {
		return false
	}
	if ok, _ := sh.lim.ready(now); !ok {
		return false
	}
	// An expired record is left for the next pass, which takes its expired user
	// records out: nothing past its TTL is sent. In ordered mode an aggregating shard
	// puts one record in a call, and only when no call of it is in flight; a plain one
	// any record whose key is not out (nextPlain).
	var k *krec
	from := -1
	if sh.holds() {
		if k, from = sh.nextPlain(p.buildGen, now); k == nil {
			return false
		}
	} else {
		if sh.qLen() == 0 || sh.front().deadline <= now || sh.waitsForCall() {
			return false
		}
		k = sh.front()
	}
	if len(*batch) > 0 && *bytes+k.size > maxBytes {
		*full = true
		return false
	}
	sh.remove(from)
	sh.lim.take(k.size)
	if sh.ordered() {
		if sh.buildGen != p.buildGen {
			sh.buildGen = p.buildGen
			sh.calls++
		}
		if !sh.aggregating() {
			sh.keysOut.add(k.kh)
		}
	}
	*batch = append(*batch, k)
	*bytes += k.size
	if len(*batch) >= p.cfg.collectMaxCount || *bytes >= maxBytes {
		*full = true
	}
	return true
}

// unbuild puts the records of a batch that will not be sent back where they were.
func (p *Producer) unbuild(batch []*krec) {
	for i := len(batch) - 1; i >= 0; i-- {
		k := batch[i]
		sh := k.sh
		sh.mu.Lock()
		sh.lim.refund(k.size)
		if sh.ordered() {
			if !sh.aggregating() {
				sh.keysOut.remove(k.kh)
			}
			if sh.buildGen == p.buildGen {
				// The shard's first record of the batch seen from its end.
				sh.buildGen = 0
				sh.callEnded()
			}
		}
		if sh.retired {
			sh.mu.Unlock()
			sh.st.repredict([]*krec{k})
			continue
		}
		sh.requeue([]*krec{k})
		sh.mu.Unlock()
	}
	p.putBatch(batch)
}

func (p *Producer) putBatch(batch []*krec) {
	clear(batch)
	b := batch[:0]
	batchPool.Put(&b)
}

var tallyPool = sync.Pool{New: func() any { return new(callTally) }}

var entriesPool = sync.Pool{New: func() any { s := make([]types.PutRecordsRequestEntry, 0, MaxPutRecordsCount); return &s }}

// resultsPool recycles the arrays PutRecords responses are decoded into
// (kinesiswire.WithResultEntries; the decoder empties one before it reuses it).
var resultsPool = sync.Pool{New: func() any { s := make([]types.PutRecordsResultEntry, 0, MaxPutRecordsCount); return &s }}

var encodedPool = sync.Pool{New: func() any {
	return &kinesiswire.Encoded{Entries: make([][]byte, 0, MaxPutRecordsCount)}
}}

// send makes one PutRecords call for batch and settles every record in it.
func (p *Producer) send(st *stream, batch []*krec, member *waveMember) {
	defer func() {
		<-p.slots
		p.workers.Done()
		p.signal()
	}()
	p.sealCall(batch)
	useCBOR := p.cborOn.Load()
	ep := entriesPool.Get().(*[]types.PutRecordsRequestEntry)
	entries := (*ep)[:0]
	for _, k := range batch {
		e := types.PutRecordsRequestEntry{Data: k.data}
		if e.Data == nil && k.enc != nil {
			// A JSON entry alone holds the data. A JSON call sends the entry itself
			// (encoded), so the input needs only some data to pass validation; CBOR
			// calls never carry JSON entries (the producer never turns back to CBOR),
			// but one would send the decoded data.
			e.Data = k.enc
			if useCBOR {
				e.Data, _ = k.plainData()
			}
		}
		if k.pk != "" { // only AUTO streams take records without a key
			e.PartitionKey = &k.pk
		}
		if k.ehk != "" {
			e.ExplicitHashKey = &k.ehk
		}
		entries = append(entries, e)
	}
	start := time.Now()
	sentAt := p.now()
	tally := tallyPool.Get().(*callTally)
	defer func() {
		p.endCall(st, tally)
		tallyPool.Put(tally)
	}()
	for _, k := range batch {
		if len(k.attempts) == 0 {
			p.metrics.buffering(st, k, sentAt-k.firstPut, tally)
		}
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.requestTimeout)
	var body *[]byte
	select {
	case body = <-p.bodyFree:
		p.bodyFreeBytes.Add(-int64(cap(*body)))
	default:
		body = new([]byte)
	}
	results := resultsPool.Get().(*[]types.PutRecordsResultEntry)
	defer resultsPool.Put(results)
	var enc *kinesiswire.Encoded
	if p.encodeAtPut {
		enc = p.encoded(batch, useCBOR)
	}
	in := &kinesis.PutRecordsInput{StreamName: &st.name, Records: entries}
	out, err := p.putRecords(ctx, in, useCBOR, body, results, enc, member)
	member.arriveEmpty()
	cancel()
	var nce *kinesiswire.NotCBORError
	notCBOR := useCBOR && errors.As(err, &nce)
	if notCBOR && p.cborOn.CompareAndSwap(true, false) {
		// The endpoint did not answer a CBOR call in CBOR: it rejected CBOR, or sent a
		// body that is not a PutRecords response (kinesalite 3.3.3 cuts CBOR responses
		// off at 16 KiB; that call probably succeeded). Its records are retried in
		// JSON, so after a cut response they may be stored twice.
		p.log.Warn("producer: PutRecords not answered in CBOR; using JSON from now on", zap.String("stream", st.name), zap.Error(err))
	}
	p.recycleBody(body)
	dur := time.Since(start)
	clear(entries)
	*ep = entries[:0]
	entriesPool.Put(ep)
	if enc != nil {
		clear(enc.Entries)
		enc.Entries = enc.Entries[:0]
		encodedPool.Put(enc)
	}
	now := p.now()
	p.metrics.request(st, len(batch), dur)
	cs := callShardsPool.Get().(*callShards)
	defer func() {
		cs.reset()
		callShardsPool.Put(cs)
	}()
	cs.count(batch)
	if err == nil && len(out.Records) != len(batch) {
		err = &ServiceError{Op: "PutRecords", Stream: st.name, Message: "response has a different number of records than the request"}
	}
	var retry []*krec
	if err != nil {
		code := errorCode(err)
		se := &ServiceError{Op: "PutRecords", Stream: st.name, Code: errorCodeOf(err), Err: err}
		closing := p.ctx.Err() != nil
		class := errorClass(err)
		if notCBOR && class != retrypolicy.Throttled {
			class = retrypolicy.Transient
		}
		p.metrics.errorCodeN(st, nil, code, len(batch), !closing && p.retry.Decide(class) == retrypolicy.Retry)
		if !closing {
			p.log.Debug("producer: PutRecords failed", zap.String("stream", st.name), zap.Error(err))
		}
		for _, k := range batch {
			k.attempts = append(k.attempts, Attempt{Start: start, Duration: dur, ErrorCode: code, ErrorMessage: err.Error()})
			k.lastErr = se
			if closing {
				p.finish(k, &RecordError{Stream: st.name, ShardID: k.sh.id, Err: ErrClosed, Last: se}, true)
				continue
			}
			if p.decide(st, k, class, se) {
				retry = append(retry, k)
			}
		}
		// A call that failed whole backs off every shard in it, except that throttling
		// is left to the adaptive limiter when it is on and the shard is saturated.
		for i := range cs.list {
			o := &cs.list[i]
			o.backoff = true
			if class == retrypolicy.Throttled {
				sh := o.sh
				sh.mu.Lock()
				if sh.lim.outcome(now, &p.retry, o.sent, o.sent, 0) {
					sh.lim.throttled(now)
				}
				o.backoff = !sh.lim.adaptive
				sh.mu.Unlock()
			}
		}
		p.settle(cs, retry, now)
		p.putBatch(batch)
		return
	}
	refreshed := false
	var moved []movedRec
	var first []Attempt // the attempt of records written at their first try, shared
	for i := range out.Records {
		e := &out.Records[i]
		k := batch[i]
		if e.ErrorCode != nil && *e.ErrorCode != "" {
			code := *e.ErrorCode
			msg := ""
			if e.ErrorMessage != nil {
				msg = *e.ErrorMessage
			}
			k.attempts = append(k.attempts, Attempt{Start: start, Duration: dur, ErrorCode: code, ErrorMessage: msg})
			se := &ServiceError{Op: "PutRecords", Stream: st.name, ShardID: k.sh.id, Code: code, Message: msg}
			k.lastErr = se
			class := retrypolicy.Classify(code)
			p.metrics.errorCodeN(st, k.sh, code, 1, p.retry.Decide(class) == retrypolicy.Retry)
			if o := cs.of(k.sh); class == retrypolicy.Throttled {
				o.throttled++
			} else {
				o.failed++
			}
			if p.decide(st, k, class, se) {
				retry = append(retry, k)
			}
			continue
		}
		if len(k.attempts) == 0 {
			if first == nil {
				first = []Attempt{{Start: start, Duration: dur}}
			}
			k.attempts = first
		} else {
			k.attempts = append(k.attempts, Attempt{Start: start, Duration: dur})
		}
		shardID, seq := "", ""
		if e.ShardId != nil {
			shardID = *e.ShardId
		}
		if e.SequenceNumber != nil {
			seq = *e.SequenceNumber
		}
		o := cs.of(k.sh)
		o.acceptedRecs++
		o.acceptedBytes += k.size
		if shardID != k.sh.id && shardID != "" && !k.sh.auto {
			// The shard map is stale: list the shards again now, so records still
			// buffered for a closed shard are split by hash key before they are sent.
			if !refreshed {
				refreshed = true
				st.stale.Store(true)
				st.requestRefresh()
			}
			if k.aggregated {
				moved = append(moved, movedRec{k: k, shardID: shardID, seq: seq})
				continue
			}
		}
		p.succeed(st, k, shardID, seq, nil, tally)
	}
	// Sporadic failures (a few entries of shards that took the rest) are retried at
	// once; sustained ones lower the shard's rate (throttling, with the adaptive limiter)
	// or back the shard off (anything else).
	for i := range cs.list {
		o := &cs.list[i]
		sh := o.sh
		sh.mu.Lock()
		if o.acceptedRecs > 0 {
			sh.lim.accepted(now, o.acceptedBytes, o.acceptedRecs)
		}
		if sh.lim.outcome(now, &p.retry, o.sent, o.throttled, o.failed) && o.throttled+o.failed > 0 {
			if o.throttled > 0 {
				sh.lim.throttled(now)
			}
			o.backoff = o.failed > 0 || !sh.lim.adaptive
		}
		sh.mu.Unlock()
	}
	// Repair aggregates stored in an unexpected shard before the shards may send again,
	// so that in ordered mode the records put again stay ahead of later ones.
	for _, m := range moved {
		p.straddled(st, m.k, m.shardID, m.seq)
	}
	p.settle(cs, retry, now)
	p.putBatch(batch)
}

// putRecords makes the PutRecords call of in, directly or through the SDK's client
// (see WithDirectPutRecords), its body encoded into *body (entries encoded ahead
// taken from enc, which may be nil) and its response decoded into *results; member is
// the call's place in a wave of calls whose bodies are hashed together, or nil.
func (p *Producer) putRecords(ctx context.Context, in *kinesis.PutRecordsInput, cbor bool, body *[]byte, results *[]types.PutRecordsResultEntry, enc *kinesiswire.Encoded, member *waveMember) (*kinesis.PutRecordsOutput, error) {
	if p.direct != nil {
		*body = kinesiswire.AppendPutRecordsInput((*body)[:0], in, enc, cbor)
		var sum [sha256.Size]byte
		if member != nil {
			var err error
			if sum, err = member.arrive(ctx, *body); err != nil {
				return nil, err
			}
		} else {
			sum = sha256.Sum256(*body)
		}
		out := &kinesis.PutRecordsOutput{Records: *results}
		if err := p.direct.PutRecords(ctx, *body, hex.EncodeToString(sum[:]), cbor, out); err != nil {
			return nil, err
		}
		return out, nil
	}
	ctx = kinesiswire.WithBody(ctx, body)
	ctx = kinesiswire.WithResultEntries(ctx, results)
	if enc != nil {
		ctx = kinesiswire.WithEncoded(ctx, enc)
	}
	if member != nil {
		ctx = context.WithValue(ctx, waveKey{}, member)
	}
	opts := p.callOpt
	if cbor {
		opts = p.cborOpt
	}
	return p.client.PutRecords(ctx, in, opts...)
}

// encoded returns the entries of batch encoded at Put in the call's protocol (cbor),
// or nil when none is.
func (p *Producer) encoded(batch []*krec, cbor bool) *kinesiswire.Encoded {
	enc := encodedPool.Get().(*kinesiswire.Encoded)
	enc.CBOR = cbor
	some := false
	for _, k := range batch {
		var e []byte
		if k.enc != nil && k.encCBOR == cbor {
			e, some = k.enc, true
		}
		enc.Entries = append(enc.Entries, e)
	}
	if !some {
		clear(enc.Entries)
		enc.Entries = enc.Entries[:0]
		encodedPool.Put(enc)
		return nil
	}
	return enc
}

// callOutcome is what one shard did with its entries of one call.
type callOutcome struct {
	sh                      *shard
	sent, throttled, failed int
	// acceptedRecs and acceptedBytes are the Kinesis records (and their bytes) the
	// shard took, given to its limiter once per call.
	acceptedRecs, acceptedBytes int
	backoff                     bool // the shard's records to retry wait out a backoff
}

// callShards is the outcome of one call by shard, in order of first appearance. Most
// calls span few shards, found by a scan; an index takes over for calls spanning many.
type callShards struct {
	list []callOutcome
	idx  map[*shard]int
	last int
	// keys and keyShards are the key hashes (krec.kh) of an ordered plain call's
	// records and their shards, kept to release the keys when the call settles (its
	// records may be recycled by then).
	keys      []uint64
	keyShards []*shard
}

// callShardsIndexed is how many shards a call spans before callShards indexes them.
const callShardsIndexed = 16

var callShardsPool = sync.Pool{New: func() any { return new(callShards) }}

// count records the entries of batch by shard.
func (c *callShards) count(batch []*krec) {
	for _, k := range batch {
		c.of(k.sh).sent++
		if k.sh.ordered() && !k.sh.aggregating() {
			c.keys = append(c.keys, k.kh)
			c.keyShards = append(c.keyShards, k.sh)
		}
	}
}

// of returns sh's outcome, added if sh is new to the call. The pointer is valid until
// the next call of of.
func (c *callShards) of(sh *shard) *callOutcome {
	if c.last < len(c.list) && c.list[c.last].sh == sh {
		return &c.list[c.last]
	}
	if c.idx != nil {
		if i, ok := c.idx[sh]; ok {
			c.last = i
			return &c.list[i]
		}
	} else {
		for i := range c.list {
			if c.list[i].sh == sh {
				c.last = i
				return &c.list[i]
			}
		}
	}
	c.list = append(c.list, callOutcome{sh: sh})
	c.last = len(c.list) - 1
	if c.idx == nil && len(c.list) > callShardsIndexed {
		c.idx = make(map[*shard]int, 2*len(c.list))
		for i := range c.list {
			c.idx[c.list[i].sh] = i
		}
	} else if c.idx != nil {
		c.idx[sh] = c.last
	}
	return &c.list[c.last]
}

func (c *callShards) reset() {
	clear(c.list)
	clear(c.keyShards)
	c.list, c.idx, c.last = c.list[:0], nil, 0
	c.keys, c.keyShards = c.keys[:0], c.keyShards[:0]
}

// decide applies the retry policy to k, failed with class: it reports whether k is to
// be retried, and otherwise resolves k's user records with the final error.
func (p *Producer) decide(st *stream, k *krec, class retrypolicy.Class, se *ServiceError) bool {
	switch p.retry.Decide(class) {
	case retrypolicy.Retry:
		return true
	case retrypolicy.FailThrottled:
		p.finish(k, &RecordError{Stream: st.name, ShardID: k.sh.id, Err: ErrThrottled, Last: se}, true)
	default:
		p.finish(k, &RecordError{Stream: st.name, ShardID: k.sh.id, Err: se}, true)
	}
	return false
}

// maxFreeBodyBytes bounds the memory the free request bodies keep between calls: the
// bodies of 16 calls of 2 MiB, or fewer larger ones. The bodies of calls in flight are
// not counted: they are the records the buffer bound already counts, serialized.
const maxFreeBodyBytes = 32 << 20

// recycleBody keeps a request body for a later call if it is not too large and the
// free bodies stay within maxFreeBodyBytes. Request bodies are recycled through the
// bodyFree list (one per call in flight; a sync.Pool would lose them at every garbage
// collection): send puts one in the call's context (kinesiswire.WithBody) and hands it
// back here when the call has returned. net/http may still read a request body after
// RoundTrip returns, but not this one: smithy-go closes the body it hands the
// transport before the call returns (sdkhttp's wrapper passes Close through), and a
// closed body reads as empty, so a recycled buffer is never read by the call it came
// from.
func (p *Producer) recycleBody(body *[]byte) {
	n := int64(cap(*body))
	if n > 2*MaxPutRecordsBytes {
		return
	}
	if p.bodyFreeBytes.Add(n) <= maxFreeBodyBytes {
		select {
		case p.bodyFree <- body:
			return
		default:
		}
	}
	p.bodyFreeBytes.Add(-n)
}

// settle puts the records to retry back at the front of their shards, in their order,
// backs off the shards of the call marked to back off that have records to retry and,
// in ordered mode, ends the shards' request in flight.
func (p *Producer) settle(cs *callShards, retry []*krec, now int64) {
	var groups map[*shard][]*krec
	if len(retry) > 0 {
		groups = make(map[*shard][]*krec)
		for _, k := range retry {
			groups[k.sh] = append(groups[k.sh], k)
		}
	}
	var orphans []*krec
	for i := range cs.list {
		sh, backoff := cs.list[i].sh, cs.list[i].backoff
		ks := groups[sh]
		var expired []*krec
		sh.mu.Lock()
		if len(ks) > 0 {
			var live []*krec
			for _, r := range ks {
				if r.deadline > now {
					live = append(live, r)
					continue
				}
				l, dead := p.splitExpired(r, now)
				if dead != nil {
					expired = append(expired, dead)
				}
				live = append(live, l...)
				sh.urgent = sh.urgent || len(l) > 0
			}
			ks = live
			if sh.retired {
				orphans = append(orphans, ks...)
			} else {
				sh.requeue(ks)
				if backoff && len(ks) > 0 {
					sh.retryAt = now + int64(p.retry.Delay(retrypolicy.Transient, sh.failures))
					sh.failures++
				} else {
					sh.failures = 0
				}
			}
		} else {
			sh.failures = 0
		}
		if sh.ordered() {
			for j, ksh := range cs.keyShards {
				if ksh == sh {
					sh.keysOut.remove(cs.keys[j])
				}
			}
			if sh.heldN > 0 {
				sh.rescanHeld()
			}
			sh.callEnded()
		}
		sh.mu.Unlock()
		for _, r := range expired {
			p.metrics.expired(sh.st, r)
			p.finish(r, &RecordError{Stream: sh.st.name, ShardID: sh.id, Err: ErrRecordExpired, Last: r.lastErr}, true)
		}
	}
	if len(orphans) > 0 {
		orphans[0].sh.st.repredict(orphans)
	}
}

// succeed resolves the user records of k as written; when only is not nil, only the users
// it marks (the others were re-queued). With a tally, k's metrics and the release of its
// flush epochs wait for the call's endCall, so a Flush that returns sees them counted.
func (p *Producer) succeed(st *stream, k *krec, shardID, seq string, only []bool, tally *callTally) {
	res := Result{Stream: st.name, ShardID: shardID, SequenceNumber: seq, Aggregated: k.aggregated, Attempts: k.attempts}
	var ep *epoch
	var n int64
	var bytes int64
	count := 0
	for i, u := range k.users {
		if only != nil && !only[i] {
			continue
		}
		count++
		bytes += int64(u.size)
		if k.aggregated {
			res.SubSequenceNumber = int64(i)
		}
		if u.done != nil {
			u.done(res)
		}
		if u.ep != ep {
			if ep != nil {
				tally.release(ep, n)
			}
			ep, n = u.ep, 0
		}
		n++
	}
	p.metrics.put(st, k, count, len(k.attempts), tally)
	if tally != nil {
		tally.freedRecords += int64(count)
		tally.freedBytes += bytes
	} else {
		p.release(int64(count), bytes)
	}
	if ep != nil {
		tally.release(ep, n)
	}
	p.putKrec(k)
}

// endCall flushes the metrics of a call's tally, returns the buffer room of the records
// it resolved, then releases their flush epochs.
func (p *Producer) endCall(st *stream, tally *callTally) {
	p.metrics.flush(st, tally)
	if tally.freedRecords > 0 {
		p.release(tally.freedRecords, tally.freedBytes)
		tally.freedRecords, tally.freedBytes = 0, 0
	}
	for _, r := range tally.eps {
		r.ep.release(r.n)
	}
	clear(tally.eps)
	tally.eps = tally.eps[:0]
}

// finish fails every user record of k with err and recycles k.
func (p *Producer) finish(k *krec, err error, recycle bool) {
	res := Result{Stream: k.sh.st.name, ShardID: k.sh.id, Aggregated: k.aggregated, Attempts: k.attempts, Err: err}
	for _, u := range k.users {
		p.resolveUser(u, res)
	}
	p.metrics.failed(k.sh.st, k, len(k.users))
	p.release(int64(len(k.users)), k.userBytes)
	if recycle {
		p.putKrec(k)
	}
}

// failUser fails one user record of src with err (src is not recycled).
func (p *Producer) failUser(st *stream, src *krec, u userRec, err error) {
	p.resolveUser(u, Result{Stream: st.name, ShardID: src.sh.id, Attempts: src.attempts, Err: err})
	p.release(1, int64(u.size))
}

func (p *Producer) resolveUser(u userRec, res Result) {
	if u.done != nil {
		u.done(res)
	}
	if u.ep != nil {
		u.ep.release(1)
	}
}

// straddled handles an aggregate the service stored in a shard other than the predicted
// one (the shard map was stale). When any of its user records lies outside the range of
// the shard that stored it, every one of them is put again: Java KCL drops the whole of
// such an aggregate, the records in range too, so a copy there is no delivery. A Freshet
// consumer that does not filter by hash key range delivers the stored copy as well (a
// duplicate, as KPL's consumers see after its own re-put of such an aggregate).
func (p *Producer) straddled(st *stream, k *krec, actual, seq string) {
	<-st.requestRefresh()
	rng, ok := st.shards.Load().ranges[actual]
	// A refresh already running when the mismatch was seen may have listed the shards
	// before the split: ask for new ones until the map knows the shard that stored it.
	for tries := 0; !ok && tries < 3 && p.ctx.Err() == nil; tries++ {
		st.stale.Store(true)
		<-st.requestRefresh()
		rng, ok = st.shards.Load().ranges[actual]
	}
	urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: k.pk, ExplicitHashKey: k.ehk, Data: k.data})
	if !ok || err != nil || len(urs) != len(k.users) {
		p.log.Warn("producer: aggregate stored in an unexpected shard", zap.String("stream", st.name), zap.String("predicted", k.sh.id), zap.String("actual", actual))
		p.succeed(st, k, actual, seq, nil, nil)
		return
	}
	only := make([]bool, len(urs))
	recs := make([]aggregation.Record, len(urs))
	straddles := false
	for i, ur := range urs {
		recs[i] = aggregation.Record{PartitionKey: ur.PartitionKey, ExplicitHashKey: ur.ExplicitHashKey, Data: append([]byte(nil), ur.Data...), Tags: ur.Tags()}
		hk, _ := recs[i].HashKey()
		only[i] = rng.Contains(hk)
		straddles = straddles || !only[i]
	}
	var again []userRec
	if straddles {
		clear(only)
		again = k.users
	}
	if len(again) > 0 {
		// One plain krec per record to put again; repredict re-aggregates them.
		ks := make([]*krec, len(again))
		for i := range again {
			u := again[i]
			ks[i] = &krec{sh: k.sh, pk: recs[i].PartitionKey, ehk: recs[i].ExplicitHashKey, data: recs[i].Data,
				users: []userRec{u}, size: len(recs[i].Data) + len(recs[i].PartitionKey), userBytes: int64(u.size),
				firstPut: u.put, deadline: u.put + int64(p.cfg.recordTTL), attempts: slices.Clip(k.attempts), lastErr: k.lastErr}
		}
		st.repredict(ks)
	}
	p.succeed(st, k, actual, seq, only, nil)
}

// movedRec is an aggregate the service stored in a shard other than the predicted one.
type movedRec struct {
	k            *krec
	shardID, seq string
}
