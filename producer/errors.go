package producer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/internal/retrypolicy"
)

var (
	// ErrInvalidOption is wrapped by every error about a bad option value.
	ErrInvalidOption = errors.New("producer: invalid option")
	// ErrInvalidRecord is wrapped by every error Put returns for a record Kinesis would
	// reject: no stream, an empty or too long partition key, a malformed explicit hash key
	// or nil data. Nothing is enqueued.
	ErrInvalidRecord = errors.New("producer: invalid record")
	// ErrRecordTooLarge is wrapped by the error Put returns for a record larger than the
	// stream's maximum record size (data plus partition key). Nothing is enqueued.
	ErrRecordTooLarge = errors.New("producer: record too large")
	// ErrClosed is returned by Put after Close began, and is the outcome of every record
	// still pending when Close's context ended.
	ErrClosed = errors.New("producer: closed")
	// ErrBufferFull is returned by Put, with WithFailFast, when the record would exceed the
	// producer's buffered records or bytes bound.
	ErrBufferFull = errors.New("producer: buffer full")
	// ErrRecordExpired is the outcome of a record that could not be written within its
	// time to live (WithRecordTTL).
	ErrRecordExpired = errors.New("producer: record expired")
	// ErrThrottled is the outcome of a throttled record when WithFailIfThrottled is set.
	ErrThrottled = errors.New("producer: throttled")
)

// ServiceError is a failure reported by Kinesis for one call or one record: a whole
// PutRecords call that failed, or one entry of its response that carried an error code.
type ServiceError struct {
	// Op is the operation, for example "PutRecords" or "ListShards".
	Op string
	// Stream is the stream name.
	Stream string
	// ShardID is the shard the record was predicted for, when known.
	ShardID string
	// Code is the service error code, for example "ProvisionedThroughputExceededException".
	Code string
	// Message is the service's message.
	Message string
	// Err is the underlying error for a whole-call failure; nil for an entry failure.
	Err error
}

// Error implements error.
func (e *ServiceError) Error() string {
	var b strings.Builder
	b.WriteString("producer: ")
	b.WriteString(e.Op)
	if e.Stream != "" {
		b.WriteString(" stream ")
		b.WriteString(e.Stream)
	}
	if e.ShardID != "" {
		b.WriteString(" shard ")
		b.WriteString(e.ShardID)
	}
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil && e.Code == "" {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *ServiceError) Unwrap() error { return e.Err }

// Is reports ErrThrottled for throttling codes so callers can test with errors.Is.
func (e *ServiceError) Is(target error) bool {
	return target == ErrThrottled && isThrottleCode(e.Code)
}

// RecordError is the outcome error of one user record that failed for good. It wraps the
// final cause (ErrRecordExpired, ErrClosed, ErrThrottled or a *ServiceError) and keeps the
// last service error seen, if any.
type RecordError struct {
	// Stream and ShardID locate the record (ShardID is the predicted shard).
	Stream, ShardID string
	// Err is the reason the record failed.
	Err error
	// Last is the last service error seen before the final failure, or nil.
	Last error
}

// Error implements error.
func (e *RecordError) Error() string {
	s := fmt.Sprintf("producer: record for stream %s shard %s failed: %v", e.Stream, e.ShardID, e.Err)
	if e.Last != nil && !errors.Is(e.Err, e.Last) {
		s += " (last error: " + e.Last.Error() + ")"
	}
	return s
}

// Unwrap returns the cause and the last service error.
func (e *RecordError) Unwrap() []error {
	if e.Last == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Last}
}

// isThrottleCode reports whether the shared error table names code throttling.
func isThrottleCode(code string) bool { return retrypolicy.Classify(code) == retrypolicy.Throttled }

// errorClass classifies a failure with the error table the producer and the consumer
// share (internal/retrypolicy). Client states (ErrClosed, ErrRecordExpired,
// ErrBufferFull, invalid records and options) are Fatal.
func errorClass(err error) retrypolicy.Class {
	switch {
	case err == nil:
		return retrypolicy.Unknown
	case errors.Is(err, ErrClosed), errors.Is(err, ErrRecordExpired), errors.Is(err, ErrBufferFull),
		errors.Is(err, ErrInvalidRecord), errors.Is(err, ErrRecordTooLarge), errors.Is(err, ErrInvalidOption):
		return retrypolicy.Fatal
	}
	var se *ServiceError
	if errors.As(err, &se) && se.Code != "" {
		if c := retrypolicy.Classify(se.Code); c != retrypolicy.Unknown || se.Err == nil {
			return c
		}
	}
	return retrypolicy.ErrorClass(err)
}

// IsRetryable reports whether err is a transient failure worth retrying under the
// default retry policy: throttling, internal service errors, server faults, timeouts of
// a single attempt and network errors. Client states (ErrClosed, ErrRecordExpired,
// ErrBufferFull, invalid records) and the caller's own context cancellation are not
// retryable. It reads the one error table the producer and the consumer share.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	return defaultPolicy.Decide(errorClass(err)) == retrypolicy.Retry
}

var defaultPolicy = DefaultRetryPolicy().policy()

// errorCode returns a short code for err: the service code when there is one, otherwise
// a generic class name, for attempts and the ErrorsByCode metric.
func errorCode(err error) string {
	var se *ServiceError
	if errors.As(err, &se) && se.Code != "" {
		return se.Code
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "Timeout"
	}
	if errors.Is(err, context.Canceled) {
		return "Canceled"
	}
	return "Exception"
}
