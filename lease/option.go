package lease

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/clock"
)

// Option configures a Store, Coordinator, LeaderElector, Reporter or Assigner. One option
// set serves all five constructors: WithClock and WithLogger apply to each, the others to
// the constructors their documentation names. A constructor given an option that does not
// apply to it fails with an error wrapping ErrInvalidOption that names the option and the
// constructor.
type Option struct {
	name  string
	scope scope
	apply func(*options) error
}

// scope is the set of constructors an option applies to.
type scope uint8

const (
	forStore scope = 1 << iota
	forCoordinator
	forLeader
	forReporter
	forAssigner

	forAll = forStore | forCoordinator | forLeader | forReporter | forAssigner
)

// options holds every setting an Option can make, with the defaults newOptions fills in.
type options struct {
	clock clock.Clock
	log   *zap.Logger

	// Store.
	poll   time.Duration
	detect bool

	// Coordinator and Assigner.
	failover time.Duration

	// Coordinator.
	handoff time.Duration
	meter   *ThroughputMeter

	// LeaderElector.
	leaderLease, heartbeat time.Duration
	lockFence              *Reporter

	// Assigner: the elector whose lock takeovers it follows.
	elector *LeaderElector

	// Reporter.
	cpu            *CPUSampler
	sample, report time.Duration
	fence          time.Duration

	// Assigner. live and confirm stay zero unless set: their defaults derive from the
	// failover time.
	plan          PlanConfig
	every         int
	live, confirm time.Duration
	metricsMaxAge time.Duration
	staleMetrics  time.Duration
	scanEvery     time.Duration // zero: twice the failover time
}

// newOptions applies opts over the defaults for the constructor ctor, which accepts the
// options of scope s.
func newOptions(ctor string, s scope, opts []Option) (options, error) {
	o := options{
		clock:         clock.Real(),
		log:           zap.NewNop(),
		poll:          time.Second,
		failover:      DefaultFailoverTime,
		handoff:       30 * time.Second,
		leaderLease:   defaultLeaderLease,
		heartbeat:     defaultLeaderHeartbeats,
		sample:        time.Second,
		report:        30 * time.Second,
		every:         3,
		metricsMaxAge: JavaWorkerMetricsMaxAge,
		staleMetrics:  DefaultStaleWorkerMetricsCleanup,
	}
	for _, opt := range opts {
		if opt.apply == nil {
			return options{}, fmt.Errorf("%w: %s: zero Option (build options with the With functions)", ErrInvalidOption, ctor)
		}
		if opt.scope&s == 0 {
			return options{}, fmt.Errorf("%w: %s does not apply to %s", ErrInvalidOption, opt.name, ctor)
		}
		if err := opt.apply(&o); err != nil {
			return options{}, fmt.Errorf("%w (%s, %s)", err, opt.name, ctor)
		}
	}
	return o, nil
}

// positive returns the option name of scope s that sets the duration field to d, which
// must be positive (what names it in the error).
func positive(name string, s scope, what string, d time.Duration, field func(*options) *time.Duration) Option {
	return Option{name, s, func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: %s %v", ErrInvalidOption, what, d)
		}
		*field(o) = d
		return nil
	}}
}

// WithClock sets the clock of any of the five constructors (clock.Real() by default). A
// Store uses it while waiting for tables and to stamp migration items.
func WithClock(c clock.Clock) Option {
	return Option{"WithClock", forAll, func(o *options) error {
		if c == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		o.clock = c
		return nil
	}}
}

// WithLogger sets the logger of any of the five constructors (a no-op logger by default).
func WithLogger(l *zap.Logger) Option {
	return Option{"WithLogger", forAll, func(o *options) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		o.log = l
		return nil
	}}
}

// WithTablePollInterval sets how often a Store's CreateTables polls a table's status (1 s
// by default). NewStore only.
func WithTablePollInterval(d time.Duration) Option {
	return positive("WithTablePollInterval", forStore, "table poll interval", d, func(o *options) *time.Duration { return &o.poll })
}

// WithLayoutDetection makes a Store's CreateTables find the application's layout first,
// as Java KCL 3.5 does (DetectTables, for the application named by the lease table): an
// application whose coordinator-state table does not exist, a new one included, uses the
// single-table layout; one whose coordinator-state table exists uses the three tables the
// store was given unless KCL 3.5 finished moving it into the lease table. The layout
// chosen replaces the store's, so CreateTables must come before any other use of the
// store. NewStore only.
func WithLayoutDetection() Option {
	return Option{"WithLayoutDetection", forStore, func(o *options) error { o.detect = true; return nil }}
}

