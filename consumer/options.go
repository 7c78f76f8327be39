package consumer

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/consumer/internal/fetch"
	"github.com/freshet/freshet/internal/retrypolicy"
	"github.com/freshet/freshet/lease"
)

// ErrInvalidOption reports a bad option value; every option error wraps it.
var ErrInvalidOption = errors.New("consumer: invalid option")

// InitialPosition is where a worker starts reading a shard that has no checkpoint yet.
type InitialPosition struct {
	v checkpoint.Value
}

// TrimHorizon starts new shards at their oldest retained record.
func TrimHorizon() InitialPosition { return InitialPosition{v: checkpoint.TrimHorizon} }

// Latest starts new shards just after their newest record.
func Latest() InitialPosition { return InitialPosition{v: checkpoint.Latest} }

// AtTimestamp starts new shards at their first record that arrived at or after t.
func AtTimestamp(t time.Time) InitialPosition { return InitialPosition{v: checkpoint.AtTimestamp(t)} }

// String returns the position's checkpoint sentinel.
func (p InitialPosition) String() string { return p.v.SequenceNumber }

// Value returns the checkpoint value written into new leases.
func (p InitialPosition) Value() checkpoint.Value { return p.v }

// Stream names one stream the application consumes.
type Stream struct {
	// Name is the stream's name.
	Name string
	// InitialPosition is where shards without a checkpoint start; TrimHorizon when zero.
	InitialPosition InitialPosition
}

// Retrieval chooses how records are read.
type Retrieval int

const (
	// Polling reads with GetRecords (shared 2 MiB/s per shard across applications).
	Polling Retrieval = iota
	// FanOut reads with SubscribeToShard through a registered stream consumer (dedicated
	// 2 MiB/s per shard and consumer).
	FanOut
)

type config struct {
	hashRangeFilter bool
	application     string
	workerID        string
	streams         []Stream
	retrieval       Retrieval
	consumerName    string

	maxRecords int32
	prefetch   int
	// maxPrefetchedBytes bounds the bytes fetched and not yet processed, all shards
	// together.
	maxPrefetchedBytes int64
	idleTime           time.Duration
	throttleBase       time.Duration
	throttleMax        time.Duration
	retryBase          time.Duration
	retryMax           time.Duration

	failoverTime       time.Duration
	renewInterval      time.Duration
	assignInterval     time.Duration
	rebalanceInterval  time.Duration
	leaseScanInterval  time.Duration
	handoffTimeout     time.Duration
	plan               lease.PlanConfig
	cpuMetrics         bool
	shardSyncInterval  time.Duration
	parentPollInterval time.Duration
	shutdownTimeout    time.Duration
	processorRetry     time.Duration
	processorRetryMax  time.Duration
	multiStream        bool
	tables             lease.Tables
	fixedLayout        bool // WithLeaseTables: no layout detection
	tableSettings      lease.TableSettings
	callEmptyBatches   bool
	cbor               bool
	policy             FailurePolicy
	lanes              int
	perStream          map[string]streamProcessing

	clock   clock.Clock
	logger  *zap.Logger
	metrics Metrics
	hooks   hooks
}

func defaultConfig() config {
	return config{
		retrieval:          Polling,
		maxRecords:         10000,
		prefetch:           3,
		maxPrefetchedBytes: DefaultMaxPrefetchedBytes,
		idleTime:           time.Second,
		throttleBase:       200 * time.Millisecond,
		throttleMax:        5 * time.Second,
		retryBase:          100 * time.Millisecond,
		retryMax:           5 * time.Second,
		failoverTime:       10 * time.Second,
		shardSyncInterval:  time.Minute,
		parentPollInterval: time.Second,
		handoffTimeout:     30 * time.Second,
		plan:               lease.PlanConfig{ThresholdPercent: 10, DampeningPercent: 100},
		cpuMetrics:         true,
		cbor:               true,
		shutdownTimeout:    30 * time.Second,
		processorRetry:     100 * time.Millisecond,
		processorRetryMax:  10 * time.Second,
		lanes:              1,
		clock:              clock.Real(),
		logger:             zap.NewNop(),
	}
}

