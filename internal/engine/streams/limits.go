package streams

import "time"

// bucket is a token bucket refilled continuously at rate tokens per second up to
// capacity. Callers hold the owning shard's lock.
type bucket struct {
	tokens   float64
	last     int64 // Unix ns of the last refill; 0 before first use
	rate     float64
	capacity float64
}

func newBucket(rate float64, burst time.Duration, floor float64) bucket {
	c := rate * burst.Seconds()
	if c < floor {
		c = floor
	}
	return bucket{tokens: c, rate: rate, capacity: c}
}

func (b *bucket) refill(now int64) {
	if b.last == 0 {
		b.last = now
		return
	}
	if now > b.last {
		b.tokens += float64(now-b.last) / 1e9 * b.rate
		if b.tokens > b.capacity {
			b.tokens = b.capacity
		}
		b.last = now
	}
}

// has reports whether n tokens are available after refilling.
func (b *bucket) has(now int64, n float64) bool {
	b.refill(now)
	return b.tokens >= n
}

// positive reports whether the bucket is not in debt after refilling.
func (b *bucket) positive(now int64) bool {
	b.refill(now)
	return b.tokens > 0
}

func (b *bucket) take(n float64) { b.tokens -= n }

// resize changes the capacity at now. A full bucket stays full, so a shard that has
// not written lately can take one record of the new maximum size at once; a bucket
// in use keeps its tokens, up to the new capacity.
func (b *bucket) resize(now int64, capacity float64) {
	b.refill(now)
	if b.tokens >= b.capacity || b.tokens > capacity {
		b.tokens = capacity
	}
	b.capacity = capacity
}
