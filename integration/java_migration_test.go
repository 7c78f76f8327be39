package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/integration/peers"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
)

// The migration tests hand one application from Java KCL 3.x to Freshet and back, each
// continuing from the other's checkpoints in the other's tables.

const (
	migrationKeys     = 200
	migrationPerPhase = 10_000
	migrationFailover = 5 * time.Second
)

// storedCheckpoints returns each lease's checkpoint of application app, in the layout
// Java KCL 3.5 would find, and that layout.
func storedCheckpoints(ctx context.Context, t *testing.T, db *dynamodb.Client, app string) (map[string]checkpoint.Value, lease.Tables) {
	t.Helper()
	tables, err := lease.DetectTables(ctx, db, app)
	if err != nil {
		t.Fatal(err)
	}
	s, err := lease.NewStore(db, tables)
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]checkpoint.Value{}
	for _, l := range all {
		if l.CheckpointOwner != "" {
			t.Errorf("lease %s still in a handoff from %s after its owner stopped", l.Key, l.CheckpointOwner)
		}
		out[l.Shard()] = l.Checkpoint
	}
	return out, tables
}

// replayCheck counts the records the second application delivered of those the first
// one had delivered (ids below firstIDs) and fails t for any at or before the first
// one's stored checkpoint of its shard: the second continues after that checkpoint,
// never before it.
type replayCheck struct {
	mu        sync.Mutex
	t         *testing.T
	firstIDs  int64
	stored    map[string]checkpoint.Value
	redone    int
	badReplay []string
}

