package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/checkpoint"
	fproducer "github.com/freshet/freshet/producer"
)

// FailureReason says why a record was given up to the destination.
type FailureReason string

// Failure reasons.
const (
	// ReasonMaxAttempts: the handler failed on the record FailurePolicy.MaxAttempts times.
	ReasonMaxAttempts FailureReason = "MaxAttempts"
	// ReasonMaxRecordAge: the record became older than FailurePolicy.MaxRecordAge.
	ReasonMaxRecordAge FailureReason = "MaxRecordAge"
)

// FailedRecord is a record that exhausted its failure policy, as sent to the
// destination: the record with where it came from and why it failed.
type FailedRecord struct {
	// Stream and ShardID are where the record was read.
	Stream  string `json:"stream"`
	ShardID string `json:"shardId"`
	// SequenceNumber and SubSequenceNumber are its position in the shard.
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber int64  `json:"subSequenceNumber"`
	// PartitionKey and ExplicitHashKey are the record's own (PartitionKey is empty for
	// records of service-managed AUTO streams).
	PartitionKey    string `json:"partitionKey,omitempty"`
	ExplicitHashKey string `json:"explicitHashKey,omitempty"`
	// ApproximateArrivalTimestamp is when Kinesis accepted the record.
	ApproximateArrivalTimestamp time.Time `json:"approximateArrivalTimestamp"`
	// Attempts is how many handler calls holding the record failed (0 when it expired
	// before its first attempt).
	Attempts int `json:"attempts"`
	// Reason is why it was given up.
	Reason FailureReason `json:"reason"`
	// Error is the last error the handler returned for it, if any.
	Error string `json:"error,omitempty"`
	// FailedAt is when it was given up.
	FailedAt time.Time `json:"failedAt"`
	// Data is the record's payload (base64 in the JSON form); nil when DataOmitted.
	Data []byte `json:"data"`
	// DataOmitted is set by a StreamDestination on a record whose document, with its
	// data, exceeds the destination stream's maximum record size: the document then
	// carries the metadata only (as Lambda's on-failure destinations do), and DataSize
	// the payload's length; the data stays readable in the source stream at
	// SequenceNumber for its retention period. Error is then cut to 4 KiB if the
	// document is still too large.
	DataOmitted bool `json:"dataOmitted,omitempty"`
	// DataSize is the payload's length in bytes when DataOmitted.
	DataSize int `json:"dataSize,omitempty"`
}

// Marshal encodes the record as the JSON document a StreamDestination writes.
func (f *FailedRecord) Marshal() ([]byte, error) { return json.Marshal(f) }

// ErrBadFailedRecord reports a document that is not a FailedRecord.
var ErrBadFailedRecord = errors.New("consumer: not a failed-record document")

// ParseFailedRecord decodes a record written by a StreamDestination, checking that it
// names a shard, a valid sequence number and a reason.
func ParseFailedRecord(b []byte) (FailedRecord, error) {
	var f FailedRecord
	if err := json.Unmarshal(b, &f); err != nil {
		return FailedRecord{}, fmt.Errorf("%w: %v", ErrBadFailedRecord, err)
	}
	if f.ShardID == "" {
		return FailedRecord{}, fmt.Errorf("%w: no shardId", ErrBadFailedRecord)
	}
	if _, err := checkpoint.At(f.SequenceNumber, f.SubSequenceNumber); err != nil {
		return FailedRecord{}, fmt.Errorf("%w: %v", ErrBadFailedRecord, err)
	}
	if f.Reason != ReasonMaxAttempts && f.Reason != ReasonMaxRecordAge {
		return FailedRecord{}, fmt.Errorf("%w: unknown reason %q", ErrBadFailedRecord, f.Reason)
	}
	if f.Attempts < 0 {
		return FailedRecord{}, fmt.Errorf("%w: negative attempts", ErrBadFailedRecord)
	}
	if f.DataSize < 0 {
		return FailedRecord{}, fmt.Errorf("%w: negative dataSize", ErrBadFailedRecord)
	}
	return f, nil
}

// Destination receives the records a failure policy gave up on. Send returns nil only
// once every record is stored: until it does, the shard's checkpoint does not pass
// them, and a failed Send is retried (with the policy's backoff) for as long as the
// lease is held, so records may reach the destination more than once, never zero
// times. Send is called from every lane of every shard at once and must be safe for
// concurrent use.
type Destination interface {
	Send(ctx context.Context, records []FailedRecord) error
}

// DestinationChecker is an optional interface of a Destination: consumer.New calls
// Check (bounded by DestinationCheckTimeout) and fails when it returns an error, so a
// destination that does not exist is found before any record needs it.
type DestinationChecker interface {
	Check(ctx context.Context) error
}

// DestinationCheckTimeout bounds each DestinationChecker.Check made by consumer.New.
const DestinationCheckTimeout = 10 * time.Second

// DestinationFunc adapts a function to a Destination.
type DestinationFunc func(ctx context.Context, records []FailedRecord) error

