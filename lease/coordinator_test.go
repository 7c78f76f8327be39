package lease

import (
	"math"
	"testing"
	"time"

	"github.com/freshet/freshet/internal/clock"
)

func TestExpiryTrackerUsesObserverClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := NewExpiryTracker(10 * time.Second)
	l := Lease{Key: "a", Owner: "w", Counter: 5}
	tr.Observe([]Lease{l}, start)
	if tr.Expired(&l, start.Add(9*time.Second)) {
		t.Fatal("expired before the failover time")
	}
	// The counter moves: the clock restarts from the observation of the new counter.
	l.Counter = 6
	tr.Observe([]Lease{l}, start.Add(9*time.Second))
	if tr.Expired(&l, start.Add(18*time.Second)) {
		t.Fatal("expired although the counter moved 9 s ago")
	}
	tr.Observe([]Lease{l}, start.Add(19*time.Second))
	if !tr.Expired(&l, start.Add(19*time.Second)) {
		t.Fatal("not expired after the failover time without renewal")
	}
	// A lease never observed is not expired, and forgotten leases start over.
	other := Lease{Key: "b", Counter: 1}
	if tr.Expired(&other, start.Add(time.Hour)) {
		t.Fatal("unobserved lease reported expired")
	}
	tr.Observe(nil, start.Add(20*time.Second))
	tr.Observe([]Lease{l}, start.Add(21*time.Second))
	if tr.Expired(&l, start.Add(30*time.Second)) {
		t.Fatal("a re-listed lease kept its old observation")
	}
}

func TestThroughputMeterEMA(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m := NewThroughputMeter(clk)
	m.Add("k", 10*1024)
	clk.Advance(time.Second)
	if got := m.Sample("k"); got != 10 {
		t.Fatalf("first sample %v KB/s, want 10", got)
	}
	m.Add("k", 20*1024)
	clk.Advance(time.Second)
	if got := m.Sample("k"); math.Abs(got-12) > 1e-9 { // 0.2*20 + 0.8*10
		t.Fatalf("second sample %v KB/s, want 12", got)
	}
	m.Forget("k")
	if got := m.Sample("k"); got != 0 {
		t.Fatalf("after Forget %v", got)
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := NewStore(nil, DefaultTables("a")); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := NewCoordinator(nil, "w"); err == nil {
		t.Error("nil store accepted")
	}
	if err := (Tables{Lease: "a"}).validate(); err == nil {
		t.Error("three-table layout without state and metrics tables accepted")
	}
	if err := SingleTableLayout("a").validate(); err != nil {
		t.Error(err)
	}
	e := &LeaderElector{}
	if err := WithLeaderLeaseDuration(time.Second, 2*time.Second)(e); err == nil {
		t.Error("heartbeat longer than the lease accepted")
	}
}
