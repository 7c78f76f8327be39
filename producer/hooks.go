package producer

import (
	"context"
	"time"
)

// Hook is a value that implements one or more of the Hook* interfaces of this package;
// WithHooks registers it. The producer finds the interfaces a hook implements once, in
// New, by type assertion, so new hook interfaces can be added without breaking anyone,
// and an event no hook wants costs nothing.
//
// Hooks are called synchronously from the producer's goroutines (Put's caller for
// OnRecordPut, the senders for the others), possibly concurrently: they must be safe
// for concurrent use and return quickly, like the done callback of Put. They must not
// call back into the producer.
type Hook any

// HookRecordPut is called for every record Put, PutAsync or PutSync accepts for
// validation (partition key, data and explicit hash key valid, its stream known: a
// stream's first discovery failing fails Put before any hook), before it is sized and
// buffered. The hook may change rec: typically it
// adds Tags (the tracing module puts a W3C trace context there, from the span in ctx,
// the context given to Put). It returns a function the producer calls exactly once with
// the record's outcome (before the record's own done callback), or nil. When Put then
// fails (buffer full, ctx ended, record too large with its new tags), that function gets
// a Result whose Err is Put's error.
type HookRecordPut interface {
	OnRecordPut(ctx context.Context, rec *Record) func(Result)
}

// HookBatchSent is called after every PutRecords call, successful or not.
type HookBatchSent interface {
	OnBatchSent(BatchSent)
}

// HookCallFailed is called for every failed call and every entry a PutRecords call
// rejected: the producer retries the retryable ones (the call retried) unless their
// time to live passes first or the producer is closing. A stream's first
// DescribeStreamSummary or ListShards failing is not retried: Put returns its error.
type HookCallFailed interface {
	OnCallFailed(CallFailure)
}

// HookThrottled is called for every throttling answer: a PutRecords call or entry that
// failed with ProvisionedThroughputExceededException (or another throttling code), which
// the shard's adaptive limiter slows down for.
type HookThrottled interface {
	OnThrottled(Throttle)
}

// BatchSent describes one finished PutRecords call.
type BatchSent struct {
	// Stream is the stream written to.
	Stream string
	// Records is the number of Kinesis records (aggregates or plain records) in the call.
	Records int
	// Duration is how long the call took.
	Duration time.Duration
}

// CallFailure describes a failed call or a rejected PutRecords entry.
type CallFailure struct {
	// Op is the operation: "PutRecords", "ListShards" or "DescribeStreamSummary".
	Op string
	// Stream is the stream concerned.
	Stream string
	// ShardID is the shard of a rejected entry; empty when a whole call failed.
	ShardID string
	// ErrorCode is the service's error code, or "Timeout", "Canceled" or "Exception" for
	// a call that failed without one (as in Attempt.ErrorCode).
	ErrorCode string
	// Records is the number of Kinesis records concerned (1 for an entry, the call's
	// count for a whole PutRecords call, 1 for ListShards and DescribeStreamSummary).
	Records int
	// Retryable reports whether the records are sent again (the producer's
	// classification of the error; false while the producer is closing, for throttling
	// under WithFailIfThrottled and for a stream's first discovery).
	Retryable bool
}

// Throttle describes one throttling answer.
type Throttle struct {
	// Op is the operation: "PutRecords", "ListShards" or "DescribeStreamSummary".
	Op string
	// Stream is the stream concerned.
	Stream string
	// ShardID is the shard of a throttled entry; empty when a whole call was throttled.
	ShardID string
	// ErrorCode is the throttling code, for example "ProvisionedThroughputExceededException".
	ErrorCode string
	// Records is the number of Kinesis records throttled.
	Records int
}

// hooks are the registered hooks, by the interfaces they implement.
type hooks struct {
	recordPut  []HookRecordPut
	batchSent  []HookBatchSent
	callFailed []HookCallFailed
	throttled  []HookThrottled
}

// add registers h under every hook interface it implements; it reports false for a
// value that implements none.
func (hs *hooks) add(h Hook) bool {
	found := false
	if x, ok := h.(HookRecordPut); ok {
		hs.recordPut, found = append(hs.recordPut, x), true
	}
	if x, ok := h.(HookBatchSent); ok {
		hs.batchSent, found = append(hs.batchSent, x), true
	}
	if x, ok := h.(HookCallFailed); ok {
		hs.callFailed, found = append(hs.callFailed, x), true
	}
	if x, ok := h.(HookThrottled); ok {
		hs.throttled, found = append(hs.throttled, x), true
	}
	return found
}

// onRecordPut calls the record-put hooks and returns what to call with the outcome,
// chained before done (nil when no hook asked for it).
func (hs *hooks) onRecordPut(ctx context.Context, rec *Record) func(Result) {
	var fns []func(Result)
	for _, h := range hs.recordPut {
		if f := h.OnRecordPut(ctx, rec); f != nil {
			fns = append(fns, f)
		}
	}
	switch len(fns) {
	case 0:
		return nil
	case 1:
		return fns[0]
	}
	return func(r Result) {
		for _, f := range fns {
			f(r)
		}
	}
}