func (c *config) validate() error {
	if c.application == "" {
		return fmt.Errorf("%w: empty application name", ErrInvalidOption)
	}
	if len(c.streams) == 0 {
		return fmt.Errorf("%w: no stream to consume", ErrInvalidOption)
	}
	seen := map[string]bool{}
	for i := range c.streams {
		s := &c.streams[i]
		if s.Name == "" {
			return fmt.Errorf("%w: stream %d has no name", ErrInvalidOption, i)
		}
		if seen[s.Name] {
			return fmt.Errorf("%w: stream %q listed twice", ErrInvalidOption, s.Name)
		}
		seen[s.Name] = true
		if s.InitialPosition.v.IsZero() {
			s.InitialPosition = TrimHorizon()
		}
	}
	if len(c.streams) > 1 {
		c.multiStream = true
	}
	if c.retrieval == FanOut && c.consumerName == "" {
		c.consumerName = c.application
	}
	if c.renewInterval == 0 {
		c.renewInterval = c.failoverTime / 3
	}
	if c.renewInterval >= c.failoverTime {
		return fmt.Errorf("%w: renew interval %v must be shorter than the failover time %v", ErrInvalidOption, c.renewInterval, c.failoverTime)
	}
	if c.assignInterval == 0 {
		c.assignInterval = max(20*time.Millisecond, c.failoverTime/20)
	}
	if c.rebalanceInterval == 0 {
		c.rebalanceInterval = c.failoverTime / 4
	}
	if c.leaseScanInterval == 0 {
		c.leaseScanInterval = 2 * c.failoverTime
	}
	if c.rebalanceInterval < c.assignInterval {
		return fmt.Errorf("%w: rebalance interval %v shorter than the assignment interval %v", ErrInvalidOption, c.rebalanceInterval, c.assignInterval)
	}
	if c.tables.Lease == "" {
		c.tables = lease.DefaultTables(c.application)
	}
	return c.validateProcessing()
}

// readPolicy is the retry policy of the worker's fetchers (WithBackoff).
func (c *config) readPolicy() retrypolicy.Policy {
	return fetch.NewPolicy(retrypolicy.Backoff{Min: c.retryBase, Max: c.retryMax}, retrypolicy.Backoff{Min: c.throttleBase, Max: c.throttleMax})
}

// reportInterval is how often the worker writes its worker-metrics row: a quarter of the
// failover time, so that a worker that stopped reporting drops out of the leader's plan
// (three reports: lease.WorkerMetrics.MaxAge) before its leases expire. The row carries
// the interval, so any Freshet leader applies it; Java workers' rows get Java's window.
func (c *config) reportInterval() time.Duration { return max(10*time.Millisecond, c.failoverTime/4) }

// discoveryFallback is how often a worker queries the owner index without a hint from a
// leader that leaves hints (docs/lease-cost.md, "Discovery hints"): six failover times,
// the shard sync's cadence at the default.
func (c *config) discoveryFallback() time.Duration { return 6 * c.failoverTime }

// leaderLockDuration is how long a silent leader keeps the leader lock: the failover time
// less one heartbeat. A follower reads the lock item every heartbeat period plus at most
// 2 s (lease.LeaderElector), so a dead leader is replaced within the failover time and
// that much of its last heartbeat.
func (c *config) leaderLockDuration() time.Duration {
	if d := c.failoverTime - c.renewInterval; d > c.renewInterval {
		return d
	}
	return c.failoverTime
}

// livenessWindow is how recent the leader's last evidence of a worker's life (a renewal
// or a new metrics report) must be for the worker to get leases: twice the longer of the
// renewal and report intervals (a row's time has one-second steps), plus two rounds. One
// late renewal or report (a busy worker, a slow table) does not make a live worker look
// dead; a worker that died right after joining and was given leases anyway fails the
// confirmation window.
func (c *config) livenessWindow() time.Duration {
	return 2*max(c.renewInterval, c.reportInterval(), time.Second) + 2*c.assignInterval
}

// confirmWindow is how soon a worker must renew a lease the leader gave it: the leader's
// hint reaches it with its next report (a report interval at most), it then discovers
// the lease within an assignment interval and renews it at once. A renewal interval at
// least, so that a live worker slowed by a busy machine or table (discovery and renewal
// taking seconds) is not presumed dead and its new leases moved again.
func (c *config) confirmWindow() time.Duration {
	return max(c.reportInterval()+3*c.assignInterval+100*time.Millisecond, c.renewInterval)
}

// Option configures a Worker.
type Option func(*config) error