// Send calls f.
func (f DestinationFunc) Send(ctx context.Context, records []FailedRecord) error {
	return f(ctx, records)
}

// StreamDestination writes failed records to a Kinesis stream with a Freshet producer,
// one Kinesis user record per failed record: its data is the FailedRecord's JSON
// document (ParseFailedRecord reads it back), its partition key the original's (the
// shard ID when the original has none), so failed records of one key stay in order.
type StreamDestination struct {
	client fproducer.Client
	stream string
	prod   *fproducer.Producer

	closing  atomic.Bool   // set by the first Close
	closed   chan struct{} // closed when the first Close returned
	closeErr error
}

// ErrDestinationClosed is returned by StreamDestination.Send once Close began.
var ErrDestinationClosed = errors.New("consumer: destination closed")

// NewStreamDestination returns a destination writing to stream through client with a
// producer made with opts (its WithStream is set to stream). consumer.New checks that
// the stream exists. Close it after the workers using it have stopped.
func NewStreamDestination(client fproducer.Client, stream string, opts ...fproducer.Option) (*StreamDestination, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: destination stream: nil client", ErrInvalidOption)
	}
	if stream == "" {
		return nil, fmt.Errorf("%w: destination stream: empty name", ErrInvalidOption)
	}
	p, err := fproducer.New(client, append(append([]fproducer.Option(nil), opts...), fproducer.WithStream(stream))...)
	if err != nil {
		return nil, fmt.Errorf("%w: destination stream %q: %v", ErrInvalidOption, stream, err)
	}
	return &StreamDestination{client: client, stream: stream, prod: p, closed: make(chan struct{})}, nil
}

// Stream returns the destination's stream name.
func (d *StreamDestination) Stream() string { return d.stream }

// Check reports an error when the stream does not exist or cannot be described.
func (d *StreamDestination) Check(ctx context.Context) error {
	out, err := d.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(d.stream)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("destination stream %q does not exist", d.stream)
	case err != nil:
		return fmt.Errorf("destination stream %q: %w", d.stream, err)
	case out.StreamDescriptionSummary != nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusDeleting:
		return fmt.Errorf("destination stream %q is being deleted", d.stream)
	}
	return nil
}

// Send writes the records and waits until each is stored; it returns the first
// failure (records already stored stay stored), and ErrDestinationClosed once Close
// began (the consumer then keeps the records unfinished: its checkpoint does not pass
// them). A record whose document would exceed the destination stream's maximum record
// size is written without its data (FailedRecord.DataOmitted), so that no record can
// stall its shard for ever.
func (d *StreamDestination) Send(ctx context.Context, records []FailedRecord) error {
	if d.closing.Load() {
		return fmt.Errorf("%w: stream %q", ErrDestinationClosed, d.stream)
	}
	futures := make([]*fproducer.Future, 0, len(records))
	var errs []error
	for i := range records {
		fu, err := d.put(ctx, records[i])
		if err != nil {
			errs = append(errs, err)
			break
		}
		futures = append(futures, fu)
	}
	if err := d.prod.Flush(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, fu := range futures {
		if _, err := fu.Wait(ctx); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("consumer: sending %d failed records to stream %q: %w", len(records), d.stream, errors.Join(errs...))
	}
	return nil
}

// maxOmittedError is how much of the handler's error a document without data keeps when
// the whole error does not fit either.
const maxOmittedError = 4096

// put writes one record's document, without its data (and with its error cut to
// maxOmittedError bytes) when it is too large.
func (d *StreamDestination) put(ctx context.Context, f FailedRecord) (*fproducer.Future, error) {
	pk := f.PartitionKey
	if pk == "" {
		pk = f.ShardID
	}
	for {
		doc, err := f.Marshal()
		if err != nil {
			return nil, err
		}
		fu, err := d.prod.PutAsync(ctx, fproducer.Record{PartitionKey: pk, Data: doc})
		switch {
		case !errors.Is(err, fproducer.ErrRecordTooLarge):
			return fu, err
		case !f.DataOmitted:
			f.DataOmitted, f.DataSize, f.Data = true, len(f.Data), nil
		case len(f.Error) > maxOmittedError:
			f.Error = f.Error[:maxOmittedError] + " (truncated)"
		default:
			return fu, err
		}
	}
}

// Close flushes and stops the destination's producer, bounded by ctx: records of Send
// calls in progress are stored, or their Send fails. It is safe to call more than once
// and from several goroutines: the first call closes; the others wait for it (or for
// their own ctx) and return its result.
func (d *StreamDestination) Close(ctx context.Context) error {
	if d.closing.CompareAndSwap(false, true) {
		d.closeErr = d.prod.Close(ctx)
		close(d.closed)
		return d.closeErr
	}
	select {
	case <-d.closed:
		return d.closeErr
	case <-ctx.Done():
		select {
		case <-d.closed:
			return d.closeErr
		default:
			return ctx.Err()
		}
	}
}
