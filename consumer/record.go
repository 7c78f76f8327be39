package consumer

import (
	"time"

	"github.com/freshet/freshet/aggregation"
)

// Record is one user record delivered to a processor: a plain Kinesis record or one user
// record unpacked from a KPL (or Freshet-compressed) aggregate.
type Record struct {
	// SequenceNumber is the Kinesis record's sequence number; the user records of one
	// aggregate share it.
	SequenceNumber string
	// SubSequenceNumber is the user record's index inside its aggregate (0 for plain
	// records).
	SubSequenceNumber int64
	// PartitionKey is the user record's partition key, or empty when it has none:
	// streams with AUTO record distribution accept records without a key and return
	// them without one (HasPartitionKey). Code that routes or orders by key must treat
	// such records as keyless, not as one key "".
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key in decimal, if it had one.
	ExplicitHashKey string
	// Data is the payload. It may share memory with the other records of its aggregate;
	// the processor may keep it but must not modify it. A tagged record's tags lie in
	// Data's spare capacity (Tags reads them there), so append to a copy of Data, never
	// to Data itself.
	Data []byte
	// ApproximateArrivalTimestamp is when Kinesis accepted the (outer) record.
	ApproximateArrivalTimestamp time.Time
	// Aggregated reports that the record came out of an aggregate.
	Aggregated bool
	// tagBytes is the size of the record's tags after Data (aggregation.TagsOf). It
	// fills the padding after Aggregated: untagged records carry no tag field.
	tagBytes uint32
}

// NewRecord returns the Record a worker delivers for the user record u of the Kinesis
// record with the given sequence number and arrival time, tags included: for
// processors' tests, and for code that de-aggregates records itself.
func NewRecord(sequenceNumber string, arrival time.Time, u *aggregation.UserRecord) Record {
	return Record{
		SequenceNumber: sequenceNumber, SubSequenceNumber: u.SubSequenceNumber, PartitionKey: u.PartitionKey,
		ExplicitHashKey: u.ExplicitHashKey, Data: u.Data, ApproximateArrivalTimestamp: arrival, Aggregated: u.Aggregated,
		tagBytes: uint32(u.TagsSize()),
	}
}

// HasPartitionKey reports whether the record carries a partition key. Kinesis keys are
// at least one character long, so an empty PartitionKey always means none.
func (r *Record) HasPartitionKey() bool { return r.PartitionKey != "" }

// Tags returns the user record's KPL tags, nil when it has none (always for a plain
// Kinesis record, and for a record whose Data was replaced). A Freshet producer carries
// its Record.Tags here; its tracing puts a W3C trace context in them, which the
// OpenTelemetry module's processor links each record's span to. They are decoded from
// the aggregate on each call (aggregation.TagsOf), so a record without tags costs
// nothing for them.
func (r *Record) Tags() []Tag { return aggregation.TagsOf(r.Data, int(r.tagBytes)) }

// Tag is one key and value of a user record's tags (aggregation.Tag).
type Tag = aggregation.Tag

// ShardInfo identifies the shard a processor works on.
type ShardInfo struct {
	// StreamName is the stream the shard belongs to.
	StreamName string
	// StreamARN is the stream's ARN when known.
	StreamARN string
	// ShardID is the shard's ID.
	ShardID string
	// LeaseKey is the shard's key in the lease table: the shard ID for a single-stream
	// application, account:stream:creationEpoch:shardId in multi-stream mode.
	LeaseKey string
	// ParentShardIDs are the shard's parents (none, one after a split, two after a merge).
	ParentShardIDs []string
	// StartingHashKey and EndingHashKey are the shard's hash key range in decimal, as
	// its lease records it; both empty when the lease does not say.
	StartingHashKey, EndingHashKey string
	// AutoDistribution reports that the stream used AUTO record distribution when the
	// worker started: the service places records on any shard whatever their key, so
	// records of one key are spread over shards (no per-key order across them), some
	// have no key, and the hash key range filter (WithHashKeyRangeFilter) is not applied.
	AutoDistribution bool
}
