package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// writeResult is the final outcome of one post's write.
type writeResult struct {
	// Err is nil when the post is stored.
	Err error
	// Code is the last error code for a failed post.
	Code string
	// Attempts is the number of times the post was sent; Throttled how many of those
	// the service throttled.
	Attempts, Throttled int
}

// postWriter writes posts to the stream and reports each one's outcome exactly once.
type postWriter interface {
	// Put queues one record; done is called with its outcome. Put blocks while the
	// writer's buffer is full, until ctx ends.
	Put(ctx context.Context, partitionKey string, data []byte, done func(writeResult)) error
	// Flush sends what is queued and waits for the outcomes, until ctx ends.
	Flush(ctx context.Context) error
	// Close flushes and stops; records without an outcome at ctx's end fail.
	Close(ctx context.Context) error
}

// sdkWriter is the smallest correct writer over PutRecords: batches of up to 500
// entries sent synchronously from Put and Flush, with throttled and failed entries
// resent after a backoff. It stands in for the producer package where that is not
// available and has no aggregation, rate limiting or concurrency.
type sdkWriter struct {
	api     putRecordsAPI
	stream  string
	batch   []pendingEntry
	backoff time.Duration
	ttl     time.Duration
}

type putRecordsAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

type pendingEntry struct {
	entry    types.PutRecordsRequestEntry
	done     func(writeResult)
	res      writeResult
	deadline time.Time
}

const sdkWriterBatch = 500

func newSDKWriter(api putRecordsAPI, stream string) *sdkWriter {
	return &sdkWriter{api: api, stream: stream, ttl: 30 * time.Second}
}

// Put implements postWriter.
func (w *sdkWriter) Put(ctx context.Context, partitionKey string, data []byte, done func(writeResult)) error {
	for len(w.batch) >= sdkWriterBatch {
		if err := w.send(ctx); err != nil {
			return err
		}
	}
	w.batch = append(w.batch, pendingEntry{
		entry:    types.PutRecordsRequestEntry{PartitionKey: aws.String(partitionKey), Data: data},
		done:     done,
		deadline: time.Now().Add(w.ttl),
	})
	return nil
}

// send makes one PutRecords call of up to 500 queued entries, after the current
// backoff, and keeps the entries that must be retried.
func (w *sdkWriter) send(ctx context.Context) error {
	if w.backoff > 0 {
		t := time.NewTimer(w.backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	n := min(len(w.batch), sdkWriterBatch)
	entries := make([]types.PutRecordsRequestEntry, n)
	for i := range entries {
		entries[i] = w.batch[i].entry
		w.batch[i].res.Attempts++
	}
	out, err := w.api.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(w.stream), Records: entries})
	keep := w.batch[:0]
	throttled := false
	for i := range w.batch[:n] {
		e := w.batch[i]
		code := ""
		switch {
		case err != nil:
			code = "RequestFailed"
		case aws.ToString(out.Records[i].ErrorCode) != "":
			code = aws.ToString(out.Records[i].ErrorCode)
		}
		if code == "" {
			e.done(e.res)
			continue
		}
		if code == "ProvisionedThroughputExceededException" {
			e.res.Throttled++
			throttled = true
		}
		if time.Now().After(e.deadline) || ctx.Err() != nil {
			e.res.Code, e.res.Err = code, fmt.Errorf("put record: %s after %d attempts", code, e.res.Attempts)
			e.done(e.res)
			continue
		}
		keep = append(keep, e)
	}
	keep = append(keep, w.batch[n:]...)
	w.batch = keep
	if throttled || err != nil {
		w.backoff = min(max(2*w.backoff, 20*time.Millisecond), time.Second)
	} else {
		w.backoff = 0
	}
	if err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}

// Flush implements postWriter.
func (w *sdkWriter) Flush(ctx context.Context) error {
	for len(w.batch) > 0 {
		if err := w.send(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close implements postWriter.
func (w *sdkWriter) Close(ctx context.Context) error {
	err := w.Flush(ctx)
	for _, e := range w.batch {
		e.res.Code, e.res.Err = "Closed", errors.New("writer closed before the record was stored")
		e.done(e.res)
	}
	w.batch = nil
	return err
}
