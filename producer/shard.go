package producer

import (
	"bytes"
	"crypto/md5"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/internal/hashkey"
	"github.com/freshet/freshet/internal/kinesiswire"
)

// userRec is the producer's handle on one user record: whom to tell, and what it holds.
type userRec struct {
	done func(Result)
	ep   *epoch
	put  int64 // producer time of Put; the record expires at put + TTL
	size int32
}

// krec is one Kinesis record: an aggregate of user records of one shard, or a single
// user record when not aggregating.
type krec struct {
	sh      *shard
	pk, ehk string
	data    []byte
	// enc is a plain record's PutRecords entry, encoded when it was put (encCBOR: in
	// CBOR, else in JSON), nil when the call is to encode it. It lies in the record's
	// slab; in CBOR data lies in it, in JSON it alone holds the data (data is nil:
	// plainData decodes it).
	enc     []byte
	encCBOR bool
	// kh identifies the partition key of an ordered plain record (keyHash): two
	// records of one key have the same, and two keys rarely do (then their records
	// only wait for each other).
	kh         uint64
	users      []userRec
	size       int   // len(data) + len(pk), what the service counts
	userBytes  int64 // bytes reserved by the users
	firstPut   int64 // producer time of the oldest user record
	deadline   int64 // producer time at which the record expires
	attempts   []Attempt
	lastErr    error
	aggregated bool
	owned      bool // data is a producer buffer to recycle
	// unsealed marks a KPL aggregate whose MD5 trailer is not written yet: the sender
	// writes the trailers of a whole call at once (sealCall).
	unsealed bool
	// slab is the slab a plain record was allocated in (newPlainKrec); such a record
	// is never pooled, and users starts in one.
	slab *krecSlab
	one  [1]userRec
}

var krecPool = sync.Pool{New: func() any { return new(krec) }}

// krecSlabSize is how many plain records a shard allocates at once. A shard's plain
// records then lie one after another in memory, in the order they are put, taken and
// resolved: with the buffer full of records put long ago, reading them in order costs
// a fraction of the cache misses of pooled records scattered over the heap.
const krecSlabSize = 256

// entryChunkBytes is the size of the chunks a slab keeps its records' PutRecords
// entries in, encoded as they are put, one after another. A slab takes chunks as its
// records need them (keeping them when it is recycled), so the room it holds follows
// the size of its records. An entry of more than a quarter of a chunk is encoded into a
// buffer of its own.
const entryChunkBytes = 8 << 10

// krecSlab is room for krecSlabSize plain records and their encoded entries. It is
// recycled once every record handed out from it is resolved and its shard has moved on
// to another slab.
type krecSlab struct {
	recs [krecSlabSize]krec
	// chunks hold the records' PutRecords entries (no pointers, so the garbage
	// collector does not scan them); chunks[chunk] is the one being filled.
	chunks [][]byte
	chunk  int
	live   atomic.Int32 // records handed out and not recycled, plus one while its shard fills it
}

// unref drops one reference to s and recycles s after the last.
func (s *krecSlab) unref(p *Producer) {
	if s.live.Add(-1) == 0 {
		select {
		case p.slabFree <- s:
		default:
		}
	}
}

// freeSlabs is how many recycled slabs a producer keeps: as many as the plain records
// the buffer bound admits fill (their PlainRecordOverhead pays for a krec each), so the
// slabs kept and in use stay within about twice that, and at most 1,024 (54 MiB).
func freeSlabs(c *config) int {
	recs := min(c.maxBufRecords, c.maxBufBytes/PlainRecordOverhead)
	return int(min(max(recs/krecSlabSize, 16), 1024))
}

// newPlainKrec returns a zeroed krec for a plain record of sh, from sh's slab. sh.mu
// must be held.
func (sh *shard) newPlainKrec() *krec {
	p := sh.st.p
	if sh.slab == nil || sh.slabNext == krecSlabSize {
		if sh.slab != nil {
			sh.slab.unref(p)
		}
		select {
		case sh.slab = <-p.slabFree:
		default:
			sh.slab = new(krecSlab)
		}
		sh.slab.live.Store(1)
		for i := range sh.slab.chunks {
			sh.slab.chunks[i] = sh.slab.chunks[i][:0]
		}
		sh.slab.chunk = 0
		sh.slabNext = 0
	}
	k := &sh.slab.recs[sh.slabNext]
	sh.slabNext++
	sh.slab.live.Add(1)
	k.slab = sh.slab
	k.users = k.one[:0:1]
	return k
}

