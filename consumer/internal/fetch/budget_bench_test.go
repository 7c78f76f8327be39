package fetch

import (
	"context"
	"testing"
)

// BenchmarkBudget measures the prefetch byte budget (consumer.WithMaxPrefetchedBytes) on
// its hot path, once per batch: the fetcher waits for room and charges the batch as it
// hands it on, the shard consumer takes it and releases its bytes. One op is one batch of
// 64 KiB through a handoff of prefetch depth 4.
//   - unbounded: a nil budget (the cost of the handoff alone);
//   - room: a 256 MiB budget that never fills;
//   - full: a budget of one batch, so every read waits for the previous batch's release
//     (fetcher and consumer on two goroutines);
//   - shards: the room case on GOMAXPROCS shards at once sharing one budget, each with its
//     own handoff (the budget's lock is the one shared point).
func BenchmarkBudget(b *testing.B) {
	const batch = 64 << 10
	ctx := context.Background()
	r := result{batch: Batch{Bytes: batch}}
	seq := func(b *testing.B, budget *Budget) {
		h := newHandoff(4, func() {}, budget)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if !budget.wait(ctx) || !h.emit(ctx, r) {
				b.Fatal("no room")
			}
			got, err := h.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			budget.Release(got.Bytes)
		}
		if budget.Used() != 0 {
			b.Fatalf("%d bytes still charged", budget.Used())
		}
	}
	b.Run("unbounded", func(b *testing.B) { seq(b, nil) })
	b.Run("room", func(b *testing.B) { seq(b, NewBudget(256<<20)) })
	b.Run("full", func(b *testing.B) {
		budget := NewBudget(batch)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // a failed run leaves no fetcher waiting
		h := newHandoff(4, func() {}, budget)
		fetched := make(chan struct{})
		go func() {
			defer close(fetched)
			for i := 0; i < b.N; i++ {
				if !budget.wait(ctx) || !h.emit(ctx, r) {
					return
				}
			}
		}()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			got, err := h.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if used := budget.Used(); used > 2*batch {
				b.Fatalf("%d bytes charged with a budget of %d", used, batch)
			}
			budget.Release(got.Bytes)
		}
		cancel()
		<-fetched
	})
	b.Run("shards", func(b *testing.B) {
		budget := NewBudget(256 << 20)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			h := newHandoff(4, func() {}, budget)
			for pb.Next() {
				if !budget.wait(ctx) || !h.emit(ctx, r) {
					b.Error("no room")
					return
				}
				got, err := h.Next(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				budget.Release(got.Bytes)
			}
		})
	})
}
