package producer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// liveHeap is the heap's live bytes after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestPlainBufferMemoryWithinBound: a plain producer whose calls never return, filled
// with 100-byte records until Put fails fast, holds no more live heap than its byte
// bound (records' data and their PlainRecordOverhead) and a little for its fixed
// structures: the bound accounts for what buffering costs.
func TestPlainBufferMemoryWithinBound(t *testing.T) {
	for _, cbor := range []bool{true, false} {
		t.Run(fmt.Sprint("cbor=", cbor), func(t *testing.T) {
			const bound = 16 << 20
			f := newFake(8)
			base := liveHeap()
			p, err := New(f, WithStream(testStream), WithAggregation(false), WithCBOR(cbor), WithFailFast(true),
				WithMaxBuffered(1<<30, bound), WithRequestTimeout(time.Minute), WithMetrics(MetricsNone, GranularityGlobal))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			defer p.Close(ctx)
			// The stream is described before the calls hang.
			if err := p.Put(ctx, Record{PartitionKey: "k", Data: make([]byte, 100)}, nil); err != nil {
				t.Fatal(err)
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			f.set(func(f *fakeKinesis) { f.hang = true })
			n := 0
			for ; ; n++ {
				err := p.Put(context.Background(), Record{PartitionKey: keyOf(n, 1000), Data: make([]byte, 100)}, nil)
				if errors.Is(err, ErrBufferFull) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			live := liveHeap() - base
			want := uint64(n) * (100 + PlainRecordOverhead)
			t.Logf("%d records buffered: %.1f MiB live, %.1f MiB charged against the %d MiB bound", n, float64(live)/(1<<20), float64(want)/(1<<20), bound>>20)
			if live > bound+(2<<20) {
				t.Fatalf("%d records buffered hold %.1f MiB of live heap, over the %d MiB bound", n, float64(live)/(1<<20), bound>>20)
			}
		})
	}
}