// encode writes the PutRecords entry of rec, a plain record, for k, just put in sh's
// slab: into the slab's chunks, or a buffer of its own when it is large. The entry
// holds the data (as it is in CBOR, in base64 in JSON), and k keeps no reference to
// rec.Data. sh.mu must be held.
func (sh *shard) encode(k *krec, rec *Record) {
	e := types.PutRecordsRequestEntry{Data: rec.Data}
	if rec.PartitionKey != "" { // only AUTO streams take records without a key
		e.PartitionKey = &rec.PartitionKey
	}
	if rec.ExplicitHashKey != "" {
		e.ExplicitHashKey = &rec.ExplicitHashKey
	}
	cbor := sh.st.p.cborOn.Load()
	n := kinesiswire.EntrySizeJSON(&e)
	if cbor {
		n = kinesiswire.EntrySizeCBOR(&e)
	}
	s := sh.slab
	var buf []byte
	own := n > entryChunkBytes/4
	if own {
		buf = make([]byte, 0, n)
	} else {
		if s.chunk < len(s.chunks) && cap(s.chunks[s.chunk])-len(s.chunks[s.chunk]) < n {
			s.chunk++
		}
		if s.chunk == len(s.chunks) {
			s.chunks = append(s.chunks, make([]byte, 0, entryChunkBytes))
		}
		buf = s.chunks[s.chunk]
	}
	start := len(buf)
	if cbor {
		var at int
		buf, at = kinesiswire.AppendEntryCBOR(buf, &e)
		k.data = buf[at : at+len(rec.Data) : at+len(rec.Data)]
	} else {
		buf = kinesiswire.AppendEntryJSON(buf, &e)
		k.data = nil
	}
	k.enc, k.encCBOR = buf[start:len(buf):len(buf)], cbor
	if !own {
		s.chunks[s.chunk] = buf
	}
}

// plainData returns the data of k, a plain record: k.data, or a copy decoded from k's
// JSON entry when that alone holds it (encode wrote the entry, so it decodes).
func (k *krec) plainData() ([]byte, error) {
	if k.data != nil || k.enc == nil || k.encCBOR {
		return k.data, nil
	}
	return kinesiswire.EntryDataJSON(k.enc)
}

// sealNow writes k's MD5 trailer if it is still missing, for the paths that read an
// aggregate back before it is sent.
func (k *krec) sealNow() {
	if !k.unsealed {
		return
	}
	one := [1][]byte{k.data}
	if err := aggregation.Seal(one[:]); err != nil {
		// Only an aggregate drained unsealed is ever marked so; keep it verifiable
		// whatever happened to it.
		sealTrailer(k.data)
	}
	k.unsealed = false
}

// sealTrailer writes the MD5 trailer of a KPL aggregate without checking its shape.
func sealTrailer(d []byte) {
	if len(d) < len(aggregation.Magic)+md5.Size {
		return
	}
	sum := md5.Sum(d[len(aggregation.Magic) : len(d)-md5.Size])
	copy(d[len(d)-md5.Size:], sum[:])
}

var sealPool = sync.Pool{New: func() any { s := make([][]byte, 0, MaxPutRecordsCount); return &s }}

// sealCall writes the MD5 trailers of the call's aggregates drained unsealed, all in
// one pass over the SIMD lanes of the sender's core.
func (p *Producer) sealCall(batch []*krec) {
	sp := sealPool.Get().(*[][]byte)
	datas := (*sp)[:0]
	for _, k := range batch {
		if k.unsealed {
			datas = append(datas, k.data)
		}
	}
	if len(datas) > 0 {
		if err := aggregation.Seal(datas); err != nil {
			p.log.Error("producer: sealing aggregates in one pass failed; sealing them one by one", zap.Error(err))
			for _, d := range datas {
				sealTrailer(d)
			}
		}
		for _, k := range batch {
			k.unsealed = false
		}
	}
	clear(datas)
	*sp = datas[:0]
	sealPool.Put(sp)
}

func (p *Producer) getKrec() *krec { return krecPool.Get().(*krec) }

