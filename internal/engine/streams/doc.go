// Package streams is the bundled engine's Amazon Kinesis Data Streams service: streams,
// shards, records, iterators and enhanced fan-out consumers, served over the Kinesis
// JSON 1.1 protocol (and CBOR 1.1) to unmodified aws-sdk-go-v2 kinesis.Clients.
//
// # Place in the data flow
//
// The engine's router (package engine) hands every "Kinesis_20131202.*" request to
// Service.ServeOperation after applying per-operation fault rules. Producers (the
// producer package, or any SDK client) write with PutRecord and PutRecords; records are
// routed by MD5(partition key) or explicit hash key to the open shard whose hash-key
// range holds them, and stored in per-shard append-only segments. Consumers list shards,
// take shard iterators and call GetRecords, or subscribe with SubscribeToShard and
// receive an AWS event stream. Resharding (SplitShard, MergeShards, UpdateShardCount,
// on-demand scaling) closes parents and opens children with the service's lineage, so
// a consumer that follows ChildShards sees every record exactly where the service
// would put it.
//
// # Behaviour
//
// Sequence numbers are 56-digit decimal strings that grow within a shard (and from
// parents to children). Iterators are opaque, checksummed and expire after
// Config.IteratorTTL. Retention hides and then drops records older than the stream's
// retention period, and closed shards disappear once their data has. With Config.Limits
// each shard enforces 1 MiB/s and 1,000 records/s in, 2 MiB/s and 5 calls/s out, as
// token buckets with Config.Burst of burst; excess gets
// ProvisionedThroughputExceededException (per entry in PutRecords); each enhanced
// fan-out consumer reads each shard at 2 MiB/s too. Time comes from the engine's clock,
// so tests on clock.Manual control expiry, retention, throttling and status transitions
// exactly.
//
// Requests are checked as the service checks them: values outside the API model's
// constraints (patterns, lengths, ranges) get ValidationException with the service's
// message ("1 validation error detected: Value '...' at 'member' failed to satisfy
// constraint: ..."); values within the model that the service refuses get
// InvalidArgumentException or LimitExceededException. A PutRecords call carries at most
// 500 records and 10 MiB of partition keys and data, each record within its stream's
// maximum record size. UpdateShardCount keeps within half and double the open shards
// and 10 calls per stream per rolling 24 hours; no split, whether asked for, made by
// ON_DEMAND scaling or by warm throughput, opens shards beyond Config.ShardLimit.
// GetShardIterator refuses an AT_TIMESTAMP after the service's clock, as production
// Kinesis does; SubscribeToShard starts such a subscription at the tip of the shard.
// Config.MaxStoredBytes optionally caps the stored record bytes: puts beyond it are
// refused whole (LimitExceededException) and nothing stored is dropped early.
//
// # Go API for tests
//
// Besides the wire protocol, Service offers CreateStream, SplitShard, MergeShards,
// Records, Counters, SetEntryFaults, ThrottleStream and friends, so tests can set up
// state and verify exactly what was stored, including records stored although their
// PutRecords entry reported a failure (Counters.GhostRecords).
//
// # Speed
//
// The data plane avoids reflection and per-record allocation: PutRecords and GetRecords
// bodies are parsed and written by hand, base64 is decoded straight into a per-request
// arena and copied once into the shard's segment, a stream lock is taken shared once per
// call and each shard's lock once per run of entries, and readers encode responses
// outside the shard lock from slices of immutable segment memory.
package streams
