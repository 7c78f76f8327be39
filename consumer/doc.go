// Package consumer is Freshet's Kinesis Client Library: workers that share the shards of
// one or more streams through leases, deliver every record at least once and in order per
// shard to a record processor, and shut down cleanly.
//
// Place in the data flow:
//
//	Worker.Run(ctx)
//	  leader election (package lease, coordinator-state table)
//	  leader: shard sync (ListShards, ChildShards)  -> a lease per shard (lease.CreateLeases)
//	  leader: assignment round                      -> unassigned and expired leases taken
//	                                                   for live workers; rebalancing by
//	                                                   graceful handoff (lease.ComputePlan)
//	  every worker: renew held leases, discover assigned ones (lease.Coordinator),
//	                report worker metrics (lease.Reporter)
//	  per held lease: shard consumer
//	     fetcher (GetRecords polling, JSON or CBOR, or SubscribeToShard enhanced fan-out)
//	     -> de-aggregation (package aggregation: KPL and Freshet-compressed aggregates)
//	     -> HandlerFunc processors: lanes by partition key (WithLanes), checkpoint at
//	        the low watermark
//	     -> failure policy (WithFailurePolicy): retries with backoff, bisect, maximum
//	        record age, partial results (FailedAt) -> Destination for what exhausts it
//	     -> Processor.ProcessRecords(records, *checkpoint.Checkpointer)
//	     -> shard end: Processor.ShardEnded must checkpoint SHARD_END; children start
//	     -> lease lost: Processor.LeaseLost (no checkpoint possible)
//	     -> handoff or shutdown: Processor.ShutdownRequested (final checkpoint), then the
//	        lease is released to its next owner
//
// The model is Java KCL 3.x's: only the leader assigns leases, workers never steal. When
// the leader moves a lease to balance load it starts a graceful handoff (the lease names
// the new owner and keeps the old one as checkpoint owner); the old owner stops fetching,
// lets its processor checkpoint and releases; the new owner starts from that checkpoint.
// So a fleet whose workers neither crash nor stall delivers every record exactly once,
// however leases move. A worker that dies stops renewing; once its leases' counters have
// stood still for the failover time on the leader's clock, the leader gives them to live
// workers, which resume from the last checkpoint (re-delivering what the dead worker had
// not checkpointed). Every worker watches the lease counters, so a newly elected leader
// can act at once. The table formats are Java KCL 3.x's (three tables, or KCL 3.5's single
// table with WithLeaseTables).
//
// Promises: records of a shard reach its processor in order; every record is delivered
// at least once, and again only after a crash, a stalled worker or a processor error, and
// only from the last checkpoint; a child shard is processed only after all its parents
// are checkpointed at SHARD_END; a lost lease is noticed before the next batch is
// delivered (a worker also stops delivering when its own last renewal is older than the
// failover time), and a checkpoint is a conditional write that only the owner can make;
// a dead worker's shards are taken over after the failover time.
//
// Reading never checkpoints on its own: processors decide when to checkpoint. HandlerFunc
// builds a processor that checkpoints after every batch it handled without error.
//
// # Failing records and lanes
//
// A FailurePolicy says how often records the handler fails on are tried, with which
// backoff, whether a failing batch is bisected to isolate them, how old a record may get,
// and which Destination (NewStreamDestination: another stream; DestinationFunc: any
// function) receives a record that exhausts it, as a FailedRecord with its shard,
// sequence numbers, attempts and error; processing then goes on. The zero policy retries
// for ever. WithLanes runs a shard's HandlerFunc in parallel lanes, records routed by
// partition key so each key keeps its order. Either way a checkpoint never passes a
// record that neither succeeded nor reached the Destination. The settings are Lambda's
// Kinesis event source settings (docs/configuration.md lists each beside its Lambda
// name); examples/poison shows a dead-lettered record.
//
// # Initial positions
//
// A shard without a lease gets one at the stream's initial position: TRIM_HORIZON leases
// every shard; AT_TIMESTAMP leases every shard, closed ones included, at the timestamp;
// LATEST leases open shards at LATEST and skips closed shards, except that a shard whose
// parent is leased starts at TRIM_HORIZON, since it continues a lineage being read.
//
// # Metrics
//
// Metrics go to a metrics.Recorder given with WithMetrics (package metrics: Memory in
// process, CloudWatch batched to PutMetricData, or any backend of the user's), the design
// the producer shares, under the names Java KCL publishes, so existing dashboards and
// alarms work. Hooks (WithHooks) report the same events as typed values. The short names map to them as follows:
//
//	MillisBehindLatest   MetricMillisBehindLatest  "MillisBehindLatest" (per shard)
//	RecordsProcessed     MetricRecordsProcessed    "RecordsProcessed" (per shard, user records)
//	DataBytesProcessed   MetricDataBytesProcessed  "DataBytesProcessed" (per shard)
//	ProcessTime          MetricProcessTime         "RecordProcessor.processRecords.Time"
//	LeasesHeld           MetricLeasesHeld          "CurrentLeases" (per worker)
//	LeaseTaken           MetricLeaseTaken          "TakenLeases" (per worker: shard consumers started)
//	LeaseLost            MetricLeaseLost           "LostLeases" (per shard)
//	                     MetricLeaseRenewFailure   "RenewLease.Failure"
//	                     MetricShardEnd            "ShardEnd"
//	                     MetricRecordsRetried      "RecordsRetried" (per shard)
//	                     MetricBatchesBisected     "BatchesBisected" (per shard)
//	                     MetricRecordsToDestination "RecordsSentToDestination" (per shard)
//	                     MetricDestinationFailures "DestinationSend.Failure" (per shard)
//	                     MetricLaneQueueDepth      "LaneQueueDepth" (per shard)
//	                     MetricOldestUnfinishedAge "OldestUnfinishedRecordAge" (per shard)
//
// Shard metrics carry the ShardId dimension (and StreamId in multi-stream applications),
// worker metrics the WorkerIdentifier dimension.
package consumer
