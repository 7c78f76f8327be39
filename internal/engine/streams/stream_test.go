package streams_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/engine/streams"
)

func TestStreamLifecycleWithDelays(t *testing.T) {
	v := newEnv(t, streams.Config{CreateDelay: 2 * time.Second, UpdateDelay: time.Second, DeleteDelay: time.Second})
	v.create(t, "s", 2)
	status := func() types.StreamStatus {
		out := must(v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")}))(t)
		return out.StreamDescriptionSummary.StreamStatus
	}
	if got := status(); got != types.StreamStatusCreating {
		t.Fatalf("status %s, want CREATING", got)
	}
	_, err := v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("a"), Data: []byte("x")})
	wantCode(t, err, "ResourceNotFoundException")
	v.clk.Advance(2 * time.Second)
	if got := status(); got != types.StreamStatusActive {
		t.Fatalf("status %s, want ACTIVE", got)
	}
	must(v.k.IncreaseStreamRetentionPeriod(v.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(48)}))(t)
	if got := status(); got != types.StreamStatusUpdating {
		t.Fatalf("status %s, want UPDATING", got)
	}
	_, err = v.k.SplitShard(v.ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")})
	wantCode(t, err, "ResourceInUseException")
	v.clk.Advance(time.Second)
	must(v.k.DeleteStream(v.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")}))(t)
	if got := status(); got != types.StreamStatusDeleting {
		t.Fatalf("status %s, want DELETING", got)
	}
	v.clk.Advance(time.Second)
	_, err = v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	wantCode(t, err, "ResourceNotFoundException")
}

func TestCreateDescribeListDelete(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "a", 3)
	must(v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("b"),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}))(t)
	_, err := v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("a"), ShardCount: aws.Int32(1)})
	wantCode(t, err, "ResourceInUseException")

	d := must(v.k.DescribeStream(v.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("a")}))(t).StreamDescription
	if len(d.Shards) != 3 || *d.RetentionPeriodHours != 24 || d.StreamModeDetails.StreamMode != types.StreamModeProvisioned || *d.HasMoreShards {
		t.Fatalf("describe: %+v", d)
	}
	if *d.Shards[0].HashKeyRange.StartingHashKey != "0" || *d.Shards[2].HashKeyRange.EndingHashKey != "340282366920938463463374607431768211455" {
		t.Fatalf("hash ranges do not cover the key space: %+v", d.Shards)
	}
	page := must(v.k.DescribeStream(v.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("a"), Limit: aws.Int32(2)}))(t).StreamDescription
	if len(page.Shards) != 2 || !*page.HasMoreShards {
		t.Fatalf("limited describe: %d shards, more %v", len(page.Shards), *page.HasMoreShards)
	}
	sum := must(v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: d.StreamARN}))(t).StreamDescriptionSummary
	if *sum.OpenShardCount != 3 || *sum.StreamName != "a" || *sum.MaxRecordSizeInKiB != 1024 {
		t.Fatalf("summary by ARN: %+v", sum)
	}
	od := must(v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("b")}))(t).StreamDescriptionSummary
	if *od.OpenShardCount != 4 || od.StreamModeDetails.StreamMode != types.StreamModeOnDemand || od.WarmThroughput == nil {
		t.Fatalf("on-demand summary: %+v", od)
	}

	l1 := must(v.k.ListStreams(v.ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)}))(t)
	if len(l1.StreamNames) != 1 || !*l1.HasMoreStreams || l1.NextToken == nil || len(l1.StreamSummaries) != 1 || *l1.StreamSummaries[0].StreamARN == "" {
		t.Fatalf("list page 1: %+v", l1)
	}
	l2 := must(v.k.ListStreams(v.ctx, &kinesis.ListStreamsInput{NextToken: l1.NextToken}))(t)
	if len(l2.StreamNames) != 1 || l2.StreamNames[0] != "b" || *l2.HasMoreStreams {
		t.Fatalf("list page 2: %+v", l2)
	}
	lim := must(v.k.DescribeLimits(v.ctx, &kinesis.DescribeLimitsInput{}))(t)
	if *lim.OpenShardCount != 7 || *lim.OnDemandStreamCount != 1 {
		t.Fatalf("limits: %+v", lim)
	}
	must(v.k.DeleteStream(v.ctx, &kinesis.DeleteStreamInput{StreamARN: d.StreamARN}))(t)
	_, err = v.k.DescribeStream(v.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("a")})
	wantCode(t, err, "ResourceNotFoundException")
}

func TestShardLimit(t *testing.T) {
	v := newEnv(t, streams.Config{ShardLimit: 5})
	v.create(t, "a", 4)
	_, err := v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("b"), ShardCount: aws.Int32(2)})
	wantCode(t, err, "LimitExceededException")
	must(v.k.SplitShard(v.ctx, &kinesis.SplitShardInput{StreamName: aws.String("a"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}))(t)
	_, err = v.k.SplitShard(v.ctx, &kinesis.SplitShardInput{StreamName: aws.String("a"), ShardToSplit: aws.String("shardId-000000000001"), NewStartingHashKey: aws.String("85070591730234615865843651857942052865")})
	wantCode(t, err, "LimitExceededException")
}

