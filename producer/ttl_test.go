package producer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/freshet/freshet/aggregation"
)

// TestRecordTTLPerUserRecord: the TTL counts from each user record's own Put. Records
// A and B share one aggregate, which the service throttles as long as it holds any
// record of A; when A's TTL ends, A fails with ErrRecordExpired and B, rebuilt without
// A, is written.
func TestRecordTTLPerUserRecord(t *testing.T) {
	f := newFake(1)
	const ttl = 2 * time.Second
	const nA, nB = 50, 40
	f.throttleIf = func(data []byte) bool {
		urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: "a", Data: data})
		if err != nil {
			return false
		}
		for _, u := range urs {
			var i int
			if _, err := fmt.Sscanf(string(u.Data), "record-%08d-", &i); err == nil && i < nA {
				return true
			}
		}
		return false
	}
	// Linger past TTL/2: the aggregate is sealed TTL/2 after A's Put, holding A and B.
	p := newTestProducer(t, f, WithLinger(time.Hour), WithRecordTTL(ttl))
	ctx := context.Background()
	o := newOutcomes(nA + nB)
	for i := 0; i < nA; i++ {
		if err := p.Put(ctx, Record{PartitionKey: keyOf(i, 7), Data: recordData(i)}, o.cb(i)); err != nil {
			t.Fatal(err)
		}
	}
	// B is put a quarter TTL later, into the same open aggregate.
	time.Sleep(ttl / 4)
	for i := nA; i < nA+nB; i++ {
		if err := p.Put(ctx, Record{PartitionKey: keyOf(i, 7), Data: recordData(i)}, o.cb(i)); err != nil {
			t.Fatal(err)
		}
	}
	// No Flush: Flush would seal the aggregate at once. Wait for the outcomes instead.
	waitFor(t, 30*time.Second, func() bool { return o.pending.Load() == 0 })
	failed := o.check(t, nA+nB)
	if len(failed) != nA {
		t.Fatalf("%d records failed, want the %d of A; first: %v", len(failed), nA, failed[len(failed)-1].Err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := 0; i < nA; i++ {
		r := o.res[i]
		if !errors.Is(r.Err, ErrRecordExpired) || !errors.Is(r.Err, ErrThrottled) || len(r.Attempts) == 0 {
			t.Fatalf("A record %d: %v after %d attempts, want ErrRecordExpired after throttling", i, r.Err, len(r.Attempts))
		}
	}
	seqs := map[string]bool{}
	for i := nA; i < nA+nB; i++ {
		r := o.res[i]
		if r.Err != nil {
			t.Fatalf("B record %d failed: %v (%d attempts)", i, r.Err, len(r.Attempts))
		}
		seqs[r.SequenceNumber] = true
	}
	recs, err := f.readAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != nB {
		t.Fatalf("stream holds %d user records, want the %d of B", len(recs), nB)
	}
	for _, r := range recs {
		for i := 0; i < nA; i++ {
			if r.data == string(recordData(i)) {
				t.Fatalf("expired record %d was written", i)
			}
		}
	}
	t.Logf("B went out in %d Kinesis record(s)", len(seqs))
}

// TestRecordTTLUnderThrottling: with every entry throttled, every record expires; those
// that were tried carry the throttling in their outcome.
func TestRecordTTLUnderThrottling(t *testing.T) {
	f := newFake(2)
	f.throttleAll = true
	p := newTestProducer(t, f, WithRecordTTL(200*time.Millisecond))
	n := 300
	o := putAll(t, p, n, 10)
	failed := o.check(t, n)
	if len(failed) != n {
		t.Fatalf("%d of %d expired", len(failed), n)
	}
	tried := 0
	for _, r := range failed {
		if !errors.Is(r.Err, ErrRecordExpired) {
			t.Fatalf("outcome %v, want ErrRecordExpired", r.Err)
		}
		if len(r.Attempts) == 0 {
			continue
		}
		tried++
		if !errors.Is(r.Err, ErrThrottled) || r.Attempts[0].ErrorCode != "ProvisionedThroughputExceededException" {
			t.Fatalf("outcome %v after attempts %+v, want the throttling kept", r.Err, r.Attempts)
		}
	}
	if tried == 0 {
		t.Fatal("no record was ever tried")
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
