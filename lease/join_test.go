package lease_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/freshet/freshet/lease"
)

// TestAssignerRebalancesOnJoin checks that, with the default lease scan interval (twice
// the failover time), a worker that joins gets leases at the round after the leader first
// sees it live rather than at the next scheduled scan, and that such extra scans are
// bounded: a second worker joining within a failover time of the first join's scan gets
// leases only once that failover time has passed (still well before the next scheduled
// scan).
func TestAssignerRebalancesOnJoin(t *testing.T) {
	keys := make([]string, 6)
	for i := range keys {
		keys[i] = fmt.Sprintf("shardId-%d", i)
	}
	f := newAssignFixture(t, keys...)
	f.newAssigner(1000, lease.WithLeaseScanInterval(20*time.Second))
	start := f.clk.Now()
	live := []string{"w1"}
	// step advances the clock a second (a round a second), has every live worker report,
	// renews every lease every third second as its owner, and runs a round.
	step := func() {
		t.Helper()
		f.clk.Advance(time.Second)
		for _, w := range live {
			f.report(w)
		}
		if int(f.clk.Now().Sub(start)/time.Second)%3 == 0 {
			for _, k := range keys {
				if f.get(k).Owner != "" {
					f.renew(k)
				}
			}
		}
		f.round()
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
	// scans and hands it leases, where the next scheduled scan is 20 s after the last.
	live = append(live, "w2")
	step()
	step()
	joined := f.clk.Now()
	step()
	if n := owned("w2"); n == 0 {
		t.Fatalf("w2 owns no lease one round after it showed life (%v after its first report)", f.clk.Now().Sub(joined)+time.Second)
	}
	// The handoffs complete: w1 releases, w2 renews.
	for _, k := range keys {
		if l := f.get(k); l.Owner == "w2" && l.CheckpointOwner == "w1" {
			if err := f.store.Release(f.ctx, k, "w1"); err != nil {
				t.Fatal(err)
			}
			f.renew(k)
		}
	}
	joinScan := f.clk.Now()
	// w3 joins 2 s later: the extra scan waits for a failover time after the last one.
	live = append(live, "w3")
	for f.clk.Now().Sub(joinScan) < 9*time.Second {
		step()
		if n := owned("w3"); n != 0 {
			t.Fatalf("w3 owns %d leases %v after the last join's scan, within its failover time", n, f.clk.Now().Sub(joinScan))
		}
	}
	step()
	if n := owned("w3"); n == 0 {
		t.Fatalf("w3 owns no lease a failover time after the last join's scan (%v)", f.clk.Now().Sub(joinScan))
	}
}
