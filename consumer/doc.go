// Package consumer is Freshet's Kinesis Client Library: workers that share the shards of
// one or more streams through leases, deliver every record at least once and in order per
// shard to a record processor, and shut down cleanly.
//
// Place in the data flow:
//
//	Worker.Run(ctx)
//	  shard sync (ListShards, ChildShards)   -> lease per shard (package lease)
//	  lease coordination                     -> renew, take expired leases, leader assigns
//	  per held lease: shard consumer
//	     fetcher (GetRecords polling, or SubscribeToShard enhanced fan-out)
//	     -> de-aggregation (package aggregation: KPL and Freshet-compressed aggregates)
//	     -> Processor.ProcessRecords(records, *checkpoint.Checkpointer)
//	     -> shard end: Processor.ShardEnded must checkpoint SHARD_END; children start
//	     -> lease lost: Processor.LeaseLost (no checkpoint possible)
//	     -> shutdown: Processor.ShutdownRequested (final checkpoint), lease released
//
// Promises: records of a shard reach its processor in order; every record is delivered at
// least once (a record is delivered again only after a crash, a lost lease or a processor
// error, and only from the last checkpoint); a child shard is processed only after all its
// parents are checkpointed at SHARD_END; a lost lease is noticed before the next batch is
// delivered, and a checkpoint is a conditional write that only the owner can make; a dead
// worker's shards are taken over once its leases expire (the failover time).
//
// Reading never checkpoints on its own: processors decide when to checkpoint. HandlerFunc
// builds a processor that checkpoints after every batch it handled without error.
package consumer
