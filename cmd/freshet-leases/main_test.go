package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/internal/cli"
	"github.com/freshet/freshet/internal/cli/clitest"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
)

// TestMain isolates the tests' AWS configuration; with FRESHET_LEASES_MAIN=1 the test binary
// runs main instead, for exit-status tests.
func TestMain(m *testing.M) { clitest.Main(m, "FRESHET_LEASES_MAIN", main) }

// fixture is an engine with an application's tables.
type fixture struct {
	t     *testing.T
	e     *engine.Engine
	db    *dynamodb.Client
	kc    *kinesis.Client
	store *lease.Store
	app   string
}

func newFixture(t *testing.T, app string, single bool) *fixture {
	t.Helper()
	e := enginetest.Start(t, engine.Config{})
	f := &fixture{t: t, e: e, db: enginetest.DynamoDB(e), kc: enginetest.Kinesis(e), app: app}
	tables := lease.DefaultTables(app)
	if single {
		tables = lease.SingleTableLayout(app)
	}
	s, err := lease.NewStore(f.db, tables, lease.WithTablePollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTables(context.Background(), lease.TableSettings{ActiveTimeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	f.store = s
	return f
}

type result struct {
	stdout, stderr string
	err            error
}

// run runs the command against the fixture's engine. sleep replaces the failover wait
// (nil: the test fails if replay waits).
func (f *fixture) run(stdin string, sleep func(ctx context.Context, d time.Duration) error, now time.Time, args ...string) result {
	f.t.Helper()
	if sleep == nil {
		sleep = func(context.Context, time.Duration) error {
			f.t.Error("unexpected liveness wait")
			return nil
		}
	}
	if now.IsZero() {
		now = time.Now()
	}
	var out, errOut bytes.Buffer
	e := env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, now: func() time.Time { return now }, sleep: sleep}
	full := append([]string{"--endpoint", f.e.URL(), "--app", f.app}, args...)
	err := run(context.Background(), full, e)
	return result{stdout: out.String(), stderr: errOut.String(), err: err}
}

func (f *fixture) createStream(name string, shards int32) {
	f.t.Helper()
	ctx := context.Background()
	if _, err := f.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		f.t.Fatal(err)
	}
	for i := 0; ; i++ {
		out, err := f.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			f.t.Fatal(err)
		}
		if out.StreamDescriptionSummary.StreamStatus == "ACTIVE" {
			return
		}
		if i > 500 {
			f.t.Fatalf("stream %s not active", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// put writes n records to shard (by explicit hash key) and returns their sequence
// numbers.
func (f *fixture) put(stream, hashKey string, n int) []string {
	f.t.Helper()
	var seqs []string
	for i := 0; i < n; i++ {
		out, err := f.kc.PutRecord(context.Background(), &kinesis.PutRecordInput{
			StreamName: aws.String(stream), Data: []byte(fmt.Sprintf("r%d", i)),
			PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(hashKey),
		})
		if err != nil {
			f.t.Fatal(err)
		}
		seqs = append(seqs, *out.SequenceNumber)
	}
	return seqs
}

func (f *fixture) putLease(l lease.Lease) {
	f.t.Helper()
	if ok, err := f.store.CreateIfAbsent(context.Background(), l); err != nil || !ok {
		f.t.Fatalf("create lease %s: %v, %v", l.Key, ok, err)
	}
}

func (f *fixture) get(key string) lease.Lease {
	f.t.Helper()
	l, err := f.store.Get(context.Background(), key)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

// own makes worker the owner of key, as the leader would.
func (f *fixture) own(key, worker string) lease.Lease {
	f.t.Helper()
	l, err := f.store.Take(context.Background(), f.get(key), worker)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

func (f *fixture) listJSON(now time.Time, args ...string) report {
	f.t.Helper()
	r := f.run("", nil, now, append(args, "list", "--json")...)
	if r.err != nil {
		f.t.Fatalf("list --json: %v\n%s", r.err, r.stderr)
	}
	var rep report
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		f.t.Fatalf("decode list --json: %v\n%s", err, r.stdout)
	}
	return rep
}

func leaseByKey(t *testing.T, rep report, key string) leaseInfo {
	t.Helper()
	for _, l := range rep.Leases {
		if l.Key == key {
			return l
		}
	}
	t.Fatalf("lease %s not listed in %+v", key, rep.Leases)
	return leaseInfo{}
}

func workerByID(t *testing.T, rep report, id string) workerInfo {
	t.Helper()
	for _, w := range rep.Workers {
		if w.WorkerID == id {
			return w
		}
	}
	t.Fatalf("worker %s not listed in %+v", id, rep.Workers)
	return workerInfo{}
}

const (
	shard0 = "shardId-000000000000"
	shard1 = "shardId-000000000001"
	// Hash keys inside the first and second half of a two-shard stream.
	lowHashKey  = "1"
	highHashKey = "340282366920938463463374607431768211455"
)

func TestListFreshetTables(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprintf("single-table=%v", single), func(t *testing.T) {
			f := newFixture(t, "orders-app", single)
			ctx := context.Background()
			f.createStream("orders", 2)
			seq0 := f.put("orders", lowHashKey, 3)
			seq1 := f.put("orders", highHashKey, 2)

			f.putLease(lease.Lease{Key: shard0, Checkpoint: checkpoint.Value{SequenceNumber: seq0[0]}})
			f.putLease(lease.Lease{Key: shard1, Checkpoint: checkpoint.Value{SequenceNumber: seq1[1]}, ParentShardIDs: []string{"shardId-000000000009"}})
			f.putLease(lease.Lease{Key: "shardId-000000000002", Checkpoint: checkpoint.ShardEnd})
			held := f.own(shard0, "worker-a")
			held.ThroughputKBps = 12.5
			renewed, err := f.store.Renew(ctx, held)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.store.WritePendingCheckpoint(ctx, renewed, checkpoint.Value{SequenceNumber: seq0[1]}, []byte("state")); err != nil {
				t.Fatal(err)
			}
			f.own(shard1, "worker-b")
			now := time.Now()
			if err := f.store.PutWorkerMetrics(ctx, lease.WorkerMetrics{WorkerID: "worker-a", LastUpdate: now.Add(-5 * time.Second),
				Stats: map[string][]float64{lease.MetricCPU: {40, 60}}, OperatingRange: map[string][]int64{lease.MetricCPU: {100}}}); err != nil {
				t.Fatal(err)
			}
			el, err := lease.NewLeaderElector(f.store, "worker-a")
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := el.Tick(ctx); err != nil || !ok {
				t.Fatalf("leader tick = %v, %v", ok, err)
			}

			// An hour from now, the first record after shard 0's checkpoint is at least an
			// hour old; nothing follows shard 1's checkpoint.
			later := now.Add(time.Hour)
			rep := f.listJSON(later, "--stream", "orders")
			if rep.Layout.SingleTable != single || rep.Layout.LeaseTable != "orders-app" {
				t.Errorf("layout = %+v, want single %v", rep.Layout, single)
			}
			if len(rep.Leases) != 3 {
				t.Fatalf("leases = %+v", rep.Leases)
			}
			l0 := leaseByKey(t, rep, shard0)
			if l0.Owner != "worker-a" || l0.Counter != held.Counter+2 || l0.Checkpoint != seq0[0] || l0.ThroughputKBps != 12.5 ||
				l0.PendingCheckpoint != seq0[1] || l0.PendingCheckpointStateBytes != 5 {
				t.Errorf("lease 0 = %+v", l0)
			}
			if l0.LagMillis == nil || *l0.LagMillis < time.Hour.Milliseconds() {
				t.Errorf("lease 0 lag = %v (%s), want at least an hour", l0.LagMillis, l0.LagNote)
			}
			l1 := leaseByKey(t, rep, shard1)
			if l1.Owner != "worker-b" || len(l1.ParentShardIDs) != 1 || l1.LagMillis == nil || *l1.LagMillis != 0 {
				t.Errorf("lease 1 = %+v (lag %v)", l1, l1.LagMillis)
			}
			if l2 := leaseByKey(t, rep, "shardId-000000000002"); l2.Checkpoint != checkpoint.SentinelShardEnd || l2.Owner != "" || l2.LagMillis == nil || *l2.LagMillis != 0 || l2.LagNote != "done" {
				t.Errorf("lease 2 = %+v", l2)
			}
			wa := workerByID(t, rep, "worker-a")
			if !wa.HasMetrics || wa.CPUPercent == nil || *wa.CPUPercent != 50 || wa.Leases != 1 || !wa.IsLeader ||
				wa.OperatingRange[lease.MetricCPU][0] != 100 || wa.LastUpdateAgeSecs == nil || *wa.LastUpdateAgeSecs < 3600 {
				t.Errorf("worker-a = %+v", wa)
			}
			if wb := workerByID(t, rep, "worker-b"); wb.HasMetrics || wb.Leases != 1 || wb.IsLeader {
				t.Errorf("worker-b = %+v", wb)
			}
			if rep.Leader == nil || rep.Leader.Owner != "worker-a" || rep.Leader.Released {
				t.Errorf("leader = %+v", rep.Leader)
			}
			if rep.ClientVersion == nil || rep.ClientVersion.Value != string(lease.ClientVersion3x) {
				t.Errorf("client version = %+v", rep.ClientVersion)
			}
			if single && (rep.TableMigration == nil || rep.TableMigration.Value != string(lease.TableMigrationComplete)) {
				t.Errorf("table migration = %+v", rep.TableMigration)
			}

			r := f.run("", nil, later, "--stream", "orders", "list")
			if r.err != nil {
				t.Fatalf("list: %v\n%s", r.err, r.stderr)
			}
			t.Logf("list output:\n%s", r.stdout)
			for _, want := range []string{shard0, shard1, "worker-a", "worker-b", seq0[0], seq0[1] + " +5B state",
				"shardId-000000000009", "12.5", "SHARD_END", "0s (done)", "1h0m", "CPU<=100", "no metrics", "Leader: worker-a",
				"Client version: CLIENT_VERSION_3X", "LAG: age of the first record"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("list output lacks %q:\n%s", want, r.stdout)
				}
			}
		})
	}
}

func TestListWithoutStreamSaysLagUnknown(t *testing.T) {
	f := newFixture(t, "app-nolag", false)
	f.putLease(lease.Lease{Key: shard0, Checkpoint: checkpoint.TrimHorizon})
	f.putLease(lease.Lease{Key: shard1, Checkpoint: checkpoint.Latest})
	rep := f.listJSON(time.Time{})
	if l := leaseByKey(t, rep, shard0); l.LagMillis != nil || l.LagNote != "no --stream" {
		t.Errorf("lease 0 lag = %v, %q", l.LagMillis, l.LagNote)
	}
	if l := leaseByKey(t, rep, shard1); l.LagMillis != nil || !strings.Contains(l.LagNote, "LATEST") {
		t.Errorf("lease 1 lag = %v, %q", l.LagMillis, l.LagNote)
	}
	// A missing stream is a per-lease note, not a failure.
	rep = f.listJSON(time.Time{}, "--stream", "no-such-stream")
	if l := leaseByKey(t, rep, shard0); l.LagMillis != nil || l.LagNote != "stream or shard not found" {
		t.Errorf("lease 0 lag on a missing stream = %v, %q", l.LagMillis, l.LagNote)
	}
	if rep.Leader != nil || len(rep.Workers) != 0 {
		t.Errorf("leader %+v, workers %+v; want none", rep.Leader, rep.Workers)
	}
	r := f.run("", nil, time.Time{}, "list")
	if r.err != nil || !strings.Contains(r.stdout, "unknown (no --stream)") || !strings.Contains(r.stdout, "Leader: none") {
		t.Errorf("list = %v\n%s", r.err, r.stdout)
	}
}

// TestListJavaItems lists items shaped as Java KCL 3.x writes them, written with the SDK.
func TestListJavaItems(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprintf("single-table=%v", single), func(t *testing.T) {
			f := newFixture(t, "java-app", single)
			ctx := context.Background()
			S := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
			N := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberN{Value: v} }
			L := func(v ...string) ddbtypes.AttributeValue {
				l := &ddbtypes.AttributeValueMemberL{}
				for _, n := range v {
					l.Value = append(l.Value, N(n))
				}
				return l
			}
			t0 := f.store.Tables()
			leaseItem := map[string]ddbtypes.AttributeValue{
				"leaseKey": S("shardId-000000000007"), "leaseOwner": S("java-worker-1"), "leaseCounter": N("99"),
				"ownerSwitchesSinceCheckpoint": N("2"), "checkpoint": S("49590338271490256608559692538361571095921575989136588898"),
				"checkpointSubSequenceNumber": N("3"), "pendingCheckpointState": N("0"),
				"parentShardId":   &ddbtypes.AttributeValueMemberSS{Value: []string{"shardId-000000000001", "shardId-000000000002"}},
				"startingHashKey": S("0"), "endingHashKey": S("1000"), "throughputKBps": N("2.25"),
			}
			metricsItem := map[string]ddbtypes.AttributeValue{
				"lut": N(fmt.Sprint(time.Now().Unix())),
				"sts": &ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{"C": L("10", "30")}},
				"opr": &ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{"C": L("100")}},
			}
			leaderItem := map[string]ddbtypes.AttributeValue{
				"ownerName": S("java-worker-1"), "leaseDuration": S("120000"), "recordVersionNumber": S("6b7b2d4e-5f11-4c6c-9d1e-0e1f2a3b4c5d"),
			}
			metricsTable, stateTable := t0.WorkerMetrics, t0.CoordinatorState
			if single {
				leaseItem["entityType"] = S("LEASE")
				metricsItem["leaseKey"], metricsItem["entityType"] = S("java-worker-1"), S("WORKER_METRIC_STATS")
				leaderItem["leaseKey"], leaderItem["entityType"] = S("Leader"), S("LEADER")
				metricsTable, stateTable = t0.Lease, t0.Lease
			} else {
				metricsItem["wid"] = S("java-worker-1")
				leaderItem["key"] = S("Leader")
			}
			for table, item := range map[string]map[string]ddbtypes.AttributeValue{t0.Lease: leaseItem} {
				if _, err := f.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range []struct {
				table string
				item  map[string]ddbtypes.AttributeValue
			}{{metricsTable, metricsItem}, {stateTable, leaderItem}} {
				if _, err := f.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(p.table), Item: p.item}); err != nil {
					t.Fatal(err)
				}
			}

			rep := f.listJSON(time.Time{}, "--layout", "auto")
			if rep.Layout.SingleTable != single {
				t.Errorf("detected single table %v, want %v", rep.Layout.SingleTable, single)
			}
			if len(rep.Leases) != 1 {
				t.Fatalf("leases = %+v", rep.Leases)
			}
			l := rep.Leases[0]
			if l.Key != "shardId-000000000007" || l.Owner != "java-worker-1" || l.Counter != 99 || l.OwnerSwitchesSinceCheckpoint != 2 ||
				l.CheckpointSubSequenceNumber != 3 || l.ThroughputKBps != 2.25 || len(l.ParentShardIDs) != 2 || l.PendingCheckpointStateBytes != 0 {
				t.Errorf("Java lease = %+v", l)
			}
			w := workerByID(t, rep, "java-worker-1")
			if !w.HasMetrics || w.CPUPercent == nil || *w.CPUPercent != 20 || !w.IsLeader || w.Leases != 1 {
				t.Errorf("Java worker = %+v", w)
			}
			if rep.Leader == nil || rep.Leader.LeaseDurationMillis != 120000 || rep.Leader.Owner != "java-worker-1" {
				t.Errorf("Java leader = %+v", rep.Leader)
			}
			r := f.run("", nil, time.Time{}, "list")
			if r.err != nil || !strings.Contains(r.stdout, "49590338271490256608559692538361571095921575989136588898/3") ||
				!strings.Contains(r.stdout, "lock lease duration 2m0s") {
				t.Errorf("list = %v\n%s", r.err, r.stdout)
			}
		})
	}
}

