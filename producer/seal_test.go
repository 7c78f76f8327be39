package producer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/freshet/freshet/aggregation"
)

// unsentAggregate puts n records into a producer whose linger never ends and
// drains them, as the dispatcher would, into one Kinesis record: an aggregate
// whose MD5 trailer the sender has not written yet.
func unsentAggregate(t *testing.T, p *Producer, n int, o *outcomes) *krec {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if err := p.Put(ctx, Record{PartitionKey: "same-key", Data: recordData(i)}, o.cb(i)); err != nil {
			t.Fatal(err)
		}
	}
	sh := p.def.Load().shards.Load().shards[0]
	sh.mu.Lock()
	sh.seal()
	k := sh.popFront()
	sh.mu.Unlock()
	if !k.unsealed || len(k.users) != n {
		t.Fatalf("drained %d of %d records, unsealed=%v: want one unsealed aggregate", len(k.users), n, k.unsealed)
	}
	return k
}

// TestExpirySplitsAnUnsentAggregate: when some user records of an aggregate that
// was never sent expire, the others are rebuilt from it; its MD5 trailer is
// written first, so the rebuild reads it back whole.
func TestExpirySplitsAnUnsentAggregate(t *testing.T) {
	f := newFake(1)
	const ttl = time.Minute
	p := newTestProducer(t, f, WithLinger(time.Hour), WithRecordTTL(ttl))
	const n, old = 10, 4
	o := newOutcomes(n)
	k := unsentAggregate(t, p, n, o)
	for i := range k.users[:old] {
		k.users[i].put -= int64(2 * ttl)
	}
	live, dead := p.splitExpired(k, p.now())
	if dead == nil || len(dead.users) != old {
		t.Fatalf("dead record holds %v user records, want %d", dead, old)
	}
	got := 0
	for _, l := range live {
		l.sealNow()
		urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: l.pk, ExplicitHashKey: l.ehk, Data: l.data})
		if err != nil {
			t.Fatalf("live record does not decode: %v", err)
		}
		for _, u := range urs {
			if want := string(recordData(old + got)); string(u.Data) != want {
				t.Fatalf("live user record %d is %q, want %q", got, u.Data, want)
			}
			got++
		}
	}
	if got != n-old {
		t.Fatalf("live records hold %d user records, want %d", got, n-old)
	}
}

// TestRepredictOfAnUnsentAggregate: records taken from a retired shard before
// they were sent are put back and written, each exactly once, with valid MD5s.
func TestRepredictOfAnUnsentAggregate(t *testing.T) {
	f := newFake(1)
	p := newTestProducer(t, f, WithLinger(time.Hour))
	const n = 10
	o := newOutcomes(n)
	k := unsentAggregate(t, p, n, o)
	p.def.Load().repredict([]*krec{k})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if failed := o.check(t, n); len(failed) > 0 {
		t.Fatalf("%d records failed: %v", len(failed), errors.Join(failed[0].Err))
	}
	recs, err := f.readAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("stored %d user records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if r.data != string(recordData(i)) {
			t.Fatalf("stored record %d is %q", i, r.data)
		}
	}
}
