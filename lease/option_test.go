package lease

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/clock"
)

// constructors builds each of the five components over one store, with opts, and returns
// the clock and logger each ended up with.
var constructors = []struct {
	name  string
	build func(s *Store, opts ...Option) (clock.Clock, *zap.Logger, error)
}{
	{"NewStore", func(s *Store, opts ...Option) (clock.Clock, *zap.Logger, error) {
		st, err := NewStore(s.db, s.tables, opts...)
		if err != nil {
			return nil, nil, err
		}
		return st.clock, st.log, nil
	}},
	{"NewCoordinator", func(s *Store, opts ...Option) (clock.Clock, *zap.Logger, error) {
		c, err := NewCoordinator(s, "w", opts...)
		if err != nil {
			return nil, nil, err
		}
		return c.clock, c.log, nil
	}},
	{"NewLeaderElector", func(s *Store, opts ...Option) (clock.Clock, *zap.Logger, error) {
		e, err := NewLeaderElector(s, "w", opts...)
		if err != nil {
			return nil, nil, err
		}
		return e.clock, e.log, nil
	}},
	{"NewReporter", func(s *Store, opts ...Option) (clock.Clock, *zap.Logger, error) {
		r, err := NewReporter(s, "w", opts...)
		if err != nil {
			return nil, nil, err
		}
		return r.clock, r.log, nil
	}},
	{"NewAssigner", func(s *Store, opts ...Option) (clock.Clock, *zap.Logger, error) {
		a, err := NewAssigner(s, opts...)
		if err != nil {
			return nil, nil, err
		}
		return a.clock, a.log, nil
	}},
}