func TestReplayPositions(t *testing.T) {
	ts := time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	const seq = "49590338271490256608559692538361571095921575989136588898"
	cases := []struct {
		name   string
		single bool
		args   []string
		want   checkpoint.Value
		keys   []string // the leases expected to change
	}{
		{"trim-horizon", false, []string{"--to", "trim-horizon"}, checkpoint.TrimHorizon, []string{shard0, shard1}},
		{"TRIM_HORIZON single table", true, []string{"--to", "TRIM_HORIZON"}, checkpoint.TrimHorizon, []string{shard0, shard1}},
		{"latest one shard", false, []string{"--to", "latest", "--shard", shard1}, checkpoint.Latest, []string{shard1}},
		{"at-timestamp single table", true, []string{"--to", "at-timestamp=" + ts.Format(time.RFC3339Nano)}, checkpoint.AtTimestamp(ts), []string{shard0, shard1}},
		{"sequence with sub", false, []string{"--to", "sequence=" + seq + "/4", "--shard", shard0}, checkpoint.Value{SequenceNumber: seq, SubSequenceNumber: 4}, []string{shard0}},
		{"sequence single table", true, []string{"--to", "sequence=" + seq, "--shard", shard1}, checkpoint.Value{SequenceNumber: seq}, []string{shard1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "replay-app", tc.single)
			start := checkpoint.Value{SequenceNumber: "12345"}
			f.putLease(lease.Lease{Key: shard0, Checkpoint: start})
			f.putLease(lease.Lease{Key: shard1, Checkpoint: start, PendingCheckpoint: checkpoint.Value{SequenceNumber: "12346"}, PendingCheckpointState: []byte("x")})
			if got := f.get(shard1); got.PendingCheckpoint.IsZero() {
				t.Fatalf("lease 1 has no pending checkpoint: %+v", got)
			}
			before := map[string]lease.Lease{shard0: f.get(shard0), shard1: f.get(shard1)}
			args := append([]string{"replay", "--yes"}, tc.args...)
			if tc.single {
				args = append([]string{"--single-table"}, args...)
			}
			r := f.run("", nil, time.Time{}, args...)
			if r.err != nil {
				t.Fatalf("replay: %v\n%s%s", r.err, r.stdout, r.stderr)
			}
			changed := map[string]bool{}
			for _, k := range tc.keys {
				changed[k] = true
			}
			for _, k := range []string{shard0, shard1} {
				got := f.get(k)
				if !changed[k] {
					if got.Checkpoint != before[k].Checkpoint || got.Counter != before[k].Counter {
						t.Errorf("%s changed: %+v", k, got)
					}
					continue
				}
				if !samePosition(got.Checkpoint, tc.want) || got.Owner != "" || !got.PendingCheckpoint.IsZero() || got.Counter != before[k].Counter+1 {
					t.Errorf("%s after replay = %+v, want checkpoint %v", k, got, tc.want)
				}
				if !strings.Contains(r.stdout, k) {
					t.Errorf("output does not name %s:\n%s", k, r.stdout)
				}
			}
			if want := fmt.Sprintf("%d of %d lease(s) reset to %s", len(tc.keys), len(tc.keys), tc.want); !strings.Contains(r.stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, r.stdout)
			}
		})
	}
}

