package streams

import (
	"container/heap"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"sync"
	"time"
)

// Queue statuses and dead-letter targets as the service spells them.
const (
	queueTargetBuiltIn = "BUILT_IN"
	queueTargetNone    = "NONE"

	defaultQueueVisibility = 30 * time.Second
	defaultMaxReceiveCount = 6
)

// queueRegistry holds the service's queues. It is separate from the streams so that
// its lock is never taken while a stream's lock is held: queue code takes a queue's
// lock, then its stream's, then a shard's.
type queueRegistry struct {
	mu     sync.Mutex
	byARN  map[string]*queue
	byName map[string]*queue
	nextID uint64
}

// queue is one queue on a stream: the records it has loaded from the stream's shards
// and each one's delivery state. Only records loaded and not yet acknowledged are held
// (at most Config.QueueMaxRecords), each as a position in its shard; the data stays in
// the shard and is read at delivery.
type queue struct {
	name     string
	arn      string
	id       uint64
	created  time.Time
	activeAt time.Time
	st       *stream
	start    string    // TRIM_HORIZON, LATEST or AT_TIMESTAMP
	startTs  time.Time // AT_TIMESTAMP
	tags     map[string]string

	mu            sync.Mutex
	deleting      bool
	goneAt        time.Time
	updatingUntil time.Time
	visibility    time.Duration
	dlq           bool
	maxReceive    int32
	// cursors holds, per shard number, the next position to load.
	cursors map[int]*queueCursor
	entries map[uint64]*queueEntry // by the record's sequence counter
	ready   entryList
	dead    entryList
	flight  entryHeap // in flight, live or dead-letter, by deadline
	// deliveries numbers receipt handles; it only grows.
	deliveries uint64
	// notify is closed when records may have become visible.
	notify chan struct{}
}

// queueCursor is how far a queue has loaded one shard.
type queueCursor struct {
	pos  uint64
	done bool // the shard is closed and every record of it loaded
}

// Entry states.
const (
	entryReady uint8 = iota
	entryInFlight
	entryDead
	entryDeadInFlight
)

// queueEntry is one loaded record's delivery state.
type queueEntry struct {
	seq      uint64
	shardNum int
	pos      uint64
	ts       int64
	state    uint8
	receives int32
	first    time.Time
	deadline time.Time
	delivery uint64 // of the current receipt handle; 0 before the first
	heapIdx  int
	prev     *queueEntry
	next     *queueEntry
}

func (e *queueEntry) dead() bool { return e.state == entryDead || e.state == entryDeadInFlight }

// entryList is an intrusive FIFO of entries.
type entryList struct {
	head, tail *queueEntry
	n          int
}

func (l *entryList) push(e *queueEntry) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
	l.n++
}

func (l *entryList) remove(e *queueEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	l.n--
}

// entryHeap orders in-flight entries by deadline.
type entryHeap []*queueEntry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *entryHeap) Push(x any) {
	e := x.(*queueEntry)
	e.heapIdx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.heapIdx = -1
	return e
}

func (q *queue) statusAt(now time.Time) string {
	switch {
	case q.deleting:
		return statusDeleting
	case now.Before(q.activeAt):
		return statusCreating
	case now.Before(q.updatingUntil):
		return statusUpdating
	}
	return statusActive
}

// wakeLocked wakes long polls. The caller holds q.mu.
func (q *queue) wakeLocked() {
	if q.notify != nil {
		close(q.notify)
		q.notify = nil
	}
}

func (q *queue) waitChanLocked() <-chan struct{} {
	if q.notify == nil {
		q.notify = make(chan struct{})
	}
	return q.notify
}

// detach takes an entry out of the list or heap its state puts it in. The caller
// holds q.mu.
func (q *queue) detach(e *queueEntry) {
	switch e.state {
	case entryReady:
		q.ready.remove(e)
	case entryDead:
		q.dead.remove(e)
	default:
		heap.Remove(&q.flight, e.heapIdx)
	}
}

// forget removes an entry for good (acknowledged, or gone from the stream).
func (q *queue) forget(e *queueEntry) {
	q.detach(e)
	delete(q.entries, e.seq)
}

// expireLocked returns in-flight entries whose deadline has passed to the visible
// records, or to the dead-letter records once they were received MaxReceiveCount
// times. The caller holds q.mu.
func (q *queue) expireLocked(now time.Time) {
	woke := false
	for len(q.flight) > 0 && !q.flight[0].deadline.After(now) {
		e := heap.Pop(&q.flight).(*queueEntry)
		q.settleExpired(e)
		woke = true
	}
	if woke {
		q.wakeLocked()
	}
}

// settleExpired moves an entry that has just left the flight heap.
func (q *queue) settleExpired(e *queueEntry) {
	switch {
	case e.state == entryDeadInFlight:
		e.state = entryDead
		q.dead.push(e)
	case q.dlq && e.receives >= q.maxReceive:
		e.state = entryDead
		q.dead.push(e)
	default:
		e.state = entryReady
		q.ready.push(e)
	}
}

// setVisibility gives an in-flight entry a new deadline; zero makes it visible now.
func (q *queue) setVisibility(e *queueEntry, d time.Duration, now time.Time) {
	if d <= 0 {
		heap.Remove(&q.flight, e.heapIdx)
		q.settleExpired(e)
		q.wakeLocked()
		return
	}
	e.deadline = now.Add(d)
	heap.Fix(&q.flight, e.heapIdx)
}