func TestRetentionModeTagsRecordSize(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 1)
	arn := v.e.Streams.StreamARN("s")
	_, err := v.k.DecreaseStreamRetentionPeriod(v.ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(12)})
	wantCode(t, err, "InvalidArgumentException")
	must(v.k.IncreaseStreamRetentionPeriod(v.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamARN: aws.String(arn), RetentionPeriodHours: aws.Int32(72)}))(t)
	_, err = v.k.IncreaseStreamRetentionPeriod(v.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(48)})
	wantCode(t, err, "InvalidArgumentException")
	must(v.k.DecreaseStreamRetentionPeriod(v.ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(48)}))(t)
	_, err = v.k.IncreaseStreamRetentionPeriod(v.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(9000)})
	wantCode(t, err, "ValidationException")

	must(v.k.AddTagsToStream(v.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("s"), Tags: map[string]string{"b": "2", "a": "1", "c": "3"}}))(t)
	tags := must(v.k.ListTagsForStream(v.ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("s"), Limit: aws.Int32(2)}))(t)
	if len(tags.Tags) != 2 || *tags.Tags[0].Key != "a" || !*tags.HasMoreTags {
		t.Fatalf("tags: %+v", tags)
	}
	must(v.k.RemoveTagsFromStream(v.ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String("s"), TagKeys: []string{"a"}}))(t)
	must(v.k.TagResource(v.ctx, &kinesis.TagResourceInput{ResourceARN: aws.String(arn), Tags: map[string]string{"d": "4"}}))(t)
	must(v.k.UntagResource(v.ctx, &kinesis.UntagResourceInput{ResourceARN: aws.String(arn), TagKeys: []string{"b"}}))(t)
	rt := must(v.k.ListTagsForResource(v.ctx, &kinesis.ListTagsForResourceInput{ResourceARN: aws.String(arn)}))(t)
	if len(rt.Tags) != 2 || *rt.Tags[0].Key != "c" || *rt.Tags[1].Key != "d" {
		t.Fatalf("resource tags: %+v", rt.Tags)
	}
	many := map[string]string{}
	for i := 0; i < 49; i++ {
		many[fmt.Sprint("k", i)] = "v"
	}
	_, err = v.k.AddTagsToStream(v.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("s"), Tags: many})
	wantCode(t, err, "InvalidArgumentException")

	big := make([]byte, 2<<20)
	_, err = v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("p"), Data: big})
	wantCode(t, err, "InvalidArgumentException")
	_, err = v.k.UpdateMaxRecordSize(v.ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(arn), MaxRecordSizeInKiB: aws.Int32(20000)})
	wantCode(t, err, "ValidationException")
	must(v.k.UpdateMaxRecordSize(v.ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(arn), MaxRecordSizeInKiB: aws.Int32(10240)}))(t)
	v.put(t, "s", "p", string(big))
	recs := must(v.e.Streams.Records("s"))(t)
	if len(recs) != 1 || len(recs[0].Data) != len(big) {
		t.Fatalf("large record not stored whole: %d records", len(recs))
	}

	must(v.k.UpdateStreamMode(v.ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}))(t)
	warm := must(v.k.UpdateStreamWarmThroughput(v.ctx, &kinesis.UpdateStreamWarmThroughputInput{StreamARN: aws.String(arn), WarmThroughputMiBps: aws.Int32(6)}))(t)
	if *warm.WarmThroughput.TargetMiBps != 6 || *warm.WarmThroughput.CurrentMiBps < 6 {
		t.Fatalf("warm throughput: %+v", warm.WarmThroughput)
	}
	sum := must(v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")}))(t).StreamDescriptionSummary
	if *sum.OpenShardCount < 6 || sum.StreamModeDetails.StreamMode != types.StreamModeOnDemand {
		t.Fatalf("after warm throughput: %d open shards, mode %s", *sum.OpenShardCount, sum.StreamModeDetails.StreamMode)
	}
	_, err = v.k.UpdateShardCount(v.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(8), ScalingType: types.ScalingTypeUniformScaling})
	wantCode(t, err, "InvalidArgumentException")
}

func TestEnhancedMonitoringAndEncryption(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 1)
	out := must(v.k.EnableEnhancedMonitoring(v.ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: aws.String("s"), ShardLevelMetrics: []types.MetricsName{types.MetricsNameIncomingBytes}}))(t)
	if len(out.CurrentShardLevelMetrics) != 0 || len(out.DesiredShardLevelMetrics) != 1 {
		t.Fatalf("enable: %+v", out)
	}
	must(v.k.StartStreamEncryption(v.ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}))(t)
	p := v.put(t, "s", "k", "x")
	if p.EncryptionType != types.EncryptionTypeKms {
		t.Fatalf("put encryption %s", p.EncryptionType)
	}
}