// TestReplayOwners: owners that still renew (the application runs) are refused unless
// --force; owners that stopped renewing across the failover time are cleared.
func TestReplayOwners(t *testing.T) {
	f := newFixture(t, "owned-app", false)
	start := checkpoint.Value{SequenceNumber: "777"}
	f.putLease(lease.Lease{Key: shard0, Checkpoint: start})
	f.putLease(lease.Lease{Key: shard1, Checkpoint: start})
	held := f.own(shard0, "worker-a")

	// A running worker renews during the wait.
	waits := 0
	renewing := func(ctx context.Context, d time.Duration) error {
		waits++
		if d != 250*time.Millisecond {
			t.Errorf("waited %v, want the --failover value", d)
		}
		var err error
		held, err = f.store.Renew(ctx, held)
		return err
	}
	r := f.run("", renewing, time.Time{}, "replay", "--to", "trim-horizon", "--yes", "--failover", "250ms")
	if r.err == nil || !strings.Contains(r.err.Error(), "application is running") || !strings.Contains(r.err.Error(), shard0) || waits != 1 {
		t.Fatalf("replay with a live owner = %v (waits %d)", r.err, waits)
	}
	if errors.Is(r.err, cli.ErrUsage) {
		t.Errorf("live owner reported as a usage error: %v", r.err)
	}
	if got := f.get(shard1); got.Checkpoint != start {
		t.Errorf("lease 1 changed although replay was refused: %+v", got)
	}

	// --force resets at once, without waiting.
	r = f.run("", nil, time.Time{}, "replay", "--to", "latest", "--yes", "--force", "--shard", shard0)
	if r.err != nil {
		t.Fatalf("replay --force: %v\n%s", r.err, r.stdout)
	}
	if got := f.get(shard0); got.Owner != "" || got.Checkpoint != checkpoint.Latest {
		t.Errorf("forced lease = %+v", got)
	}

	// A stopped worker's owner is cleared after one wait that sees no renewal.
	f.own(shard1, "worker-dead")
	stopped := func(context.Context, time.Duration) error { waits++; return nil }
	waits = 0
	r = f.run("", stopped, time.Time{}, "replay", "--to", "trim-horizon", "--yes")
	if r.err != nil || waits != 1 {
		t.Fatalf("replay with a stopped owner = %v (waits %d)\n%s", r.err, waits, r.stdout)
	}
	for _, k := range []string{shard0, shard1} {
		if got := f.get(k); got.Owner != "" || got.Checkpoint != checkpoint.TrimHorizon {
			t.Errorf("%s = %+v", k, got)
		}
	}
	t.Logf("replay output:\n%s%s", r.stderr, r.stdout)
	if !strings.Contains(r.stdout, "worker-dead") {
		t.Errorf("output does not show the previous owner:\n%s", r.stdout)
	}
}