// WithStream adds a stream to consume; pos is where its shards start when they have no
// checkpoint. Several streams make a multi-stream application, whose lease keys name the
// stream (account:stream:creationEpoch:shardId).
func WithStream(name string, pos InitialPosition) Option {
	return func(c *config) error {
		if name == "" {
			return fmt.Errorf("%w: empty stream name", ErrInvalidOption)
		}
		c.streams = append(c.streams, Stream{Name: name, InitialPosition: pos})
		return nil
	}
}

// WithMultiStream forces multi-stream lease keys even for one stream.
func WithMultiStream() Option {
	return func(c *config) error { c.multiStream = true; return nil }
}

// WithWorkerID sets this worker's identity in the lease table (a random one by default).
func WithWorkerID(id string) Option {
	return func(c *config) error {
		if id == "" {
			return fmt.Errorf("%w: empty worker ID", ErrInvalidOption)
		}
		c.workerID = id
		return nil
	}
}

// WithLeaseTable names the lease table (the application name by default). The layout is
// found as Java KCL 3.5 finds it when the worker starts: an application whose table
// <name>-CoordinatorState exists (KCL 3.0-3.4, or 3.5 before its table migration
// finished) keeps the three tables, with the worker metrics in <name>-WorkerMetricStats;
// any other, a new one included, keeps everything in the lease table.
func WithLeaseTable(name string) Option {
	return func(c *config) error {
		if name == "" {
			return fmt.Errorf("%w: empty lease table name", ErrInvalidOption)
		}
		c.tables, c.fixedLayout = lease.DefaultTables(name), false
		return nil
	}
}

// WithLeaseTables sets the table layout in full, for example the single-table layout of
// Java KCL 3.5 (lease.SingleTableLayout), and turns the layout detection of
// WithLeaseTable off: the worker uses (and creates) exactly these tables.
func WithLeaseTables(t lease.Tables) Option {
	return func(c *config) error {
		if t.Lease == "" || (!t.SingleTable && (t.CoordinatorState == "" || t.WorkerMetrics == "")) {
			return fmt.Errorf("%w: incomplete table names %+v", ErrInvalidOption, t)
		}
		c.tables, c.fixedLayout = t, true
		return nil
	}
}

// WithTableSettings sets the capacity, tags and protection of the tables the worker
// creates when they do not exist (on-demand capacity by default).
func WithTableSettings(s lease.TableSettings) Option {
	return func(c *config) error {
		if s.ReadCapacity < 0 || s.WriteCapacity < 0 || s.ActiveTimeout < 0 {
			return fmt.Errorf("%w: negative table setting", ErrInvalidOption)
		}
		c.tableSettings = s
		return nil
	}
}

// WithPolling reads with GetRecords (the default): at most maxRecords per call
// (1..10000), up to prefetch batches read ahead of the processor (1..100), and idle
// between calls that found nothing new at the tip of the shard.
func WithPolling(maxRecords int, prefetch int, idle time.Duration) Option {
	return func(c *config) error {
		if maxRecords < 1 || maxRecords > 10000 {
			return fmt.Errorf("%w: max records %d outside 1..10000", ErrInvalidOption, maxRecords)
		}
		if prefetch < 1 || prefetch > 100 {
			return fmt.Errorf("%w: prefetch %d outside 1..100", ErrInvalidOption, prefetch)
		}
		if idle < 0 {
			return fmt.Errorf("%w: negative idle time", ErrInvalidOption)
		}
		c.retrieval, c.maxRecords, c.prefetch, c.idleTime = Polling, int32(maxRecords), prefetch, idle
		return nil
	}
}

// DefaultMaxPrefetchedBytes is the default bound of WithMaxPrefetchedBytes: 256 MiB.
const DefaultMaxPrefetchedBytes = 256 << 20

// WithMaxPrefetchedBytes bounds the memory of records read ahead of the processors, all
// shards of the worker together (256 MiB by default): the record data of batches fetched
// and not yet processed is counted, and no shard starts another GetRecords call (or takes
// another fan-out event) while the bound is reached. Reads in flight when it is reached
// still complete, so the data held may exceed it by one response per shard. Each shard's
// prefetch depth (WithPolling) still applies. n must be at least 1.
func WithMaxPrefetchedBytes(n int64) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: max prefetched bytes %d, want at least 1", ErrInvalidOption, n)
		}
		c.maxPrefetchedBytes = n
		return nil
	}
}

