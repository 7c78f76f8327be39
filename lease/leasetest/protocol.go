package leasetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/lease"
)

// RunProtocol runs the protocol tests (leader election, coordinators with the leader's
// assigner, worker metrics, shard sync, replay) against db.
func RunProtocol(t *testing.T, db lease.DynamoDBAPI) {
	t.Run("LeaderFailover", func(t *testing.T) { LeaderFailover(t, db, false) })
	t.Run("LeaderFailoverSingleTable", func(t *testing.T) { LeaderFailover(t, db, true) })
	t.Run("WorkerMetrics", func(t *testing.T) { WorkerMetrics(t, db) })
	t.Run("StaleWorkerMetrics", func(t *testing.T) { StaleWorkerMetrics(t, db, false) })
	t.Run("StaleWorkerMetricsSingleTable", func(t *testing.T) { StaleWorkerMetrics(t, db, true) })
	t.Run("Fleet", func(t *testing.T) { Fleet(t, db) })
	t.Run("HandoffAsJava", func(t *testing.T) { HandoffAsJava(t, db) })
	t.Run("ShardSync", func(t *testing.T) { ShardSync(t, db) })
	t.Run("Replay", func(t *testing.T) { Replay(t, db) })
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// LeaderFailover elects a leader among three workers, checks the lock item's shape,
// stops the leader's heartbeats and checks that another worker takes over only after the
// lock's lease duration, then that a released lock is taken at once.
func LeaderFailover(t *testing.T, db lease.DynamoDBAPI, single bool) {
	ctx := context.Background()
	s := NewStore(t, db, single)
	clk := clock.NewManual(epoch)
	var es []*lease.LeaderElector
	for i := 0; i < 3; i++ {
		e, err := lease.NewLeaderElector(s, fmt.Sprintf("w%d", i), lease.WithClock(clk),
			lease.WithLeaderLeaseDuration(20*time.Second, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	tickAll := func(alive ...int) []int {
		var leaders []int
		for _, i := range alive {
			ok, err := es[i].Tick(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				leaders = append(leaders, i)
			}
		}
		return leaders
	}
	leaders := tickAll(0, 1, 2)
	if len(leaders) != 1 || leaders[0] != 0 {
		t.Fatalf("leaders after the first round: %v, want [0]", leaders)
	}
	table, keyAttr := s.Tables().CoordinatorState, "key"
	if single {
		table, keyAttr = s.Tables().Lease, "leaseKey"
	}
	raw, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{keyAttr: &types.AttributeValueMemberS{Value: "Leader"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ownerName", "leaseDuration", "recordVersionNumber", "entityType"} {
		if _, ok := raw.Item[name].(*types.AttributeValueMemberS); !ok {
			t.Errorf("lock item attribute %s = %#v, want S", name, raw.Item[name])
		}
	}
	// Heartbeats keep the leader.
	for i := 0; i < 6; i++ {
		clk.Advance(5 * time.Second)
		if l := tickAll(0, 1, 2); len(l) != 1 || l[0] != 0 {
			t.Fatalf("round %d leaders %v", i, l)
		}
	}
	// The leader stops; others take over only after the lease duration.
	for elapsed := 5 * time.Second; elapsed < 20*time.Second; elapsed += 5 * time.Second {
		clk.Advance(5 * time.Second)
		if l := tickAll(1, 2); len(l) != 0 {
			t.Fatalf("takeover after %v, before the lease duration: %v", elapsed, l)
		}
	}
	clk.Advance(5 * time.Second)
	leaders = tickAll(1, 2)
	if len(leaders) != 1 {
		t.Fatalf("leaders after the old one died: %v", leaders)
	}
	if es[0].IsLeader() {
		t.Fatal("the silent old leader still believes it leads")
	}
	if ok, _ := es[0].Tick(ctx); ok {
		t.Fatal("the old leader regained the lock while another leads")
	}
	newLeader := leaders[0]
	if name, _ := es[newLeader].Leader(ctx); name != fmt.Sprintf("w%d", newLeader) {
		t.Fatalf("Leader() = %q", name)
	}
	// Release hands leadership over at once.
	if err := es[newLeader].Release(ctx); err != nil {
		t.Fatal(err)
	}
	if l := tickAll(0); len(l) != 1 {
		t.Fatalf("released lock not taken: %v", l)
	}
}

// WorkerMetrics writes a worker's metrics, reads an item shaped as Java writes it, and
// checks validity rules.
func WorkerMetrics(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s := NewStore(t, db, false)
	m := lease.WorkerMetrics{WorkerID: "w1", LastUpdate: epoch, Stats: map[string][]float64{"C": {10, 20.5, 30}},
		OperatingRange: map[string][]int64{"C": {100}}}
	if err := s.PutWorkerMetrics(ctx, m); err != nil {
		t.Fatal(err)
	}
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Tables().WorkerMetrics), Item: map[string]types.AttributeValue{
		"wid": &types.AttributeValueMemberS{Value: "java-worker"}, "lut": &types.AttributeValueMemberN{Value: "1767225600"},
		"sts": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberN{Value: "55.5"}, &types.AttributeValueMemberN{Value: "-1"}}}}},
		"opr": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberN{Value: "100"}}}}},
		"entityType": &types.AttributeValueMemberS{Value: "WORKER_METRIC_STATS"}, "sup": &types.AttributeValueMemberN{Value: "1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ListWorkerMetrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].WorkerID != "java-worker" || got[1].WorkerID != "w1" {
		t.Fatalf("ListWorkerMetrics = %+v", got)
	}
	if !reflect.DeepEqual(got[1], m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got[1], m)
	}
	if cpu, ok := got[1].CPU(); !ok || cpu != 20.166666666666668 {
		t.Fatalf("CPU() = %v, %v", cpu, ok)
	}
	if _, ok := got[0].CPU(); ok {
		t.Fatal("a worker whose last CPU sample failed reports CPU")
	}
	if !got[0].Valid() || !got[1].Valid() {
		t.Fatal("valid entries reported invalid")
	}
	r, err := lease.NewReporter(s, "w2", lease.WithClock(clock.NewManual(epoch)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Report(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWorkerMetrics(ctx, "java-worker"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ListWorkerMetrics(ctx)
	if len(got) != 2 || got[1].WorkerID != "w2" || len(got[1].Stats) != 0 || !got[1].LastUpdate.Equal(epoch) {
		t.Fatalf("after reporter and delete: %+v", got)
	}
}

// Fleet runs three coordinators with a leader's assigner on a manual clock: every lease
// gets exactly one owner, a fourth worker receives a fair share by graceful handoff, and
// when a worker dies its leases move to the others after the failover time.
func Fleet(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s := NewStore(t, db, false)
	clk := clock.NewManual(epoch)
	const shards = 12
	var sh []lease.Shard
	for i := 0; i < shards; i++ {
		sh = append(sh, lease.Shard{ID: fmt.Sprintf("shardId-%012d", i)})
	}
	if created, err := lease.CreateLeases(ctx, s, sh, checkpoint.TrimHorizon); err != nil || len(created) != shards {
		t.Fatalf("CreateLeases = %d, %v", len(created), err)
	}
	a, err := lease.NewAssigner(s, lease.WithClock(clk), lease.WithPlan(lease.PlanConfig{}, 1), lease.WithLeaseScanInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	coords := map[string]*lease.Coordinator{}
	reporters := map[string]*lease.Reporter{}
	add := func(id string) {
		c, err := lease.NewCoordinator(s, id, lease.WithClock(clk), lease.WithHandoffTimeout(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		r, err := lease.NewReporter(s, id, lease.WithClock(clk))
		if err != nil {
			t.Fatal(err)
		}
		coords[id], reporters[id] = c, r
	}
	for _, id := range []string{"w1", "w2", "w3"} {
		add(id)
	}
	// One step of the whole fleet: metrics, assignment, renewals and discovery; workers
	// finish requested handoffs by releasing (their processors checkpoint first).
	step := func() {
		for id, r := range reporters {
			if err := r.Report(ctx); err != nil {
				t.Fatalf("%s report: %v", id, err)
			}
		}
		if _, err := a.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		for id, c := range coords {
			// A discovered lease is renewed at once, as the leader expects.
			if _, err := c.Discover(ctx); err != nil {
				t.Fatalf("%s discover: %v", id, err)
			}
			if err := c.RenewAll(ctx); err != nil {
				t.Fatalf("%s renew: %v", id, err)
			}
			for _, h := range c.Held() {
				if h.State == lease.HandoffRequested {
					if err := c.Release(ctx, h.Lease.Key); err != nil {
						t.Fatalf("%s release: %v", id, err)
					}
				}
			}
		}
		clk.Advance(3 * time.Second)
	}
	owners := func() map[string][]string {
		out := map[string][]string{}
		for id, c := range coords {
			for _, h := range c.Held() {
				if h.State == lease.Processing {
					out[h.Lease.Key] = append(out[h.Lease.Key], id)
				}
			}
		}
		return out
	}
	counts := func() map[string]int {
		out := map[string]int{}
		for id, c := range coords {
			out[id] = len(c.Held())
		}
		return out
	}
	checkExclusive := func() {
		for key, ws := range owners() {
			if len(ws) > 1 {
				t.Fatalf("lease %s processed by %v at once", key, ws)
			}
		}
	}
	for i := 0; i < 8; i++ {
		step()
		checkExclusive()
	}
	if o := owners(); len(o) != shards {
		t.Fatalf("%d of %d leases processed: %v", len(o), shards, counts())
	}
	for id, n := range counts() {
		if n != 4 {
			t.Fatalf("worker %s holds %d leases, want 4: %v", id, n, counts())
		}
	}

	// A fourth worker joins: it gets its share by graceful handoff, with few moves.
	add("w4")
	for i := 0; i < 12; i++ {
		step()
		checkExclusive()
	}
	if c := counts(); c["w4"] != 3 || len(owners()) != shards {
		t.Fatalf("after w4 joined: %v", c)
	}

	// w2 dies: it stops renewing and reporting; its leases move after the failover time.
	delete(coords, "w2")
	delete(reporters, "w2")
	for i := 0; i < 30; i++ {
		step()
		checkExclusive()
	}
	if o := owners(); len(o) != shards {
		t.Fatalf("after w2 died, %d of %d leases processed: %v", len(o), shards, counts())
	}
	for id, n := range counts() {
		if n != 4 {
			t.Fatalf("after w2 died, worker %s holds %d leases: %v", id, n, counts())
		}
	}
}

// ShardSync creates leases for a split and cleans up the parent once the children
// started and the parent left the stream.
func ShardSync(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s := NewStore(t, db, false)
	shards := []lease.Shard{
		{ID: "shardId-0", StartingHashKey: "0", EndingHashKey: "340282366920938463463374607431768211455"},
		{ID: "shardId-1", ParentShardIDs: []string{"shardId-0"}, StartingHashKey: "0", EndingHashKey: "170141183460469231731687303715884105727"},
		{ID: "shardId-2", ParentShardIDs: []string{"shardId-0"}, StartingHashKey: "170141183460469231731687303715884105728", EndingHashKey: "340282366920938463463374607431768211455"},
	}
	created, err := lease.CreateLeases(ctx, s, shards, checkpoint.TrimHorizon)
	if err != nil || len(created) != 3 {
		t.Fatalf("CreateLeases = %v, %v", created, err)
	}
	if again, err := lease.CreateLeases(ctx, s, shards, checkpoint.TrimHorizon); err != nil || len(again) != 0 {
		t.Fatalf("second CreateLeases = %v, %v", again, err)
	}
	all, _ := s.List(ctx)
	byKey := map[string]*lease.Lease{}
	for i := range all {
		byKey[all[i].Key] = &all[i]
	}
	if got := byKey["shardId-1"].ParentShardIDs; !reflect.DeepEqual(got, []string{"shardId-0"}) {
		t.Fatalf("parents %v", got)
	}
	if done, err := s.ParentsDone(ctx, byKey["shardId-1"]); err != nil || done {
		t.Fatalf("child eligible before its parent ended (%v, %v)", done, err)
	}
	// The parent is processed to its end.
	p, _ := s.Take(ctx, *byKey["shardId-0"], "w")
	if _, err := s.WriteCheckpoint(ctx, p, checkpoint.ShardEnd); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateChildShards(ctx, p.Key, []string{"shardId-1", "shardId-2"}); err != nil {
		t.Fatal(err)
	}
	all, _ = s.List(ctx)
	for i := range all {
		byKey[all[i].Key] = &all[i]
	}
	if done, err := s.ParentsDone(ctx, byKey["shardId-1"]); err != nil || !done {
		t.Fatalf("child not eligible after its parent ended (%v, %v)", done, err)
	}
	live := map[string]bool{"shardId-1": true, "shardId-2": true}
	if del, err := lease.DeleteCompleted(ctx, s, mustList(t, s), live); err != nil || len(del) != 0 {
		t.Fatalf("deleted %v before the children started (err %v)", del, err)
	}
	for _, k := range []string{"shardId-1", "shardId-2"} {
		l, _ := s.Take(ctx, *byKey[k], "w")
		if _, err := s.WriteCheckpoint(ctx, l, checkpoint.Value{SequenceNumber: "5"}); err != nil {
			t.Fatal(err)
		}
	}
	if del, err := lease.DeleteCompleted(ctx, s, mustList(t, s), map[string]bool{"shardId-0": true, "shardId-1": true, "shardId-2": true}); err != nil || len(del) != 0 {
		t.Fatalf("deleted %v while the parent is still in the stream (err %v)", del, err)
	}
	del, err := lease.DeleteCompleted(ctx, s, mustList(t, s), live)
	if err != nil || !reflect.DeepEqual(del, []string{"shardId-0"}) {
		t.Fatalf("DeleteCompleted = %v, %v", del, err)
	}
}

// Replay resets a stopped application's checkpoints.
func Replay(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s := NewStore(t, db, false)
	if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: "a", Checkpoint: checkpoint.Value{SequenceNumber: "900"},
		PendingCheckpoint: checkpoint.Value{SequenceNumber: "950"}, PendingCheckpointState: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: "b", Owner: "running", Checkpoint: checkpoint.Value{SequenceNumber: "900"}}); err != nil {
		t.Fatal(err)
	}
	at := checkpoint.AtTimestamp(epoch)
	if err := lease.Replay(ctx, s, []string{"a"}, at, lease.ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	a := mustGet(t, s, "a")
	if a.Checkpoint.SequenceNumber != "AT_TIMESTAMP" || !a.Checkpoint.Timestamp.Equal(epoch) || !a.PendingCheckpoint.IsZero() || a.Counter != 1 {
		t.Fatalf("after replay: %+v", a)
	}
	if err := lease.Replay(ctx, s, []string{"b"}, checkpoint.TrimHorizon, lease.ReplayOptions{}); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("replay of an owned lease = %v, want ErrConflict", err)
	}
	if err := lease.Replay(ctx, s, []string{"b"}, checkpoint.Value{SequenceNumber: "12"}, lease.ReplayOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if b := mustGet(t, s, "b"); b.Checkpoint.SequenceNumber != "12" || b.Owner != "" {
		t.Fatalf("after forced replay: %+v", b)
	}
	if err := lease.Replay(ctx, s, []string{"missing"}, checkpoint.TrimHorizon, lease.ReplayOptions{Force: true}); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("replay of a missing lease = %v", err)
	}
}

// StaleWorkerMetrics checks that the leader's round deletes metrics rows older than the
// cleanup age (and rows without an update time), keeps the others and never deletes a
// row that was refreshed after it was read.
func StaleWorkerMetrics(t *testing.T, db lease.DynamoDBAPI, single bool) {
	ctx := context.Background()
	s := NewStore(t, db, single)
	clk := clock.NewManual(epoch)
	if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: "shardId-0", Checkpoint: checkpoint.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	put := func(id string, lut time.Time) {
		t.Helper()
		if err := s.PutWorkerMetrics(ctx, lease.WorkerMetrics{WorkerID: id, LastUpdate: lut}); err != nil {
			t.Fatal(err)
		}
	}
	put("live", epoch.Add(-30*time.Second))
	put("recent", epoch.Add(-59*time.Minute)) // gone from assignment, not yet stale
	put("stale", epoch.Add(-61*time.Minute))
	table, keyAttr := s.Tables().WorkerMetrics, "wid"
	if single {
		table, keyAttr = s.Tables().Lease, "leaseKey"
	}
	// A row as an old Java worker may leave it: no lut.
	putState(t, db, table, keyAttr, "no-lut", map[string]types.AttributeValue{
		"entityType": &types.AttributeValueMemberS{Value: "WORKER_METRIC_STATS"},
		"sts":        &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
	})
	a, err := lease.NewAssigner(s, lease.WithClock(clk), lease.WithStaleWorkerMetricsCleanup(time.Hour), lease.WithLeaseScanInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	// A new leader's first round only observes: a row seen once is no proof of life (its
	// first row was 30 s old). Its warm-up ends once every current row has shown life
	// (recent is past its max age).
	round, err := a.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(round.Applied) != 0 || !round.WarmingUp {
		t.Fatalf("first round %+v: a lease given during the warm-up", round)
	}
	clk.Advance(time.Second)
	put("live", clk.Now())
	round, err = a.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(round.Applied) != 1 || round.Applied[0].To != "live" {
		t.Fatalf("round %+v: want the lease given to the only live worker", round)
	}
	ids := func() []string {
		ms, err := s.ListWorkerMetrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.WorkerID)
		}
		return out
	}
	if got := ids(); !reflect.DeepEqual(got, []string{"live", "recent"}) {
		t.Fatalf("metrics rows after cleanup: %v, want [live recent]", got)
	}
	if all, err := s.List(ctx); err != nil || len(all) != 1 {
		t.Fatalf("leases after cleanup: %+v, %v", all, err)
	}
	// A row read as stale that the worker refreshes before the delete is kept.
	clk.Advance(2 * time.Minute)
	ms, _ := s.ListWorkerMetrics(ctx)
	var recent lease.WorkerMetrics
	for _, m := range ms {
		if m.WorkerID == "recent" {
			recent = m
		}
	}
	put("recent", clk.Now())
	if deleted, err := s.DeleteWorkerMetricsIfUnchanged(ctx, recent); err != nil || deleted {
		t.Fatalf("delete of a refreshed row = %v, %v", deleted, err)
	}
	if got := ids(); !reflect.DeepEqual(got, []string{"live", "recent"}) {
		t.Fatalf("metrics rows after a refused delete: %v", got)
	}
	// live stops reporting: deleted once its row is older than the cleanup age.
	clk.Advance(time.Hour)
	if _, err := a.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids(); !reflect.DeepEqual(got, []string{"recent"}) {
		t.Fatalf("metrics rows after live went silent: %v, want [recent]", got)
	}
}

// HandoffAsJava checks the graceful handoff as Java KCL 3.x runs it: the new owner never
// takes a lease whose old owner is still its checkpoint owner; it starts once the old
// owner releases it; an old owner that does not finish within the handoff timeout (from
// the renewal that told it) transfers the lease to the new owner itself; and when the
// old owner dies the lease waits for its expiry and the leader's reassignment.
func HandoffAsJava(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s := NewStore(t, db, false)
	clk := clock.NewManual(epoch)
	const timeout, failover = 30 * time.Second, 10 * time.Second
	coord := func(id string) *lease.Coordinator {
		c, err := lease.NewCoordinator(s, id, lease.WithClock(clk), lease.WithHandoffTimeout(timeout),
			lease.WithFailoverTime(failover))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	holds := func(c *lease.Coordinator, key string) (lease.HeldState, bool) {
		for _, h := range c.Held() {
			if h.Lease.Key == key {
				return h.State, true
			}
		}
		return 0, false
	}
	// start makes old hold key and hands it to new, as a leader does.
	start := func(key string, old, nw *lease.Coordinator) {
		if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: key, Owner: old.Worker(), Checkpoint: checkpoint.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
		if _, err := old.Discover(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Handoff(ctx, mustGet(t, s, key), nw.Worker()); err != nil {
			t.Fatal(err)
		}
	}
	// step is one renewal period: the old owner renews (unless dead), the new one
	// discovers; the new owner must never hold a lease the old one still holds or that
	// still names another checkpoint owner.
	step := func(key string, old, nw *lease.Coordinator, oldAlive bool) (oldState lease.HeldState, oldHolds, newHolds bool) {
		t.Helper()
		clk.Advance(failover / 3)
		if oldAlive {
			if err := old.RenewAll(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := nw.Discover(ctx); err != nil {
			t.Fatal(err)
		}
		oldState, oldHolds = holds(old, key)
		_, newHolds = holds(nw, key)
		if l := mustGet(t, s, key); newHolds && (oldHolds && oldAlive || l.CheckpointOwner != "" && l.CheckpointOwner != nw.Worker()) {
			t.Fatalf("new owner holds %s while the old one does (%v) or it is still handed over: %+v", key, oldHolds, l)
		}
		return oldState, oldHolds, newHolds
	}

	// The old owner releases after checkpointing: the new owner starts at its next
	// discovery, from that checkpoint.
	a, b := coord("a"), coord("b")
	start("released", a, b)
	if st, held, got := step("released", a, b, true); st != lease.HandoffRequested || !held || got {
		t.Fatalf("after the handoff request: old %v %v, new %v", st, held, got)
	}
	cp, err := a.Checkpointer("released")
	if err != nil {
		t.Fatal(err)
	}
	cp.Delivered(checkpoint.Value{SequenceNumber: "7"})
	if err := cp.Checkpoint(ctx); err != nil {
		t.Fatalf("old owner's final checkpoint: %v", err)
	}
	if err := a.Release(ctx, "released"); err != nil {
		t.Fatal(err)
	}
	if _, held, got := step("released", a, b, true); held || !got {
		t.Fatalf("after the release: old holds %v, new %v", held, got)
	}
	if l := mustGet(t, s, "released"); l.Checkpoint.SequenceNumber != "7" || l.Owner != "b" || l.CheckpointOwner != "" {
		t.Fatalf("after the release: %+v", l)
	}

	// The old owner never finishes (its processor is stuck): the new owner waits, past
	// its own first sight of the handoff plus the timeout; the old owner transfers the
	// lease a handoff timeout after its renewal saw the request.
	c, d := coord("c"), coord("d")
	start("stuck", c, d)
	if _, err := d.Discover(ctx); err != nil { // the new owner sees the handoff first
		t.Fatal(err)
	}
	firstSeen := clk.Now()
	var learned, transferred time.Time
	for i := 0; i < 30 && transferred.IsZero(); i++ {
		st, held, got := step("stuck", c, d, true)
		switch {
		case held && st == lease.HandoffRequested && learned.IsZero():
			learned = clk.Now()
		case !held:
			transferred = clk.Now()
			if !got {
				t.Fatal("the transferred lease is not held by the new owner at its next discovery")
			}
		}
	}
	if learned.IsZero() || transferred.IsZero() {
		t.Fatalf("stuck handoff: learned %v, transferred %v", learned, transferred)
	}
	if transferred.Sub(learned) < timeout || transferred.Sub(learned) > timeout+failover/3 {
		t.Fatalf("transferred %v after the old owner learned of the handoff, want the handoff timeout %v", transferred.Sub(learned), timeout)
	}
	if !transferred.After(firstSeen.Add(timeout)) {
		t.Fatal("lease moved before the handoff timeout")
	}
	if l := mustGet(t, s, "stuck"); l.Owner != "d" || l.CheckpointOwner != "" {
		t.Fatalf("after the transfer: %+v", l)
	}

	// The old owner dies during the handoff: the new owner never takes the lease itself,
	// however long it waits; the leader reassigns it once it has expired.
	e, f := coord("e"), coord("f")
	start("dead", e, f)
	step("dead", e, f, true)
	for i := 0; i < 30; i++ {
		if _, _, got := step("dead", e, f, false); got {
			t.Fatalf("the new owner took a lease its old owner is still handing over, %v after the old owner died", time.Duration(i+1)*failover/3)
		}
	}
	asg, err := lease.NewAssigner(s, lease.WithClock(clk), lease.WithFailoverTime(failover), lease.WithLeaseScanInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := lease.NewReporter(s, "f", lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		if err := rep.Report(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := asg.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, got := step("dead", e, f, false); got {
			if l := mustGet(t, s, "dead"); l.Owner != "f" || l.CheckpointOwner != "" {
				t.Fatalf("reassigned: %+v", l)
			}
			return
		}
	}
	t.Fatalf("the leader never reassigned the expired lease: %+v", mustGet(t, s, "dead"))
}

// mustList lists the lease table as the shard sync does (eventually consistent).
func mustList(t *testing.T, s *lease.Store) []lease.Lease {
	t.Helper()
	all, err := s.ListEventuallyConsistent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return all
}