func (r *replayCheck) add(shard, seq string, sub int64, data []byte) {
	g, ok := parseGen(data)
	if !ok || g.id >= r.firstIDs {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.redone++
	cp := r.stored[shard]
	if cp.IsSentinel() || cp.IsZero() {
		return
	}
	v, err := checkpoint.At(seq, sub)
	if err != nil {
		r.badReplay = append(r.badReplay, fmt.Sprintf("%s: %v", shard, err))
		return
	}
	if v.Compare(cp) <= 0 {
		r.badReplay = append(r.badReplay, fmt.Sprintf("record %d at %s/%d on %s, checkpointed at %s", g.id, seq, sub, shard, cp))
	}
}

func (r *replayCheck) check() {
	r.t.Helper()
	if len(r.badReplay) > 0 {
		r.t.Fatalf("%d records delivered again at or before the checkpoint they were in, first %v", len(r.badReplay), r.badReplay[:min(3, len(r.badReplay))])
	}
}

// runFreshet runs a Freshet worker of app on stream until every one of n records is in
// ledger (within d), calls running (when not nil) and stops it gracefully. onRecord sees
// each delivery first.
func runFreshet(t *testing.T, e *engine.Engine, kin *kinesis.Client, app, stream, id string, ledger *idLedger, n int, d time.Duration,
	onRecord func(shard, seq string, sub int64, data []byte), running func()) {
	t.Helper()
	handler := consumer.HandlerFunc(func(ctx context.Context, shard consumer.ShardInfo, recs []consumer.Record) error {
		for _, r := range recs {
			if onRecord != nil {
				onRecord(shard.ShardID, r.SequenceNumber, r.SubSequenceNumber, r.Data)
			}
			ledger.add(shard.ShardID, r.PartitionKey, r.SequenceNumber, r.SubSequenceNumber, r.Data)
		}
		return nil
	})
	w, err := consumer.New(app, kin, enginetest.DynamoDB(e), handler, consumer.WithStream(stream, consumer.TrimHorizon()),
		consumer.WithWorkerID(id), consumer.WithFailoverTime(migrationFailover))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	start := time.Now()
	waitLedger(t, ledger, n, d, func() string { return fmt.Sprintf("Freshet worker holds %v", w.HeldLeases()) })
	t.Logf("Freshet worker %s delivered %d records in %v", id, n, time.Since(start).Round(time.Millisecond))
	if running != nil {
		running()
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// runJava runs a Java KCL worker of app until every one of n records is in ledger
// (within d), then stops it gracefully (SIGTERM: final checkpoints). onRecord sees
// each delivery first.
func runJava(t *testing.T, cfg peers.KCLConfig, ledger *idLedger, n int, d time.Duration, onRecord func(shard, seq string, sub int64, data []byte)) {
	t.Helper()
	start := time.Now()
	w := peers.StartKCL(t, cfg)
	seen := 0
	feed := func() {
		recs := w.Records()
		for _, r := range recs[seen:] {
			if onRecord != nil {
				onRecord(r.Shard, r.Sequence, r.SubSequence, r.Data)
			}
			ledger.add(r.Shard, r.PartitionKey, r.Sequence, r.SubSequence, r.Data)
		}
		seen = len(recs)
	}
	deadline := time.Now().Add(d)
	for ledger.distinct() < n && time.Now().Before(deadline) && !w.Exited() {
		time.Sleep(100 * time.Millisecond)
		feed()
	}
	if ledger.distinct() < n {
		w.Kill()
		t.Fatalf("Java KCL delivered %d of %d records\nstderr:\n%s", ledger.distinct(), n, w.Stderr())
	}
	t.Logf("Java worker %s delivered %d records in %v", cfg.WorkerID, n, time.Since(start).Round(time.Millisecond))
	w.Stop(t)
	t.Logf("Java worker %s stopped %v after its start", cfg.WorkerID, time.Since(start).Round(time.Millisecond))
	feed()
	if bad := w.Malformed(); len(bad) > 0 {
		t.Fatalf("Java worker wrote %d malformed lines, first %q", len(bad), bad[0])
	}
	for _, ev := range w.Events() {
		if ev.Event == "checkpoint-failed" {
			t.Errorf("Java checkpoint failed on %s: %s", ev.Shard, ev.Detail)
		}
	}
}

// migration is a migration test's engine, with a stream named after the application
// holding the first phase's records, and the ledger of deliveries.
type migration struct {
	e      *engine.Engine
	kin    *kinesis.Client
	db     *dynamodb.Client
	ctx    context.Context
	perKey []int64
	ledger *idLedger
}

func startMigration(t *testing.T, app string) *migration {
	t.Helper()
	e, kin := javaEngine(t, app, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	m := &migration{e: e, kin: kin, db: enginetest.DynamoDB(e), ctx: ctx, perKey: make([]int64, migrationKeys),
		ledger: newLedger(migrationKeys, true)}
	produceGen(ctx, t, kin, app, 0, migrationPerPhase, migrationKeys, m.perKey)
	return m
}

// TestMigrationJavaToFreshet: a Java KCL 3.x application on the three-table layout
// consumes a stream, checkpointing after every batch, and stops gracefully; a default
// Freshet worker of the same application finds the three tables and continues from the
// Java checkpoints: every record delivered, per-key order kept across the move, and
// nothing the Java worker had checkpointed delivered again.
func TestMigrationJavaToFreshet(t *testing.T) {
	const app = "migrate-j2f"
	m := startMigration(t, app)
	e, kin, db, ctx, ledger := m.e, m.kin, m.db, m.ctx, m.ledger
	stream := app
	runJava(t, peers.KCLConfig{WorkerID: "java-1", App: app, Stream: stream, Endpoint: e.TLSURL(), ThreeTable: true,
		FailoverTime: migrationFailover}, ledger, migrationPerPhase, time.Minute, nil)
	stored, tables := storedCheckpoints(ctx, t, db, app)
	if tables.SingleTable || tables.CoordinatorState != app+"-CoordinatorState" {
		t.Fatalf("Java KCL left layout %+v, want its three tables", tables)
	}

	// The stream goes on while no one reads it.
	produceGen(ctx, t, kin, stream, migrationPerPhase, migrationPerPhase, migrationKeys, m.perKey)
	replays := &replayCheck{t: t, firstIDs: migrationPerPhase, stored: stored}
	s, err := lease.NewStore(db, tables)
	if err != nil {
		t.Fatal(err)
	}
	// While it runs, Freshet's worker-metrics row is in <app>-WorkerMetricStats, beside
	// Java's: it uses Java's tables.
	var rows []lease.WorkerMetrics
	runFreshet(t, e, kin, app, stream, "freshet-1", ledger, 2*migrationPerPhase, time.Minute, replays.add, func() {
		if rows, err = s.ListWorkerMetrics(ctx); err != nil {
			t.Fatal(err)
		}
	})
	replays.check()
	dups := ledger.check(t, 2*migrationPerPhase, false)
	if dups != replays.redone {
		t.Fatalf("%d duplicate deliveries, %d of them by Freshet of Java's records", dups, replays.redone)
	}
	ids := map[string]bool{}
	for _, r := range rows {
		ids[r.WorkerID] = true
	}
	if !ids["freshet-1"] {
		t.Fatalf("Freshet's worker metrics not in %s: %+v", tables.WorkerMetrics, rows)
	}
	if _, after := storedCheckpoints(ctx, t, db, app); after != tables {
		t.Fatalf("layout changed from %+v to %+v", tables, after)
	}
	t.Logf("Java delivered %d records and stopped; Freshet continued with %d more, re-delivering %d of Java's (after Java's checkpoints)",
		migrationPerPhase, migrationPerPhase, replays.redone)
}

// TestMigrationFreshetToJava is the reverse on the single-table layout a new application
// gets: a default Freshet worker consumes and stops gracefully; a Java KCL 3.5 worker of
// the same application continues from Freshet's checkpoints.
func TestMigrationFreshetToJava(t *testing.T) {
	const app = "migrate-f2j"
	m := startMigration(t, app)
	e, kin, db, ctx, ledger := m.e, m.kin, m.db, m.ctx, m.ledger
	stream := app
	runFreshet(t, e, kin, app, stream, "freshet-1", ledger, migrationPerPhase, time.Minute, nil, nil)
	stored, tables := storedCheckpoints(ctx, t, db, app)
	if !tables.SingleTable {
		t.Fatalf("a new Freshet application has layout %+v, want KCL 3.5's single table", tables)
	}

	produceGen(ctx, t, kin, stream, migrationPerPhase, migrationPerPhase, migrationKeys, m.perKey)
	replays := &replayCheck{t: t, firstIDs: migrationPerPhase, stored: stored}
	runJava(t, peers.KCLConfig{WorkerID: "java-1", App: app, Stream: stream, Endpoint: e.TLSURL(),
		FailoverTime: migrationFailover}, ledger, 2*migrationPerPhase, time.Minute, replays.add)
	replays.check()
	dups := ledger.check(t, 2*migrationPerPhase, false)
	if dups != replays.redone {
		t.Fatalf("%d duplicate deliveries, %d of them by Java of Freshet's records", dups, replays.redone)
	}
	if _, after := storedCheckpoints(ctx, t, db, app); after != tables {
		t.Fatalf("layout changed from %+v to %+v", tables, after)
	}
	t.Logf("Freshet delivered %d records and stopped; Java continued with %d more, re-delivering %d of Freshet's (after Freshet's checkpoints)",
		migrationPerPhase, migrationPerPhase, replays.redone)
}
