// Package queue consumes a Kinesis Data Streams queue: a pool of receivers long-polls
// ReceiveQueueRecords, a bounded set of handlers processes the records, successes are
// acknowledged in batches, and records whose handler is still running get their
// visibility timeout extended so no other consumer receives them meanwhile.
//
// # Place in the data flow
//
// A queue is a delivery layer the service keeps on an ON_DEMAND stream (CreateQueue):
// it reads every shard of the stream and hands records out one by one, tracking each
// record's receives, visibility and acknowledgement, and moving a record that was
// received MaxReceiveCount times without an acknowledgement to its dead-letter records.
// Records are not ordered and are delivered at least once. Producers write to the
// stream as usual (package producer); a queue consumer replaces a KCL worker
// (package consumer) when records need no per-shard order and no checkpoints:
//
//	stream shards -> queue (service) -> Consumer receivers (long polls)
//	   -> handlers (per record or per batch, bounded in records and bytes)
//	   -> success: AcknowledgeQueueRecords, batched
//	   -> failure: left to the queue (redelivered after the visibility timeout, then a
//	      dead-letter record) or made visible at once (FailureRetryNow)
//	   -> handler still running: UpdateQueueRecordsVisibility extends it
//
// # Promises
//
// Memory is bounded: at most WithMaxInFlight records and about WithMaxInFlightBytes
// bytes are held at a time (a receive is not started without room for its records; a
// single receive of large records may pass the byte bound once). Every received
// record's fate is reported: acknowledged, failed (left or released), or, at shutdown,
// released to the queue unstarted. Run returns after a graceful shutdown that waits for
// running handlers (up to WithShutdownTimeout), acknowledges what succeeded and makes
// the records not yet started visible again. Because delivery is at least once a
// handler may see a record again (after a crash, a lost acknowledgement, or a handler
// that outlived an extension); Record.ID is stable across deliveries for idempotence.
//
// Dead-letter records are inspected, restored or acknowledged with DeadLetters, or the
// freshet-queue command.
package queue
