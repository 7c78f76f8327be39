package freshettest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/streams"
)

// ErrInvalidOption reports an option or argument outside its allowed range.
var ErrInvalidOption = errors.New("freshettest: invalid option")

// Option configures an Engine.
type Option func(*config)

type config struct {
	clock  clock.Clock
	addr   string
	seed   int64
	log    *zap.Logger
	stream streams.Config
	errs   []error
}

// WithLimits turns the service's per-shard throughput limits on or off (off by default):
// 1 MiB/s and 1,000 records/s in, 2 MiB/s and 5 calls/s out per shard, as token buckets
// with one second of burst; excess gets ProvisionedThroughputExceededException.
func WithLimits(on bool) Option { return func(c *config) { c.stream.Limits = on } }

// WithClock drives the engine's time by c (the wall clock by default): iterator
// expiry, retention, throughput buckets and status delays follow it. With a
// *clock.Manual, shared with consumer.WithClock, a test makes hours of retention or an
// iterator's five minutes pass at once.
func WithClock(c clock.Clock) Option {
	return func(cfg *config) {
		if c == nil {
			cfg.errs = append(cfg.errs, fmt.Errorf("%w: nil clock", ErrInvalidOption))
			return
		}
		cfg.clock = c
	}
}

// WithAddr sets the listen address; "127.0.0.1:0" (a free loopback port) by default.
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithFaultSeed seeds the random decisions of injected faults, so a failing run can be
// repeated; 0 by default.
func WithFaultSeed(seed int64) Option { return func(c *config) { c.seed = seed } }

// WithLogger sends the engine's logs to l; none by default.
func WithLogger(l *zap.Logger) Option { return func(c *config) { c.log = l } }

// WithStatusDelays makes new streams stay CREATING for create, resharded or otherwise
// changed streams UPDATING for update, deleted streams DELETING for del, and stream
// consumers CREATING or DELETING for consumer; all zero (immediate) by default, as
// tests usually want. Negative values are invalid.
func WithStatusDelays(create, update, del, consumer time.Duration) Option {
	return func(c *config) {
		if create < 0 || update < 0 || del < 0 || consumer < 0 {
			c.errs = append(c.errs, fmt.Errorf("%w: negative status delay", ErrInvalidOption))
			return
		}
		c.stream.CreateDelay, c.stream.UpdateDelay, c.stream.DeleteDelay, c.stream.ConsumerDelay = create, update, del, consumer
	}
}

// WithShardLimit sets the account's open-shard limit (1,000 by default); splits and
// new streams beyond it fail with LimitExceededException.
func WithShardLimit(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("%w: shard limit %d below 1", ErrInvalidOption, n))
			return
		}
		c.stream.ShardLimit = n
	}
}

// Engine is a running engine. Its methods are safe for concurrent use.
type Engine struct {
	e *engine.Engine
}

// New starts an engine. Close it when done; Start does that for a test.
func New(opts ...Option) (*Engine, error) {
	var c config
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		o(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	e, err := engine.Start(engine.Config{Clock: c.clock, Addr: c.addr, FaultSeed: c.seed, Logger: c.log, Streams: c.stream})
	if err != nil {
		if errors.Is(err, streams.ErrInvalidOption) {
			return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
		}
		return nil, fmt.Errorf("freshettest: %w", err)
	}
	return &Engine{e: e}, nil
}

// Start starts an engine for one test or benchmark and closes it when tb ends; it fails
// tb if the engine cannot start.
func Start(tb testing.TB, opts ...Option) *Engine {
	tb.Helper()
	e, err := New(opts...)
	if err != nil {
		tb.Fatalf("freshettest: start engine: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// Close stops the engine and ends open connections. It is idempotent.
func (e *Engine) Close() error { return e.e.Close() }

// URL returns the endpoint, e.g. "http://127.0.0.1:41234", for a client's BaseEndpoint
// or the AWS CLI's --endpoint-url.
func (e *Engine) URL() string { return e.e.URL() }

// AWSConfig returns an aws.Config pointing every client at the engine, with static
// credentials and region us-east-1. Its HTTP client keeps enough idle connections for
// a busy test and does not resend calls the engine has already applied.
func (e *Engine) AWSConfig() aws.Config { return e.e.AWSConfig() }

// Kinesis returns a Kinesis client for the engine; optFns adjust its options.
func (e *Engine) Kinesis(optFns ...func(*kinesis.Options)) *kinesis.Client {
	return kinesis.NewFromConfig(e.AWSConfig(), optFns...)
}

// DynamoDB returns a DynamoDB client for the engine; optFns adjust its options.
func (e *Engine) DynamoDB(optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(e.AWSConfig(), optFns...)
}

// CloudWatch returns a CloudWatch client for the engine; optFns adjust its options.
func (e *Engine) CloudWatch(optFns ...func(*cloudwatch.Options)) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(e.AWSConfig(), optFns...)
}

// ServiceError is an error of the engine's Go API with the service's error type, as an
// SDK client would see it over the wire (for example "ResourceNotFoundException").
type ServiceError struct {
	// Code is the service error type.
	Code string
	// Message is the service's message.
	Message string
}

// Error returns "Code: Message".
func (e *ServiceError) Error() string { return e.Code + ": " + e.Message }

// ErrorCode returns Code, as smithy.APIError does.
func (e *ServiceError) ErrorCode() string { return e.Code }

// serviceErr turns the internal services' errors into ServiceError.
func serviceErr(err error) error {
	if err == nil {
		return nil
	}
	var se *streams.APIError
	if errors.As(err, &se) {
		return &ServiceError{Code: se.Code, Message: se.Message}
	}
	return err
}
