package lease_test

import (
	"testing"
	"time"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/lease"
)

// TestAssignerNeverMovesALeaseThatCannotMove: with rebalancing in every round and a
// worker without leases, the leader never moves a finished lease (SHARD_END), a lease in
// a graceful handoff (neither taken nor handed off again), nor the lease of an owner that
// shows no life before that lease expires; once it expires, that lease is placed again.
func TestAssignerNeverMovesALeaseThatCannotMove(t *testing.T) {
	const (
		done   = "shardId-0" // SHARD_END, unowned
		silent = "shardId-6" // owned by a worker that shows no life
	)
	// w1 holds four leases and is handing five more to w2, the most loaded worker by
	// owner, whose leases can therefore not be moved; w3 holds none.
	held := []string{"shardId-1", "shardId-2", "shardId-3", "shardId-4"}
	handing := []string{"shardId-5", "shardId-7", "shardId-8", "shardId-9", "shardId-10"}
	f := newAssignFixture(t, append(append([]string{silent}, held...), handing...)...)
	if _, err := f.store.CreateIfAbsent(f.ctx, lease.Lease{Key: done, Checkpoint: checkpoint.ShardEnd}); err != nil {
		t.Fatal(err)
	}
	take := func(key, owner string) {
		t.Helper()
		if _, err := f.store.Take(f.ctx, f.get(key), owner); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range append(held, handing...) {
		take(k, "w1")
	}
	for _, k := range handing {
		if _, err := f.store.Handoff(f.ctx, f.get(k), "w2"); err != nil {
			t.Fatal(err)
		}
	}
	take(silent, "ghost")
	f.newAssigner(1) // rebalance in every round; the leader first sees the counters now
	firstSeen := f.clk.Now().Add(-4 * time.Second)

	live := []string{"w1", "w2", "w3"}
	var moves int
	for f.clk.Now().Sub(firstSeen) < 10*time.Second {
		// The workers renew what they hold (w1 also the lease it is handing over) and report.
		before := map[string]lease.Lease{}
		for _, k := range append(append([]string{silent, done}, held...), handing...) {
			l := f.get(k)
			before[k] = l
			if k != silent && k != done {
				f.renew(k)
			}
		}
		for _, w := range live {
			f.report(w)
		}
		r := f.round()
		moves += len(r.Applied)
		for _, m := range r.Applied {
			b := before[m.Key]
			switch {
			case m.Key == done:
				t.Fatalf("finished lease moved: %+v", m)
			case m.Key == silent:
				t.Fatalf("lease of a silent owner moved %v after the leader first saw it, before it expired: %+v",
					f.clk.Now().Sub(firstSeen), m)
			case b.HandoffPending():
				t.Fatalf("lease in a handoff (owner %s, checkpoint owner %s) moved again: %+v", b.Owner, b.CheckpointOwner, m)
			}
		}
		for _, k := range handing {
			if l := f.get(k); l.Owner != "w2" || l.CheckpointOwner != "w1" {
				t.Fatalf("lease in a handoff from w1 to w2 is now %+v", l)
			}
		}
		f.clk.Advance(time.Second)
	}
	if moves == 0 {
		t.Fatal("no lease moved at all: w1's leases were never rebalanced onto w3")
	}
	// Now the silent owner's lease has expired: it goes to a live worker.
	for _, w := range live {
		f.report(w)
	}
	f.round()
	if o := f.get(silent).Owner; o == "ghost" || o == "" {
		t.Fatalf("expired lease of a silent owner still owned by %q", o)
	}
	if l := f.get(done); l.Owner != "" {
		t.Fatalf("finished lease given to %q", l.Owner)
	}
}
