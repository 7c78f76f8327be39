package streams

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/freshet/freshet/internal/hashkey"
)

// Stream modes and statuses as the service spells them.
const (
	modeProvisioned = "PROVISIONED"
	modeOnDemand    = "ON_DEMAND"

	statusCreating = "CREATING"
	statusActive   = "ACTIVE"
	statusUpdating = "UPDATING"
	statusDeleting = "DELETING"

	distributionAuto         = "AUTO"
	distributionPartitionKey = "USER_PARTITION_KEY"
)

// stream is one Kinesis stream. Its mutex guards the shard map and settings; PutRecords
// holds it shared while appending, so resharding (exclusive) never races an append.
type stream struct {
	name    string
	arn     string
	created time.Time
	// epoch identifies this incarnation of the name in iterators and tokens.
	epoch int64
	// seq numbers records and shard boundaries; it only grows.
	seq atomic.Uint64

	forceThrottle atomic.Bool

	mu            sync.RWMutex
	activeAt      time.Time
	updatingUntil time.Time
	deleting      bool
	goneAt        time.Time
	mode          string
	retention     time.Duration
	maxRecordKiB  int32
	warmMiBps     int32
	encryption    string
	keyID         string
	metrics       []string
	tags          map[string]string
	shards        []*shard // by shard number
	open          []*shard // open shards ordered by hash-key range
	consumers     map[string]*consumer
	windowStart   time.Time
	// shardCountUpdates holds when UpdateShardCount calls succeeded, within the last
	// 24 hours.
	shardCountUpdates []time.Time

	// distribution is the record distribution strategy of an ON_DEMAND stream
	// (distributionAuto or distributionPartitionKey); "" on PROVISIONED streams.
	distribution string
	// queues counts the queues on the stream not yet deleted.
	queues int
	// autoNext spreads records over the open shards when the distribution is AUTO.
	autoNext atomic.Uint64
}

func (st *stream) statusAt(now time.Time) string {
	switch {
	case st.deleting:
		return statusDeleting
	case now.Before(st.activeAt):
		return statusCreating
	case now.Before(st.updatingUntil):
		return statusUpdating
	}
	return statusActive
}

// placeAuto returns the open shard for the next record of an AUTO stream: the open
// shards in turn, so records spread evenly whatever their keys and however the shards
// were split or merged. The caller holds st.mu.
func (st *stream) placeAuto() *shard {
	open := st.open
	if len(open) == 0 {
		return nil
	}
	return open[(st.autoNext.Add(1)-1)%uint64(len(open))]
}

// route returns the open shard whose range holds k. The caller holds st.mu.
func (st *stream) route(k hashkey.Key) *shard {
	open := st.open
	i := sort.Search(len(open), func(i int) bool { return k.Cmp(open[i].rng.End) <= 0 })
	if i < len(open) {
		return open[i]
	}
	return nil
}

func (st *stream) rebuildOpen() {
	st.open = st.open[:0]
	for _, sh := range st.shards {
		if !sh.closed() {
			st.open = append(st.open, sh)
		}
	}
	sort.Slice(st.open, func(i, j int) bool { return st.open[i].rng.Start.Less(st.open[j].rng.Start) })
}

// visibleShard reports whether a shard still appears in listings: open, or closed less
// than one retention period ago.
func (st *stream) visibleShard(sh *shard, now time.Time) bool {
	return !sh.closed() || now.Sub(sh.closedAt) < st.retention
}

func (st *stream) shardByID(id string) *shard {
	n, ok := parseShardID(id)
	if !ok || n >= len(st.shards) {
		return nil
	}
	return st.shards[n]
}

// recMeta locates one record in its segment.
type recMeta struct {
	seq     uint64
	ts      int64 // arrival, Unix nanoseconds
	off     uint32
	pkLen   uint32
	dataLen uint32
}

// segment is a run of records whose partition keys and data share one byte arena.
// Appends write only past the current lengths, so readers may keep slices taken under
// the shard lock after releasing it.
type segment struct {
	base uint64 // position of recs[0] in the shard
	recs []recMeta
	buf  []byte
}

const (
	segmentBytes = 4 << 20
	// firstSegmentBytes is the size of a shard's first segment.
	firstSegmentBytes = 64 << 10
	segmentRecords    = 32 << 10
)

