package queue

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// DeadLetterAPI is the part of *kinesis.Client DeadLetters uses.
type DeadLetterAPI interface {
	ReceiveDeadLetterQueueRecords(ctx context.Context, in *kinesis.ReceiveDeadLetterQueueRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.ReceiveDeadLetterQueueRecordsOutput, error)
	AcknowledgeDeadLetterQueueRecords(ctx context.Context, in *kinesis.AcknowledgeDeadLetterQueueRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.AcknowledgeDeadLetterQueueRecordsOutput, error)
	RestoreDeadLetterQueueRecords(ctx context.Context, in *kinesis.RestoreDeadLetterQueueRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.RestoreDeadLetterQueueRecordsOutput, error)
	UpdateDeadLetterQueueRecordsVisibility(ctx context.Context, in *kinesis.UpdateDeadLetterQueueRecordsVisibilityInput, optFns ...func(*kinesis.Options)) (*kinesis.UpdateDeadLetterQueueRecordsVisibilityOutput, error)
}

// DeadLetters works with a queue's dead-letter records: the records received
// MaxReceiveCount times without an acknowledgement, which the queue no longer delivers.
// Receive them to look at them, then Restore them (the queue delivers them again, with
// a fresh receive count) or Acknowledge them (discarded), or Release them untouched.
type DeadLetters struct {
	api   DeadLetterAPI
	queue string
}

// EntryError is a record the queue refused in a batch operation.
type EntryError struct {
	Record *Record
	// Code is the service's error code (ResourceNotFoundException for a receipt handle
	// that is no longer valid, InvalidArgumentException for one that is not).
	Code, Message string
}

// Error returns "record <id>: <code>: <message>".
func (e *EntryError) Error() string {
	return "record " + e.Record.ID + ": " + e.Code + ": " + e.Message
}

// NewDeadLetters returns the dead-letter records of the queue with the given ARN.
func NewDeadLetters(api DeadLetterAPI, queueARN string) (*DeadLetters, error) {
	if api == nil {
		return nil, fmt.Errorf("%w: nil API", ErrInvalidOption)
	}
	if !strings.HasPrefix(queueARN, "arn:") || !strings.Contains(queueARN, ":queue/") {
		return nil, fmt.Errorf("%w: queue ARN %q: want arn:aws:kinesis:<region>:<account>:queue/<id>", ErrInvalidOption, queueARN)
	}
	return &DeadLetters{api: api, queue: queueARN}, nil
}

// Receive receives up to max dead-letter records (in calls of ten, without waiting),
// hiding each from other receivers for visibility (whole seconds, 0 to 12 h). It
// returns fewer when no more are visible.
func (d *DeadLetters) Receive(ctx context.Context, max int, visibility time.Duration) ([]*Record, error) {
	if max < 1 {
		return nil, fmt.Errorf("%w: Receive max %d: want at least 1", ErrInvalidOption, max)
	}
	if visibility < 0 || visibility > maxVisibility || visibility%time.Second != 0 {
		return nil, fmt.Errorf("%w: Receive visibility %v: want whole seconds from 0 to 12 h", ErrInvalidOption, visibility)
	}
	var out []*Record
	for len(out) < max {
		n := min(maxReceive, max-len(out))
		res, err := d.api.ReceiveDeadLetterQueueRecords(ctx, &kinesis.ReceiveDeadLetterQueueRecordsInput{QueueARN: aws.String(d.queue),
			Limit: aws.Int32(int32(n)), WaitTimeSeconds: aws.Int32(0), VisibilityTimeoutSeconds: aws.Int32(int32(visibility / time.Second))})
		if err != nil {
			return out, fmt.Errorf("queue: ReceiveDeadLetterQueueRecords on %s: %w", d.queue, err)
		}
		for _, q := range res.QueueRecords {
			out = append(out, recordOf(q))
		}
		if len(res.QueueRecords) == 0 {
			break
		}
	}
	return out, nil
}

// Restore returns received dead-letter records to the queue's normal delivery with
// their receive counts reset. It returns the records the queue refused; err is set only
// when a call failed as a whole.
func (d *DeadLetters) Restore(ctx context.Context, recs []*Record) ([]*EntryError, error) {
	return d.batch(ctx, recs, func(ctx context.Context, handles []string) ([]string, []failure, error) {
		entries := make([]types.RestoreDeadLetterQueueRecordsRequestEntry, len(handles))
		for i, h := range handles {
			entries[i].ReceiptHandle = aws.String(h)
		}
		out, err := d.api.RestoreDeadLetterQueueRecords(ctx, &kinesis.RestoreDeadLetterQueueRecordsInput{QueueARN: aws.String(d.queue), Entries: entries})
		if err != nil {
			return nil, nil, fmt.Errorf("queue: RestoreDeadLetterQueueRecords on %s: %w", d.queue, err)
		}
		var f []failure
		for _, e := range out.Failed {
			f = append(f, failure{aws.ToString(e.ReceiptHandle), aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage)})
		}
		var ok []string
		for _, e := range out.Successful {
			ok = append(ok, aws.ToString(e.ReceiptHandle))
		}
		return ok, f, nil
	})
}