func TestReplayConfirmation(t *testing.T) {
	f := newFixture(t, "confirm-app", false)
	start := checkpoint.Value{SequenceNumber: "42"}
	f.putLease(lease.Lease{Key: shard0, Checkpoint: start})

	for _, answer := range []string{"", "n\n", "no\n", "maybe\n"} {
		r := f.run(answer, nil, time.Time{}, "replay", "--to", "latest")
		if r.err == nil || !strings.Contains(r.err.Error(), "not confirmed") {
			t.Errorf("answer %q: err = %v", answer, r.err)
		}
		if !strings.Contains(r.stdout, "[y/N]") || !strings.Contains(r.stdout, "Resetting 1 lease(s) to LATEST") {
			t.Errorf("answer %q: output\n%s", answer, r.stdout)
		}
	}
	r := f.run("", nil, time.Time{}, "replay", "--to", "latest", "--dry-run")
	if r.err != nil || !strings.Contains(r.stdout, "dry run") {
		t.Errorf("dry run = %v\n%s", r.err, r.stdout)
	}
	if got := f.get(shard0); got.Checkpoint != start {
		t.Fatalf("lease changed without confirmation: %+v", got)
	}
	r = f.run("yes\n", nil, time.Time{}, "replay", "--to", "latest")
	if r.err != nil {
		t.Fatalf("confirmed replay: %v", r.err)
	}
	if got := f.get(shard0); got.Checkpoint != checkpoint.Latest {
		t.Errorf("lease after confirmed replay = %+v", got)
	}
}

