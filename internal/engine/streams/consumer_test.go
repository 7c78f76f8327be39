package streams_test

import (
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
// and at the end of a split parent the last event carries the child shards.
func TestSubscribeToShard(t *testing.T) {
	v := newEnv(t, streams.Config{SubscribeHeartbeat: 20 * time.Millisecond})
	v.create(t, "s", 1)
	arn := v.e.Streams.StreamARN("s")
	c := must(v.k.RegisterStreamConsumer(v.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("c")}))(t).Consumer
	v.putN(t, "s", 3)
	var got []string
	var lastCont string
	subscribe := func() *kinesis.SubscribeToShardEventStream {
		pos := &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}
		if lastCont != "" {
			pos = &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(lastCont)}
		}
		return must(v.k.SubscribeToShard(v.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: c.ConsumerARN, ShardId: aws.String(shard0), StartingPosition: pos}))(t).GetStream()
	}
	stream := subscribe()
	defer func() { stream.Close() }()
	var children []types.ChildShard
	deadline := time.After(20 * time.Second)
	split := false
	resubscribed := 0
	for children == nil {
		select {
		case ev, ok := <-stream.Events():
			if !ok {
				if closedConn(stream.Err()) && resubscribed < 5 {
					resubscribed++
					stream.Close()
					stream = subscribe()
					continue
				}
				t.Fatalf("stream ended early: %v", stream.Err())
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
			children = e.ChildShards
			if len(got) == 3 && !split {
				v.putN(t, "s", 2)
			}
			if len(got) == 5 && !split {
				split = true
				if err := v.e.Streams.SplitShard("s", shard0, mustKey(t, "170141183460469231731687303715884105728")); err != nil {
					t.Fatal(err)
				}
			}
		case <-deadline:
			t.Fatalf("timed out with %v", got)
		}
	}
	if len(got) != 5 || got[0] != "v0" || got[4] != "v1" || len(children) != 2 {
		t.Fatalf("records %v, children %+v (resubscribed %d times)", got, children, resubscribed)
	}
	select {
	case _, ok := <-stream.Events():
		if ok {
			t.Fatal("event after the shard ended")
		}
	case <-deadline:
		t.Fatal("stream not closed after shard end")
	}
	if err := stream.Err(); err != nil && !closedConn(err) {
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
				if err := stream.Err(); err != nil && !closedConn(err) {
					t.Fatal(err)
				}
				return
			}
		case <-timeout:
			t.Fatal("subscription did not end after its duration")
		}
	}
}