// putKrec recycles k. Its users must have been resolved or moved.
func (p *Producer) putKrec(k *krec) {
	if k.owned && cap(k.data) <= 2*p.cfg.aggMaxBytes {
		p.putData(k.data[:0])
	}
	if s := k.slab; s != nil {
		*k = krec{}
		s.unref(p)
		return
	}
	users := k.users[:0]
	if cap(users) > 1<<16 {
		users = nil
	}
	clear(k.users)
	*k = krec{users: users}
	krecPool.Put(k)
}

// newDataFree returns the free list of aggregate buffers: a bounded channel rather than
// a sync.Pool, which every garbage collection empties (and a busy producer next to a
// store that grows collects often). It keeps at most about 32 MiB.
func newDataFree(aggMaxBytes int) chan []byte {
	return make(chan []byte, min(max((32<<20)/max(aggMaxBytes, 1), 16), 1024))
}

// getData returns an empty aggregate buffer, or nil for the aggregator to allocate.
func (p *Producer) getData() []byte {
	select {
	case b := <-p.dataFree:
		return b
	default:
		return nil
	}
}

func (p *Producer) putData(b []byte) {
	select {
	case p.dataFree <- b:
	default:
	}
}

// shard is one open shard's buffer: the aggregate being filled, the Kinesis records
// waiting to be sent, its rate limiter and its retry state. Everything is guarded by mu.
type shard struct {
	st  *stream
	id  string
	rng hashkey.Range

	mu        sync.Mutex
	retired   bool
	agg       *aggregation.Aggregator
	open      []userRec // user records in agg
	openBytes int64
	openFirst int64
	q         []*krec   // waiting Kinesis records, oldest first, from qHead
	slab      *krecSlab // where the shard's next plain records go (newPlainKrec)
	slabNext  int
	qHead     int
	qBytes    int
	urgent    bool
	// calls counts the calls in flight holding records of the shard (ordered mode).
	// An aggregating shard sends one call at a time; a plain shard sends as many as it
	// likes, but never two records of one partition key at once (keysOut), and it holds
	// a front record whose key is out aside (held), so no record overtakes an earlier
	// one of its key.
	calls   int
	keysOut keySet // the kh of records in flight
	// held are an ordered plain shard's records set aside from the queue's front
	// because a record of their key was out, oldest first (nil where one was taken),
	// and heldKeys counts them by key: the shard sends the records behind them whose
	// keys are free instead of stopping at the first busy one, and no record leaves
	// the queue while one of its key is held, so none overtakes an earlier one of its
	// key. Records to send again (retried, or a call not sent) are held at the front.
	held     []*krec
	heldN    int // records in held (not nil)
	heldKeys map[uint64]int32
	heldGen  uint64 // the build that last scanned held from heldScan
	heldScan int    // where that build's scan of held goes on
	buildGen uint64 // the dispatcher's build that last took a record of the shard
	lastPut  int64
	retryAt  int64
	failures int
	lim      limiter
	// auto marks the one buffer of a stream with AUTO record distribution: it covers
	// every hash key, the service picks the shard of each record, nothing is aggregated
	// and no prediction is checked.
	auto bool
}

func newShard(st *stream, id string, r hashkey.Range) *shard {
	sh := &shard{st: st, id: id, rng: r}
	c := &st.p.cfg
	sh.lim.init(c.rateBytes, c.rateRecords, c.floorBytes, c.floorRecords, c.adaptive)
	return sh
}

// newAutoShard is the buffer of an AUTO stream with open shards: its limiter allows
// their combined rate.
func newAutoShard(st *stream, open int) *shard {
	sh := &shard{st: st, rng: hashkey.Range{Start: hashkey.Key{}, End: hashkey.Max}, auto: true}
	c := &st.p.cfg
	n := float64(max(open, 1))
	sh.lim.init(c.rateBytes*n, c.rateRecords*n, c.floorBytes*n, c.floorRecords*n, c.adaptive)
	return sh
}

// aggregating reports whether records put into the shard are aggregated.
func (sh *shard) aggregating() bool { return sh.st.p.cfg.aggregate && !sh.auto }

// ordered reports whether the shard keeps records of one key in order (never on an
// AUTO stream, where the service places each record).
func (sh *shard) ordered() bool { return sh.st.p.cfg.ordered && !sh.auto }

func (sh *shard) qLen() int { return len(sh.q) - sh.qHead }

func (sh *shard) front() *krec { return sh.q[sh.qHead] }

