package lease

import (
	"math"
	"testing"
	"time"

	"github.com/freshet/freshet/clock"
)

func TestThroughputMeterIsWhatAShardSustains(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m := NewThroughputMeter(clk)
	w := func(dt time.Duration) float64 { return 1 - math.Exp(-dt.Seconds()/ThroughputWindow.Seconds()) }
	// Steady 100 KB/s for ten minutes: the average converges on it.
	for i := 0; i < 200; i++ {
		m.Add("k", 300*1024)
		clk.Advance(3 * time.Second)
		m.sample("k")
	}
	if got := m.sample("k"); math.Abs(got-100) > 0.5 {
		t.Fatalf("steady 100 KB/s measured %v", got)
	}
	// A 10 s catch-up burst at 40 MB/s counts as at most the shard's 2 MiB/s, smoothed
	// over the window: the lease looks a few times hotter, never 400 times.
	before := m.sample("k")
	m.Add("k", 400<<20)
	clk.Advance(10 * time.Second)
	got := m.sample("k")
	want := before + w(10*time.Second)*(MaxShardReadKBps-before)
	if math.Abs(got-want) > 1e-6 || got > 500 {
		t.Fatalf("after a burst: %v KB/s, want %v", got, want)
	}
	// A moved lease starts from the throughput stored in it.
	m.seed("moved", 250)
	m.seed("moved", 9) // already measured: ignored
	clk.Advance(3 * time.Second)
	if got := m.sample("moved"); math.Abs(got-250*(1-w(3*time.Second))) > 1e-9 {
		t.Fatalf("seeded lease after an idle interval: %v", got)
	}
	m.forget("moved")
	if got := m.sample("moved"); got != 0 {
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
	if _, err := newOptions("NewLeaderElector", forLeader, []Option{WithLeaderLeaseDuration(time.Second, 2*time.Second)}); err == nil {
		t.Error("heartbeat longer than the lease accepted")
	}
}
