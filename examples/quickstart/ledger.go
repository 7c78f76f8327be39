package main

import (
	"fmt"
	"sync"
)

// ledger is the demo's accounting: for every post ID, whether the producer accepted it,
// what the producer reported in the end, and how often (and from which stored record) the
// consumers delivered it. Lost, duplicate and unexpected posts are derived from it, so
// the summary's numbers are counted per record, not estimated from totals.
//
// Memory is one small entry per produced post, in chunks allocated as IDs grow; the
// number of posts is bounded by the launch curve.
type ledger struct {
	mu     sync.Mutex
	chunks [][]ledgerEntry

	// Counted as events arrive.
	put, acked, failed       uint64
	deliveries, unique       uint64
	redelivered, storedTwice uint64
	unexpected               uint64
	failures                 map[string]uint64
}

// ledgerEntry is one post's record.
type ledgerEntry struct {
	state      uint8  // ledgerUnknown, ledgerPut, ledgerAcked or ledgerFailed
	deliveries uint32 // times a consumer processed it
	first      uint64 // fingerprint of the stored record first delivered
}

const (
	ledgerUnknown uint8 = iota
	ledgerPut
	ledgerAcked
	ledgerFailed
)

const ledgerChunk = 1 << 16

func newLedger() *ledger { return &ledger{failures: make(map[string]uint64)} }

// entry returns id's entry, growing the chunk list when grow is set; nil when id was
// never seen and grow is false. l.mu must be held.
func (l *ledger) entry(id uint64, grow bool) *ledgerEntry {
	c := id / ledgerChunk
	if c >= uint64(len(l.chunks)) {
		if !grow {
			return nil
		}
		for uint64(len(l.chunks)) <= c {
			l.chunks = append(l.chunks, nil)
		}
	}
	if l.chunks[c] == nil {
		if !grow {
			return nil
		}
		l.chunks[c] = make([]ledgerEntry, ledgerChunk)
	}
	return &l.chunks[c][id%ledgerChunk]
}

// Put records that the producer accepted post id.
func (l *ledger) Put(id uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(id, true)
	if e.state == ledgerUnknown {
		e.state = ledgerPut
		l.put++
	}
}

// Acked records that the producer reported post id stored in the stream.
func (l *ledger) Acked(id uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entry(id, false); e != nil && e.state == ledgerPut {
		e.state = ledgerAcked
		l.acked++
	}
}

// Failed records that the producer gave up on post id, with reason (e.g. an error code).
func (l *ledger) Failed(id uint64, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entry(id, false); e != nil && e.state == ledgerPut {
		e.state = ledgerFailed
		l.failed++
		l.failures[reason]++
	}
}

// Consumed records one delivery of post id from the stored record identified by
// fingerprint (a hash of shard ID, sequence number and sub-sequence number). It reports
// whether this was the post's first delivery.
func (l *ledger) Consumed(id uint64, fingerprint uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deliveries++
	e := l.entry(id, false)
	if e == nil || e.state == ledgerUnknown {
		l.unexpected++
		return false
	}
	e.deliveries++
	if e.deliveries == 1 {
		e.first = fingerprint
		l.unique++
		return true
	}
	if e.first == fingerprint {
		l.redelivered++
	} else {
		l.storedTwice++
	}
	return false
}

// ledgerTotals is the ledger's account of a run.
type ledgerTotals struct {
	// Put is the number of posts the producer accepted.
	Put uint64
	// Acked is the number the producer reported stored.
	Acked uint64
	// Failed is the number the producer reported failed, by reason.
	Failed   uint64
	Failures map[string]uint64
	// Pending is the number with no outcome from the producer yet.
	Pending uint64
	// Consumed is the number of distinct posts delivered at least once.
	Consumed uint64
	// Deliveries counts every delivery, duplicates included.
	Deliveries uint64
	// Lost is the number of posts the producer accepted that no consumer delivered.
	Lost uint64
	// LostAcked is the part of Lost the producer had reported stored: data loss.
	LostAcked uint64
	// Redelivered counts deliveries of a stored record already delivered (a shard
	// replayed from its last checkpoint after a failover or lease move).
	Redelivered uint64
	// StoredTwice counts deliveries of a second stored copy of a post (a producer or SDK
	// retry of a write that had in fact succeeded).
	StoredTwice uint64
	// Unexpected counts deliveries of posts this run never produced.
	Unexpected uint64
}

// Duplicates returns the deliveries beyond the first of each post.
func (t ledgerTotals) Duplicates() uint64 { return t.Redelivered + t.StoredTwice }

// Totals scans the ledger. Lost posts are those accepted and never delivered.
func (l *ledger) Totals() ledgerTotals {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := ledgerTotals{
		Put: l.put, Acked: l.acked, Failed: l.failed,
		Pending:  l.put - l.acked - l.failed,
		Consumed: l.unique, Deliveries: l.deliveries,
		Redelivered: l.redelivered, StoredTwice: l.storedTwice, Unexpected: l.unexpected,
		Failures: make(map[string]uint64, len(l.failures)),
	}
	for k, v := range l.failures {
		t.Failures[k] = v
	}
	for _, chunk := range l.chunks {
		for i := range chunk {
			e := &chunk[i]
			if e.state != ledgerUnknown && e.deliveries == 0 {
				t.Lost++
				if e.state == ledgerAcked {
					t.LostAcked++
				}
			}
		}
	}
	return t
}

// MissingIDs returns up to max IDs of lost posts, for the summary's diagnostics.
func (l *ledger) MissingIDs(max int) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []uint64
	for c, chunk := range l.chunks {
		for i := range chunk {
			if chunk[i].state != ledgerUnknown && chunk[i].deliveries == 0 {
				if len(ids) == max {
					return ids
				}
				ids = append(ids, uint64(c)*ledgerChunk+uint64(i))
			}
		}
	}
	return ids
}

// String summarises the totals on one line.
func (t ledgerTotals) String() string {
	return fmt.Sprintf("put=%d acked=%d failed=%d consumed=%d lost=%d duplicates=%d", t.Put, t.Acked, t.Failed, t.Consumed, t.Lost, t.Duplicates())
}
