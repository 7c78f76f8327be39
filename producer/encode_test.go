package producer

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/freshet/freshet/internal/engine/streams"
)

// TestPlainRecordsEncodedAtPut: without aggregation, over the SDK's client, in CBOR and
// in JSON, a record is encoded into its shard's slab when it is put, so what is stored is the data
// as it was at Put even when the caller's buffer changes afterwards, across slabs
// recycled many times over (the records outnumber the buffer's slabs), and records of
// a size that does not fit a slab's entry room are stored whole too.
func TestPlainRecordsEncodedAtPut(t *testing.T) {
	for _, cbor := range []bool{true, false} {
		t.Run(fmt.Sprintf("cbor=%v", cbor), func(t *testing.T) { testEncodedAtPut(t, cbor) })
	}
}

func testEncodedAtPut(t *testing.T, cbor bool) {
	e := startEngine(t, streams.Config{}, 4)
	p := newEngineProducer(t, e, WithAggregation(false), WithCBOR(cbor), WithMaxBuffered(1<<20, 8<<20))
	if !p.encodeAtPut {
		t.Fatal("the SDK's client does not take entries encoded at Put")
	}
	n := scale(20000, 200000)
	o := newOutcomes(n)
	ctx := context.Background()
	buf := make([]byte, 0, 16<<10)
	for i := 0; i < n; i++ {
		want := recordData(i)
		if i%1000 == 7 {
			want = append(want, bytes.Repeat([]byte{'x'}, 12<<10)...) // its own buffer
		}
		buf = append(buf[:0], want...)
		if err := p.Put(ctx, Record{PartitionKey: keyOf(i, 100), Data: buf}, o.cb(i)); err != nil {
			t.Fatal(err)
		}
		// The caller reuses its buffer at once.
		for j := range buf {
			buf[j] = '?'
		}
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if failed := o.check(t, n); len(failed) > 0 {
		t.Fatalf("%d failed: %v", len(failed), failed[0].Err)
	}
	recs, _ := readEngine(t, e)
	if len(recs) != n {
		t.Fatalf("%d records stored, want %d", len(recs), n)
	}
	seen := make(map[string]bool, n)
	for _, r := range recs {
		seen[r.data] = true
	}
	for i := 0; i < n; i++ {
		want := recordData(i)
		if i%1000 == 7 {
			want = append(want, bytes.Repeat([]byte{'x'}, 12<<10)...)
		}
		if !seen[string(want)] {
			t.Fatalf("record %d not stored as put", i)
		}
	}
	assertKeyOrder(t, recs, n)
}

// TestOrderedPlainHoldsPartialCalls: an ordered plain producer holds back a call that is
// not full while orderedPlainCalls calls are in flight besides it, and sends it with
// fewer; aggregating and unordered producers never hold one back.
func TestOrderedPlainHoldsPartialCalls(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		hold bool
	}{
		{"ordered plain", []Option{WithAggregation(false), WithOrdering(true)}, true},
		{"unordered plain", []Option{WithAggregation(false), WithOrdering(false)}, false},
		{"ordered aggregated", []Option{WithOrdering(true)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProducer(t, newFake(2), tc.opts...)
			// The slot of the call being built, and the calls in flight besides it.
			p.slots <- struct{}{}
			for i := 0; i < orderedPlainCalls; i++ {
				if p.holdsPartialCall() {
					t.Fatalf("holds back a call with %d others in flight", i)
				}
				p.slots <- struct{}{}
			}
			if got := p.holdsPartialCall(); got != tc.hold {
				t.Fatalf("with %d calls in flight: holds %v, want %v", orderedPlainCalls, got, tc.hold)
			}
			for i := 0; i <= orderedPlainCalls; i++ {
				<-p.slots
			}
		})
	}
}