func TestUsageErrors(t *testing.T) {
	f := newFixture(t, "usage-app", false)
	f.putLease(lease.Lease{Key: shard0, Checkpoint: checkpoint.TrimHorizon})
	const seq = "49590338271490256608559692538361571095921575989136588898"
	cases := []struct {
		name  string
		args  []string // after --endpoint URL --app usage-app
		usage bool
		want  string
	}{
		{"no command", nil, true, "no command"},
		{"unknown command", []string{"frobnicate"}, true, `unknown command "frobnicate"`},
		{"bad layout", []string{"--layout", "two-table", "list"}, true, "--layout"},
		{"contradictory layout", []string{"--layout", "three-table", "--single-table", "list"}, true, "contradicts"},
		{"bad app", []string{"--app", "a/b", "list"}, true, "table name"},
		{"short app", []string{"--app", "ab", "list"}, true, "3 to 255"},
		{"bad endpoint", []string{"--endpoint", "localhost:1", "list"}, true, "http://"},
		{"bad timeout", []string{"--timeout", "0s", "list"}, true, "--timeout"},
		{"unknown flag", []string{"list", "--jsn"}, true, "jsn"},
		{"list extra argument", []string{"list", "extra"}, true, "unexpected argument"},
		{"bad lag concurrency", []string{"list", "--lag-concurrency", "0"}, true, "--lag-concurrency"},
		{"replay without --to", []string{"replay"}, true, "--to is required"},
		{"replay bad position", []string{"replay", "--to", "yesterday"}, true, "want trim-horizon"},
		{"replay bad timestamp", []string{"replay", "--to", "at-timestamp=yesterday"}, true, "RFC 3339"},
		{"replay trim-horizon with value", []string{"replay", "--to", "trim-horizon=1"}, true, "takes no value"},
		{"replay bad sequence", []string{"replay", "--to", "sequence=12x", "--shard", shard0}, true, "sequence"},
		{"replay sentinel as sequence", []string{"replay", "--to", "sequence=LATEST", "--shard", shard0}, true, "decimal sequence number"},
		{"replay bad sub-sequence", []string{"replay", "--to", "sequence=1/-2", "--shard", shard0}, true, "sub-sequence"},
		{"replay sequence without shard", []string{"replay", "--to", "sequence=" + seq}, true, "exactly one --shard"},
		{"replay sequence two shards", []string{"replay", "--to", "sequence=" + seq, "--shard", shard0 + "," + shard1}, true, "exactly one --shard"},
		{"replay empty shard", []string{"replay", "--to", "latest", "--shard", ""}, true, "empty shard"},
		{"replay bad failover", []string{"replay", "--to", "latest", "--failover", "-1s"}, true, "--failover"},
		{"replay failover past timeout", []string{"--timeout", "5s", "replay", "--to", "latest", "--failover", "10s"}, true, "shorter than --timeout"},
		{"replay unknown shard", []string{"replay", "--to", "latest", "--shard", "shardId-000000000099"}, true, "no lease for --shard shardId-000000000099"},
		{"missing application", []string{"--app", "no-such-app", "list"}, false, `lease table "no-such-app" not found`},
		{"missing application replay", []string{"--app", "no-such-app", "replay", "--to", "latest"}, false, "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.run("", nil, time.Time{}, tc.args...)
			if r.err == nil {
				t.Fatalf("no error; stdout:\n%s", r.stdout)
			}
			if errors.Is(r.err, cli.ErrUsage) != tc.usage {
				t.Errorf("usage error = %v, want %v: %v", errors.Is(r.err, cli.ErrUsage), tc.usage, r.err)
			}
			if !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", r.err, tc.want)
			}
		})
	}
	// The global flags are also accepted after the command, and -h is not a failure.
	if r := f.run("", nil, time.Time{}, "list", "--app", "usage-app", "--json", "--lag=false"); r.err != nil || !strings.Contains(r.stdout, `"leaseKey": "shardId-000000000000"`) {
		t.Errorf("flags after the command: %v\n%s", r.err, r.stdout)
	}
	if r := f.run("", nil, time.Time{}, "replay", "-h"); !errors.Is(r.err, flag.ErrHelp) || !strings.Contains(r.stderr, "--to") {
		t.Errorf("replay -h = %v\n%s", r.err, r.stderr)
	}
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"trim-horizon", "LATEST", "at-timestamp=2025-01-02T15:04:05Z", "sequence=123/4", "sequence=", "sequence=0", "x=y", "at-timestamp=1969-01-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parsePosition(s)
		if err != nil {
			if !errors.Is(err, cli.ErrUsage) {
				t.Fatalf("parsePosition(%q) error %v is not a usage error", s, err)
			}
			return
		}
		if v.IsZero() || v.IsShardEnd() {
			t.Fatalf("parsePosition(%q) = %+v", s, v)
		}
		if !v.IsSentinel() {
			if _, err := checkpoint.ParseSequenceNumber(v.SequenceNumber); err != nil || v.SubSequenceNumber < 0 {
				t.Fatalf("parsePosition(%q) = %+v: %v", s, v, err)
			}
		}
	})
}

