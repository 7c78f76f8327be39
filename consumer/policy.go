package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// FailurePolicy says what a shard consumer does when the handler fails on records: how
// often a batch is tried, how long it waits between tries, whether a failing batch is
// split to isolate the records that fail, how old a record may get, and where records
// that exhaust the policy go. It is the equivalent of the retry settings of Lambda's
// Kinesis event source mapping, without their limits.
//
// The zero FailurePolicy retries a failing batch for ever with the worker's backoff
// (WithBackoff), as a Freshet worker always did: nothing is dropped unless the policy
// says so. Whatever the policy, a checkpoint never passes a record that neither
// succeeded nor reached the Destination.
//
// Handlers report partial results by returning FailedAt(i, err): the records before
// index i succeeded and are not delivered again; the batch is retried from record i.
type FailurePolicy struct {
	// MaxAttempts is how many times the same records are handed to the handler before
	// they go to the Destination (for a bisected batch: how many times each part is
	// tried before it is split again). 0 retries for ever. Lambda's MaximumRetryAttempts
	// is MaxAttempts-1 (Lambda's -1, for ever, is 0 here).
	MaxAttempts int
	// Backoff is the first pause after a failed attempt; each further failure of the
	// same records doubles it, up to MaxBackoff, with jitter. Zero takes the worker's
	// retry backoff (WithBackoff: 100 ms and 10 s by default).
	Backoff time.Duration
	// MaxBackoff caps the pause between attempts; zero takes the worker's.
	MaxBackoff time.Duration
	// BisectOnError splits a batch of several records in two when it has failed
	// MaxAttempts times; each half gets MaxAttempts attempts of its own, the first half
	// first, so a poison record is isolated in about MaxAttempts*log2(batch) calls and
	// only it reaches the Destination. It requires MaxAttempts > 0. Lambda's
	// BisectBatchOnFunctionError, which splits at the first error.
	BisectOnError bool
	// MaxRecordAge sends a record to the Destination instead of the handler once its
	// ApproximateArrivalTimestamp is older than this; 0 means no limit. The age is
	// checked before every attempt, for the records at the head of the batch (records
	// of a shard arrive in order). Lambda's MaximumRecordAgeInSeconds (60 s to 7 days
	// there; any positive duration here).
	MaxRecordAge time.Duration
	// Destination receives the records that exhausted MaxAttempts or MaxRecordAge;
	// required when either is set. Lambda's DestinationConfig.OnFailure.
	Destination Destination
}

// bounded reports whether the policy ever gives records up to its destination.
func (p FailurePolicy) bounded() bool { return p.MaxAttempts > 0 || p.MaxRecordAge > 0 }

func (p FailurePolicy) validate() error {
	switch {
	case p.MaxAttempts < 0:
		return fmt.Errorf("%w: failure policy: negative max attempts %d", ErrInvalidOption, p.MaxAttempts)
	case p.Backoff < 0 || p.MaxBackoff < 0:
		return fmt.Errorf("%w: failure policy: negative backoff", ErrInvalidOption)
	case p.MaxBackoff > 0 && p.Backoff > p.MaxBackoff:
		return fmt.Errorf("%w: failure policy: backoff %v above max backoff %v", ErrInvalidOption, p.Backoff, p.MaxBackoff)
	case p.MaxRecordAge < 0:
		return fmt.Errorf("%w: failure policy: negative max record age %v", ErrInvalidOption, p.MaxRecordAge)
	case p.BisectOnError && p.MaxAttempts == 0:
		return fmt.Errorf("%w: failure policy: bisect on error needs max attempts > 0 (a batch retried for ever is never split)", ErrInvalidOption)
	case p.bounded() && p.Destination == nil:
		return fmt.Errorf("%w: failure policy: max attempts or max record age set without a destination (records would be dropped)", ErrInvalidOption)
	}
	return nil
}

// MaxLanes is the most lanes a shard may have.
const MaxLanes = 1024

// processing is the resolved processing settings of one stream.
type processing struct {
	policy FailurePolicy
	lanes  int
}

// streamProcessing is a per-stream override set by an option.
type streamProcessing struct {
	policy *FailurePolicy
	lanes  int
}

// processingFor returns the settings of stream: the application's, overridden by the
// stream's own, with the worker's backoff filled in.
func (c *config) processingFor(stream string) processing {
	p := processing{policy: c.policy, lanes: c.lanes}
	if o, ok := c.perStream[stream]; ok {
		if o.policy != nil {
			p.policy = *o.policy
		}
		if o.lanes > 0 {
			p.lanes = o.lanes
		}
	}
	if p.policy.Backoff == 0 {
		p.policy.Backoff = c.processorRetry
	}
	if p.policy.MaxBackoff == 0 {
		p.policy.MaxBackoff = max(c.processorRetryMax, p.policy.Backoff)
	}
	if p.lanes < 1 {
		p.lanes = 1
	}
	return p
}