// Acknowledge discards received dead-letter records. It returns the records the queue
// refused; err is set only when a call failed as a whole.
func (d *DeadLetters) Acknowledge(ctx context.Context, recs []*Record) ([]*EntryError, error) {
	return d.batch(ctx, recs, func(ctx context.Context, handles []string) ([]string, []failure, error) {
		entries := make([]types.AcknowledgeDeadLetterQueueRecordsRequestEntry, len(handles))
		for i, h := range handles {
			entries[i].ReceiptHandle = aws.String(h)
		}
		out, err := d.api.AcknowledgeDeadLetterQueueRecords(ctx, &kinesis.AcknowledgeDeadLetterQueueRecordsInput{QueueARN: aws.String(d.queue), Entries: entries})
		if err != nil {
			return nil, nil, fmt.Errorf("queue: AcknowledgeDeadLetterQueueRecords on %s: %w", d.queue, err)
		}
		var f []failure
		for _, e := range out.Failed {
			f = append(f, failure{aws.ToString(e.ReceiptHandle), aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage)})
		}
		var ok []string
		for _, e := range out.Successful {
			ok = append(ok, aws.ToString(e.ReceiptHandle))
		}
		return ok, f, nil
	})
}

// Release makes received dead-letter records visible to other dead-letter receivers
// at once, leaving them dead letters.
func (d *DeadLetters) Release(ctx context.Context, recs []*Record) ([]*EntryError, error) {
	return d.SetVisibility(ctx, recs, 0)
}

// SetVisibility hides received dead-letter records from other dead-letter receivers
// for visibility (whole seconds, 0 to 12 h; 0 makes them visible at once), counted from
// now. They stay dead letters. It returns the records the queue refused; err is set
// only when a call failed as a whole.
func (d *DeadLetters) SetVisibility(ctx context.Context, recs []*Record, visibility time.Duration) ([]*EntryError, error) {
	if visibility < 0 || visibility > maxVisibility || visibility%time.Second != 0 {
		return nil, fmt.Errorf("%w: SetVisibility %v: want whole seconds from 0 to 12 h", ErrInvalidOption, visibility)
	}
	secs := aws.Int32(int32(visibility / time.Second))
	return d.batch(ctx, recs, func(ctx context.Context, handles []string) ([]string, []failure, error) {
		entries := make([]types.UpdateDeadLetterQueueRecordsVisibilityRequestEntry, len(handles))
		for i, h := range handles {
			entries[i] = types.UpdateDeadLetterQueueRecordsVisibilityRequestEntry{ReceiptHandle: aws.String(h), VisibilityTimeoutSeconds: secs}
		}
		out, err := d.api.UpdateDeadLetterQueueRecordsVisibility(ctx, &kinesis.UpdateDeadLetterQueueRecordsVisibilityInput{QueueARN: aws.String(d.queue), Entries: entries})
		if err != nil {
			return nil, nil, fmt.Errorf("queue: UpdateDeadLetterQueueRecordsVisibility on %s: %w", d.queue, err)
		}
		var f []failure
		for _, e := range out.Failed {
			f = append(f, failure{aws.ToString(e.ReceiptHandle), aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage)})
		}
		var ok []string
		for _, e := range out.Successful {
			ok = append(ok, aws.ToString(e.ReceiptHandle))
		}
		return ok, f, nil
	})
}

type failure struct{ handle, code, message string }

// batch runs call over recs in groups of ten and maps the refused handles back to
// their records. A handle the answer does not mention counts as refused.
func (d *DeadLetters) batch(ctx context.Context, recs []*Record, call func(context.Context, []string) ([]string, []failure, error)) ([]*EntryError, error) {
	var refused []*EntryError
	for len(recs) > 0 {
		n := min(len(recs), maxBatch)
		group := recs[:n]
		recs = recs[n:]
		byHandle := make(map[string]*Record, n)
		handles := make([]string, n)
		for i, r := range group {
			if r == nil {
				return refused, fmt.Errorf("%w: nil record", ErrInvalidOption)
			}
			handles[i] = r.receipt
			byHandle[r.receipt] = r
		}
		ok, failed, err := call(ctx, handles)
		if err != nil {
			return refused, err
		}
		for _, h := range ok {
			delete(byHandle, h)
		}
		for _, f := range failed {
			if r := byHandle[f.handle]; r != nil {
				refused = append(refused, &EntryError{Record: r, Code: f.code, Message: f.message})
				delete(byHandle, f.handle)
			}
		}
		for _, h := range handles {
			if r := byHandle[h]; r != nil {
				refused = append(refused, &EntryError{Record: r, Code: "Unanswered", Message: "the service did not report this entry"})
			}
		}
	}
	return refused, nil
}