// TestListMultiStreamLag reads lag from the stream named in a multi-stream lease key,
// without --stream.
func TestListMultiStreamLag(t *testing.T) {
	f := newFixture(t, "multi-app", false)
	f.createStream("clicks", 1)
	seqs := f.put("clicks", lowHashKey, 2)
	id := "000000000000:clicks:1700000000"
	f.putLease(lease.Lease{Key: lease.MultiStreamKey(id, shard0), StreamIdentifier: id, ShardID: shard0,
		Checkpoint: checkpoint.Value{SequenceNumber: seqs[0]}})
	f.putLease(lease.Lease{Key: lease.MultiStreamKey(id, shard1), StreamIdentifier: id, ShardID: shard1,
		Checkpoint: checkpoint.TrimHorizon})
	rep := f.listJSON(time.Now().Add(time.Minute))
	l := leaseByKey(t, rep, id+":"+shard0)
	if l.ShardID != shard0 || l.StreamIdentifier != id || l.LagMillis == nil || *l.LagMillis < time.Minute.Milliseconds() {
		t.Errorf("multi-stream lease = %+v (lag %v)", l, l.LagMillis)
	}
	if l := leaseByKey(t, rep, id+":"+shard1); l.LagMillis != nil || l.LagNote != "stream or shard not found" {
		t.Errorf("lease of a shard the stream lacks: lag %v, %q", l.LagMillis, l.LagNote)
	}
	// --shard takes the shard ID of a multi-stream key.
	r := f.run("", nil, time.Time{}, "replay", "--to", "sequence="+seqs[1], "--shard", shard0, "--yes")
	if r.err != nil {
		t.Fatalf("replay: %v\n%s", r.err, r.stdout)
	}
	if got := f.get(id + ":" + shard0); got.Checkpoint.SequenceNumber != seqs[1] {
		t.Errorf("multi-stream lease after replay = %+v", got)
	}
}

