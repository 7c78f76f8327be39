package fetch

import (
	"context"
	"sync"
)

// Budget bounds the bytes of records a worker has fetched and not yet processed, across
// all of its shards. A fetcher charges each batch it hands on (Batch.Bytes) and starts a
// read (a GetRecords call, or taking the next fan-out event) only while the budget has
// room; the shard consumer releases a batch's bytes once it is done with the batch.
// Fetched bytes therefore stay within the limit plus the responses of the reads already
// in flight when it was reached (at most one per shard). A nil *Budget bounds nothing.
// It is safe for concurrent use.
type Budget struct {
	limit int64

	mu   sync.Mutex
	used int64
	room chan struct{} // closed (and replaced) when a release makes room
}

// NewBudget returns a budget of limit bytes (at least 1).
func NewBudget(limit int64) *Budget {
	return &Budget{limit: max(limit, 1), room: make(chan struct{})}
}

// Limit returns the budget's size in bytes.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Used returns the bytes charged and not yet released.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// wait blocks until the budget has room or ctx ends; it reports whether there is room.
func (b *Budget) wait(ctx context.Context) bool {
	if b == nil {
		return ctx.Err() == nil
	}
	for {
		b.mu.Lock()
		if b.used < b.limit {
			b.mu.Unlock()
			return ctx.Err() == nil
		}
		room := b.room
		b.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return false
		}
	}
}

// charge counts n more bytes as fetched. It never blocks: the bytes are already in
// memory, and the next read waits for room instead.
func (b *Budget) charge(n int) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	b.used += int64(n)
	b.mu.Unlock()
}

// Release returns n bytes charged for a batch the shard consumer is done with.
func (b *Budget) Release(n int) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	had := b.used < b.limit
	b.used = max(0, b.used-int64(n))
	if !had && b.used < b.limit {
		close(b.room)
		b.room = make(chan struct{})
	}
	b.mu.Unlock()
}
