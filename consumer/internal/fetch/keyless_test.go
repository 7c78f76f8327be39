package fetch

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/internal/kinesiswire"
)

// TestKeylessRecordsDecode: records written without a partition key to an AUTO stream
// come back with PartitionKey absent (nil, not "") from GetRecords in JSON and CBOR and
// from SubscribeToShard, beside records that have one.
func TestKeylessRecordsDecode(t *testing.T) {
	e := enginetest.Start(t, engine.Config{Streams: streams.Config{OnDemandShards: 1, OnDemandWindow: -1}})
	kin := enginetest.Kinesis(e)
	ctx := context.Background()
	if err := e.Streams.CreateOnDemandStream("s", 0); err != nil {
		t.Fatal(err)
	}
	arn := e.Streams.StreamARN("s")
	if _, err := kin.UpdateStreamRecordDistributionStrategy(ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{
		StreamARN: aws.String(arn), RecordDistributionStrategy: types.RecordDistributionStrategyAuto}); err != nil {
		t.Fatal(err)
	}
	if _, err := kin.PutRecords(ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(arn), Records: []types.PutRecordsRequestEntry{
		{Data: []byte("no key")}, {PartitionKey: aws.String("k"), Data: []byte("key")}}}); err != nil {
		t.Fatal(err)
	}
	check := func(how string, recs []types.Record) {
		t.Helper()
		if len(recs) != 2 || recs[0].PartitionKey != nil || recs[1].PartitionKey == nil || *recs[1].PartitionKey != "k" {
			t.Fatalf("%s: %+v", how, recs)
		}
	}
	for _, opts := range [][]func(*kinesis.Options){nil, {kinesiswire.UseCBOR}} {
		it, err := kin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamARN: aws.String(arn), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		out, err := kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		check("GetRecords", out.Records)
	}
	reg, err := kin.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("c")})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := kin.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: reg.Consumer.ConsumerARN})
		if err == nil && d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("consumer never became active")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sub, err := kin.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: reg.Consumer.ConsumerARN, ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.GetStream().Close()
	for ev := range sub.GetStream().Events() {
		if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok && len(e.Value.Records) > 0 {
			check("SubscribeToShard", e.Value.Records)
			return
		}
	}
	t.Fatalf("subscription ended without records: %v", sub.GetStream().Err())
}