func (sh *shard) popFront() *krec {
	k := sh.q[sh.qHead]
	sh.q[sh.qHead] = nil
	sh.qHead++
	sh.qBytes -= k.size
	if sh.qHead == len(sh.q) {
		sh.q = sh.q[:0]
		sh.qHead = 0
	}
	return k
}

func (sh *shard) pushBack(k *krec) {
	if sh.qHead > 0 && len(sh.q) == cap(sh.q) {
		n := copy(sh.q, sh.q[sh.qHead:])
		clear(sh.q[n:])
		sh.q = sh.q[:n]
		sh.qHead = 0
	}
	sh.q = append(sh.q, k)
	sh.qBytes += k.size
}

// pushFront puts ks, in order, ahead of everything waiting.
func (sh *shard) pushFront(ks []*krec) {
	n := len(ks)
	if n == 0 {
		return
	}
	if sh.qHead >= n {
		sh.qHead -= n
		copy(sh.q[sh.qHead:], ks)
	} else {
		q := make([]*krec, 0, n+sh.qLen()+8)
		q = append(q, ks...)
		q = append(q, sh.q[sh.qHead:]...)
		sh.q, sh.qHead = q, 0
	}
	for _, k := range ks {
		sh.qBytes += k.size
	}
}

// add appends one user record. It returns false when the shard has been retired; the
// caller then predicts again with the new map.
func (sh *shard) add(rec *Record, hk hashkey.Key, u userRec, urgent bool) bool {
	p := sh.st.p
	sh.mu.Lock()
	if sh.retired {
		sh.mu.Unlock()
		return false
	}
	wake := urgent
	// The put time: the real clock for the first record of an empty buffer, otherwise
	// the dispatcher's clock (advanced at least every clockTick while anything is
	// buffered), never below the shard's previous put time. One clock read per
	// record would cost about 45 ns, several percent of this path.
	if (sh.aggregating() && len(sh.open) == 0) || (!sh.aggregating() && sh.qLen() == 0) {
		u.put = p.now()
		p.advanceClock(u.put)
	} else {
		u.put = p.clock.Load()
	}
	u.put = max(u.put, sh.lastPut)
	sh.lastPut = u.put
	if !sh.aggregating() {
		k := sh.newPlainKrec()
		k.sh, k.pk, k.ehk = sh, rec.PartitionKey, rec.ExplicitHashKey
		if p.encodeAtPut {
			sh.encode(k, rec)
		} else {
			k.data = rec.Data
		}
		if sh.ordered() {
			k.kh = p.keyHash(rec.PartitionKey)
		}
		k.users = append(k.users, u)
		k.size = len(rec.Data) + len(rec.PartitionKey)
		k.userBytes = int64(u.size)
		k.firstPut = u.put
		k.deadline = u.put + int64(p.cfg.recordTTL)
		wake = wake || sh.qLen() == 0 || sh.qLen()%p.cfg.collectMaxCount == 0
		sh.pushBack(k)
	} else {
		if sh.agg == nil {
			sh.agg, _ = p.cfg.newAggregator(sh.st.maxRecordSize)
		}
		ar := aggregation.Record{PartitionKey: rec.PartitionKey, ExplicitHashKey: rec.ExplicitHashKey, Data: rec.Data, Tags: rec.Tags}
		if len(sh.open) == 0 {
			sh.openFirst = u.put
			wake = wake || sh.qLen() == 0
		}
		if err := sh.agg.AddWithHashKey(ar, hk); err != nil {
			// Full (validation happened at Put): seal and start a new aggregate.
			sh.seal()
			wake = true
			sh.openFirst = u.put
			_ = sh.agg.AddWithHashKey(ar, hk)
		}
		sh.open = append(sh.open, u)
		sh.openBytes += int64(u.size)
	}
	if urgent {
		sh.urgent = true
	}
	sh.mu.Unlock()
	if wake {
		p.signal()
	}
	return true
}

// seal drains the open aggregate into a waiting Kinesis record. sh.mu must be held.
func (sh *shard) seal() {
	if len(sh.open) == 0 {
		return
	}
	p := sh.st.p
	k := p.getKrec()
	out, sealed, _ := sh.agg.DrainUnsealed(p.getData())
	k.sh, k.pk, k.ehk, k.data, k.owned, k.unsealed = sh, out.PartitionKey, out.ExplicitHashKey, out.Data, true, !sealed
	k.aggregated = !sealed || isAggregate(len(sh.open), out.Data)
	k.users = append(k.users, sh.open...)
	clear(sh.open)
	sh.open = sh.open[:0]
	k.size = len(out.Data) + len(out.PartitionKey)
	k.userBytes = sh.openBytes
	k.firstPut = sh.openFirst
	k.deadline = sh.openFirst + int64(p.cfg.recordTTL)
	sh.openBytes = 0
	sh.pushBack(k)
}