// WithFailoverTime sets the failover time (DefaultFailoverTime by default): how long a
// lease's counter may stay unchanged before the leader considers it expired. A Coordinator
// renews every third of it and discovers every twentieth; an Assigner runs a round every
// twentieth of it. NewCoordinator and NewAssigner; give both the same value.
func WithFailoverTime(d time.Duration) Option {
	return positive("WithFailoverTime", forCoordinator|forAssigner, "failover time", d, func(o *options) *time.Duration { return &o.failover })
}

// WithHandoffTimeout sets how long the old owner of a lease being handed off may take to
// stop processing and release it, from the renewal that told it of the handoff, before
// its coordinator transfers the lease to the new owner without a final checkpoint (30 s
// by default, Java KCL's gracefulLeaseHandoffTimeoutMillis). For NewAssigner, the
// timeout the workers use: a handoff still pending this long plus a failover time after
// the leader first saw it is finished by the leader at its next scan of the lease table
// (a Take for the new owner), as Java KCL's leader does. NewCoordinator and NewAssigner.
func WithHandoffTimeout(d time.Duration) Option {
	return positive("WithHandoffTimeout", forCoordinator|forAssigner, "handoff timeout", d, func(o *options) *time.Duration { return &o.handoff })
}

// WithThroughputMeter sets the meter whose rates a Coordinator writes with each renewal
// (none by default: the stored throughput is left as it is). NewCoordinator only.
func WithThroughputMeter(m *ThroughputMeter) Option {
	return Option{"WithThroughputMeter", forCoordinator, func(o *options) error { o.meter = m; return nil }}
}

// WithLeaderLeaseDuration sets how long a silent leader keeps the lock (2 minutes, as in
// Java KCL, by default) and the heartbeat period (30 s by default), which must be shorter.
// NewLeaderElector only.
func WithLeaderLeaseDuration(duration, heartbeat time.Duration) Option {
	return Option{"WithLeaderLeaseDuration", forLeader, func(o *options) error {
		if duration <= 0 || heartbeat <= 0 || heartbeat >= duration {
			return fmt.Errorf("%w: leader lease %v with heartbeat %v", ErrInvalidOption, duration, heartbeat)
		}
		o.leaderLease, o.heartbeat = duration, heartbeat
		return nil
	}}
}

// WithCPUSampler sets the CPU sampler a Reporter reports from; nil (the default) reports
// no CPU. NewReporter only.
func WithCPUSampler(s *CPUSampler) Option {
	return Option{"WithCPUSampler", forReporter, func(o *options) error { o.cpu = s; return nil }}
}

// WithReportIntervals sets how often a Reporter samples CPU (1 s by default) and how often
// it writes the metrics row (30 s by default, Java KCL's workerMetricsReporterFreqInMillis).
// NewReporter only.
func WithReportIntervals(sample, report time.Duration) Option {
	return Option{"WithReportIntervals", forReporter, func(o *options) error {
		if sample <= 0 || report < sample {
			return fmt.Errorf("%w: sample %v, report %v", ErrInvalidOption, sample, report)
		}
		o.sample, o.report = sample, report
		return nil
	}}
}

// WithPlan sets an Assigner's plan configuration and rebalances every n-th round (3 by
// default, as Java KCL's variance balancing frequency). NewAssigner only.
func WithPlan(cfg PlanConfig, every int) Option {
	return Option{"WithPlan", forAssigner, func(o *options) error {
		if err := cfg.Validate(); err != nil {
			return err
		}
		if every <= 0 {
			return fmt.Errorf("%w: rebalance every %d rounds", ErrInvalidOption, every)
		}
		o.plan, o.every = cfg, every
		return nil
	}}
}

// WithLiveness sets how recent the last evidence of a worker's life must be for the
// Assigner to give it leases (live; by default a third of the failover time, the renewal
// interval, plus a second), and how soon a worker must renew a lease it was given
// (confirm; by default three assignment intervals plus 100 ms). NewAssigner only.
func WithLiveness(live, confirm time.Duration) Option {
	return Option{"WithLiveness", forAssigner, func(o *options) error {
		if live <= 0 || confirm <= 0 {
			return fmt.Errorf("%w: liveness window %v, confirmation window %v", ErrInvalidOption, live, confirm)
		}
		o.live, o.confirm = live, confirm
		return nil
	}}
}

