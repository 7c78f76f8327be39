package streams_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
)

func TestSmoke(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	k := kinesis.NewFromConfig(e.AWSConfig(), func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	_, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	var entries []types.PutRecordsRequestEntry
	for i := 0; i < 10; i++ {
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(fmt.Sprint("d", i)), PartitionKey: aws.String(fmt.Sprint("k", i))})
	}
	out, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d %s %s", *out.FailedRecordCount, *out.Records[0].SequenceNumber, *out.Records[0].ShardId)
	ls, err := k.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, sh := range ls.Shards {
		it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		gr, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatal(err)
		}
		total += len(gr.Records)
		for _, r := range gr.Records {
			t.Logf("%s %s %s %v", *r.PartitionKey, r.Data, *r.SequenceNumber, r.ApproximateArrivalTimestamp)
		}
	}
	if total != 10 {
		t.Fatal(total)
	}
	d, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *d.StreamDescriptionSummary)
}
