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
// Only the leader's Assigner scans the lease table; followers read the owner index. A
// lease expires when its counter stays unchanged for the failover time on the leader's
// own clock, and a worker counts as alive only while the leader sees it renew or report. Every conditional failure surfaces as a typed
// *Error wrapping a sentinel: ErrLeaseLost for the holder's writes (renew, checkpoint,
// release), ErrConflict for writes based on an observation that is no longer current
// (take, evict, handoff), ErrNotFound for missing leases.
//
// Two table layouts are supported, chosen by Tables: the three tables of KCL 3.0-3.4
// (<app>, <app>-CoordinatorState, <app>-WorkerMetricStats) and the single table of
// KCL 3.5, where the coordinator state and worker metrics live in the lease table and are
// told apart by the entityType attribute. DetectTables finds the layout of an existing
// Java application as KCL 3.5 does. The coordinator state also holds Java's migration
// items: ClientVersionState reads the fleet's client version (a Go fleet should join only
// a fleet that runs the 3.x protocol, ClientVersion.Runs3x), TableMigrationState KCL 3.5's
// table migration; CreateTables records the final 3.x state in the tables of a new
// application.
//
// # Worker IDs and fencing
//
// Renewals, takes, evictions and handoffs are fenced by the lease counter, and so are
// checkpoints, as in Java KCL 3.x: Store.WriteCheckpoint and WritePendingCheckpoint are
// conditional on the counter of the lease held (and on its holder) and increment it. A
// worker's renewals and checkpoints of one lease therefore take turns: the Coordinator's
// Checkpointer writes with the counter of the coordinator's held lease, after any renewal
// in progress, and leaves the counter it wrote for the next renewal. A worker that lost a
// lease and holds it again never writes with the old incarnation's counter. The owner
// condition remains: a worker ID should still name one process start (NewWorkerID), so
// that logs and the owner index tell incarnations apart.
//
// # Options
//
// NewStore, NewCoordinator, NewLeaderElector, NewReporter and NewAssigner take one option
// set, Option: WithClock and WithLogger apply to all five, every other option to the
// constructors its documentation names. Give a constructor an option that does not
// apply to it and it fails with an error wrapping ErrInvalidOption that names both. The
// consumer builds all five from its own options; docs/configuration.md lists them with
// their defaults and KCL equivalents.
package lease
