package freshettest

import (
	"errors"
	"fmt"
	"time"

	"github.com/freshet/freshet/internal/engine/fault"
	"github.com/freshet/freshet/internal/engine/streams"
)

// Fault describes the failures injected into one operation's calls over the wire. Each
// call draws its fate in this order: dropped before it takes effect (DropRate), failed
// with a service error before it takes effect (ErrorRate), or served and then dropped
// (DropAfterRate); Latency is added to every call first.
type Fault struct {
	// ErrorRate is the probability in [0, 1] that a call fails with ErrorCode before it
	// takes effect.
	ErrorRate float64
	// ErrorCode is the service error type returned, for example
	// "ProvisionedThroughputExceededException" (throttling), "InternalFailure" or
	// "LimitExceededException"; "InternalFailure" when empty.
	ErrorCode string
	// ErrorMessage is the message sent with ErrorCode; a generic one when empty.
	ErrorMessage string
	// StatusCode is the HTTP status sent with ErrorCode; 400 when zero, except 500 for
	// InternalFailure, InternalServerError and ServiceUnavailable.
	StatusCode int
	// Latency is added before the call is handled.
	Latency time.Duration
	// DropRate is the probability that the connection is closed without a response
	// before the call takes effect.
	DropRate float64
	// DropAfterRate is the probability that the call takes effect and then the
	// connection is closed without a response: the client cannot know that its write
	// succeeded, and a retry writes it twice.
	DropAfterRate float64
}

// InjectFault installs f for the calls of op: "Kinesis.PutRecords" (a service and one
// of its operations), "DynamoDB.*" (every operation of a service) or "*" (everything).
// The most specific rule applies to a call; a new rule for the same op replaces the old
// one. An unknown op or an invalid Fault is an error wrapping ErrInvalidOption. Faults
// apply to calls over the wire only, never to the Engine's own methods.
func (e *Engine) InjectFault(op string, f Fault) error {
	err := e.e.SetFault(op, fault.Rule{ErrorRate: f.ErrorRate, ErrorCode: f.ErrorCode, ErrorMessage: f.ErrorMessage,
		StatusCode: f.StatusCode, Latency: f.Latency, DropRate: f.DropRate, DropAfterRate: f.DropAfterRate})
	if errors.Is(err, fault.ErrInvalidRule) {
		return fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	return err
}

// ClearFault removes the rule installed for op.
func (e *Engine) ClearFault(op string) { e.e.Faults.Clear(op) }

// ClearFaults removes every rule, the per-entry faults and forced throttling of
// streams that still exist.
func (e *Engine) ClearFaults() {
	e.e.Faults.Reset()
	_ = e.e.Streams.SetEntryFaults(streams.EntryFaults{})
}

// EntryFaults fails individual PutRecords entries at random, as the service does under
// load, while the call itself succeeds. Rates are probabilities per entry.
type EntryFaults struct {
	// ThrottleRate fails entries with ProvisionedThroughputExceededException.
	ThrottleRate float64
	// InternalFailureRate fails entries with InternalFailure. ThrottleRate plus
	// InternalFailureRate must not exceed 1.
	InternalFailureRate float64
	// StoredRate is the probability that an entry reported as failed was stored
	// anyway, which makes a correct producer write a duplicate (counted in
	// StreamCounters.GhostRecords).
	StoredRate float64
}

// SetPutRecordsEntryFaults installs per-entry PutRecords faults; the zero value removes
// them. Invalid rates are an error wrapping ErrInvalidOption.
func (e *Engine) SetPutRecordsEntryFaults(f EntryFaults) error {
	err := e.e.Streams.SetEntryFaults(streams.EntryFaults{ThrottleRate: f.ThrottleRate, InternalFailureRate: f.InternalFailureRate, StoredRate: f.StoredRate})
	if errors.Is(err, streams.ErrInvalidOption) {
		return fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	return err
}

// ThrottleStream forces (on) or stops forcing (off)
// ProvisionedThroughputExceededException for every write entry and GetRecords call
// of a stream, whatever the limits.
func (e *Engine) ThrottleStream(stream string, on bool) error {
	return serviceErr(e.e.Streams.ThrottleStream(stream, on))
}

// ThrottleShard is ThrottleStream for one shard.
func (e *Engine) ThrottleShard(stream, shardID string, on bool) error {
	return serviceErr(e.e.Streams.ThrottleShard(stream, shardID, on))
}