// WithFanOut reads with enhanced fan-out through the stream consumer named consumerName
// (the application name when empty), registering it when needed.
func WithFanOut(consumerName string) Option {
	return func(c *config) error {
		c.retrieval, c.consumerName = FanOut, consumerName
		return nil
	}
}

// WithFailoverTime sets how long a lease may go unrenewed before the leader gives it to
// another worker (10 s by default, at least 100 ms). Leases are renewed every third of
// it, and a silent leader loses the leader lock after it.
func WithFailoverTime(d time.Duration) Option {
	return func(c *config) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("%w: failover time %v below 100ms", ErrInvalidOption, d)
		}
		c.failoverTime = d
		return nil
	}
}

// WithShardSyncInterval sets how often the leader lists shards to create leases for new
// ones (1 minute by default; shard ends found by consumers trigger a sync at once).
func WithShardSyncInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: shard sync interval %v", ErrInvalidOption, d)
		}
		c.shardSyncInterval = d
		return nil
	}
}

// WithParentPollInterval sets how often a shard waiting for its parents checks them.
func WithParentPollInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: parent poll interval %v", ErrInvalidOption, d)
		}
		c.parentPollInterval = d
		return nil
	}
}

// WithAssignmentInterval sets how often the leader runs an assignment round (placing
// unassigned and expired leases) and how often every worker looks for leases assigned to
// it: a twentieth of the failover time by default (at least 20 ms), so a dead worker's
// shards resume within the failover time and about an assignment interval. Each round
// scans the worker-metrics table (one small row per worker) and each worker's discovery
// queries the owner index; the lease table is scanned every WithLeaseScanInterval.
func WithAssignmentInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: assignment interval %v", ErrInvalidOption, d)
		}
		c.assignInterval = d
		return nil
	}
}

// WithLeaseScanInterval sets how often the leader scans the whole lease table (twice the
// failover time by default, Java KCL's lease assignment interval): the scan the plan
// balances on, and what tells it that a Java KCL worker's lease expired (its counter
// unchanged for the failover time), so a dead Java worker's shards resume within the
// failover time and this interval. Freshet workers fence themselves, so their leases are
// taken over from their worker-metrics rows within the failover time and an assignment
// interval whatever this interval, and leases created for the children of an ended shard
// are announced in the creator's row and placed at the next round. Rebalancing runs on
// the rounds that scan. The scan costs N·S/8192 read units (eventually consistent) for N
// leases of S bytes (docs/lease-cost.md).
func WithLeaseScanInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: lease scan interval %v", ErrInvalidOption, d)
		}
		c.leaseScanInterval = d
		return nil
	}
}

// WithRebalance tunes load balancing: how far from the average a worker's load may be,
// how much of its excess moves per round and how many moves a round makes at most (10%,
// 100% and a tenth of the leases by default, so that a fleet of any size converges in a
// few rounds; the strict variance rule and a cooldown of one failover time per
// moved lease keep rounds from overshooting or swinging), and how often the leader
// rebalances (a quarter of the failover time by default). Leases move by graceful
// handoff: the owner stops, checkpoints and releases, and the new owner starts from that
// checkpoint.
func WithRebalance(plan lease.PlanConfig, interval time.Duration) Option {
	return func(c *config) error {
		if err := plan.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidOption, err)
		}
		if interval <= 0 {
			return fmt.Errorf("%w: rebalance interval %v", ErrInvalidOption, interval)
		}
		c.plan, c.rebalanceInterval = plan, interval
		return nil
	}
}

// WithHandoffTimeout sets how long this worker, as the old owner of a lease the leader
// hands to another worker, may take to stop its processor, checkpoint and release the
// lease, from the renewal that told it of the handoff; after it the worker transfers the
// lease to the new owner without a final checkpoint (30 s by default, Java KCL's
// gracefulLeaseHandoffTimeoutMillis). The new owner never takes a lease still being
// handed off: it waits for the release or the transfer, or for the leader to reassign the
// lease once it expires (an old owner that died).
func WithHandoffTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: handoff timeout %v", ErrInvalidOption, d)
		}
		c.handoffTimeout = d
		return nil
	}
}

