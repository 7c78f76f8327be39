package lease

import (
	"math"
	"testing"
	"time"

	"github.com/freshet/freshet/internal/clock"
)

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
