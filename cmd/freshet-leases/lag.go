package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/checkpoint"
)

// lagMeaning is printed under the lease table and in the JSON document.
const lagMeaning = "age of the first record after the checkpoint (now minus its arrival time), " +
	"read with one GetShardIterator and one GetRecords (Limit 1) per shard; 0 when nothing " +
	"follows the checkpoint or the shard is done; approximate (clock skew), and the service's " +
	"MillisBehindLatest when the read returns no record but reports the shard behind"

// kinesisReader is the part of *kinesis.Client lag uses.
type kinesisReader interface {
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, opts ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// lagOf fills LagMillis or LagNote of every lease, reading at most concurrency shards at
// once. Failures are recorded per lease as notes; they never fail the listing.
func lagOf(ctx context.Context, kc kinesisReader, stream string, leases []leaseInfo, concurrency int, now func() time.Time) {
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i := range leases {
		l := &leases[i]
		name := stream
		if l.StreamIdentifier != "" {
			name = streamNameOf(l.StreamIdentifier)
		}
		in, ms, note := iteratorFor(l, name)
		if in == nil {
			l.LagMillis, l.LagNote = ms, note
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.LagMillis, l.LagNote = readLag(ctx, kc, in, now)
		}()
	}
	wg.Wait()
}

// streamNameOf returns the stream name of a multi-stream identifier
// (account:stream:creationEpoch).
func streamNameOf(id string) string {
	parts := strings.Split(id, ":")
	if len(parts) == 3 {
		return parts[1]
	}
	return id
}

// iteratorFor returns the iterator request reading the first record after l's
// checkpoint, or, when no read is needed or possible, the lag (possibly nil) and a note.
func iteratorFor(l *leaseInfo, stream string) (*kinesis.GetShardIteratorInput, *int64, string) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(l.ShardID)}
	switch cp := l.Checkpoint; {
	case cp == "":
		return nil, nil, "no checkpoint"
	case cp == checkpoint.SentinelShardEnd:
		zero := int64(0)
		return nil, &zero, "done"
	case cp == checkpoint.SentinelLatest:
		return nil, nil, "LATEST: starts at the tip once processed"
	case stream == "":
		return nil, nil, "no --stream"
	case cp == checkpoint.SentinelTrimHorizon:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case cp == checkpoint.SentinelAtTimestamp:
		ts, err := time.Parse(time.RFC3339Nano, l.CheckpointTimestamp)
		if err != nil {
			return nil, nil, "AT_TIMESTAMP from the workers' configuration"
		}
		in.ShardIteratorType, in.Timestamp = types.ShardIteratorTypeAtTimestamp, aws.Time(ts)
	case l.CheckpointSubSequenceNumber > 0:
		// Part of this aggregated record is not processed yet: it is the first record.
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAtSequenceNumber, aws.String(cp)
	default:
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(cp)
	}
	return in, nil, ""
}

func readLag(ctx context.Context, kc kinesisReader, in *kinesis.GetShardIteratorInput, now func() time.Time) (*int64, string) {
	it, err := kc.GetShardIterator(ctx, in)
	if err != nil {
		return nil, describeErr(err)
	}
	if it.ShardIterator == nil {
		return nil, "no shard iterator"
	}
	out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
	if err != nil {
		return nil, describeErr(err)
	}
	var ms int64
	switch {
	case len(out.Records) > 0 && out.Records[0].ApproximateArrivalTimestamp != nil:
		ms = max(now().Sub(*out.Records[0].ApproximateArrivalTimestamp).Milliseconds(), 0)
	case out.MillisBehindLatest != nil && *out.MillisBehindLatest > 0:
		return out.MillisBehindLatest, "MillisBehindLatest"
	}
	return &ms, ""
}

// describeErr turns a Kinesis error into a short note.
func describeErr(err error) string {
	var nf *types.ResourceNotFoundException
	var thr *types.ProvisionedThroughputExceededException
	var api smithy.APIError
	switch {
	case errors.As(err, &nf):
		return "stream or shard not found"
	case errors.As(err, &thr):
		return "throttled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timed out"
	case errors.As(err, &api):
		return api.ErrorCode()
	}
	return err.Error()
}
