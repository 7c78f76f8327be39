package fetch

import (
	"context"
	"sync"
)

// handoff carries batches from a fetcher's goroutine to its shard consumer: a channel
// bounded by the prefetch depth, and the goroutine's cancel and completion. Poller and
// FanOut embed it for Next, Close and emit.
type handoff struct {
	out    chan result
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	budget *Budget
}

func newHandoff(prefetch int, cancel context.CancelFunc, budget *Budget) handoff {
	return handoff{out: make(chan result, prefetch), cancel: cancel, done: make(chan struct{}), budget: budget}
}

// Next returns the next batch, ErrClosed once the fetcher has stopped, or ctx's error.
func (h *handoff) Next(ctx context.Context) (Batch, error) {
	select {
	case r, ok := <-h.out:
		if !ok {
			return Batch{}, ErrClosed
		}
		return r.batch, r.err
	case <-ctx.Done():
		return Batch{}, ctx.Err()
	}
}

// Close stops the fetcher and waits for its goroutine. The bytes of batches fetched and
// never taken go back to the budget.
func (h *handoff) Close() {
	h.once.Do(h.cancel)
	<-h.done
	for r := range h.out {
		h.budget.Release(r.batch.Bytes)
	}
}

// emit hands r to the shard consumer, waiting while the prefetch buffer is full. The
// batch's bytes are charged to the budget until the consumer releases them.
func (h *handoff) emit(ctx context.Context, r result) bool {
	h.budget.charge(r.batch.Bytes)
	select {
	case h.out <- r:
		return true
	case <-ctx.Done():
		h.budget.Release(r.batch.Bytes)
		return false
	}
}

// stopped is deferred by the fetcher's goroutine: Next then reports ErrClosed and Close
// returns.
func (h *handoff) stopped() {
	close(h.out)
	close(h.done)
}