// initCursors places the queue's cursors at its starting position, for the shards the
// stream has now. The caller holds q.mu.
func (q *queue) initCursors(now time.Time) {
	st := q.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	cutoff := now.Add(-st.retention).UnixNano()
	for _, sh := range st.shards {
		sh.mu.RLock()
		c := &queueCursor{}
		switch q.start {
		case "LATEST":
			c.pos = sh.total
		case "AT_TIMESTAMP":
			from := max(cutoff, q.startTs.UnixNano())
			c.pos = sh.firstPos(sh.trimmed, func(m *recMeta) bool { return m.ts >= from })
		default:
			c.pos = sh.horizon(cutoff)
		}
		c.done = sh.closed() && c.pos >= sh.total
		sh.mu.RUnlock()
		q.cursors[sh.num] = c
	}
}

// loadLocked loads records from the stream's shards until the queue holds max entries
// or has loaded everything: shards whose parents are fully loaded, in turn, so that a
// child's records come after its parents'. The caller holds q.mu.
func (q *queue) loadLocked(max int, now time.Time) {
	if len(q.entries) >= max {
		return
	}
	st := q.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	cutoff := now.Add(-st.retention).UnixNano()
	loaded := false
	for len(q.entries) < max {
		progress := false
		for _, sh := range st.shards {
			c := q.cursors[sh.num]
			if c == nil {
				// A shard born after the queue: read it from its start.
				c = &queueCursor{}
				q.cursors[sh.num] = c
			}
			if c.done || !q.parentsDone(st, sh) {
				continue
			}
			budget := min(max-len(q.entries), 500)
			if budget <= 0 {
				break
			}
			sh.mu.RLock()
			if c.pos < sh.trimmed {
				c.pos = sh.trimmed
			}
			for n := 0; n < budget && c.pos < sh.total; n++ {
				si, ri := sh.locate(c.pos)
				m := &sh.segs[si].recs[ri]
				if m.ts >= cutoff {
					e := &queueEntry{seq: m.seq, shardNum: sh.num, pos: c.pos, ts: m.ts, heapIdx: -1}
					q.entries[m.seq] = e
					q.ready.push(e)
					loaded, progress = true, true
				}
				c.pos++
			}
			if sh.closed() && c.pos >= sh.total {
				c.done, progress = true, true
			}
			sh.mu.RUnlock()
		}
		if !progress {
			break
		}
	}
	if loaded {
		q.wakeLocked()
	}
}

// parentsDone reports whether every parent of sh is fully loaded. The caller holds
// q.mu and st.mu.
func (q *queue) parentsDone(st *stream, sh *shard) bool {
	for _, id := range [2]string{sh.parent, sh.adjacent} {
		if id == "" {
			continue
		}
		p := st.shardByID(id)
		if p == nil {
			continue
		}
		c := q.cursors[p.num]
		if c != nil && !c.done {
			return false
		}
	}
	return true
}

// recordOf reads an entry's record from its shard; ok is false once retention dropped
// it. The slices alias the shard's immutable segment memory.
func (q *queue) recordOf(e *queueEntry, now time.Time) (pk, data []byte, ok bool) {
	st := q.st
	st.mu.RLock()
	var sh *shard
	if e.shardNum < len(st.shards) {
		sh = st.shards[e.shardNum]
	}
	cutoff := now.Add(-st.retention).UnixNano()
	st.mu.RUnlock()
	if sh == nil || e.ts < cutoff {
		return nil, nil, false
	}
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if e.pos < sh.trimmed || e.pos >= sh.total {
		return nil, nil, false
	}
	si, ri := sh.locate(e.pos)
	seg := sh.segs[si]
	m := &seg.recs[ri]
	end := m.off + m.pkLen
	return seg.buf[m.off:end:end], seg.buf[end : end+m.dataLen : end+m.dataLen], true
}

// Receipt handles are base64url of: version, queue id, record sequence counter,
// delivery number, CRC-32 of all before.
const receiptVersion = 1

func appendReceipt(dst []byte, queueID, seq, delivery uint64) []byte {
	var raw [1 + 8 + 8 + 8 + 4]byte
	b := raw[:0]
	b = append(b, receiptVersion)
	b = binary.BigEndian.AppendUint64(b, queueID)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, delivery)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	return base64.RawURLEncoding.AppendEncode(dst, b)
}

func parseReceipt(s string) (queueID, seq, delivery uint64, ok bool) {
	var raw [1 + 8 + 8 + 8 + 4]byte
	if base64.RawURLEncoding.EncodedLen(len(raw)) != len(s) {
		return 0, 0, 0, false
	}
	n, err := base64.RawURLEncoding.Decode(raw[:], []byte(s))
	if err != nil || n != len(raw) || raw[0] != receiptVersion {
		return 0, 0, 0, false
	}
	if crc32.ChecksumIEEE(raw[:n-4]) != binary.BigEndian.Uint32(raw[n-4:]) {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint64(raw[1:]), binary.BigEndian.Uint64(raw[9:]), binary.BigEndian.Uint64(raw[17:]), true
}

// QueueStats is a snapshot of one queue's records (Service.QueueStats).
type QueueStats struct {
	// Loaded counts the records the queue holds: read from the stream and neither
	// acknowledged nor gone from the stream.
	Loaded int
	// Visible, InFlight, DeadLetter and DeadLetterInFlight split Loaded by state.
	Visible, InFlight, DeadLetter, DeadLetterInFlight int
}

// QueueStats returns the state of the queue with the given ARN.
func (s *Service) QueueStats(queueARN string) (QueueStats, error) {
	now := s.clock.Now()
	q, e := s.findQueue(&queueARN, now)
	if e != nil {
		return QueueStats{}, e
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.expireLocked(now)
	st := QueueStats{Loaded: len(q.entries), Visible: q.ready.n, DeadLetter: q.dead.n}
	for _, e := range q.flight {
		if e.state == entryDeadInFlight {
			st.DeadLetterInFlight++
		} else {
			st.InFlight++
		}
	}
	return st, nil
}
