package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/freshet/freshet/checkpoint"
)

// Processor handles the records of one shard for as long as its worker holds the shard's
// lease. The worker calls its methods from one goroutine, in this order: Initialize once,
// ProcessRecords for each batch, then exactly one of LeaseLost, ShardEnded or
// ShutdownRequested.
//
// A Processor that returns an error from Initialize, ProcessRecords or ShardEnded gets
// the same call again after a backoff (the same batch, in order), so returning an error
// never skips a record.
type Processor interface {
	// Initialize is called before the first batch with the position processing starts
	// from (the lease's checkpoint).
	Initialize(ctx context.Context, in InitializeInput) error
	// ProcessRecords handles one batch. Checkpointing is up to the processor.
	ProcessRecords(ctx context.Context, in ProcessRecordsInput) error
	// LeaseLost tells the processor that another worker owns the shard now. No checkpoint
	// is possible; work since the last checkpoint will be delivered again elsewhere.
	LeaseLost(ctx context.Context, in LeaseLostInput)
	// ShardEnded is called once every record of a closed shard was processed. The
	// processor must checkpoint SHARD_END (in.Checkpointer.Checkpoint or CheckpointAt
	// with checkpoint.SentinelShardEnd) for the shard's children to start; while it does
	// not, the call is repeated.
	ShardEnded(ctx context.Context, in ShardEndedInput) error
	// ShutdownRequested is called when the worker shuts down gracefully: the processor
	// may checkpoint the records it has processed. The lease is released afterwards.
	ShutdownRequested(ctx context.Context, in ShutdownRequestedInput) error
}

// InitializeInput is the argument of Processor.Initialize.
type InitializeInput struct {
	// Shard is the shard being processed.
	Shard ShardInfo
	// Checkpoint is where processing starts: the lease's checkpoint (a sequence number
	// and sub-sequence number, or TRIM_HORIZON, LATEST or AT_TIMESTAMP for a new lease).
	Checkpoint checkpoint.Value
	// PendingCheckpoint is a prepared but uncommitted checkpoint stored in the lease,
	// with its application state, if any.
	PendingCheckpoint checkpoint.Value
	// PendingState is the application state stored with PendingCheckpoint.
	PendingState []byte
}

// ProcessRecordsInput is the argument of Processor.ProcessRecords.
type ProcessRecordsInput struct {
	// Shard is the shard being processed.
	Shard ShardInfo
	// Records are the batch, in shard order (sequence number, then sub-sequence number).
	Records []Record
	// MillisBehindLatest is how far the batch is behind the tip of the shard.
	MillisBehindLatest int64
	// FetchedAt is when the batch was received from Kinesis.
	FetchedAt time.Time
	// Checkpointer records progress; Checkpoint() stores the last record of this batch.
	Checkpointer *checkpoint.Checkpointer
}

// LeaseLostInput is the argument of Processor.LeaseLost.
type LeaseLostInput struct {
	// Shard is the shard that was lost.
	Shard ShardInfo
}

// ShardEndedInput is the argument of Processor.ShardEnded.
type ShardEndedInput struct {
	// Shard is the shard that ended.
	Shard ShardInfo
	// Checkpointer must be used to checkpoint SHARD_END.
	Checkpointer *checkpoint.Checkpointer
}

// ShutdownRequestedInput is the argument of Processor.ShutdownRequested.
type ShutdownRequestedInput struct {
	// Shard is the shard being released.
	Shard ShardInfo
	// Checkpointer takes the final checkpoint.
	Checkpointer *checkpoint.Checkpointer
}

// ProcessorFactory creates the processor of one shard. It is called once each time a
// worker starts processing a shard.
type ProcessorFactory func(shard ShardInfo) (Processor, error)

// HandlerFunc returns a ProcessorFactory for the common case: fn handles each batch, and
// after fn returns nil the batch is checkpointed (retried briefly when the write fails
// for a transient reason, then left to the next batch's checkpoint). At shard end
// SHARD_END is checkpointed, and on shutdown the last handled batch is. When fn returns
// an error the failure policy (WithFailurePolicy) decides what follows: by default the
// batch is delivered again after a backoff, for ever; FailedAt reports a partial result.
// With WithLanes, fn is called from several lanes of a shard at once and the
// checkpoint is the lanes' low watermark.
func HandlerFunc(fn func(ctx context.Context, shard ShardInfo, records []Record) error) ProcessorFactory {
	return func(ShardInfo) (Processor, error) {
		if fn == nil {
			return nil, errors.New("consumer: nil handler")
		}
		return &handlerProcessor{fn: fn}, nil
	}
}

type handlerProcessor struct {
	fn func(ctx context.Context, shard ShardInfo, records []Record) error
}

func (h *handlerProcessor) Initialize(context.Context, InitializeInput) error { return nil }

func (h *handlerProcessor) ProcessRecords(ctx context.Context, in ProcessRecordsInput) error {
	if len(in.Records) > 0 {
		if err := h.fn(ctx, in.Shard, in.Records); err != nil {
			return err
		}
	}
	// The batch is handled: a checkpoint that keeps failing for a transient reason is
	// left to the next batch (or the shutdown) rather than handling the batch again.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = in.Checkpointer.Checkpoint(ctx); err == nil || errors.Is(err, checkpoint.ErrLeaseLost) || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (h *handlerProcessor) LeaseLost(context.Context, LeaseLostInput) {}

func (h *handlerProcessor) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

func (h *handlerProcessor) ShutdownRequested(ctx context.Context, in ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
