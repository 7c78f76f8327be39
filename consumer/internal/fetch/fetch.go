// Package fetch is the retrieval layer of the consumer: it reads one shard's Kinesis
// records, either by polling GetRecords or through an enhanced fan-out subscription, and
// hands them to the shard consumer as bounded batches.
//
// A fetcher runs one goroutine that keeps at most Prefetch batches ahead of the shard
// consumer; when they are not taken it stops calling Kinesis. It never checkpoints and
// never decides ownership: the shard consumer above it does both.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/internal/retrypolicy"
)

// ErrClosed is returned by Next once the fetcher was closed.
var ErrClosed = errors.New("fetch: fetcher closed")

// Position says where in a shard reading starts.
type Position struct {
	// Type is TRIM_HORIZON, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER or
	// AFTER_SEQUENCE_NUMBER.
	Type types.ShardIteratorType
	// SequenceNumber is set for AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER.
	SequenceNumber string
	// Timestamp is set for AT_TIMESTAMP.
	Timestamp time.Time
}

// String formats the position for logs.
func (p Position) String() string {
	switch p.Type {
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		return string(p.Type) + ":" + p.SequenceNumber
	case types.ShardIteratorTypeAtTimestamp:
		return string(p.Type) + ":" + p.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return string(p.Type)
}

// Batch is what one GetRecords call or one fan-out event returned.
type Batch struct {
	// Records are the Kinesis records, in shard order; aggregates are not unpacked here.
	Records []types.Record
	// MillisBehindLatest is how far the batch is from the tip of the shard.
	MillisBehindLatest int64
	// ShardEnd is true when the shard is closed and every record has been returned.
	ShardEnd bool
	// ChildShards lists the shard's children; set with ShardEnd when Kinesis reports them.
	ChildShards []types.ChildShard
	// Bytes is the total size of the records' data.
	Bytes int
	// CallTime is how long the GetRecords call that returned the batch took (at
	// least 1 ns); zero for batches that came from no call of their own (fan-out
	// events, the end of a shard found without a call).
	CallTime time.Duration
}

// Fetcher reads one shard. Next returns batches in shard order; after a batch with
// ShardEnd, or a non-nil error, no further batch comes.
type Fetcher interface {
	// Next blocks until a batch is ready, the fetcher fails, or ctx ends.
	Next(ctx context.Context) (Batch, error)
	// Close stops the fetcher and waits for its goroutine to exit.
	Close()
}

// Error is a fetch failure that the fetcher did not retry.
type Error struct {
	Op      string
	ShardID string
	Err     error
}

func (e *Error) Error() string {
	return fmt.Sprintf("fetch: %s on shard %s: %v", e.Op, e.ShardID, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// NewPolicy returns the retry policy of a fetcher: the shared error table, with retry
// waiting retry backoff and throttled calls waiting throttle backoff. Failures the table
// does not know are retried: a reader that gives up loses its place, one that waits
// loses nothing.
func NewPolicy(retry, throttle retrypolicy.Backoff) retrypolicy.Policy {
	return retrypolicy.Policy{Backoff: retry, ThrottleBackoff: throttle, RetryUnknown: true}
}

// decide returns what a fetcher does after err under policy, and err's class.
func decide(policy retrypolicy.Policy, err error) (retrypolicy.Action, retrypolicy.Class) {
	c := retrypolicy.ErrorClass(err)
	return policy.Decide(c), c
}

// CompareSequence compares two Kinesis sequence numbers (decimal strings of up to 128
// bits) numerically and returns -1, 0 or +1.
func CompareSequence(a, b string) int {
	if len(a) != len(b) {
		// No leading zeros in sequence numbers: the longer one is larger.
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

func batchBytes(recs []types.Record) int {
	n := 0
	for i := range recs {
		n += len(recs[i].Data)
	}
	return n
}