// shard holds one shard's records and limits.
type shard struct {
	id       string
	num      int
	suffix   string // seqSuffix(num)
	rng      hashkey.Range
	parent   string
	adjacent string
	created  time.Time
	startSeq uint64

	forceThrottle atomic.Bool

	mu       sync.RWMutex
	segs     []*segment
	total    uint64 // records ever appended; the next record's position
	trimmed  uint64 // position of the oldest record still stored
	lastTs   int64
	lastSeq  uint64 // the last appended record's sequence number; 0 before any
	endSeq   uint64 // 0 while open
	closedAt time.Time
	children []*shard
	notify   chan struct{}

	writeBytes, writeRecords, readBytes, readCalls bucket
	winBytes, winRecords, winThrottled             int64
}

func (sh *shard) closed() bool { return sh.endSeq != 0 }

// appendLocked stores one record and returns its sequence number. The caller holds sh.mu.
func (sh *shard) appendLocked(st *stream, ts int64, pk, data []byte) uint64 {
	need := len(pk) + len(data)
	var seg *segment
	if n := len(sh.segs); n > 0 {
		seg = sh.segs[n-1]
		if cap(seg.buf)-len(seg.buf) < need || len(seg.recs) >= segmentRecords {
			seg = nil
		}
	}
	if seg == nil {
		// A shard's segments start small and double up to segmentBytes, so that a stream
		// of thousands of quiet shards does not hold segmentBytes per shard.
		size := firstSegmentBytes
		if n := len(sh.segs); n > 0 {
			size = min(segmentBytes, 2*cap(sh.segs[n-1].buf))
		}
		size = max(size, need)
		seg = &segment{base: sh.total, recs: make([]recMeta, 0, min(1024, size/64+1)), buf: make([]byte, 0, size)}
		sh.segs = append(sh.segs, seg)
	}
	if ts < sh.lastTs {
		ts = sh.lastTs
	}
	sh.lastTs = ts
	seq := st.seq.Add(1)
	off := len(seg.buf)
	seg.buf = append(seg.buf, pk...)
	seg.buf = append(seg.buf, data...)
	seg.recs = append(seg.recs, recMeta{seq: seq, ts: ts, off: uint32(off), pkLen: uint32(len(pk)), dataLen: uint32(len(data))})
	sh.total++
	sh.lastSeq = seq
	sh.winBytes += int64(need)
	sh.winRecords++
	return seq
}

// wakeLocked wakes subscribers waiting for new records. The caller holds sh.mu.
func (sh *shard) wakeLocked() {
	if sh.notify != nil {
		close(sh.notify)
		sh.notify = nil
	}
}

// waitChan returns a channel closed at the next append or close. The caller holds sh.mu.
func (sh *shard) waitChanLocked() <-chan struct{} {
	if sh.notify == nil {
		sh.notify = make(chan struct{})
	}
	return sh.notify
}

// locate returns the segment index and record index of position pos (>= trimmed,
// < total). The caller holds sh.mu.
func (sh *shard) locate(pos uint64) (int, int) {
	segs := sh.segs
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > pos }) - 1
	if i < 0 {
		i = 0
	}
	return i, int(pos - segs[i].base)
}