// TestExitStatus runs main in a child process: 0 on success and for -h, 2 for command-line
// errors, 1 for failures.
func TestExitStatus(t *testing.T) {
	f := newFixture(t, "exit-app", false)
	f.putLease(lease.Lease{Key: shard0, Checkpoint: checkpoint.TrimHorizon})
	cases := []struct {
		args   []string
		status int
		stderr string
	}{
		{[]string{"--endpoint", f.e.URL(), "--app", "exit-app", "list", "--lag=false"}, 0, ""},
		{[]string{"-h"}, 0, "usage: freshet-leases"},
		{[]string{"--app", "exit-app", "list", "--bogus"}, 2, "bogus"},
		{[]string{"--endpoint", f.e.URL(), "--app", "exit-app", "replay", "--to", "sequence=1"}, 2, "exactly one --shard"},
		{[]string{"--endpoint", f.e.URL(), "--app", "missing-app", "list"}, 1, "not found"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], tc.args...)
			cmd.Env = append(os.Environ(), "FRESHET_LEASES_MAIN=1")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			status := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				status = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("status %d, stderr %q; want %d and %q", status, stderr.String(), tc.status, tc.stderr)
			}
			if tc.status == 0 && len(tc.args) > 1 && !strings.Contains(stdout.String(), shard0) {
				t.Errorf("stdout lacks the lease:\n%s", stdout.String())
			}
		})
	}
}

