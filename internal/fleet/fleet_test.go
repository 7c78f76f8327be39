package fleet

import (
	"context"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
)

// testLogger writes the workers' debug logs to the file FRESHET_FLEET_LOG names, for
// looking into a failed run; without it the workers log nothing.
func testLogger(t *testing.T) *zap.Logger {
	p := os.Getenv("FRESHET_FLEET_LOG")
	if p == "" {
		return zap.NewNop()
	}
	c := zap.NewDevelopmentConfig()
	c.OutputPaths = []string{p}
	l, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestFleetProperties runs a fleet of 200 leases and 10 workers (500 and 20 with
// FRESHET_SOAK=1) through every phase and checks the promises at scale: every phase
// completes, convergence within three assignment rounds of the
// leader's first plan, no batch delivered by two live workers' processors of one lease,
// one leader at a time, failover (also of workers killed right after joining and right
// after being assigned) within the failover time plus 1 s, leader failover within the
// failover time plus 2 s, and an ended shard's children started within an assignment
// interval. The bounds carry a generous margin (a failover time) because this test
// runs race-instrumented on shared machines, where a request can take seconds; the
// properties that must hold exactly (exclusive processing, one leader) have none.
// cmd/freshet-bench fleet reports the figures.
func TestFleetProperties(t *testing.T) {
	cfg := Config{Leases: 200, Workers: 10, FailoverTime: 10 * time.Second, Steady: 3 * time.Second,
		IdleTime: 10 * time.Second, Timeout: 2 * time.Minute, Logger: testLogger(t), Progress: func(s string) { t.Log(s) }}
	if os.Getenv("FRESHET_SOAK") != "" {
		cfg.Leases, cfg.Workers = 500, 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	t.Logf("%+v", res)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.FailoverTime
	margin := f
	ai := assignInterval(f)
	if d := time.Duration((res.ConvergeS - res.FirstPlanS) * float64(time.Second)); d > 3*ai+margin {
		t.Errorf("converged %v after the first plan, more than three assignment rounds (%v)", d, 3*ai)
	}
	if res.DoubleProcessing != 0 {
		t.Errorf("%d batches delivered while another live worker processed the lease", res.DoubleProcessing)
	}
	if res.MaxLeaders != 1 {
		t.Errorf("%d workers led at once", res.MaxLeaders)
	}
	if res.FailoverSamples == 0 {
		t.Error("no failover measured")
	}
	if d := time.Duration(res.FailoverP99S * float64(time.Second)); d > f+time.Second+margin {
		t.Errorf("failover p99 %v, more than the failover time + 1 s", d)
	}
	if d := time.Duration(res.LeaderFailoverS * float64(time.Second)); d > f+2*time.Second+margin {
		t.Errorf("leader failover %v, more than the failover time + 2 s", d)
	}
	if d := time.Duration(res.ChildrenStartS * float64(time.Second)); d > ai+margin {
		t.Errorf("children started %v after their parent ended, more than an assignment interval", d)
	}
}