// WithWorkerMetricsMaxAge sets how old a worker-metrics row without a report interval (a
// Java KCL worker's) may be before the Assigner considers the worker gone;
// JavaWorkerMetricsMaxAge (twice Java's 30 s report interval, what Java's leader waits) by
// default. A Freshet worker's row carries its report interval and is stale after three of
// them. NewAssigner only.
func WithWorkerMetricsMaxAge(d time.Duration) Option {
	return positive("WithWorkerMetricsMaxAge", forAssigner, "metrics max age", d, func(o *options) *time.Duration { return &o.metricsMaxAge })
}

// WithStaleWorkerMetricsCleanup sets how old a worker's metrics row may grow before the
// leader's Assigner deletes it (DefaultStaleWorkerMetricsCleanup, as Java KCL's stale
// worker metrics cleanup); a value below the metrics max age is raised to it. Rows without
// an update time are deleted too; a row is deleted only if unchanged since the leader read
// it. NewAssigner only.
func WithStaleWorkerMetricsCleanup(d time.Duration) Option {
	return positive("WithStaleWorkerMetricsCleanup", forAssigner, "stale worker metrics cleanup", d, func(o *options) *time.Duration { return &o.staleMetrics })
}

// WithLeaseScanInterval sets how often an Assigner scans the whole lease table (twice the
// failover time by default, as Java KCL's leaseAssignmentIntervalMillis). Between scans
// it works from what it last read: it places the leases workers announce (the children
// of ended shards) and takes over the leases of silent self-fencing workers every round,
// and judges lease counters and rebalances on the rounds that scan (an interval no longer
// than the assignment interval scans every round). A Java worker's expired lease is
// therefore taken within the failover time plus this interval. NewAssigner only.
func WithLeaseScanInterval(d time.Duration) Option {
	return positive("WithLeaseScanInterval", forAssigner, "lease scan interval", d, func(o *options) *time.Duration { return &o.scanEvery })
}

// WithSelfFence makes a Reporter's worker fence itself: its row carries d (the
// freshetSelfFenceMillis attribute), and Reporter.Permits refuses to let it process any
// lease once its last successful write started d ago (less a margin of a fiftieth of d
// for timers and clock rates), or on a renewal sent before the first successful write
// after such a gap returned. A leader that has seen the row unchanged for d takes the
// worker's leases at once. The worker using this Reporter must gate every delivery of
// records on Permits (consumer.Worker does); d is its failover time. Zero, the default,
// writes no fence and permits everything. NewReporter only.
func WithSelfFence(d time.Duration) Option {
	return Option{"WithSelfFence", forReporter, func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: self-fence %v", ErrInvalidOption, d)
		}
		o.fence = d
		return nil
	}}
}

// WithLeaderFence makes a LeaderElector's worker fence itself on its heartbeats too, through
// r, the Reporter of the same worker (built with WithSelfFence and the same clock): while
// the lock may be its own, r's Live and Permits refuse once its last confirmed heartbeat
// started the lock's duration ago (less a fiftieth for timers and clock rates); that lasts
// until a release is confirmed or a consistent read shows the lock another worker's, and
// after such a loss Permits refuses until a metrics write started since returns. Its lock item says so (the freshetLeaderFence attribute),
// so a new leader that takes the lock over on expiry takes this worker's leases at once
// (WithLeaderElector) rather than a failover time later. NewLeaderElector only.
func WithLeaderFence(r *Reporter) Option {
	return Option{"WithLeaderFence", forLeader, func(o *options) error {
		if r == nil || r.fence == 0 {
			return fmt.Errorf("%w: leader fence needs a reporter with a self-fence", ErrInvalidOption)
		}
		o.lockFence = r
		return nil
	}}
}

// WithLeaderElector makes an Assigner follow e's takeovers of the leader lock: when e took
// the lock on expiry from a worker that fences on it (WithLeaderFence) and whose metrics
// row did not change from before the lock was taken to after its leases were read, the
// Assigner takes that worker's leases at its next round instead of a failover time after
// first seeing its row (docs/lease-cost.md, "Self-fencing"). NewAssigner only.
func WithLeaderElector(e *LeaderElector) Option {
	return Option{"WithLeaderElector", forAssigner, func(o *options) error {
		if e == nil {
			return fmt.Errorf("%w: nil leader elector", ErrInvalidOption)
		}
		o.elector = e
		return nil
	}}
}