// validateProcessing checks the failure policies and lanes of every stream.
func (c *config) validateProcessing() error {
	if err := c.policy.validate(); err != nil {
		return err
	}
	for name, o := range c.perStream {
		found := false
		for _, s := range c.streams {
			found = found || s.Name == name
		}
		if !found {
			return fmt.Errorf("%w: processing settings for stream %q, which is not consumed (WithStream)", ErrInvalidOption, name)
		}
		if o.policy != nil {
			if err := o.policy.validate(); err != nil {
				return fmt.Errorf("stream %q: %w", name, err)
			}
		}
	}
	return nil
}

func (c *config) override(stream string) streamProcessing {
	if c.perStream == nil {
		c.perStream = map[string]streamProcessing{}
	}
	return c.perStream[stream]
}

// WithFailurePolicy sets the application's failure policy (see FailurePolicy; by
// default a failing batch is retried for ever). WithStreamFailurePolicy overrides it for
// one stream.
func WithFailurePolicy(p FailurePolicy) Option {
	return func(c *config) error {
		if err := p.validate(); err != nil {
			return err
		}
		c.policy = p
		return nil
	}
}

// WithStreamFailurePolicy sets the failure policy of one stream, in place of the
// application's.
func WithStreamFailurePolicy(stream string, p FailurePolicy) Option {
	return func(c *config) error {
		if stream == "" {
			return fmt.Errorf("%w: failure policy for an empty stream name", ErrInvalidOption)
		}
		if err := p.validate(); err != nil {
			return fmt.Errorf("stream %q: %w", stream, err)
		}
		o := c.override(stream)
		o.policy = &p
		c.perStream[stream] = o
		return nil
	}
}

// WithLanes processes each shard in n parallel lanes (1 by default, up to MaxLanes):
// records are routed to a lane by a hash of their partition key (records without one,
// as on service-managed AUTO streams, by a hash of their sequence number, so the user
// records of one aggregate stay together), so records of one key are handled in order,
// by one lane at a time, while other keys go on. The handler is then called from up to
// n goroutines at once per shard. Each lane call gets up to the polling batch size
// (WithPolling's maxRecords) of user records, more when one Kinesis record holds more;
// at most 2n such batches per shard (from the oldest unfinished record on) are queued
// or being handled, so each lane has its next call queued while one runs. This window
// is also what a crash delivers again. The checkpoint is
// the low watermark: the position below which every record succeeded or reached the
// failure policy's destination. Lambda's ParallelizationFactor (1..10 there).
//
// Lanes apply to processors built with HandlerFunc, whose checkpoints the consumer
// takes. A custom Processor is called from one goroutine and checkpoints itself, so it
// always runs one lane (a shard started with more logs an error and runs one).
func WithLanes(n int) Option {
	return func(c *config) error {
		if n < 1 || n > MaxLanes {
			return fmt.Errorf("%w: lanes %d outside 1..%d", ErrInvalidOption, n, MaxLanes)
		}
		c.lanes = n
		return nil
	}
}

// WithStreamLanes sets the lanes per shard of one stream, in place of the
// application's WithLanes.
func WithStreamLanes(stream string, n int) Option {
	return func(c *config) error {
		if stream == "" {
			return fmt.Errorf("%w: lanes for an empty stream name", ErrInvalidOption)
		}
		if n < 1 || n > MaxLanes {
			return fmt.Errorf("%w: stream %q: lanes %d outside 1..%d", ErrInvalidOption, stream, n, MaxLanes)
		}
		o := c.override(stream)
		o.lanes = n
		c.perStream[stream] = o
		return nil
	}
}

// PartialFailureError is returned by a handler (through FailedAt) to say that the
// records before Index succeeded and the record at Index failed with Err.
type PartialFailureError struct {
	// Index is the position, in the records handed to the handler, of the first record
	// that failed.
	Index int
	// Err is why it failed.
	Err error
}

func (e *PartialFailureError) Error() string {
	return fmt.Sprintf("consumer: record %d of the batch failed: %v", e.Index, e.Err)
}

// Unwrap returns the record's error.
func (e *PartialFailureError) Unwrap() error { return e.Err }

// FailedAt returns the error a handler returns when the records before index succeeded
// and the record at index failed with err: the consumer keeps the successes and hands
// the records from index on to the handler again. The attempts count for that record:
// when it has failed MaxAttempts times in a row it alone goes to the Destination (no
// bisection is needed) and the records after it are handled. An index outside the
// batch fails the whole batch. Lambda's ReportBatchItemFailures.
func FailedAt(index int, err error) error {
	if err == nil {
		err = errors.New("record failed")
	}
	return &PartialFailureError{Index: index, Err: err}
}

// checkDestinations runs the DestinationChecker of every configured destination, so
// New fails on a destination that does not exist.
func (c *config) checkDestinations() error {
	check := func(where string, p FailurePolicy) error {
		dc, ok := p.Destination.(DestinationChecker)
		if !ok {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), DestinationCheckTimeout)
		defer cancel()
		if err := dc.Check(ctx); err != nil {
			return fmt.Errorf("%w: %sfailure destination: %v", ErrInvalidOption, where, err)
		}
		return nil
	}
	if err := check("", c.policy); err != nil {
		return err
	}
	for name, o := range c.perStream {
		if o.policy != nil {
			if err := check(fmt.Sprintf("stream %q: ", name), *o.policy); err != nil {
				return err
			}
		}
	}
	return nil
}