// WithCPUMetrics turns reporting this worker's CPU utilization in its worker-metrics row
// on (the default) or off. With every worker reporting CPU the leader balances CPU;
// otherwise it balances shard throughput. Turn it off when several workers share one
// process or host, where each would report the same CPU.
func WithCPUMetrics(on bool) Option {
	return func(c *config) error { c.cpuMetrics = on; return nil }
}

// WithShutdownTimeout bounds a graceful shutdown (30 s by default): after it, processors
// still running are abandoned and their leases left to expire.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: shutdown timeout %v", ErrInvalidOption, d)
		}
		c.shutdownTimeout = d
		return nil
	}
}

// WithBackoff sets the backoff after throttled reads and after other transient failures
// (read errors and processor errors).
func WithBackoff(throttleBase, throttleMax, retryBase, retryMax time.Duration) Option {
	return func(c *config) error {
		if throttleBase <= 0 || throttleMax < throttleBase || retryBase <= 0 || retryMax < retryBase {
			return fmt.Errorf("%w: backoff bounds", ErrInvalidOption)
		}
		c.throttleBase, c.throttleMax, c.retryBase, c.retryMax = throttleBase, throttleMax, retryBase, retryMax
		c.processorRetry, c.processorRetryMax = retryBase, retryMax
		return nil
	}
}

// WithCBOR sets whether polling reads with the Kinesis CBOR protocol, as the Java SDK
// does by default: record data arrives as raw bytes instead of base64 text, which
// roughly halves the client's decoding work. On by default. Kinesis and the bundled
// engine speak CBOR; an endpoint that answers a CBOR call with a response that cannot be
// decoded (kinesalite 3.3.3 cuts CBOR responses off at 16 KiB; kinesis-local 0.6.2 sends
// record data as base64 text) makes the worker log a warning and read in JSON from then
// on, the failed read repeated in JSON.
func WithCBOR(on bool) Option {
	return func(c *config) error { c.cbor = on; return nil }
}

// WithHashKeyRangeFilter makes every shard drop, while de-aggregating, each aggregate
// that holds a user record whose hash key lies outside the shard's hash key range: the
// whole aggregate, its records in range too, as the Java KCL always does, so a Freshet
// and a Java worker of one application deliver the same records. Such an aggregate is
// one a producer with a stale shard map sent to the wrong shard during a reshard; the
// Freshet producer and the KPL put all of its records again, so without the filter a
// consumer delivers them twice. Off by default:
// producers that route an aggregate by its first record and never re-put
// (aws-kinesis-agg) would lose records to it. Turn it on when every producer of the
// stream is the Freshet producer or the KPL. A lease without a hash key range is not
// filtered.
func WithHashKeyRangeFilter(on bool) Option {
	return func(c *config) error {
		c.hashRangeFilter = on
		return nil
	}
}

// WithEmptyBatches makes the worker call ProcessRecords also for empty batches (at the
// tip of the shard), as KCL's callProcessRecordsEvenForEmptyRecordList does.
func WithEmptyBatches() Option {
	return func(c *config) error { c.callEmptyBatches = true; return nil }
}

// WithLogger sets the logger (no-op by default).
func WithLogger(l *zap.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		c.logger = l
		return nil
	}
}

// WithHooks registers hooks: values implementing one or more of the Hook* interfaces
// (HookLeaseGained, HookLeaseLost, HookBatchProcessed, HookCheckpointWritten), called for
// the events they implement, in the order given. Several WithHooks add up. A value
// implementing none of them is an invalid option.
func WithHooks(hs ...Hook) Option {
	return func(c *config) error {
		for i, h := range hs {
			if h == nil || !c.hooks.add(h) {
				return fmt.Errorf("%w: hook %d (%T) implements no Hook interface", ErrInvalidOption, i, h)
			}
		}
		return nil
	}
}

// WithMetrics sets where metrics go (nowhere by default): a metrics.Recorder, such as
// metrics.NewMemory, metrics.NewCloudWatch, or the OpenTelemetry module's meter.
func WithMetrics(m Metrics) Option {
	return func(c *config) error {
		if m == nil {
			return fmt.Errorf("%w: nil metrics", ErrInvalidOption)
		}
		c.metrics = m
		return nil
	}
}

// WithClock sets the clock for lease expiry and pauses (clock.Real() by default).
func WithClock(clk clock.Clock) Option {
	return func(c *config) error {
		if clk == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		c.clock = clk
		return nil
	}
}