// retire marks the shard closed and returns everything it buffered.
func (sh *shard) retire() []*krec {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.retired = true
	if sh.agg != nil {
		sh.seal()
	}
	out := make([]*krec, 0, sh.waiting())
	for _, k := range sh.held {
		if k != nil {
			out = append(out, k)
			sh.qBytes -= k.size
		}
	}
	clear(sh.held)
	sh.held, sh.heldN, sh.heldKeys, sh.heldScan = nil, 0, nil, 0
	for sh.qLen() > 0 {
		out = append(out, sh.popFront())
	}
	if sh.calls > 0 {
		sh.st.retiredBusy.Add(1)
	}
	return out
}

// waitsForCall reports whether, in ordered mode, the shard has nothing to send until a
// call in flight returns. sh.mu must be held and a record waiting.
func (sh *shard) waitsForCall() bool {
	if !sh.ordered() || sh.calls == 0 {
		return false
	}
	if sh.aggregating() {
		return true
	}
	for _, k := range sh.held {
		if k != nil && !sh.keysOut.has(k.kh) {
			return false
		}
	}
	if sh.qLen() == 0 {
		return true
	}
	// A busy front record can be held while there is room, and those behind it may be free.
	return !sh.free(sh.front()) && sh.heldN >= maxHeld
}

// maxHeld bounds the records an ordered plain shard holds: with so many held, it stops
// at a queue front record whose key is busy, as it would without holding.
const maxHeld = 256

// holds reports whether the shard holds busy records aside (ordered plain shards).
func (sh *shard) holds() bool { return sh.ordered() && !sh.aggregating() }

// waiting is how many Kinesis records the shard has waiting to be sent.
func (sh *shard) waiting() int { return sh.qLen() + sh.heldN }

// free reports whether the queue record k of an ordered plain shard may be sent: no
// record of its key is out or held. sh.mu must be held.
func (sh *shard) free(k *krec) bool {
	return !sh.keysOut.has(k.kh) && (sh.heldN == 0 || sh.heldKeys[k.kh] == 0)
}

// hold sets the queue's front record aside. sh.mu must be held.
func (sh *shard) hold() {
	k := sh.popFront()
	sh.qBytes += k.size
	sh.held = append(sh.held, k)
	sh.heldN++
	if sh.heldKeys == nil {
		sh.heldKeys = make(map[uint64]int32)
	}
	sh.heldKeys[k.kh]++
}

// unhold takes held[i] out of the held records and returns it. sh.mu must be held.
func (sh *shard) unhold(i int) *krec {
	k := sh.held[i]
	sh.held[i] = nil
	sh.heldN--
	sh.qBytes -= k.size
	if n := sh.heldKeys[k.kh] - 1; n > 0 {
		sh.heldKeys[k.kh] = n
	} else {
		delete(sh.heldKeys, k.kh)
	}
	if sh.heldN == 0 {
		clear(sh.held)
		sh.held, sh.heldScan = sh.held[:0], 0
	}
	return k
}

// remove takes the record nextPlain returned at from (or the queue's front, -1) out
// of the waiting records. sh.mu must be held.
func (sh *shard) remove(from int) {
	if from >= 0 {
		sh.unhold(from)
	} else {
		sh.popFront()
	}
}

// compactHeld drops the places of held records taken, and makes the next scan of
// held start from its beginning. sh.mu must be held.
func (sh *shard) compactHeld() {
	sh.held = slices.DeleteFunc(sh.held, func(k *krec) bool { return k == nil })
	sh.heldGen, sh.heldScan = 0, 0
}

// rescanHeld makes a build in progress scan the held records again from their
// beginning: a key freed meanwhile must go to its oldest held record, which the scan
// may have passed while the key was busy. sh.mu must be held.
func (sh *shard) rescanHeld() {
	sh.heldGen = 0
}

