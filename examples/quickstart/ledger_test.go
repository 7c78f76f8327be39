package main

import (
	"reflect"
	"sync"
	"testing"
)

func TestLedgerAccounting(t *testing.T) {
	l := newLedger()
	for id := uint64(0); id < 10; id++ {
		l.Put(id)
	}
	l.Put(3) // a second Put of the same ID counts once
	for id := uint64(0); id < 8; id++ {
		l.Acked(id)
	}
	l.Failed(8, "ProvisionedThroughputExceededException")
	l.Acked(8) // an outcome after the final one is ignored
	// 9 has no outcome.

	for id := uint64(0); id < 7; id++ { // 7 (acked) and 8 (failed), 9 (pending) never consumed
		if !l.Consumed(id, 100+id) {
			t.Fatalf("first delivery of %d not reported first", id)
		}
	}
	if l.Consumed(1, 101) { // same stored record again: redelivery
		t.Fatal("second delivery reported first")
	}
	l.Consumed(2, 999)           // another stored copy: stored twice
	l.Consumed(1<<40, 1)         // never produced
	l.Consumed(ledgerChunk+5, 1) // inside no allocated chunk

	got := l.Totals()
	want := ledgerTotals{
		Put: 10, Acked: 8, Failed: 1, Pending: 1,
		Consumed: 7, Deliveries: 11,
		Lost: 3, LostAcked: 1,
		Redelivered: 1, StoredTwice: 1, Unexpected: 2,
	}
	if got.Failures["ProvisionedThroughputExceededException"] != 1 || len(got.Failures) != 1 {
		t.Errorf("failures %v", got.Failures)
	}
	got.Failures = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("totals\n got %+v\nwant %+v", got, want)
	}
	if got.Duplicates() != 2 {
		t.Errorf("duplicates %d", got.Duplicates())
	}
	if ids := l.MissingIDs(10); len(ids) != 3 || ids[0] != 7 || ids[1] != 8 || ids[2] != 9 {
		t.Errorf("missing %v", ids)
	}
	if ids := l.MissingIDs(1); len(ids) != 1 {
		t.Errorf("missing capped: %v", ids)
	}
}

func TestLedgerConcurrent(t *testing.T) {
	l := newLedger()
	const n = 200_000 // spans several chunks
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for id := uint64(w); id < n; id += 4 {
				l.Put(id)
				l.Acked(id)
			}
		}(w)
	}
	wg.Wait()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for id := uint64(w); id < n; id += 4 {
				l.Consumed(id, id)
			}
		}(w)
	}
	wg.Wait()
	tot := l.Totals()
	if tot.Put != n || tot.Acked != n || tot.Consumed != n || tot.Lost != 0 || tot.Duplicates() != 0 {
		t.Fatalf("totals %+v", tot)
	}
}

func BenchmarkLedgerConsumed(b *testing.B) {
	l := newLedger()
	const n = 1 << 20
	for id := uint64(0); id < n; id++ {
		l.Put(id)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := uint64(i) % n
		l.Consumed(id, id)
	}
}
