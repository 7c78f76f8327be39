package streams_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/engine/streams"
)

// TestUpdateShardCountRateAndBounds checks the service's UpdateShardCount rules: at most
// double and at least half the open shards, and at most 10 calls per stream per rolling
// 24 hours.
func TestUpdateShardCountRateAndBounds(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 2)
	update := func(n int32) error {
		_, err := v.k.UpdateShardCount(v.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(n), ScalingType: types.ScalingTypeUniformScaling})
		return err
	}
	wantCode(t, update(5), "LimitExceededException") // more than double
	first := v.clk.Now()
	for i := range 10 {
		target := int32(4)
		if i%2 == 1 {
			target = 2
		}
		if err := update(target); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		v.clk.Advance(time.Hour)
	}
	wantCode(t, update(1), "LimitExceededException") // 2 -> 1 is within bounds: the 11th call in 24 h
	err := update(4)
	wantCode(t, err, "LimitExceededException")
	if !strings.Contains(apiMessage(err), "24 hours") {
		t.Fatalf("message %q", apiMessage(err))
	}
	v.clk.Set(first.Add(24 * time.Hour)) // the first call leaves the window
	must(v.k.UpdateShardCount(v.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling}))(t)
	wantCode(t, update(1), "LimitExceededException") // below half of 4
	if got := v.e.Streams.Counters().OpenShards; got != 4 {
		t.Fatalf("open shards %d, want 4", got)
	}

	u := newEnv(t, streams.Config{UpdateShardCountLimit: -1})
	u.create(t, "s", 1)
	for i := range 12 {
		target := int32(2 - i%2)
		must(u.k.UpdateShardCount(u.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(target), ScalingType: types.ScalingTypeUniformScaling}))(t)
	}
}

// TestShardLimitOnDemandAndWarm checks that on-demand scaling and warm throughput never
// open shards beyond the account's shard limit.
func TestShardLimitOnDemandAndWarm(t *testing.T) {
	v := newEnv(t, streams.Config{ShardLimit: 6, OnDemandShards: 4, OnDemandWindow: time.Minute})
	must(v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("od"),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}))(t)
	arn := aws.String(v.e.Streams.StreamARN("od"))
	_, err := v.k.UpdateStreamWarmThroughput(v.ctx, &kinesis.UpdateStreamWarmThroughputInput{StreamARN: arn, WarmThroughputMiBps: aws.Int32(8)})
	wantCode(t, err, "LimitExceededException")
	if got := v.e.Streams.Counters().OpenShards; got != 4 {
		t.Fatalf("refused warm throughput opened shards: %d open", got)
	}
	must(v.k.UpdateStreamWarmThroughput(v.ctx, &kinesis.UpdateStreamWarmThroughputInput{StreamARN: arn, WarmThroughputMiBps: aws.Int32(5)}))(t)
	if got := v.e.Streams.Counters().OpenShards; got != 5 {
		t.Fatalf("warm throughput of 5 MiB/s: %d open shards, want 5", got)
	}
	// Every shard throttled in the window makes every shard hot; only one split fits.
	if err := v.e.Streams.ThrottleStream("od", true); err != nil {
		t.Fatal(err)
	}
	v.putRecordsIgnoringFailures(t, "od", 200)
	if err := v.e.Streams.ThrottleStream("od", false); err != nil {
		t.Fatal(err)
	}
	v.clk.Advance(time.Minute)
	v.e.Streams.Maintain()
	c := v.e.Streams.Counters()
	if c.OpenShards != 6 || c.Splits != 2 {
		t.Fatalf("after a hot window: %d open shards, %d splits; want 6 and 2 (one warm, one hot)", c.OpenShards, c.Splits)
	}
	lim := must(v.k.DescribeLimits(v.ctx, &kinesis.DescribeLimitsInput{}))(t)
	if *lim.OpenShardCount != 6 {
		t.Fatalf("DescribeLimits open shards %d", *lim.OpenShardCount)
	}
	wantCode(t, func() error {
		_, err := v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("p"), ShardCount: aws.Int32(1)})
		return err
	}(), "LimitExceededException")
	must(v.k.DeleteStream(v.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("od")}))(t)
	if got := v.e.Streams.Counters().OpenShards; got != 0 {
		t.Fatalf("after delete: %d open shards", got)
	}
	v.create(t, "p", 6)
}

// putRecordsIgnoringFailures writes n records under distinct keys and ignores per-entry
// failures.
func (v *env) putRecordsIgnoringFailures(t *testing.T, stream string, n int) {
	t.Helper()
	var entries []types.PutRecordsRequestEntry
	for i := range n {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("key-" + string(rune('a'+i%26)) + string(rune('a'+i/26))), Data: []byte("x")})
	}
	must(v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries}))(t)
}

