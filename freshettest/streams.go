package freshettest

import (
	"context"
	"fmt"
	"time"

	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/internal/hashkey"
)

// Stream describes a stream to create.
type Stream struct {
	// Name is the stream name.
	Name string
	// Shards is the shard count of a PROVISIONED stream (at least 1); ignored when
	// OnDemand is set.
	Shards int
	// OnDemand creates an ON_DEMAND stream: 4 shards to start, split when hot and
	// merged when cold after each minute of observed traffic.
	OnDemand bool
	// WarmThroughputMiBps pre-scales an ON_DEMAND stream for this much write throughput
	// (On-Demand Advantage); 0 for none.
	WarmThroughputMiBps int
}

// CreateStream creates a stream and waits until it is ACTIVE or ctx ends.
func (e *Engine) CreateStream(ctx context.Context, s Stream) error {
	var err error
	switch {
	case s.OnDemand:
		err = e.e.Streams.CreateOnDemandStream(s.Name, s.WarmThroughputMiBps)
	case s.WarmThroughputMiBps != 0:
		return fmt.Errorf("%w: warm throughput on a PROVISIONED stream", ErrInvalidOption)
	default:
		err = e.e.Streams.CreateStream(s.Name, s.Shards)
	}
	if err != nil {
		return serviceErr(err)
	}
	return e.WaitForStream(ctx, s.Name)
}

// DeleteStream deletes a stream and its consumers.
func (e *Engine) DeleteStream(name string) error { return serviceErr(e.e.Streams.DeleteStream(name)) }

