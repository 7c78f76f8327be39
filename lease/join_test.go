package lease_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/freshet/freshet/lease"
)

// TestAssignerRebalancesOnJoin checks that, with the default lease scan interval (twice
// the failover time), a worker that joins gets a lease at the round after the leader
// first sees it live rather than at the next scheduled scan; that the leader goes on
// rebalancing a failover time apart until the plan is balanced (a round moves at most a
// tenth of the leases, here one); and that a worker flapping meanwhile (silent for the
// liveness window, then back) causes no scan within a failover time of the last.
func TestAssignerRebalancesOnJoin(t *testing.T) {
	keys := make([]string, 6)
	for i := range keys {
		keys[i] = fmt.Sprintf("shardId-%d", i)
	}
	f := newAssignFixture(t, keys...)
	f.newAssigner(1000, lease.WithLeaseScanInterval(20*time.Second))
	start := f.clk.Now()
	live := map[string]bool{"w1": true}
	// step advances the clock a second (a round a second), has every live worker report,
	// renews every lease every third second as its owner, runs a round, and completes the
	// handoffs it started (the old owner releases, the new one renews).
	step := func() {
		t.Helper()
		f.clk.Advance(time.Second)
		for w, on := range live {
			if on {
				f.report(w)
			}
		}
		if int(f.clk.Now().Sub(start)/time.Second)%3 == 0 {
			for _, k := range keys {
				if f.get(k).Owner != "" {
					f.renew(k)
				}
			}
		}
		f.round()
		for _, k := range keys {
			if l := f.get(k); l.Owner == "w2" && l.CheckpointOwner == "w1" {
				if err := f.store.Release(f.ctx, k, "w1"); err != nil {
					t.Fatal(err)
				}
				f.renew(k)
			}
		}
	}
	owned := func(w string) int {
		n := 0
		for _, k := range keys {
			if f.get(k).Owner == w {
				n++
			}
		}
		return n
	}
	// w1 shows life and gets every lease; it confirms them.
	f.showLife("w1")
	if n := owned("w1"); n != len(keys) {
		t.Fatalf("w1 owns %d leases, want %d", n, len(keys))
	}
	for _, k := range keys {
		f.renew(k)
	}
	for f.clk.Now().Sub(start) < 13*time.Second {
		step()
	}
	// w2 joins: it reports (first sight), reports again (live), and the next round
	// scans and hands it a lease, where the next scheduled scan is 20 s after the last.
	live["w2"] = true
	step()
	step()
	step()
	if n := owned("w2"); n != 1 {
		t.Fatalf("w2 owns %d leases one round after it showed life, want 1", n)
	}
	joinScan := f.clk.Now()
	want := func(n int, what string) {
		t.Helper()
		if got := owned("w2"); got != n {
			t.Fatalf("%v after the join's scan (%s): w2 owns %d leases, want %d", f.clk.Now().Sub(joinScan), what, got, n)
		}
	}
	// w2 flaps: silent for 5 s (longer than the liveness window), then back.
	live["w2"] = false
	for f.clk.Now().Sub(joinScan) < 5*time.Second {
		step()
	}
	live["w2"] = true
	for f.clk.Now().Sub(joinScan) < 9*time.Second {
		step()
		want(1, "within a failover time of the last extra scan")
	}
	step()
	want(2, "a failover time later")
	for f.clk.Now().Sub(joinScan) < 19*time.Second {
		step()
		want(2, "within a failover time of the last extra scan")
	}
	step()
	want(3, "the rebalance goes on a failover time later")
}
