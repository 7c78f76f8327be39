package consumer

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/internal/clock"
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
	application  string
	workerID     string
	streams      []Stream
	retrieval    Retrieval
	consumerName string

	maxRecords   int32
	prefetch     int
	idleTime     time.Duration
	throttleBase time.Duration
	throttleMax  time.Duration
	retryBase    time.Duration
	retryMax     time.Duration

	failoverTime       time.Duration
	renewInterval      time.Duration
	shardSyncInterval  time.Duration
	parentPollInterval time.Duration
	maxLeasesToTake    int
	shutdownTimeout    time.Duration
	processorRetry     time.Duration
	processorRetryMax  time.Duration
	multiStream        bool
	leaseTable         string
	callEmptyBatches   bool

	clock   clock.Clock
	logger  *zap.Logger
	metrics Metrics
}

func defaultConfig() config {
	return config{
		retrieval:          Polling,
		maxRecords:         10000,
		prefetch:           3,
		idleTime:           time.Second,
		throttleBase:       200 * time.Millisecond,
		throttleMax:        5 * time.Second,
		retryBase:          100 * time.Millisecond,
		retryMax:           5 * time.Second,
		failoverTime:       10 * time.Second,
		shardSyncInterval:  time.Minute,
		parentPollInterval: time.Second,
		maxLeasesToTake:    4,
		shutdownTimeout:    30 * time.Second,
		processorRetry:     100 * time.Millisecond,
		processorRetryMax:  10 * time.Second,
		clock:              clock.Real,
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
	if c.leaseTable == "" {
		c.leaseTable = c.application
	}
	return nil
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

// WithLeaseTable names the lease table (the application name by default).
func WithLeaseTable(name string) Option {
	return func(c *config) error {
		if name == "" {
			return fmt.Errorf("%w: empty lease table name", ErrInvalidOption)
		}
		c.leaseTable = name
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

// WithFanOut reads with enhanced fan-out through the stream consumer named consumerName
// (the application name when empty), registering it when needed.
func WithFanOut(consumerName string) Option {
	return func(c *config) error {
		c.retrieval, c.consumerName = FanOut, consumerName
		return nil
	}
}

// WithFailoverTime sets how long a lease may go unrenewed before other workers take it
// (10 s by default, at least 100 ms). Leases are renewed every third of it.
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

// WithMaxLeasesToTake bounds how many leases a worker takes in one round (4 by default),
// so a joining worker does not grab everything at once.
func WithMaxLeasesToTake(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: max leases to take %d", ErrInvalidOption, n)
		}
		c.maxLeasesToTake = n
		return nil
	}
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

// WithMetrics sets where metrics go (nowhere by default).
func WithMetrics(m Metrics) Option {
	return func(c *config) error {
		if m == nil {
			return fmt.Errorf("%w: nil metrics", ErrInvalidOption)
		}
		c.metrics = m
		return nil
	}
}

// WithClock sets the clock for lease expiry and pauses (clock.Real by default).
func WithClock(clk clock.Clock) Option {
	return func(c *config) error {
		if clk == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		c.clock = clk
		return nil
	}
}