// TestLoopbackCredentials: with no credentials anywhere, a loopback endpoint still works.
func TestLoopbackCredentials(t *testing.T) {
	f := newFixture(t, "creds-app", false)
	f.putLease(lease.Lease{Key: shard0, Checkpoint: checkpoint.TrimHorizon})
	cmd := exec.Command(os.Args[0], "--endpoint", f.e.URL(), "--app", "creds-app", "list", "--lag=false")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID=") && !strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "FRESHET_LEASES_MAIN=1", "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), shard0) {
		t.Fatalf("list without credentials: %v\n%s", err, out)
	}
}

func TestLiveLeases(t *testing.T) {
	a := lease.Lease{Key: "a", Owner: "w", Counter: 3}
	b := lease.Lease{Key: "b", Counter: 1}
	cases := []struct {
		name          string
		before, after []lease.Lease
		want          []string
	}{
		{"unchanged", []lease.Lease{a, b}, []lease.Lease{a, b}, nil},
		{"renewed", []lease.Lease{a, b}, []lease.Lease{{Key: "a", Owner: "w", Counter: 4}, b}, []string{"a (owner w, counter 3 -> 4)"}},
		{"taken", []lease.Lease{a, b}, []lease.Lease{a, {Key: "b", Owner: "x", Counter: 2}}, []string{"b (owner x, counter 1 -> 2)"}},
		{"handoff", []lease.Lease{a}, []lease.Lease{{Key: "a", Owner: "v", CheckpointOwner: "w", Counter: 3}}, []string{"a (owner v, counter 3 -> 3)"}},
		{"created", []lease.Lease{a}, []lease.Lease{a, b}, []string{"b (created)"}},
		{"deleted", []lease.Lease{a, b}, []lease.Lease{a}, []string{"b (deleted)"}},
	}
	toMap := func(ls []lease.Lease) map[string]lease.Lease {
		m := map[string]lease.Lease{}
		for _, l := range ls {
			m[l.Key] = l
		}
		return m
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := liveLeases(toMap(tc.before), toMap(tc.after))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("liveLeases = %q, want %q", got, tc.want)
			}
		})
	}
}
