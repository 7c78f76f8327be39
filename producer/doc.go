// Package producer writes user records to Amazon Kinesis Data Streams at high throughput:
// it is Freshet's equivalent of the Kinesis Producer Library (KPL), in process, with
// bounded memory, per-key ordering under retries and throttling that is adapted to
// rather than fought.
//
// # Place in the data flow
//
//	Put(ctx, rec, done) -> validate -> predict shard (MD5 of the partition key, cached, or
//	  the explicit hash key, against the shard map from ListShards)
//	  -> per-shard aggregator (KPL format via package aggregation, optional compression),
//	     or without aggregation the record's PutRecords entry encoded at once into its
//	     shard's slab (its data still in the CPU's cache; a call copies the entries)
//	  -> per-shard queue of Kinesis records
//	dispatcher goroutine: linger, per-record TTL (expired user records are taken out of
//	  their aggregates), per-shard token buckets (bytes/s and records/s, adapting to
//	  throttling) -> PutRecords calls of <= 500 records and <= 5 MiB, in CBOR by default
//	  calls that start together form a wave: each sender writes its call's KPL MD5
//	  trailers in one pass, and the wave's SigV4 body hashes are computed together
//	sender goroutines (bounded in flight) -> per-record outcome:
//	  success: done(Result) with shard ID, sequence number, sub-sequence number, attempts
//	  retryable failure: back to the front of its shard's queue, with backoff and jitter;
//	    shard map refreshed as soon as a result shows a wrong prediction, and records
//	    still buffered for a closed shard re-split by hash key
//	  final failure (TTL, non-retryable error, Close deadline): done(Result{Err: ...})
//
// Consumers (package consumer, or any KCL) read the records back and de-aggregate them.
//
// # Promises
//
//   - Every record accepted by Put resolves exactly once, through its callback (Put),
//     Future (PutAsync) or return value (PutSync). Put returns an error, and enqueues
//     nothing, for an invalid record (ErrInvalidRecord, ErrRecordTooLarge), a closed
//     producer (ErrClosed), or at the buffer bound (ctx's error, or ErrBufferFull with
//     WithFailFast).
//   - Memory is bounded by WithMaxBuffered (records and bytes, in flight included);
//     BufferedBytes reports the gauge. Beyond it the producer holds the serialized
//     bodies of the calls in flight (about the size of their records; a third more in
//     JSON), at most 32 MiB of request buffers kept for reuse and, without aggregation
//     in JSON, a third more than each buffered record's data (its entry, encoded at
//     Put, holds the data in base64).
//   - Aggregates never mix shards. When the stream reshards, records buffered for a closed
//     shard move to its successors, and records of an aggregate the service stored in a
//     shard whose range does not hold them all are written again, every one of them
//     (Java KCL drops such an aggregate whole, the records in range too), so a
//     consumer that filters by hash key range loses nothing.
//   - Records of one partition key reach the stream in Put order (by default;
//     WithOrdering(false) trades it away), even under retries and throttling: an
//     aggregating shard has one request in flight, a plain one never has two records
//     of one key in flight, and retried records stay ahead of later ones.
//   - Failures are classified by one error table shared with the consumer
//     (internal/retrypolicy) and retried by one RetryPolicy (WithRetryPolicy). A shard
//     that fails a few entries of calls it otherwise accepts (sporadic throttling or
//     internal errors) gets them retried at once, at full speed; only failures
//     sustained over a second or two slow it down or back it off.
//   - Flush waits for every record put before it; Close flushes, then fails what is left
//     at its deadline with ErrClosed and leaves no goroutine behind.
//
// The producer talks to Kinesis through Client, the subset of *kinesis.Client it uses, so
// it works unchanged against AWS, the bundled engine or a test fake. PutRecords goes
// out in the Kinesis CBOR protocol (raw blobs instead of base64) unless WithCBOR(false)
// asks for JSON. The SDK's own retries are turned off for PutRecords: the producer
// retries per record, with a retry budget of its own. Its PutRecords bodies go through
// internal/sdkhttp, which keeps the SDK from resending calls the service had already
// applied (a closed-body defect between smithy-go and net/http that stores records
// twice).
//
// # Hashing in SIMD lanes
//
// Two hashes touch every byte a producer sends: the MD5 trailer of each KPL aggregate
// and the SHA-256 of each PutRecords body that SigV4 signs. Neither can be split, but
// several can share one core's SIMD lanes (internal/lanehash: 16 messages at a time
// with AVX-512). So aggregates are drained without their trailer and each sender
// writes all of its call's trailers at once; and when more than one call's worth of
// records is ready, the dispatcher spreads them over up to one call per lane and free
// slot (none under 256 KiB), starts them together, and the last of them to finish
// serializing hashes every body of the group for the others. Records that are ready
// but not yet due wait for at least three free slots, so that groups form while the
// calls in flight finish; records past their linger, or flushed, never wait, nor do
// those of an ordered producer. A call of a group that does not reach the hash
// within 25 ms of the others (held back by a user's middleware, say) does not hold
// them up longer: they hash their own bodies. Groups form only with the SDK's own
// *kinesis.Client, which runs the producer's payload-hash step. On CPUs
// without AVX-512 (or with the SHA extensions, which crypto/sha256 uses) each call
// hashes its own body as the SDK would. The bytes sent are the same either way.
//
// Metrics keep KPL's names (UserRecordsPut, KinesisRecordsPut, BufferingTime,
// ...), are available in process with Metrics, and can be published to CloudWatch.
package producer
