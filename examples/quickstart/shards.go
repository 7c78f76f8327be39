package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// listShardsAPI is the part of the Kinesis client the shard watcher uses.
type listShardsAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// shardWatcher follows a stream's shards through ListShards, as any Kinesis user can,
// and counts the shards that opened and closed since its first look: the splits of the
// spike made visible.
type shardWatcher struct {
	api           listShardsAPI
	stream        string
	polled        bool
	atStart       map[string]bool // every shard listed by the first poll
	closedAtStart map[string]bool // shards already closed at the first poll
	openAtStart   int
	created       map[string]bool
	closed        map[string]bool
}

func newShardWatcher(api listShardsAPI, stream string) *shardWatcher {
	return &shardWatcher{
		api: api, stream: stream,
		atStart: map[string]bool{}, closedAtStart: map[string]bool{},
		created: map[string]bool{}, closed: map[string]bool{},
	}
}

// shardCounts is the watcher's view after a poll.
type shardCounts struct {
	Open, Closed int // listed now
	AtStart      int // open at the first poll
	Created      int // shards that appeared after the first poll
	ClosedSince  int // shards that closed after the first poll
}

// Poll lists the stream's shards and updates the counts.
func (w *shardWatcher) Poll(ctx context.Context) (shardCounts, error) {
	in := &kinesis.ListShardsInput{StreamName: aws.String(w.stream)}
	var c shardCounts
	for {
		out, err := w.api.ListShards(ctx, in)
		if err != nil {
			return c, fmt.Errorf("list shards of %s: %w", w.stream, err)
		}
		for _, s := range out.Shards {
			id := aws.ToString(s.ShardId)
			open := s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil
			if open {
				c.Open++
			} else {
				c.Closed++
			}
			if !w.polled {
				w.atStart[id] = true
				if open {
					w.openAtStart++
				} else {
					w.closedAtStart[id] = true
				}
				continue
			}
			if !w.atStart[id] {
				w.created[id] = true
			}
			if !open && !w.closedAtStart[id] {
				w.closed[id] = true
			}
		}
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	w.polled = true
	c.AtStart, c.Created, c.ClosedSince = w.openAtStart, len(w.created), len(w.closed)
	return c, nil
}