func optionStore(t *testing.T) *Store {
	t.Helper()
	s, err := NewStore(&echoDB{}, DefaultTables("opts"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSharedOptionsApplyToEveryConstructor(t *testing.T) {
	s := optionStore(t)
	for _, c := range constructors {
		t.Run(c.name, func(t *testing.T) {
			clk := clock.NewManual(time.Unix(1e9, 0))
			log := zap.NewExample()
			gotClock, gotLog, err := c.build(s, WithClock(clk), WithLogger(log))
			if err != nil {
				t.Fatal(err)
			}
			if gotClock != clock.Clock(clk) || gotLog != log {
				t.Fatalf("clock %v logger %p, want %v %p", gotClock, gotLog, clk, log)
			}
			for _, bad := range []Option{WithClock(nil), WithLogger(nil)} {
				_, _, err := c.build(s, bad)
				if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), bad.name) {
					t.Errorf("%s(nil): %v", bad.name, err)
				}
			}
			if _, _, err := c.build(s, Option{}); !errors.Is(err, ErrInvalidOption) {
				t.Errorf("zero Option: %v", err)
			}
		})
	}
}

func TestEachConstructorRejectsForeignOptions(t *testing.T) {
	s := optionStore(t)
	all := []Option{
		WithTablePollInterval(time.Second), WithLayoutDetection(),
		WithFailoverTime(time.Second), WithHandoffTimeout(time.Second), WithThroughputMeter(nil),
		WithLeaderLeaseDuration(2*time.Second, time.Second),
		WithCPUSampler(nil), WithReportIntervals(time.Second, time.Second),
		WithPlan(PlanConfig{}, 1), WithLiveness(time.Second, time.Second),
		WithWorkerMetricsMaxAge(time.Second), WithStaleWorkerMetricsCleanup(time.Second),
		WithSelfFence(time.Second), WithLeaseScanInterval(time.Second),
	}
	accepts := map[string][]string{
		"NewStore":         {"WithTablePollInterval", "WithLayoutDetection"},
		"NewCoordinator":   {"WithFailoverTime", "WithHandoffTimeout", "WithThroughputMeter"},
		"NewLeaderElector": {"WithLeaderLeaseDuration"},
		"NewReporter":      {"WithCPUSampler", "WithReportIntervals", "WithSelfFence"},
		"NewAssigner": {"WithFailoverTime", "WithHandoffTimeout", "WithPlan", "WithLiveness", "WithWorkerMetricsMaxAge",
			"WithStaleWorkerMetricsCleanup", "WithLeaseScanInterval"},
	}
	for _, c := range constructors {
		t.Run(c.name, func(t *testing.T) {
			for _, o := range all {
				_, _, err := c.build(s, o)
				ok := false
				for _, name := range accepts[c.name] {
					ok = ok || name == o.name
				}
				switch {
				case ok && err != nil:
					t.Errorf("%s refused: %v", o.name, err)
				case !ok && !errors.Is(err, ErrInvalidOption):
					t.Errorf("%s accepted (err %v)", o.name, err)
				case !ok && (!strings.Contains(err.Error(), o.name) || !strings.Contains(err.Error(), c.name)):
					t.Errorf("%s refused without naming the option and %s: %v", o.name, c.name, err)
				}
			}
		})
	}
}

func TestOptionsReachTheirComponent(t *testing.T) {
	s := optionStore(t)
	st, err := NewStore(s.db, s.tables, WithTablePollInterval(7*time.Millisecond), WithLayoutDetection())
	if err != nil || st.poll != 7*time.Millisecond || !st.detect {
		t.Fatalf("store: %v poll %v detect %v", err, st.poll, st.detect)
	}
	m := NewThroughputMeter(nil)
	c, err := NewCoordinator(s, "w", WithFailoverTime(3*time.Second), WithHandoffTimeout(4*time.Second), WithThroughputMeter(m))
	if err != nil || c.failover != 3*time.Second || c.handoff != 4*time.Second || c.meter != m {
		t.Fatalf("coordinator: %v %v %v %p", err, c.failover, c.handoff, c.meter)
	}
	e, err := NewLeaderElector(s, "w", WithLeaderLeaseDuration(5*time.Second, 2*time.Second))
	if err != nil || e.duration != 5*time.Second || e.heartbeat != 2*time.Second {
		t.Fatalf("elector: %v %v %v", err, e.duration, e.heartbeat)
	}
	r, err := NewReporter(s, "w", WithReportIntervals(2*time.Second, 6*time.Second), WithSelfFence(9*time.Second))
	if err != nil || r.sample != 2*time.Second || r.interval != 6*time.Second || r.fence != 9*time.Second {
		t.Fatalf("reporter: %v %v %v %v", err, r.sample, r.interval, r.fence)
	}
	a, err := NewAssigner(s, WithFailoverTime(20*time.Second), WithPlan(PlanConfig{ThresholdPercent: 5}, 2),
		WithWorkerMetricsMaxAge(time.Hour), WithStaleWorkerMetricsCleanup(time.Minute))
	if err != nil || a.failover != 20*time.Second || a.every != 2 || a.cfg.ThresholdPercent != 5 ||
		a.metricsMaxAge != time.Hour || a.staleMetrics != time.Hour {
		t.Fatalf("assigner: %v %v %d %v %v %v", err, a.failover, a.every, a.cfg, a.metricsMaxAge, a.staleMetrics)
	}
	if a.scanEvery != 40*time.Second {
		t.Fatalf("lease scan interval %v, want twice the failover time", a.scanEvery)
	}
	if a, err := NewAssigner(s, WithLeaseScanInterval(time.Minute)); err != nil || a.scanEvery != time.Minute {
		t.Fatalf("lease scan interval: %v %v", err, a.scanEvery)
	}
	// Liveness defaults derive from the failover time unless set.
	if a.live != 20*time.Second/3+time.Second || a.confirm != 3*time.Second+100*time.Millisecond {
		t.Fatalf("derived liveness %v confirm %v", a.live, a.confirm)
	}
	if a, err = NewAssigner(s, WithLiveness(time.Second, 2*time.Second)); err != nil || a.live != time.Second || a.confirm != 2*time.Second {
		t.Fatalf("liveness: %v %v %v", err, a.live, a.confirm)
	}
	if _, err := NewCoordinator(s, "w", WithFailoverTime(0)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("zero failover time: %v", err)
	}
}

func TestOptionsRejectBadValues(t *testing.T) {
	s := optionStore(t)
	for _, tc := range []struct {
		ctor string
		opt  Option
	}{
		{"NewStore", WithTablePollInterval(0)},
		{"NewCoordinator", WithFailoverTime(-time.Second)},
		{"NewAssigner", WithFailoverTime(0)},
		{"NewCoordinator", WithHandoffTimeout(0)},
		{"NewLeaderElector", WithLeaderLeaseDuration(time.Second, time.Second)},
		{"NewReporter", WithReportIntervals(2*time.Second, time.Second)},
		{"NewAssigner", WithPlan(PlanConfig{DampeningPercent: 101}, 1)},
		{"NewAssigner", WithPlan(PlanConfig{}, 0)},
		{"NewAssigner", WithLiveness(0, time.Second)},
		{"NewAssigner", WithWorkerMetricsMaxAge(0)},
		{"NewAssigner", WithStaleWorkerMetricsCleanup(0)},
		{"NewAssigner", WithLeaseScanInterval(0)},
		{"NewReporter", WithSelfFence(-time.Second)},
	} {
		for _, c := range constructors {
			if c.name != tc.ctor {
				continue
			}
			_, _, err := c.build(s, tc.opt)
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tc.opt.name) {
				t.Errorf("%s(%s): %v", tc.ctor, tc.opt.name, err)
			}
		}
	}
}