// firstPos returns the first stored position whose record satisfies ok, where ok is
// monotone (false then true) over positions; total when none does. The caller holds sh.mu.
func (sh *shard) firstPos(from uint64, ok func(m *recMeta) bool) uint64 {
	if from < sh.trimmed {
		from = sh.trimmed
	}
	if from >= sh.total {
		return sh.total
	}
	lo, hi := from, sh.total
	for lo < hi {
		mid := lo + (hi-lo)/2
		si, ri := sh.locate(mid)
		if ok(&sh.segs[si].recs[ri]) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// horizon returns the first position not older than cutoff (Unix ns). The caller holds sh.mu.
func (sh *shard) horizon(cutoff int64) uint64 {
	return sh.firstPos(sh.trimmed, func(m *recMeta) bool { return m.ts >= cutoff })
}

// trimLocked drops whole segments whose records are all older than cutoff (the open
// segment too, the next append starts a new one) and returns
// the record bytes (partition keys and data) dropped.
func (sh *shard) trimLocked(cutoff int64) int64 {
	n := 0
	for n < len(sh.segs) {
		seg := sh.segs[n]
		if len(seg.recs) == 0 || seg.recs[len(seg.recs)-1].ts >= cutoff {
			break
		}
		n++
	}
	if n == 0 {
		return 0
	}
	var dropped int64
	for _, seg := range sh.segs[:n] {
		dropped += int64(len(seg.buf))
	}
	sh.segs = append([]*segment(nil), sh.segs[n:]...)
	if len(sh.segs) > 0 {
		sh.trimmed = sh.segs[0].base
	} else {
		sh.trimmed = sh.total
	}
	return dropped
}

// storedLocked returns the record bytes the shard holds. The caller holds sh.mu.
func (sh *shard) storedLocked() int64 {
	var n int64
	for _, seg := range sh.segs {
		n += int64(len(seg.buf))
	}
	return n
}

// recRef is a record read from a shard; its slices alias the shard's arena.
type recRef struct {
	seq  uint64
	ts   int64
	pk   []byte
	data []byte
}

// readLocked appends up to maxRecs records (and about maxBytes of data, at least one
// record) from pos and returns the next position. The caller holds sh.mu.
func (sh *shard) readLocked(dst []recRef, pos uint64, maxRecs int, maxBytes int) ([]recRef, uint64) {
	if pos < sh.trimmed {
		pos = sh.trimmed
	}
	if pos >= sh.total {
		return dst, pos
	}
	si, ri := sh.locate(pos)
	bytes := 0
	for n := 0; n < maxRecs && si < len(sh.segs); {
		seg := sh.segs[si]
		if ri >= len(seg.recs) {
			si++
			ri = 0
			continue
		}
		m := &seg.recs[ri]
		if n > 0 && bytes+int(m.dataLen) > maxBytes {
			break
		}
		bytes += int(m.dataLen)
		end := m.off + m.pkLen
		dst = append(dst, recRef{seq: m.seq, ts: m.ts, pk: seg.buf[m.off:end:end], data: seg.buf[end : end+m.dataLen : end+m.dataLen]})
		n++
		ri++
		pos++
	}
	return dst, pos
}

// tsAt returns the arrival time of the record at pos. The caller holds sh.mu.
func (sh *shard) tsAt(pos uint64) int64 {
	si, ri := sh.locate(pos)
	return sh.segs[si].recs[ri].ts
}

// seqBefore returns the sequence number just before position pos: the previous record's,
// or the shard's starting sequence number. The caller holds sh.mu.
func (sh *shard) seqBefore(pos uint64) uint64 {
	if pos > sh.trimmed && pos <= sh.total {
		si, ri := sh.locate(pos - 1)
		return sh.segs[si].recs[ri].seq
	}
	if pos == sh.total && sh.lastSeq != 0 {
		return sh.lastSeq // every record trimmed
	}
	return sh.startSeq
}

// consumer is a registered enhanced fan-out consumer.
type consumer struct {
	name     string
	arn      string
	created  time.Time
	activeAt time.Time
	deleting bool
	goneAt   time.Time
	stream   *stream
	tags     map[string]string
	// lastSubscribe holds, per shard number, when a subscription last started.
	lastSubscribe map[int]time.Time
	// readLimits holds, per shard number, the consumer's read-bytes bucket for
	// subscriptions when limits are on.
	readLimits map[int]*readLimiter
}

// readLimiter is a token bucket shared by the subscriptions of one consumer to one
// shard.
type readLimiter struct {
	mu sync.Mutex
	b  bucket
}

// wait returns zero when the bucket is not in debt at now, and otherwise how long it
// takes to refill to zero.
func (l *readLimiter) wait(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.positive(now.UnixNano()) {
		return 0
	}
	return time.Duration((-l.b.tokens/l.b.rate)*float64(time.Second)) + time.Millisecond
}

func (l *readLimiter) take(n int64) {
	l.mu.Lock()
	l.b.take(float64(n))
	l.mu.Unlock()
}

func (c *consumer) statusAt(now time.Time) string {
	switch {
	case c.deleting:
		return statusDeleting
	case now.Before(c.activeAt):
		return statusCreating
	}
	return statusActive
}

// Shard IDs: "shardId-" and twelve digits.
const shardIDPrefix = "shardId-"

func shardID(n int) string {
	var b [20]byte
	out := append(b[:0], shardIDPrefix...)
	d := strconv.AppendInt(nil, int64(n), 10)
	for i := len(d); i < 12; i++ {
		out = append(out, '0')
	}
	return string(append(out, d...))
}

func parseShardID(id string) (int, bool) {
	if len(id) != len(shardIDPrefix)+12 || id[:len(shardIDPrefix)] != shardIDPrefix {
		return 0, false
	}
	n := 0
	for _, c := range []byte(id[len(shardIDPrefix):]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// Sequence numbers are 56 decimal digits: "49", the stream's 20-digit counter, the shard
// number in 10 digits and 24 zeros. They compare numerically and lexically alike, grow
// within a shard, and children's exceed their parents'.
const (
	seqLen    = 56
	seqPrefix = "49"
)

const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

// put10 writes v (< 10^10) as ten digits into b.
func put10(b []byte, v uint64) {
	for i := 8; i >= 0; i -= 2 {
		d := v % 100 * 2
		v /= 100
		b[i], b[i+1] = digitPairs[d], digitPairs[d+1]
	}
}

// seqSuffix returns the part of a shard's sequence numbers after the counter.
func seqSuffix(shardNum int) string {
	var b [seqLen - 22]byte
	put10(b[:10], uint64(shardNum)%1e10)
	for i := 10; i < len(b); i++ {
		b[i] = '0'
	}
	return string(b[:])
}

// appendSeq appends the sequence number of counter in the shard whose seqSuffix is
// suffix.
func appendSeq(dst []byte, counter uint64, suffix string) []byte {
	var b [22]byte
	b[0], b[1] = '4', '9'
	put10(b[2:12], counter/1e10%1e10)
	put10(b[12:22], counter%1e10)
	dst = append(dst, b[:]...)
	return append(dst, suffix...)
}

func formatSeq(counter uint64, shardNum int) string {
	var b [seqLen]byte
	return string(appendSeq(b[:0], counter, seqSuffix(shardNum)))
}

// parseSeq reads a sequence number made by appendSeq.
func parseSeq(s string) (counter uint64, shardNum int, ok bool) {
	if len(s) != seqLen || s[:2] != seqPrefix {
		return 0, 0, false
	}
	for i := 2; i < seqLen; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		switch {
		case i < 22:
			if counter > (1<<64-1-9)/10 {
				return 0, 0, false
			}
			counter = counter*10 + uint64(c-'0')
		case i < 32:
			shardNum = shardNum*10 + int(c-'0')
		default:
			if c != '0' {
				return 0, 0, false
			}
		}
	}
	return counter, shardNum, true
}

// validSeqSyntax reports whether s has the service's sequence-number syntax.
func validSeqSyntax(s string) bool {
	if len(s) == 0 || len(s) > 128 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Shard iterators are base64 of: version, issue time (Unix ms), stream epoch, position,
// shard number, stream name, CRC-32 of all before.
const iterVersion = 1

type iterator struct {
	issuedMs int64
	epoch    int64
	pos      uint64
	shardNum int
	stream   string
}

func appendIterator(dst []byte, it iterator) []byte {
	var raw [1 + 8 + 8 + 8 + 4 + 128 + 4]byte
	b := raw[:0]
	b = append(b, iterVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(it.issuedMs))
	b = binary.BigEndian.AppendUint64(b, uint64(it.epoch))
	b = binary.BigEndian.AppendUint64(b, it.pos)
	b = binary.BigEndian.AppendUint32(b, uint32(it.shardNum))
	b = append(b, it.stream...)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	return base64.StdEncoding.AppendEncode(dst, b)
}

func parseIterator(s []byte) (iterator, bool) {
	var raw [1 + 8 + 8 + 8 + 4 + 128 + 4]byte
	if len(s) > base64.StdEncoding.EncodedLen(len(raw)) || len(s) == 0 {
		return iterator{}, false
	}
	n, err := base64.StdEncoding.Decode(raw[:], s)
	if err != nil || n < 1+8+8+8+4+1+4 {
		return iterator{}, false
	}
	b := raw[:n]
	body, sum := b[:n-4], binary.BigEndian.Uint32(b[n-4:])
	if body[0] != iterVersion || crc32.ChecksumIEEE(body) != sum {
		return iterator{}, false
	}
	return iterator{
		issuedMs: int64(binary.BigEndian.Uint64(body[1:])),
		epoch:    int64(binary.BigEndian.Uint64(body[9:])),
		pos:      binary.BigEndian.Uint64(body[17:]),
		shardNum: int(binary.BigEndian.Uint32(body[25:])),
		stream:   string(body[29:]),
	}, true
}