// WaitForStream waits until the stream is ACTIVE (not CREATING or UPDATING). It fails
// at once when the stream does not exist or is being deleted, and with ctx's error when
// ctx ends first.
func (e *Engine) WaitForStream(ctx context.Context, name string) error {
	for {
		status, err := e.e.Streams.StreamStatus(name)
		if err != nil {
			return serviceErr(err)
		}
		switch status {
		case "ACTIVE":
			return nil
		case "DELETING":
			return &ServiceError{Code: "ResourceNotFoundException", Message: "Stream " + name + " is being deleted"}
		}
		t := time.NewTimer(2 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// SplitShard splits an open shard so that its second child starts at
// newStartingHashKey (a decimal hash key, as in the SplitShard API), then waits until
// the stream is ACTIVE again.
func (e *Engine) SplitShard(ctx context.Context, stream, shardID, newStartingHashKey string) error {
	k, err := hashkey.Parse(newStartingHashKey)
	if err != nil {
		return fmt.Errorf("%w: new starting hash key %q: %v", ErrInvalidOption, newStartingHashKey, err)
	}
	if err := e.e.Streams.SplitShard(stream, shardID, k); err != nil {
		return serviceErr(err)
	}
	return e.WaitForStream(ctx, stream)
}

// MergeShards merges two adjacent open shards, then waits until the stream is ACTIVE
// again.
func (e *Engine) MergeShards(ctx context.Context, stream, shardID, adjacentShardID string) error {
	if err := e.e.Streams.MergeShards(stream, shardID, adjacentShardID); err != nil {
		return serviceErr(err)
	}
	return e.WaitForStream(ctx, stream)
}

// UpdateShardCount reshapes a PROVISIONED stream to target uniform shards, with the
// service's rules (within half and double the open shards), then waits until the
// stream is ACTIVE again.
func (e *Engine) UpdateShardCount(ctx context.Context, stream string, target int) error {
	if err := e.e.Streams.UpdateShardCount(stream, target); err != nil {
		return serviceErr(err)
	}
	return e.WaitForStream(ctx, stream)
}

// Shard describes one shard of a stream.
type Shard struct {
	// ID is the shard ID, e.g. "shardId-000000000003".
	ID string
	// ParentID and AdjacentParentID name the shards it was split or merged from.
	ParentID, AdjacentParentID string
	// StartingHashKey and EndingHashKey bound its hash-key range (decimal).
	StartingHashKey, EndingHashKey string
	// StartingSequenceNumber is its first sequence number; EndingSequenceNumber its
	// last, set once the shard is closed.
	StartingSequenceNumber, EndingSequenceNumber string
	// Open reports whether the shard still takes writes.
	Open bool
	// Records is the number of records it holds within retention.
	Records int
}

// Shards lists a stream's shards still within retention, by shard ID.
func (e *Engine) Shards(stream string) ([]Shard, error) {
	in, err := e.e.Streams.Shards(stream)
	if err != nil {
		return nil, serviceErr(err)
	}
	out := make([]Shard, len(in))
	for i, s := range in {
		out[i] = Shard{ID: s.ID, ParentID: s.ParentID, AdjacentParentID: s.AdjacentParentID,
			StartingHashKey: s.HashKeyRange.Start.String(), EndingHashKey: s.HashKeyRange.End.String(),
			StartingSequenceNumber: s.StartingSequenceNumber, EndingSequenceNumber: s.EndingSequenceNumber,
			Open: s.Open, Records: s.Records}
	}
	return out, nil
}

// Record is a record as the stream stored it. A KPL-aggregated record is stored (and
// returned here) as one aggregate; de-aggregate it with the aggregation package.
type Record struct {
	// ShardID is the shard that holds it.
	ShardID string
	// SequenceNumber is its sequence number.
	SequenceNumber string
	// PartitionKey is its partition key.
	PartitionKey string
	// Data is its data (a copy).
	Data []byte
	// ArrivalTime is when the stream accepted it.
	ArrivalTime time.Time
}

// Records returns every record of a stream still within retention: shard by shard in
// shard-ID order, in sequence order within a shard.
func (e *Engine) Records(stream string) ([]Record, error) {
	in, err := e.e.Streams.Records(stream)
	return records(in, err)
}

// ShardRecords returns the records of one shard still within retention, in sequence
// order.
func (e *Engine) ShardRecords(stream, shardID string) ([]Record, error) {
	in, err := e.e.Streams.ShardRecords(stream, shardID)
	return records(in, err)
}

func records(in []streams.Record, err error) ([]Record, error) {
	if err != nil {
		return nil, serviceErr(err)
	}
	out := make([]Record, len(in))
	for i, r := range in {
		out[i] = Record{ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, PartitionKey: r.PartitionKey, Data: r.Data, ArrivalTime: r.ArrivalTime}
	}
	return out, nil
}

// StreamCounters counts the Kinesis service's activity since the engine started.
type StreamCounters struct {
	// RecordsIn and BytesIn count stored records and their partition-key plus data
	// bytes, including GhostRecords.
	RecordsIn, BytesIn int64
	// RecordsOut and BytesOut count records and data bytes returned by GetRecords and
	// subscriptions.
	RecordsOut, BytesOut int64
	// ThrottledRequests counts calls throttled entirely or in part; ThrottledRecords
	// counts PutRecord(s) entries refused by limits or forced throttling.
	ThrottledRequests, ThrottledRecords int64
	// FaultedEntries counts PutRecords entries failed by PutRecordsEntryFaults;
	// GhostRecords those of them that were stored anyway.
	FaultedEntries, GhostRecords int64
	// Splits and Merges count shard splits and merges, whatever caused them.
	Splits, Merges int64
}

// StreamCounters returns the current counters.
func (e *Engine) StreamCounters() StreamCounters {
	c := e.e.Streams.Counters()
	return StreamCounters{RecordsIn: c.RecordsIn, BytesIn: c.BytesIn, RecordsOut: c.RecordsOut, BytesOut: c.BytesOut,
		ThrottledRequests: c.ThrottledRequests, ThrottledRecords: c.ThrottledRecords,
		FaultedEntries: c.FaultedEntries, GhostRecords: c.GhostRecords, Splits: c.Splits, Merges: c.Merges}
}
