package fetch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/retrypolicy"
)

type fakeStream struct {
	ch  chan types.SubscribeToShardEventStream
	err error
}

func (s *fakeStream) Events() <-chan types.SubscribeToShardEventStream { return s.ch }
func (s *fakeStream) Close() error                                     { return nil }
func (s *fakeStream) Err() error                                       { return s.err }

// fakeSubscriber serves subscriptions from a fakeShard: each subscription sends up to
// perSub events of two records each, then ends (as Kinesis does after five minutes), or
// fails with failAfter's error.
type fakeSubscriber struct {
	sh        *fakeShard
	perSub    int
	mu        sync.Mutex
	starts    []string
	failFirst error
	dupFirst  bool // each subscription re-sends the record before its start
}

func (f *fakeSubscriber) Subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (EventStream, error) {
	f.mu.Lock()
	f.starts = append(f.starts, string(in.StartingPosition.Type)+":"+aws.ToString(in.StartingPosition.SequenceNumber))
	if f.failFirst != nil {
		err := f.failFirst
		f.failFirst = nil
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	it, err := f.sh.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{ShardIteratorType: in.StartingPosition.Type, StartingSequenceNumber: in.StartingPosition.SequenceNumber})
	if err != nil {
		return nil, err
	}
	s := &fakeStream{ch: make(chan types.SubscribeToShardEventStream)}
	go func() {
		defer close(s.ch)
		iter := it.ShardIterator
		for i := 0; i < f.perSub && iter != nil; i++ {
			out, err := f.sh.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(2)})
			if err != nil {
				s.err = err
				return
			}
			recs := out.Records
			if f.dupFirst && i == 0 && in.StartingPosition.Type == types.ShardIteratorTypeAfterSequenceNumber {
				f.sh.mu.Lock()
				prev := f.sh.recs[f.sh.index(*in.StartingPosition.SequenceNumber)]
				f.sh.mu.Unlock()
				recs = append([]types.Record{prev}, recs...)
			}
			ev := types.SubscribeToShardEvent{Records: recs, MillisBehindLatest: out.MillisBehindLatest, ChildShards: out.ChildShards}
			if out.NextShardIterator != nil {
				last := aws.ToString(in.StartingPosition.SequenceNumber)
				if len(out.Records) > 0 {
					last = *out.Records[len(out.Records)-1].SequenceNumber
				}
				ev.ContinuationSequenceNumber = aws.String(last)
			}
			select {
			case s.ch <- &types.SubscribeToShardEventStreamMemberSubscribeToShardEvent{Value: ev}:
			case <-ctx.Done():
				return
			}
			iter = out.NextShardIterator
		}
	}()
	return s, nil
}

func TestFanOutResubscribesAndEnds(t *testing.T) {
	tests := []struct {
		name      string
		failFirst error
		dup       bool
	}{
		{"plain", nil, false},
		{"first subscribe fails", apiErr("InternalFailure"), false},
		{"resubscription repeats a record", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := &fakeShard{closed: true, children: []types.ChildShard{{ShardId: aws.String("c")}}}
			sh.add(11)
			sub := &fakeSubscriber{sh: sh, perSub: 2, failFirst: tt.failFirst, dupFirst: tt.dup}
			f, err := NewFanOut(context.Background(), sub, FanOutConfig{
				ConsumerARN: "arn:c", ShardID: "shardId-000000000000",
				Start: Position{Type: types.ShardIteratorTypeTrimHorizon},
				Retry: NewPolicy(retrypolicy.Backoff{Min: time.Millisecond, Max: time.Millisecond}, retrypolicy.Backoff{}),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, ended, _ := drain(t, f, 100)
			if !ended || !equal(got, want(0, 11)) {
				t.Fatalf("ended=%v got %v", ended, got)
			}
			sub.mu.Lock()
			defer sub.mu.Unlock()
			if len(sub.starts) < 3 {
				t.Fatalf("subscriptions %v, want resubscriptions", sub.starts)
			}
			if last := sub.starts[len(sub.starts)-1]; last != "AFTER_SEQUENCE_NUMBER:"+seq(7) {
				t.Fatalf("last subscription at %s", last)
			}
		})
	}
}

func TestFanOutLifetimeResubscribes(t *testing.T) {
	sh := &fakeShard{}
	sh.add(3)
	sub := &fakeSubscriber{sh: sh, perSub: 1000}
	f, err := NewFanOut(context.Background(), sub, FanOutConfig{
		ConsumerARN: "arn:c", ShardID: "s", Start: Position{Type: types.ShardIteratorTypeTrimHorizon},
		Lifetime: 20 * time.Millisecond, Retry: NewPolicy(retrypolicy.Backoff{Min: time.Millisecond, Max: time.Millisecond}, retrypolicy.Backoff{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _, _ := drain(t, f, 3)
	if !equal(got, want(0, 3)) {
		t.Fatalf("got %v", got)
	}
	waitFor(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if b, err := f.Next(ctx); err == nil && len(b.Records) > 0 {
			t.Errorf("record re-delivered after resubscription: %v", *b.Records[0].SequenceNumber)
		}
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.starts) >= 2
	})
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.starts[1] != "AFTER_SEQUENCE_NUMBER:"+seq(2) {
		t.Fatalf("resubscribed at %s", sub.starts[1])
	}
}

func TestFanOutFatal(t *testing.T) {
	sub := &fakeSubscriber{sh: &fakeShard{}, failFirst: apiErr("ResourceNotFoundException")}
	f, err := NewFanOut(context.Background(), sub, FanOutConfig{ConsumerARN: "arn:c", ShardID: "s", Start: Position{Type: types.ShardIteratorTypeLatest}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.Next(context.Background())
	var fe *Error
	if !errors.As(err, &fe) || fe.Op != "SubscribeToShard" {
		t.Fatalf("err = %v", err)
	}
}

type fakeConsumers struct {
	mu       sync.Mutex
	exists   bool
	describe int
}

func (f *fakeConsumers) RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	if f.exists {
		return nil, apiErr("ResourceInUseException")
	}
	return &kinesis.RegisterStreamConsumerOutput{Consumer: &types.Consumer{ConsumerARN: aws.String("arn:new"), ConsumerStatus: types.ConsumerStatusCreating}}, nil
}

func (f *fakeConsumers) DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describe++
	st := types.ConsumerStatusCreating
	if f.describe >= 2 {
		st = types.ConsumerStatusActive
	}
	arn := "arn:new"
	if f.exists {
		arn = "arn:old"
	}
	return &kinesis.DescribeStreamConsumerOutput{ConsumerDescription: &types.ConsumerDescription{ConsumerARN: aws.String(arn), ConsumerStatus: st}}, nil
}

func TestRegisterConsumer(t *testing.T) {
	for _, exists := range []bool{false, true} {
		api := &fakeConsumers{exists: exists}
		arn, err := RegisterConsumer(context.Background(), api, nil, "arn:stream", "app", time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		wantARN := map[bool]string{false: "arn:new", true: "arn:old"}[exists]
		if arn != wantARN || api.describe != 2 {
			t.Fatalf("exists=%v: arn %s after %d describes", exists, arn, api.describe)
		}
	}
}