// requeue puts ks, in order, ahead of everything waiting (records to send again); an
// ordered plain shard holds them at the front of its held records, ahead of the held
// records of their keys. sh.mu must be held.
func (sh *shard) requeue(ks []*krec) {
	if !sh.holds() || len(ks) == 0 {
		sh.pushFront(ks)
		return
	}
	sh.compactHeld()
	if sh.heldKeys == nil {
		sh.heldKeys = make(map[uint64]int32)
	}
	sh.held = slices.Insert(sh.held, 0, ks...)
	for _, k := range ks {
		sh.heldKeys[k.kh]++
		sh.qBytes += k.size
	}
	sh.heldN += len(ks)
}

// nextPlain returns the record an ordered plain shard sends next in build gen: the
// oldest held record whose key is free, else the queue's front record once free (busy
// front records are held, up to maxHeld), or nil. from is the record's index in held,
// or -1 for the queue's front. Expired records are left for the dispatcher's next
// pass. sh.mu must be held.
func (sh *shard) nextPlain(gen uint64, now int64) (k *krec, from int) {
	if sh.heldN > 0 {
		if sh.heldGen != gen {
			sh.compactHeld()
			sh.heldGen = gen
		}
		for ; sh.heldScan < len(sh.held); sh.heldScan++ {
			h := sh.held[sh.heldScan]
			if h != nil && h.deadline > now && !sh.keysOut.has(h.kh) {
				return h, sh.heldScan
			}
		}
	}
	for sh.qLen() > 0 {
		f := sh.front()
		if f.deadline <= now {
			return nil, -1
		}
		if sh.free(f) {
			return f, -1
		}
		if sh.heldN >= maxHeld {
			return nil, -1
		}
		sh.hold()
	}
	return nil, -1
}

// expireHeld moves the held records past their deadline to expired and returns it, with
// the earliest deadline of those left (noDeadline for none). sh.mu must be held.
func (sh *shard) expireHeld(now int64, expired []*krec) ([]*krec, int64) {
	next := noDeadline
	for i, k := range sh.held {
		if k == nil {
			continue
		}
		if k.deadline <= now {
			expired = append(expired, sh.unhold(i))
			if sh.heldN == 0 {
				break
			}
			continue
		}
		next = min(next, k.deadline)
	}
	return expired, next
}

// callEnded ends, in ordered mode, one of the shard's calls in flight. sh.mu must be held.
func (sh *shard) callEnded() {
	if !sh.ordered() || sh.calls == 0 {
		return
	}
	sh.calls--
	if sh.calls == 0 && sh.retired {
		sh.st.retiredBusy.Add(-1)
	}
}

// prepend puts ks ahead of the shard's waiting records; false if the shard is retired.
func (sh *shard) prepend(ks []*krec) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.retired {
		return false
	}
	sh.requeue(ks)
	return true
}

// rebuild makes Kinesis records for shard sh out of n user records given by at, keeping
// their order, their own put times (so their own deadlines) and the attempts of the
// records they came from. Attempts slices are clipped: a later append to one of the new
// records never writes into an array another record shares.
func (p *Producer) rebuild(sh *shard, n int, at func(i int) (aggregation.Record, hashkey.Key, userRec, *krec)) []*krec {
	var out []*krec
	ttl := int64(p.cfg.recordTTL)
	if !sh.aggregating() {
		for i := 0; i < n; i++ {
			r, _, u, src := at(i)
			k := p.getKrec()
			k.sh, k.pk, k.ehk, k.data = sh, r.PartitionKey, r.ExplicitHashKey, r.Data
			if src.slab != nil {
				// The source's data may lie in its slab, recycled once it is resolved.
				k.data = bytes.Clone(r.Data)
			}
			k.kh = p.keyHash(r.PartitionKey)
			k.users = append(k.users, u)
			k.size = len(r.Data) + len(r.PartitionKey)
			k.userBytes = int64(u.size)
			k.firstPut, k.deadline = u.put, u.put+ttl
			k.attempts, k.lastErr = slices.Clip(src.attempts), src.lastErr
			out = append(out, k)
		}
		return out
	}
	agg, _ := p.cfg.newAggregator(sh.st.maxRecordSize)
	var users []userRec
	var bytes int64
	var first, deadline int64
	var attempts []Attempt
	var lastErr error
	flush := func() {
		if len(users) == 0 {
			return
		}
		k := p.getKrec()
		o, _ := agg.Drain(p.getData())
		k.sh, k.pk, k.ehk, k.data, k.owned = sh, o.PartitionKey, o.ExplicitHashKey, o.Data, true
		k.aggregated = isAggregate(len(users), o.Data)
		k.users = append(k.users, users...)
		k.size = len(o.Data) + len(o.PartitionKey)
		k.userBytes = bytes
		k.firstPut, k.deadline = first, deadline
		k.attempts, k.lastErr = slices.Clip(attempts), lastErr
		out = append(out, k)
		users, bytes, attempts, lastErr = users[:0], 0, nil, nil
	}
	for i := 0; i < n; i++ {
		r, hk, u, src := at(i)
		if len(users) > 0 && !agg.Fits(r) {
			flush()
		}
		if len(users) == 0 || u.put < first {
			first, deadline = u.put, u.put+ttl
		}
		if len(src.attempts) > len(attempts) {
			attempts, lastErr = src.attempts, src.lastErr
		}
		_ = agg.AddWithHashKey(r, hk)
		users = append(users, u)
		bytes += int64(u.size)
	}
	flush()
	return out
}

