package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/kinesiswire"
)

// TestGetRecordsCBOROnEngine reads a shard through the SDK client with kinesiswire.UseCBOR and with
// JSON and requires the same records.
func TestGetRecordsCBOROnEngine(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	kin := enginetest.Kinesis(e)
	ctx := context.Background()
	if err := e.Streams.CreateStream("s", 1); err != nil {
		t.Fatal(err)
	}
	var entries []types.PutRecordsRequestEntry
	for i := 0; i < 50; i++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte{byte(i), 0, 255, byte(i)}})
	}
	if _, err := kin.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries}); err != nil {
		t.Fatal(err)
	}
	read := func(opts ...func(*kinesis.Options)) *kinesis.GetRecordsOutput {
		it, err := kin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		out, err := kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(100)}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	j, c := read(), read(kinesiswire.UseCBOR)
	if len(c.Records) != 50 || len(j.Records) != 50 {
		t.Fatalf("cbor %d records, json %d, want 50", len(c.Records), len(j.Records))
	}
	for i := range j.Records {
		a, b := j.Records[i], c.Records[i]
		if *a.SequenceNumber != *b.SequenceNumber || *a.PartitionKey != *b.PartitionKey || !bytes.Equal(a.Data, b.Data) ||
			a.ApproximateArrivalTimestamp.UnixMilli() != b.ApproximateArrivalTimestamp.UnixMilli() {
			t.Fatalf("record %d: json %+v, cbor %+v", i, a, b)
		}
	}
	if c.NextShardIterator == nil || c.MillisBehindLatest == nil {
		t.Fatalf("cbor output %+v", c)
	}
	// Errors keep their codes.
	_, err := kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("bogus")}, kinesiswire.UseCBOR)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() == "" {
		t.Fatalf("bogus iterator over CBOR: %v", err)
	}
}
