// Package checkpoint holds the positions a consumer records in the lease table and the
// Checkpointer handed to record processors.
//
// In the consumer's data flow a shard consumer fetches records for a leased shard,
// delivers them to a RecordProcessor and tells the shard's Checkpointer what it delivered;
// the processor then checkpoints: every record up to the checkpoint is processed and will
// not be delivered again after a restart or a lease move. A checkpoint is a Value: a
// sequence number (decimal, up to 128 bits, compared numerically) and a sub-sequence
// number for records inside a KPL aggregate, or one of the sentinels TRIM_HORIZON, LATEST,
// AT_TIMESTAMP and SHARD_END that Java KCL also writes.
//
// The Checkpointer enforces the promises of the design: a checkpoint never moves
// backwards, never passes the last delivered record, is a conditional write that succeeds
// only for the lease's owner (ErrLeaseLost otherwise, with nothing written), supports a
// two-phase Prepare/Commit with application state, and records SHARD_END once the shard's
// end has been delivered. Package lease stores the values; its *lease.Store implements
// Store.
package checkpoint