// newAggregator returns an aggregator for a stream whose records may have maxRecordSize
// bytes (0: no stream limit beyond the configuration).
func (c *config) newAggregator(maxRecordSize int) (*aggregation.Aggregator, error) {
	maxBytes := c.aggMaxBytes
	// Kinesis counts the partition key too; leave room for the longest one.
	if limit := maxRecordSize - MaxPartitionKeyLength*4; maxRecordSize > 0 && limit < maxBytes {
		maxBytes = max(limit, aggregation.MinMaxBytes)
	}
	return aggregation.NewAggregator(
		aggregation.WithMaxRecords(c.aggMaxCount),
		aggregation.WithMaxBytes(maxBytes),
		aggregation.WithCompression(c.compression),
	)
}

// isAggregate reports whether the drained data of n user records is an aggregate (a KPL
// aggregate or a compressed frame) rather than one record's own data.
func isAggregate(n int, data []byte) bool {
	if n > 1 {
		return true
	}
	return len(data) >= 4 && [4]byte(data[:4]) == aggregation.CompressedMagic
}

// splitExpired separates the user records of k whose own time to live has passed (the
// returned dead record, nil when none) from the others, which are rebuilt into live
// records for k's shard, in order, keeping k's attempts. When every user record has
// expired, or k cannot be taken apart, dead is k itself. k must be out of every queue;
// it is consumed unless returned as dead.
func (p *Producer) splitExpired(k *krec, now int64) (live []*krec, dead *krec) {
	ttl := int64(p.cfg.recordTTL)
	n := 0
	for _, u := range k.users {
		if u.put+ttl <= now {
			n++
		}
	}
	if n == len(k.users) || n == 0 || !k.aggregated {
		if n == 0 {
			// No user record has expired: the Kinesis record's deadline is its oldest
			// user record's.
			k.deadline = k.users[0].put + ttl
			for _, u := range k.users {
				k.deadline = min(k.deadline, u.put+ttl)
			}
			return []*krec{k}, nil
		}
		return nil, k
	}
	k.sealNow()
	urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: k.pk, ExplicitHashKey: k.ehk, Data: k.data})
	if err != nil || len(urs) != len(k.users) {
		return nil, k
	}
	dead = p.getKrec()
	dead.sh, dead.aggregated = k.sh, true
	dead.attempts, dead.lastErr = slices.Clip(k.attempts), k.lastErr
	keep := make([]int, 0, len(k.users)-n)
	for i, u := range k.users {
		if u.put+ttl <= now {
			dead.users = append(dead.users, u)
			dead.userBytes += int64(u.size)
		} else {
			keep = append(keep, i)
		}
	}
	live = p.rebuild(k.sh, len(keep), func(i int) (aggregation.Record, hashkey.Key, userRec, *krec) {
		ur := urs[keep[i]]
		r := aggregation.Record{PartitionKey: ur.PartitionKey, ExplicitHashKey: ur.ExplicitHashKey, Data: ur.Data, Tags: ur.Tags()}
		hk, _ := r.HashKey()
		return r, hk, k.users[keep[i]], k
	})
	// rebuild copied the data into new aggregates: k is done.
	clear(k.users)
	k.users = k.users[:0]
	p.putKrec(k)
	return live, dead
}
