package queue

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/metrics"
)

// ErrInvalidOption is wrapped by every error about a bad option value.
var ErrInvalidOption = errors.New("queue: invalid option")

// FailurePolicy says what happens to a record whose handler failed.
type FailurePolicy int

const (
	// FailureLeave leaves the record in flight: the queue delivers it again when its
	// visibility timeout ends, and after MaxReceiveCount receives makes it a
	// dead-letter record. The default.
	FailureLeave FailurePolicy = iota
	// FailureRetryNow makes the record visible at once (visibility timeout 0), so it is
	// received again without waiting; it still becomes a dead-letter record after
	// MaxReceiveCount receives.
	FailureRetryNow
)

// Service limits of ReceiveQueueRecords and of the batch operations.
const (
	maxReceive    = 10
	maxBatch      = 10
	maxWait       = 20 * time.Second
	maxVisibility = 12 * time.Hour
)

type config struct {
	receivers       int
	wait            time.Duration
	visibility      time.Duration
	maxInFlight     int
	maxInFlightData int64
	handlers        int
	ackInterval     time.Duration
	failure         FailurePolicy
	shutdownTimeout time.Duration
	retryBase       time.Duration
	retryMax        time.Duration
	log             *zap.Logger
	metrics         metrics.Recorder
}

func defaultConfig() config {
	return config{
		receivers:       4,
		wait:            maxWait,
		visibility:      30 * time.Second,
		maxInFlight:     200,
		maxInFlightData: 64 << 20,
		handlers:        32,
		ackInterval:     50 * time.Millisecond,
		failure:         FailureLeave,
		shutdownTimeout: 30 * time.Second,
		retryBase:       50 * time.Millisecond,
		retryMax:        5 * time.Second,
		log:             zap.NewNop(),
		metrics:         nopRecorder{},
	}
}

func (c *config) validate() error {
	if c.maxInFlight < maxReceive && c.maxInFlight < c.receivers {
		// Each receiver needs room for at least one record.
		return fmt.Errorf("%w: WithMaxInFlight(%d) below WithReceivers(%d)", ErrInvalidOption, c.maxInFlight, c.receivers)
	}
	return nil
}

// Option configures a Consumer.
type Option func(*config) error

// WithReceivers sets how many long polls run at once; 4 by default.
func WithReceivers(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1000 {
			return fmt.Errorf("%w: WithReceivers(%d): want 1 to 1000", ErrInvalidOption, n)
		}
		c.receivers = n
		return nil
	}
}

// WithWaitTime sets how long one ReceiveQueueRecords call waits for records (its
// WaitTimeSeconds, whole seconds from 0 to 20); 20 s by default. Shutdown does not wait
// for it: receives in progress are cancelled.
func WithWaitTime(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || d > maxWait || d%time.Second != 0 {
			return fmt.Errorf("%w: WithWaitTime(%v): want whole seconds from 0 to 20", ErrInvalidOption, d)
		}
		c.wait = d
		return nil
	}
}

// WithVisibilityTimeout sets the visibility timeout asked for each received record
// (whole seconds, 1 s to 12 h); 30 s by default. While a handler runs, the consumer
// extends the record's visibility by this much whenever half of it has passed.
func WithVisibilityTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second || d > maxVisibility || d%time.Second != 0 {
			return fmt.Errorf("%w: WithVisibilityTimeout(%v): want whole seconds from 1 s to 12 h", ErrInvalidOption, d)
		}
		c.visibility = d
		return nil
	}
}

// WithMaxInFlight bounds the records received and not yet finished (handled and
// acknowledged, or released); 200 by default. Receivers wait for room before polling.
func WithMaxInFlight(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: WithMaxInFlight(%d): want at least 1", ErrInvalidOption, n)
		}
		c.maxInFlight = n
		return nil
	}
}

// WithMaxInFlightBytes bounds the data bytes of the records in flight; 64 MiB by
// default. No receive starts while the bound is reached; one receive of up to ten
// records may pass it.
func WithMaxInFlightBytes(n int64) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: WithMaxInFlightBytes(%d): want at least 1", ErrInvalidOption, n)
		}
		c.maxInFlightData = n
		return nil
	}
}

// WithHandlers sets how many handler calls run at once; 32 by default.
func WithHandlers(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 100000 {
			return fmt.Errorf("%w: WithHandlers(%d): want 1 to 100000", ErrInvalidOption, n)
		}
		c.handlers = n
		return nil
	}
}

// WithAckInterval sets how long a successful record may wait for nine others before
// its AcknowledgeQueueRecords call is sent; 50 ms by default. Ten acknowledgements are
// sent at once.
func WithAckInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 || d > time.Minute {
			return fmt.Errorf("%w: WithAckInterval(%v): want above 0 and at most 1 minute", ErrInvalidOption, d)
		}
		c.ackInterval = d
		return nil
	}
}

// WithFailurePolicy says what becomes of a record whose handler fails; FailureLeave by
// default.
func WithFailurePolicy(p FailurePolicy) Option {
	return func(c *config) error {
		if p != FailureLeave && p != FailureRetryNow {
			return fmt.Errorf("%w: WithFailurePolicy(%d): unknown policy", ErrInvalidOption, p)
		}
		c.failure = p
		return nil
	}
}

// WithShutdownTimeout bounds how long Run waits, once its context ends, for running
// handlers and the last acknowledgements; 30 s by default. Handlers' contexts are
// cancelled when it passes.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithShutdownTimeout(%v): want above 0", ErrInvalidOption, d)
		}
		c.shutdownTimeout = d
		return nil
	}
}

// WithRetryBackoff sets the backoff between failed service calls (receives,
// acknowledgements, visibility changes): from base, doubling, up to max, with jitter;
// 50 ms to 5 s by default.
func WithRetryBackoff(base, max time.Duration) Option {
	return func(c *config) error {
		if base <= 0 || max < base {
			return fmt.Errorf("%w: WithRetryBackoff(%v, %v): want 0 < base <= max", ErrInvalidOption, base, max)
		}
		c.retryBase, c.retryMax = base, max
		return nil
	}
}

// WithLogger sets the logger; a no-op logger by default.
func WithLogger(l *zap.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("%w: WithLogger(nil)", ErrInvalidOption)
		}
		c.log = l
		return nil
	}
}

// WithMetrics sets where the consumer's metrics (Metric*) go, nowhere by default: a
// metrics.Recorder such as metrics.NewMemory, metrics.NewCloudWatch or the
// OpenTelemetry module's meter, the same ones the producer and the stream consumer use.
func WithMetrics(r metrics.Recorder) Option {
	return func(c *config) error {
		if r == nil {
			return fmt.Errorf("%w: WithMetrics(nil)", ErrInvalidOption)
		}
		c.metrics = r
		return nil
	}
}
