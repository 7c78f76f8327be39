package main

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// fakeShards serves ListShards from a list, two shards per page.
type fakeShards struct {
	shards []types.Shard
	err    error
}

func (f *fakeShards) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	start := 0
	if in.NextToken != nil {
		if in.StreamName != nil {
			return nil, errors.New("NextToken with StreamName")
		}
		for start < len(f.shards) && aws.ToString(f.shards[start].ShardId) != *in.NextToken {
			start++
		}
	}
	end := min(start+2, len(f.shards))
	out := &kinesis.ListShardsOutput{Shards: f.shards[start:end]}
	if end < len(f.shards) {
		out.NextToken = f.shards[end].ShardId
	}
	return out, nil
}

func shard(id string, closed bool) types.Shard {
	r := &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}
	if closed {
		r.EndingSequenceNumber = aws.String("9")
	}
	return types.Shard{ShardId: aws.String(id), SequenceNumberRange: r}
}

func TestShardWatcherCountsSplits(t *testing.T) {
	f := &fakeShards{shards: []types.Shard{shard("old", true), shard("a", false), shard("b", false), shard("c", false)}}
	w := newShardWatcher(f, "s")
	ctx := context.Background()
	c, err := w.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c != (shardCounts{Open: 3, Closed: 1, AtStart: 3}) {
		t.Fatalf("first poll %+v", c)
	}
	// a splits into a1 and a2; then a1 splits again.
	f.shards = []types.Shard{shard("old", true), shard("a", true), shard("b", false), shard("c", false), shard("a1", false), shard("a2", false)}
	if c, _ = w.Poll(ctx); c != (shardCounts{Open: 4, Closed: 2, AtStart: 3, Created: 2, ClosedSince: 1}) {
		t.Fatalf("after a split %+v", c)
	}
	f.shards = append(f.shards[:4:4], shard("a1", true), shard("a2", false), shard("a11", false), shard("a12", false))
	if c, _ = w.Poll(ctx); c != (shardCounts{Open: 5, Closed: 3, AtStart: 3, Created: 4, ClosedSince: 2}) {
		t.Fatalf("after a second split %+v", c)
	}
	f.err = errors.New("boom")
	if _, err := w.Poll(ctx); err == nil {
		t.Fatal("no error from a failing ListShards")
	}
}