// TestAtTimestampInFuture checks that GetShardIterator refuses a timestamp after the
// service's clock, as the service does, and that SubscribeToShard starts such a
// subscription at the tip of the shard.
func TestAtTimestampInFuture(t *testing.T) {
	v := newEnv(t, streams.Config{SubscribeHeartbeat: 10 * time.Millisecond})
	v.create(t, "s", 1)
	v.put(t, "s", "k", "before")
	now := v.clk.Now()
	future := now.Add(time.Second)
	_, err := v.k.GetShardIterator(v.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shard0),
		ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: &future})
	wantCode(t, err, "InvalidArgumentException")
	if !strings.Contains(apiMessage(err), "cannot be greater than the currentTimestampInMillis") {
		t.Fatalf("message %q", apiMessage(err))
	}
	recs, _ := v.readAll(t, v.iter(t, "s", shard0, types.ShardIteratorTypeAtTimestamp, nil, &now))
	if len(recs) != 1 {
		t.Fatalf("AT_TIMESTAMP now: %d records, want 1", len(recs))
	}

	c := must(v.k.RegisterStreamConsumer(v.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(v.e.Streams.StreamARN("s")), ConsumerName: aws.String("c")}))(t).Consumer
	stream := must(v.k.SubscribeToShard(v.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: c.ConsumerARN, ShardId: aws.String(shard0),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(now.Add(time.Hour))}}))(t).GetStream()
	defer stream.Close()
	<-stream.Events() // the subscription runs
	v.put(t, "s", "k", "after")
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-stream.Events():
			if !ok {
				t.Fatalf("subscription ended: %v", stream.Err())
			}
			e := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value
			if len(e.Records) == 0 {
				continue
			}
			if len(e.Records) != 1 || string(e.Records[0].Data) != "after" {
				t.Fatalf("records %d, first %q; want only the record put after subscribing", len(e.Records), e.Records[0].Data)
			}
			return
		case <-deadline:
			t.Fatal("no record after subscribing at a future timestamp")
		}
	}
}

// TestMaxStoredBytes checks the memory cap: a call that would pass it is refused whole,
// and retention and deletion free space.
func TestMaxStoredBytes(t *testing.T) {
	v := newEnv(t, streams.Config{MaxStoredBytes: 1000})
	v.create(t, "s", 2)
	put := func(n int) error {
		_, err := v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
			{PartitionKey: aws.String("a"), Data: make([]byte, n/2-1)},
			{PartitionKey: aws.String("b"), Data: make([]byte, n/2-1)},
		}})
		return err
	}
	if err := put(600); err != nil {
		t.Fatal(err)
	}
	err := put(500)
	wantCode(t, err, "LimitExceededException")
	if !strings.Contains(apiMessage(err), "MaxStoredBytes") {
		t.Fatalf("message %q", apiMessage(err))
	}
	if err := put(400); err != nil {
		t.Fatalf("filling to the cap exactly: %v", err)
	}
	if got := v.e.Streams.Counters().StoredBytes; got != 1000 {
		t.Fatalf("stored bytes %d, want 1000", got)
	}
	if n := len(must(v.e.Streams.Records("s"))(t)); n != 4 {
		t.Fatalf("stored records %d, want 4 (the refused call stored none)", n)
	}
	_, err = v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, "LimitExceededException")

	v.clk.Advance(24*time.Hour + time.Second)
	v.e.Streams.Maintain()
	if got := v.e.Streams.Counters().StoredBytes; got != 0 {
		t.Fatalf("after retention: stored bytes %d, want 0", got)
	}
	if err := put(1000); err != nil {
		t.Fatalf("after retention: %v", err)
	}
	out := must(v.k.GetShardIterator(v.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shard0), ShardIteratorType: types.ShardIteratorTypeTrimHorizon}))(t)
	recs, _ := v.readAll(t, out.ShardIterator)
	for _, r := range recs {
		if r.ApproximateArrivalTimestamp.Before(v.clk.Now().Add(-time.Minute)) {
			t.Fatal("a record past retention is still readable")
		}
	}
	must(v.k.DeleteStream(v.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")}))(t)
	if got := v.e.Streams.Counters().StoredBytes; got != 0 {
		t.Fatalf("after delete: stored bytes %d, want 0", got)
	}
}

// TestSubscribeReadLimit checks the enhanced fan-out read limit with limits on: each
// consumer reads each shard at 2 MiB/s (with 1 s of burst); a subscription in debt sends
// only empty events until the service's clock refills it.
func TestSubscribeReadLimit(t *testing.T) {
	v := newEnv(t, streams.Config{Limits: true, WriteBytesPerSecond: 64 << 20, WriteRecordsPerSecond: 1e6, SubscribeHeartbeat: 10 * time.Millisecond})
	v.create(t, "s", 1)
	const recordBytes = 1000000
	var entries []types.PutRecordsRequestEntry
	for range 8 {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: make([]byte, recordBytes)})
	}
	if out := must(v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries}))(t); *out.FailedRecordCount != 0 {
		t.Fatalf("%d entries failed", *out.FailedRecordCount)
	}
	c := must(v.k.RegisterStreamConsumer(v.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(v.e.Streams.StreamARN("s")), ConsumerName: aws.String("c")}))(t).Consumer
	stream := must(v.k.SubscribeToShard(v.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: c.ConsumerARN, ShardId: aws.String(shard0),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}}))(t).GetStream()
	defer stream.Close()
	got := 0
	deadline := time.After(30 * time.Second)
	event := func() int {
		t.Helper()
		select {
		case ev, ok := <-stream.Events():
			if !ok {
				t.Fatalf("subscription ended after %d records: %v", got, stream.Err())
			}
			n := len(ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value.Records)
			got += n
			return n
		case <-deadline:
			t.Fatalf("timed out after %d records", got)
		}
		return 0
	}
	// The full bucket (2 MiB) admits two events of two records; the second puts it in
	// debt. Then, per second of the service's clock, two more records.
	for _, want := range []int{4, 6, 8} {
		for got < want {
			event()
		}
		if got != want {
			t.Fatalf("read %d records, want %d", got, want)
		}
		if want == 8 {
			break
		}
		for range 3 {
			if n := event(); n != 0 {
				t.Fatalf("an event of %d records while the read limit is in debt (%d read)", n, got)
			}
		}
		v.clk.Advance(time.Second)
	}
}
