package streams_test

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/engine/streams"
)

func TestStreamConsumers(t *testing.T) {
	v := newEnv(t, streams.Config{ConsumerDelay: time.Second, ConsumerLimit: 2})
	v.create(t, "s", 1)
	arn := v.e.Streams.StreamARN("s")
	c := must(v.k.RegisterStreamConsumer(v.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("c1")}))(t).Consumer
	if c.ConsumerStatus != types.ConsumerStatusCreating {
		t.Fatalf("new consumer %s", c.ConsumerStatus)
	}
	_, err := v.k.RegisterStreamConsumer(v.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("c1")})
	wantCode(t, err, "ResourceInUseException")
	_, err = v.k.SubscribeToShard(v.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: c.ConsumerARN, ShardId: aws.String(shard0), StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	wantCode(t, err, "ResourceInUseException")
	v.clk.Advance(time.Second)
	d := must(v.k.DescribeStreamConsumer(v.ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("c1")}))(t).ConsumerDescription
	if d.ConsumerStatus != types.ConsumerStatusActive || *d.StreamARN != arn || *d.ConsumerARN != *c.ConsumerARN {
		t.Fatalf("describe: %+v", d)
	}
	must(v.k.RegisterStreamConsumer(v.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("c2")}))(t)
	_, err = v.k.RegisterStreamConsumer(v.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("c3")})
	wantCode(t, err, "LimitExceededException")
	l := must(v.k.ListStreamConsumers(v.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn), MaxResults: aws.Int32(1)}))(t)
	if len(l.Consumers) != 1 || l.NextToken == nil {
		t.Fatalf("list page 1: %+v", l)
	}
	l = must(v.k.ListStreamConsumers(v.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn), NextToken: l.NextToken}))(t)
	if len(l.Consumers) != 1 || *l.Consumers[0].ConsumerName != "c2" || l.NextToken != nil {
		t.Fatalf("list page 2: %+v", l)
	}
	_, err = v.k.DeleteStream(v.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")})
	wantCode(t, err, "ResourceInUseException")
	must(v.k.DeregisterStreamConsumer(v.ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: c.ConsumerARN}))(t)
	d = must(v.k.DescribeStreamConsumer(v.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: c.ConsumerARN}))(t).ConsumerDescription
	if d.ConsumerStatus != types.ConsumerStatusDeleting {
		t.Fatalf("deregistered consumer %s", d.ConsumerStatus)
	}
	v.clk.Advance(time.Second)
	v.e.Streams.Maintain()
	_, err = v.k.DescribeStreamConsumer(v.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: c.ConsumerARN})
	wantCode(t, err, "ResourceNotFoundException")
	must(v.k.DeleteStream(v.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s"), EnforceConsumerDeletion: aws.Bool(true)}))(t)
}

// TestSubscribeToShard reads a shard through the SDK's event stream reader: records put
// before and during the subscription arrive in order with continuation sequence numbers,
// and at the end of a split parent the last event carries the child shards. Empty
// heartbeat events may come at any point and change nothing.
func TestSubscribeToShard(t *testing.T) {
	v := newEnv(t, streams.Config{SubscribeHeartbeat: 20 * time.Millisecond})
	v.create(t, "s", 1)
	arn := v.e.Streams.StreamARN("s")
	c := must(v.k.RegisterStreamConsumer(v.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("c")}))(t).Consumer
	v.putN(t, "s", 3)
	stream := must(v.k.SubscribeToShard(v.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: c.ConsumerARN, ShardId: aws.String(shard0),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}}))(t).GetStream()
	defer stream.Close()
	var got []string
	var lastCont string
	deadline := time.After(20 * time.Second)
	// next reads events until one satisfies done, and returns that event.
	next := func(what string, done func(e types.SubscribeToShardEvent) bool) types.SubscribeToShardEvent {
		t.Helper()
		for {
			select {
			case ev, ok := <-stream.Events():
				if !ok {
					t.Fatalf("stream ended waiting for %s: %v (records %v)", what, stream.Err(), got)
				}
				e := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value
				for _, r := range e.Records {
					got = append(got, string(r.Data))
				}
				if e.ContinuationSequenceNumber != nil {
					if *e.ContinuationSequenceNumber < lastCont {
						t.Fatal("continuation sequence number went backwards")
					}
					lastCont = *e.ContinuationSequenceNumber
				}
				if done(e) {
					return e
				}
			case <-deadline:
				t.Fatalf("timed out waiting for %s with records %v", what, got)
			}
		}
	}
	next("the first 3 records", func(types.SubscribeToShardEvent) bool { return len(got) >= 3 })
	v.putN(t, "s", 2)
	next("the next 2 records", func(types.SubscribeToShardEvent) bool { return len(got) >= 5 })
	if err := v.e.Streams.SplitShard("s", shard0, mustKey(t, "170141183460469231731687303715884105728")); err != nil {
		t.Fatal(err)
	}
	last := next("the child shards", func(e types.SubscribeToShardEvent) bool { return e.ChildShards != nil })
	if want := []string{"v0", "v1", "v2", "v0", "v1"}; !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	if len(last.ChildShards) != 2 || last.ContinuationSequenceNumber != nil {
		t.Fatalf("last event: children %+v, continuation %v", last.ChildShards, last.ContinuationSequenceNumber)
	}
	select {
	case _, ok := <-stream.Events():
		if ok {
			t.Fatal("event after the shard ended")
		}
	case <-deadline:
		t.Fatal("stream not closed after shard end")
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestSubscriptionEndsAfterDuration(t *testing.T) {
	v := newEnv(t, streams.Config{SubscriptionDuration: time.Minute, SubscribeHeartbeat: 10 * time.Millisecond})
	v.create(t, "s", 1)
	c := must(v.k.RegisterStreamConsumer(v.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(v.e.Streams.StreamARN("s")), ConsumerName: aws.String("c")}))(t).Consumer
	out := must(v.k.SubscribeToShard(v.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: c.ConsumerARN, ShardId: aws.String(shard0),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}}))(t)
	stream := out.GetStream()
	defer stream.Close()
	<-stream.Events() // the first event proves the subscription is running
	v.clk.Advance(time.Minute)
	timeout := time.After(20 * time.Second)
	for {
		select {
		case _, ok := <-stream.Events():
			if !ok {
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				return
			}
		case <-timeout:
			t.Fatal("subscription did not end after its duration")
		}
	}
}
