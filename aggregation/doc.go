// Package aggregation packs many small user records into one Kinesis record
// and unpacks them again, in the aggregated-record format of the Kinesis
// Producer Library (KPL), byte for byte, with optional compression on top.
//
// In Freshet's data flow, the producer keeps one Aggregator per predicted
// shard: Put adds user records until a count or byte limit would be exceeded,
// then Drain yields the Kinesis record that PutRecords sends. The consumer
// passes every batch GetRecords or SubscribeToShard returns through a
// Deaggregator (AppendBatch), which hands user records, with their
// sub-sequence numbers, to the record processor. Because the format is the KPL's, Freshet
// producers feed Java KCL consumers and Freshet consumers read KPL producers.
//
// # KPL aggregated record
//
// The data of an aggregated record is
//
//	F3 89 9A C2 | protobuf AggregatedRecord | MD5 of the protobuf bytes (16)
//
// with the proto2 messages
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
//	message Tag { required string key = 1; optional string value = 2; }
//
// The Aggregator writes the fields in field-number order (both tables, then
// the records), puts each distinct key in its table once in order of first
// use, always writes partition_key_index (so index 0 is "08 00"), writes
// explicit_hash_key_index only for records that have an explicit hash key,
// and writes a record's tags (Record.Tags) after its data: without tags, the
// same bytes as the KPL and aws-kinesis-agg; with tags, the bytes protobuf
// gives those messages (checked against aws-kinesis-agg's schema). An
// untagged aggregate of a single record is sent as that plain record; a
// tagged one stays an aggregate, since a plain record has no place for tags.
// Deaggregators leave each record's tags in the aggregate, in its Data's spare
// capacity, and decode them on demand (UserRecord.Tags, TagsOf), so untagged
// records pay nothing for them; the Java KCL and aws-kinesis-agg ignore them. Freshet's tracing carries a W3C trace context
// there (module github.com/freshet/freshet/otel). An aggregate of
// several is sent with partition key "a" and, as explicit hash key, the first
// user record's hash key in decimal, so it lands on the first record's shard;
// the producer only aggregates records predicted for the same shard.
//
// # Compressed frame (Freshet only)
//
// With WithCompression (and optionally WithCompressionLevel) the Aggregator
// may emit, instead of a KPL aggregate, a compressed frame (all integers
// big-endian):
//
//	offset 0: 4 bytes  magic F5 46 52 5A (0xF5, then "FRZ")
//	offset 4: 1 byte   codec: 1 zstd (one RFC 8878 frame),
//	                   2 snappy (block format), 3 gzip (one RFC 1952 member)
//	offset 5: 4 bytes  uncompressed length, uint32
//	offset 9: payload  the compressed bytes, to the end of the record
//
// The uncompressed content is always a complete KPL aggregate (magic,
// protobuf, MD5), even for a single user record, so the KPL MD5 also guards
// the decompressed bytes. A reader must check that the decompressed length
// equals the declared one and reject declared lengths above its own limit
// before decompressing. The first byte, 0xF5, never occurs in UTF-8 text and
// differs from the KPL magic's, so a Freshet consumer never confuses a frame
// with a KPL aggregate; a plain record that happens to begin with the frame
// magic is delivered as a plain record unless it also decompresses to an
// MD5-valid aggregate. A frame is emitted only when it is smaller than the
// data it replaces; the routing keys are those of the uncompressed form.
//
// The Java KCL, the KPL's deaggregator and aws-kinesis-agg cannot read
// compressed frames: to them a frame is an opaque plain record. Compression is
// therefore off by default; turn it on only when every consumer of the stream
// uses Freshet (or implements the frame above).
//
// # Resharding and the hash-range filter
//
// The Java KCL drops the whole of an aggregate that holds a user record whose
// hash key falls outside the hash key range of the shard it read the
// aggregate from, its records in range too. That pairs with the KPL, which
// re-puts every user record of an aggregate ("Wrong Shard") that lands on a
// shard other than the predicted one, so the copies left behind are
// duplicates. Freshet delivers every user record by default, since
// producers that aggregate without re-putting (aws-kinesis-agg routes an
// aggregate by its first record's partition key) would otherwise lose data;
// WithShardHashKeyRange turns the KCL behaviour on.
//
// # MD5 of a batch
//
// Checking an aggregate's MD5 costs more than decoding it: crypto/md5 runs
// at well under 1 GB/s on one core, a fraction of the decoding speed. The
// consumer de-aggregates whole GetRecords batches, so AppendBatch computes
// the MD5s of many aggregates at once, in the SIMD lanes of the calling
// goroutine's core, with internal/lanehash: on amd64 with AVX-512, 16
// aggregates advance together, each read where it lies (no copy), and a lane
// that finishes one aggregate takes the next. The batch is hashed and
// decoded in chunks of whole rounds of lanes, about 768 KiB each, so that
// each chunk is still in the core's cache when its records are decoded.
// Batches too small for lanes to pay off, CPUs without AVX-512, and
// WithSIMDChecksums(false) use crypto/md5 one aggregate at a time. Either
// way no goroutine is started, nothing is shared between Deaggregators, and
// nothing needs closing. Each record still decodes exactly as Append
// decodes it.
//
// # Sealing a PutRecords batch
//
// The producer drains aggregates one at a time, as shards fill, so Drain
// would compute one MD5 per aggregate with crypto/md5. DrainUnsealed drains
// a KPL aggregate with its MD5 trailer left zero (and reports it unsealed);
// once a PutRecords batch is assembled, one call of Seal (or Sealer.Seal)
// writes the trailers of all its unsealed aggregates, computed together in
// the SIMD lanes of one core as AppendBatch does. The sealed bytes are the
// bytes Drain would have returned. Plain single records and compressed
// frames come back from DrainUnsealed already complete.
//
// # Malformed input
//
// As in the KCL, a record that starts with a magic number but fails to decode
// (bad MD5, bad protobuf, bad frame, a decompressed size above the limit) is
// delivered whole as one plain record; Deaggregate also returns a
// *MalformedError so the caller can count or log it (AppendBatch returns a
// *BatchError listing each). Nothing of such a record is delivered partially.
package aggregation
