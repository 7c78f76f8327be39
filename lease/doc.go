// Package lease keeps the shared state that lets a fleet of consumer workers divide a
// stream's shards: the lease table, the coordinator-state table (leader lock, migration
// state) and the worker-metrics table, in the formats Java KCL 3.x writes, so Go and Java
// workers can share or take over one application.
//
// In the consumer's data flow, shard sync creates one Lease per shard (CreateLeases, with
// parents recorded); every worker runs a Coordinator that renews the leases it holds
// (fencing by lease counter, never by clocks), discovers leases assigned to it and notices
// graceful handoffs; one worker wins the leader lock (LeaderElector) and its Assigner gives
// unassigned and expired leases to live workers and rebalances load (Plan, a pure function
// over lease throughput and worker CPU reported by the Reporter) by graceful handoff; the
// shard consumer of each held lease checkpoints through the Store, which implements
// checkpoint.Store.
//
// A lease expires when its counter stays unchanged for the failover time on the
// observer's own clock (ExpiryTracker). Every conditional failure surfaces as a typed
// *Error wrapping a sentinel: ErrLeaseLost for the holder's writes (renew, checkpoint,
// release), ErrConflict for writes based on an observation that is no longer current
// (take, evict, handoff), ErrNotFound for missing leases.
//
// Two table layouts are supported, chosen by Tables: the three tables of KCL 3.0-3.4
// (<app>, <app>-CoordinatorState, <app>-WorkerMetricStats) and the single table of
// KCL 3.5, where the coordinator state and worker metrics live in the lease table and are
// told apart by the entityType attribute.
package lease
