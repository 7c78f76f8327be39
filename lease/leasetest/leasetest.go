// Package leasetest is the conformance suite of package lease against a DynamoDB
// endpoint: the bundled engine in lease's own tests, dynalite (and, by hand, AWS) in
// integration tests. Every test creates its own uniquely named tables.
package leasetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/lease"
)

var tableSeq atomic.Int64

// NewStore creates fresh tables (three-table layout, or single-table when single is set)
// on db and returns a Store over them.
func NewStore(t testing.TB, db lease.DynamoDBAPI, single bool) *lease.Store {
	t.Helper()
	app := fmt.Sprintf("freshet-test-%d-%d", time.Now().UnixNano()%1e9, tableSeq.Add(1))
	tables := lease.DefaultTables(app)
	if single {
		tables = lease.SingleTableLayout(app)
	}
	s, err := lease.NewStore(db, tables, lease.WithTablePollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.CreateTables(ctx, lease.TableSettings{}); err != nil {
		t.Fatal(err)
	}
	return s
}

// Run runs the whole suite against db.
func Run(t *testing.T, db lease.DynamoDBAPI) {
	t.Run("CreateTables", func(t *testing.T) { CreateTables(t, db) })
	t.Run("SchemaRoundTrip", func(t *testing.T) { SchemaRoundTrip(t, db) })
	t.Run("JavaItems", func(t *testing.T) { JavaItems(t, db) })
	t.Run("Lifecycle", func(t *testing.T) { Lifecycle(t, db) })
	t.Run("Handoff", func(t *testing.T) { Handoff(t, db) })
	t.Run("Checkpointer", func(t *testing.T) { Checkpointer(t, db) })
	t.Run("CheckpointsDuringRenewals", func(t *testing.T) { CheckpointsDuringRenewals(t, db) })
	t.Run("SingleTable", func(t *testing.T) { SingleTable(t, db) })
	t.Run("Contention", func(t *testing.T) { Contention(t, db) })
	t.Run("Migration", func(t *testing.T) { Migration(t, db) })
	RunProtocol(t, db)
}

// CreateTables checks both layouts' tables, the index and idempotence.
func CreateTables(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	for _, single := range []bool{false, true} {
		s := NewStore(t, db, single)
		if err := s.CreateTables(ctx, lease.TableSettings{}); err != nil {
			t.Fatalf("second CreateTables: %v", err)
		}
		tables := s.Tables()
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tables.Lease)})
		if err != nil {
			t.Fatal(err)
		}
		if k := out.Table.KeySchema; len(k) != 1 || aws.ToString(k[0].AttributeName) != "leaseKey" || k[0].KeyType != types.KeyTypeHash {
			t.Fatalf("lease table key schema %+v", k)
		}
		found := false
		for _, g := range out.Table.GlobalSecondaryIndexes {
			if aws.ToString(g.IndexName) == "LeaseOwnerToLeaseKeyIndex" {
				found = true
				if len(g.KeySchema) != 2 || aws.ToString(g.KeySchema[0].AttributeName) != "leaseOwner" ||
					aws.ToString(g.KeySchema[1].AttributeName) != "leaseKey" || g.Projection.ProjectionType != types.ProjectionTypeKeysOnly {
					t.Fatalf("index %+v", g)
				}
			}
		}
		if !found {
			t.Fatal("LeaseOwnerToLeaseKeyIndex missing")
		}
		if !single {
			for table, key := range map[string]string{tables.CoordinatorState: "key", tables.WorkerMetrics: "wid"} {
				out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
				if err != nil {
					t.Fatal(err)
				}
				if k := out.Table.KeySchema; len(k) != 1 || aws.ToString(k[0].AttributeName) != key {
					t.Fatalf("table %s key schema %+v, want %s", table, k, key)
				}
			}
		}
	}
}

func fullLease(key string) lease.Lease {
	return lease.Lease{
		Key: key, Owner: "worker-a", Counter: 4, OwnerSwitchesSinceCheckpoint: 1,
		Checkpoint:             checkpoint.Value{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", SubSequenceNumber: 3},
		PendingCheckpoint:      checkpoint.Value{SequenceNumber: "49590338271490256608559692538361571095921575989136588899"},
		PendingCheckpointState: []byte{0, 1, 2, 255},
		ParentShardIDs:         []string{"shardId-000000000000"},
		ChildShardIDs:          []string{"shardId-000000000003", "shardId-000000000004"},
		StartingHashKey:        "0", EndingHashKey: "340282366920938463463374607431768211455",
		ThroughputKBps: 3.25, CheckpointOwner: "worker-b",
	}
}

// SchemaRoundTrip writes a lease and reads it back, raw and through the Store.
func SchemaRoundTrip(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s := NewStore(t, db, false)
	want := fullLease("shardId-000000000001")
	if ok, err := s.CreateIfAbsent(ctx, want); err != nil || !ok {
		t.Fatalf("CreateIfAbsent = %v, %v", ok, err)
	}
	if ok, err := s.CreateIfAbsent(ctx, want); err != nil || ok {
		t.Fatalf("second CreateIfAbsent = %v, %v; want false", ok, err)
	}
	raw, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Tables().Lease),
		Key: map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: want.Key}}})
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{
		"leaseKey": "S", "leaseOwner": "S", "leaseCounter": "N", "ownerSwitchesSinceCheckpoint": "N", "checkpoint": "S",
		"checkpointSubSequenceNumber": "N", "pendingCheckpoint": "S", "pendingCheckpointSubSequenceNumber": "N",
		"pendingCheckpointState": "B", "parentShardId": "SS", "childShardIds": "SS", "startingHashKey": "S",
		"endingHashKey": "S", "throughputKBps": "N", "checkpointOwner": "S", "entityType": "S",
	}
	for name, typ := range types {
		if got := typeOf(raw.Item[name]); got != typ {
			t.Errorf("attribute %s stored as %s, want %s", name, got, typ)
		}
	}
	got, err := s.Get(ctx, want.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Get:\n got %+v\nwant %+v", got, want)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("Get missing = %v", err)
	}
}

func typeOf(v types.AttributeValue) string {
	switch v.(type) {
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberB:
		return "B"
	case *types.AttributeValueMemberSS:
		return "SS"
	case nil:
		return "absent"
	}
	return fmt.Sprintf("%T", v)
}

// JavaItems stores items exactly as Java KCL writes them and reads them as leases.
func JavaItems(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s := NewStore(t, db, false)
	S := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	N := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	item := map[string]types.AttributeValue{
		"leaseKey": S("shardId-000000000007"), "leaseOwner": S("java-worker"), "leaseCounter": N("99"),
		"ownerSwitchesSinceCheckpoint": N("0"), "checkpoint": S("TRIM_HORIZON"), "checkpointSubSequenceNumber": N("0"),
		"pendingCheckpoint": S("123"), "pendingCheckpointSubSequenceNumber": N("0"), "pendingCheckpointState": N("0"),
		"parentShardId":   &types.AttributeValueMemberSS{Value: []string{"shardId-000000000001"}},
		"startingHashKey": S("0"), "endingHashKey": S("1000"), "throughputKBps": N("1.5"), "entityType": S("LEASE"),
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Tables().Lease), Item: item}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "shardId-000000000007")
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != "java-worker" || got.Counter != 99 || !got.Checkpoint.IsStart() || got.PendingCheckpoint.SequenceNumber != "123" ||
		got.PendingCheckpointState != nil || got.ThroughputKBps != 1.5 || len(got.ParentShardIDs) != 1 {
		t.Fatalf("Java item read as %+v", got)
	}
	// A Go worker renews the Java lease's counter and takes it over.
	taken, err := s.Take(ctx, got, "go-worker")
	if err != nil {
		t.Fatal(err)
	}
	if taken.Owner != "go-worker" || taken.Counter != 100 || taken.OwnerSwitchesSinceCheckpoint != 1 {
		t.Fatalf("taken %+v", taken)
	}
}

// Lifecycle checks create, take, renew, checkpoint, evict and release with their
// conditions.
func Lifecycle(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s := NewStore(t, db, false)
	if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: "shardId-0", Checkpoint: checkpoint.TrimHorizon, ParentShardIDs: []string{"shardId-p"}}); err != nil {
		t.Fatal(err)
	}
	l, _ := s.Get(ctx, "shardId-0")
	a, err := s.Take(ctx, l, "A")
	if err != nil || a.Owner != "A" || a.Counter != l.Counter+1 {
		t.Fatalf("Take = %+v, %v", a, err)
	}
	if _, err := s.Take(ctx, l, "B"); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("Take from a stale observation = %v, want ErrConflict", err)
	}
	a.ThroughputKBps = 7.5
	r, err := s.Renew(ctx, a)
	if err != nil || r.Counter != a.Counter+1 || r.ThroughputKBps != 7.5 {
		t.Fatalf("Renew = %+v, %v", r, err)
	}
	// Renewing from the previous counter looks like a retried request whose first attempt
	// succeeded: accepted as that renewal.
	if again, err := s.Renew(ctx, a); err != nil || again.Counter != r.Counter {
		t.Fatalf("retried Renew = %+v, %v", again, err)
	}
	r2, err := s.Renew(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Renew(ctx, a); !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("Renew with a stale counter = %v, want ErrLeaseLost", err)
	}
	a = r2
	// Checkpoints are fenced by the lease counter and move it, as Java KCL's are.
	cp := checkpoint.Value{SequenceNumber: "100", SubSequenceNumber: 2}
	c1, err := s.WriteCheckpoint(ctx, a, cp)
	if err != nil || c1.Counter != a.Counter+1 || c1.Checkpoint != cp {
		t.Fatalf("WriteCheckpoint = %+v, %v", c1, err)
	}
	notA := c1
	notA.Owner = "B"
	if _, err := s.WriteCheckpoint(ctx, notA, checkpoint.Value{SequenceNumber: "200"}); !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("checkpoint by a non-owner = %v, want ErrLeaseLost", err)
	}
	stale := c1
	stale.Counter--
	if _, err := s.WriteCheckpoint(ctx, stale, checkpoint.Value{SequenceNumber: "200"}); err != nil {
		// One counter behind with the holder unchanged: the holder's own renewal whose
		// answer was lost, retried at the stored counter.
		t.Fatalf("checkpoint one counter behind = %v", err)
	}
	c1 = mustGet(t, s, "shardId-0")
	stale.Counter -= 2
	if _, err := s.WriteCheckpoint(ctx, stale, checkpoint.Value{SequenceNumber: "300"}); !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("checkpoint with a counter long gone = %v, want ErrLeaseLost", err)
	}
	if got := mustGet(t, s, "shardId-0"); got.Checkpoint.SequenceNumber != "200" || got.Counter != c1.Counter {
		t.Fatalf("a refused checkpoint wrote: %+v", got)
	}
	p1, err := s.WritePendingCheckpoint(ctx, c1, checkpoint.Value{SequenceNumber: "250"}, []byte("st"))
	if err != nil || p1.Counter != c1.Counter+1 {
		t.Fatalf("WritePendingCheckpoint = %+v, %v", p1, err)
	}
	// The same write again from the same counter: an attempt whose answer was lost.
	if again, err := s.WritePendingCheckpoint(ctx, c1, checkpoint.Value{SequenceNumber: "250"}, []byte("st")); err != nil || again.Counter != p1.Counter {
		t.Fatalf("retried WritePendingCheckpoint = %+v, %v", again, err)
	}
	got, _ := s.Get(ctx, "shardId-0")
	if got.Checkpoint.SequenceNumber != "200" || got.PendingCheckpoint.SequenceNumber != "250" || string(got.PendingCheckpointState) != "st" {
		t.Fatalf("after prepare: %+v", got)
	}
	if _, err := s.WriteCheckpoint(ctx, p1, checkpoint.Value{SequenceNumber: "250"}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, "shardId-0")
	if got.Checkpoint.SequenceNumber != "250" || !got.PendingCheckpoint.IsZero() || got.PendingCheckpointState != nil {
		t.Fatalf("after commit: %+v", got)
	}
	if _, err := s.Renew(ctx, c1); !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("Renew from a counter two checkpoints moved on = %v, want ErrLeaseLost", err)
	}
	keys, err := s.ListKeysOwnedBy(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "shardId-0" {
		// The index is eventually consistent on AWS; engines and dynalite are immediate.
		t.Fatalf("ListKeysOwnedBy(A) = %v", keys)
	}
	ev, err := s.Evict(ctx, got)
	if err != nil || ev.Owner != "" || ev.Counter != got.Counter+1 {
		t.Fatalf("Evict = %+v, %v", ev, err)
	}
	if _, err := s.WriteCheckpoint(ctx, got, checkpoint.Value{SequenceNumber: "260"}); !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("checkpoint after eviction = %v", err)
	}
	b, err := s.Take(ctx, ev, "B")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "shardId-0", "A"); !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("Release by a non-owner = %v", err)
	}
	if err := s.Release(ctx, "shardId-0", "B"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, "shardId-0")
	if got.Owner != "" || got.Counter != b.Counter+1 {
		t.Fatalf("after release: %+v", got)
	}
	if err := s.UpdateChildShards(ctx, "shardId-0", []string{"shardId-2", "shardId-1"}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, "shardId-0")
	if !reflect.DeepEqual(got.ChildShardIDs, []string{"shardId-1", "shardId-2"}) {
		t.Fatalf("children %v", got.ChildShardIDs)
	}
	all, err := s.List(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("List = %d leases, %v", len(all), err)
	}
	if err := s.Delete(ctx, "shardId-0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "shardId-0"); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
}

// Handoff checks the graceful handoff protocol.
func Handoff(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s := NewStore(t, db, false)
	if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: "k", Checkpoint: checkpoint.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	l, _ := s.Get(ctx, "k")
	old, err := s.Take(ctx, l, "old")
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Handoff(ctx, old, "new")
	if err != nil || h.Owner != "new" || h.CheckpointOwner != "old" || h.Counter != old.Counter {
		t.Fatalf("Handoff = %+v, %v", h, err)
	}
	if _, err := s.Handoff(ctx, old, "third"); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("second Handoff = %v, want ErrConflict", err)
	}
	// The old owner keeps renewing and sees the request.
	r, err := s.Renew(ctx, old)
	if err != nil || r.Owner != "new" || r.CheckpointOwner != "old" {
		t.Fatalf("old owner's Renew during handoff = %+v, %v", r, err)
	}
	// Only the old owner may checkpoint until it releases.
	asNew := r
	asNew.CheckpointOwner = ""
	if _, err := s.WriteCheckpoint(ctx, asNew, checkpoint.Value{SequenceNumber: "5"}); !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("new owner's checkpoint during handoff = %v", err)
	}
	cp, err := s.WriteCheckpoint(ctx, r, checkpoint.Value{SequenceNumber: "9"})
	if err != nil || cp.Counter != r.Counter+1 {
		t.Fatalf("old owner's checkpoint during handoff = %+v, %v", cp, err)
	}
	if err := s.Release(ctx, "k", "old"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, "k")
	if got.Owner != "new" || got.CheckpointOwner != "" || got.Counter != cp.Counter+1 || got.Checkpoint.SequenceNumber != "9" {
		t.Fatalf("after release: %+v", got)
	}
	if _, err := s.WriteCheckpoint(ctx, cp, checkpoint.Value{SequenceNumber: "10"}); !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("old owner's checkpoint after release = %v", err)
	}
	if _, err := s.Renew(ctx, got); err != nil {
		t.Fatalf("new owner's renewal: %v", err)
	}

	// A handoff the old owner never finishes: the new owner takes the lease outright.
	h2, err := s.Handoff(ctx, mustGet(t, s, "k"), "third")
	if err != nil {
		t.Fatal(err)
	}
	forced, err := s.Take(ctx, h2, "third")
	if err != nil || forced.CheckpointOwner != "" || forced.Owner != "third" {
		t.Fatalf("forced take = %+v, %v", forced, err)
	}
	if _, err := s.WriteCheckpoint(ctx, got, checkpoint.Value{SequenceNumber: "11"}); !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("checkpoint by the overtaken owner = %v", err)
	}
}

func mustGet(t *testing.T, s *lease.Store, key string) lease.Lease {
	t.Helper()
	l, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// heldCheckpointer returns a store with lease "k" held by worker "w"'s Coordinator, and
// the Checkpointer of that held lease.
func heldCheckpointer(t *testing.T, db lease.DynamoDBAPI) (*lease.Store, *lease.Coordinator, *checkpoint.Checkpointer) {
	t.Helper()
	ctx := context.Background()
	s := NewStore(t, db, false)
	if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: "k", Owner: "w", Checkpoint: checkpoint.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	coord, err := lease.NewCoordinator(s, "w")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := coord.Discover(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := coord.Checkpointer("k")
	if err != nil {
		t.Fatal(err)
	}
	return s, coord, c
}

// Checkpointer drives the checkpoint.Checkpointer of a Coordinator's held lease over the
// Store.
func Checkpointer(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s, coord, c := heldCheckpointer(t, db)
	c.Delivered(checkpoint.Value{SequenceNumber: "300", SubSequenceNumber: 1})
	if err := c.CheckpointAt(ctx, "300", 2); !errors.Is(err, checkpoint.ErrBeyondDelivered) {
		t.Fatalf("beyond delivered = %v", err)
	}
	p, err := c.PrepareAt(ctx, "200", 0, []byte("state"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "k"); got.Checkpoint.SequenceNumber != "300" || got.Checkpoint.SubSequenceNumber != 1 {
		t.Fatalf("stored %v", got.Checkpoint)
	}
	// A second Checkpointer of this term, which will not see the loss.
	stale, err := coord.Checkpointer("k")
	if err != nil {
		t.Fatal(err)
	}
	stale.Delivered(checkpoint.Value{SequenceNumber: "350"})
	if _, err := s.Take(ctx, mustGet(t, s, "k"), "thief"); err != nil {
		t.Fatal(err)
	}
	c.ShardEnded()
	if err := c.Checkpoint(ctx); !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Fatalf("checkpoint after the lease was taken = %v", err)
	}
	if got := mustGet(t, s, "k"); got.Checkpoint.IsShardEnd() {
		t.Fatal("a lost lease was checkpointed")
	}
	if held := coord.Held(); len(held) != 0 {
		t.Fatalf("a lease whose checkpoint found it lost is still held: %+v", held)
	}
	// The lease comes back to the same worker: the Checkpointer of its earlier term
	// writes nothing, one of the new term does.
	if _, err := s.Take(ctx, mustGet(t, s, "k"), "w"); err != nil {
		t.Fatal(err)
	}
	if _, err := coord.Discover(ctx); err != nil || len(coord.Held()) != 1 {
		t.Fatalf("lease not held again: %v", err)
	}
	if err := stale.Checkpoint(ctx); !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Fatalf("checkpoint of the earlier term = %v", err)
	}
	c2, err := coord.Checkpointer("k")
	if err != nil {
		t.Fatal(err)
	}
	c2.Delivered(checkpoint.Value{SequenceNumber: "400"})
	if err := c2.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "k"); got.Checkpoint.SequenceNumber != "400" || got.Owner != "w" {
		t.Fatalf("stored %+v", got)
	}
}

// CheckpointsDuringRenewals checks that a Coordinator's renewals and the checkpoints of
// its held lease, both fenced by the lease counter and both moving it, never make each
// other fail: each uses the counter the other wrote.
func CheckpointsDuringRenewals(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s, coord, c := heldCheckpointer(t, db)
	before := mustGet(t, s, "k").Counter
	const n = 100
	renewals := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		var err error
		for err == nil {
			select {
			case <-stop:
				renewals <- nil
				return
			default:
			}
			err = coord.RenewAll(ctx)
			if len(coord.Held()) != 1 {
				err = errors.New("lease dropped by a renewal")
			}
		}
		renewals <- err
	}()
	for i := 1; i <= n; i++ {
		c.Delivered(checkpoint.Value{SequenceNumber: fmt.Sprint(i)})
		if i%10 == 0 {
			p, err := c.Prepare(ctx, []byte("st"))
			if err == nil {
				err = p.Commit(ctx)
			}
			if err != nil {
				t.Fatalf("prepare and commit %d during renewals: %v", i, err)
			}
			continue
		}
		if err := c.Checkpoint(ctx); err != nil {
			t.Fatalf("checkpoint %d during renewals: %v", i, err)
		}
	}
	close(stop)
	if err := <-renewals; err != nil {
		t.Fatalf("renewal during checkpoints: %v", err)
	}
	got := mustGet(t, s, "k")
	if got.Checkpoint.SequenceNumber != fmt.Sprint(n) || got.Owner != "w" {
		t.Fatalf("after checkpoints and renewals: %+v", got)
	}
	if got.Counter < before+n+n/10 {
		t.Fatalf("counter %d after %d checkpoint writes from %d: checkpoints do not move it", got.Counter, n+n/10, before)
	}
	if held := coord.Held(); len(held) != 1 || held[0].Lease.Counter != got.Counter {
		t.Fatalf("coordinator holds %+v, stored counter %d", held, got.Counter)
	}
}

// SingleTable checks that leases, coordinator state and worker metrics share the lease
// table in the KCL 3.5 layout and that List returns only leases.
func SingleTable(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s := NewStore(t, db, true)
	for i := 0; i < 3; i++ {
		if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: fmt.Sprintf("shardId-%d", i), Checkpoint: checkpoint.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
	}
	// Rows of other entities, as Java KCL 3.5 writes them.
	for key, et := range map[string]string{"Leader": "LEADER", "worker-1": "WORKER_METRIC_STATS", "Migration3.0": "CLIENT_VERSION_MIGRATION"} {
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Tables().Lease), Item: map[string]types.AttributeValue{
			"leaseKey": &types.AttributeValueMemberS{Value: key}, "entityType": &types.AttributeValueMemberS{Value: et},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("List returned %d leases, want 3: %+v", len(all), all)
	}
	if _, err := s.Get(ctx, "Leader"); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("Get(Leader) = %v, want ErrNotFound", err)
	}
}

// Contention has many goroutines renew, take and checkpoint the same leases. Every
// successful ownership write yields a distinct counter value (at most one owner for each
// counter), counters seen by each worker only grow, and the final owner is the one that
// wrote the final counter.
func Contention(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	s := NewStore(t, db, false)
	const leases, workers, rounds = 3, 6, 25
	for i := 0; i < leases; i++ {
		if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: fmt.Sprintf("shardId-%d", i), Checkpoint: checkpoint.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	owners := map[string]map[int64]string{} // lease -> counter -> owner written with it
	record := func(l lease.Lease, who string) {
		mu.Lock()
		defer mu.Unlock()
		m := owners[l.Key]
		if m == nil {
			m = map[int64]string{}
			owners[l.Key] = m
		}
		if prev, dup := m[l.Counter]; dup {
			t.Errorf("lease %s counter %d written by both %s and %s", l.Key, l.Counter, prev, who)
		}
		m[l.Counter] = who
	}
	var seq atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(me string) {
			defer wg.Done()
			held := map[string]lease.Lease{}
			last := map[string]int64{}
			for r := 0; r < rounds; r++ {
				key := fmt.Sprintf("shardId-%d", (r+len(me))%leases)
				if h, ok := held[key]; ok {
					nl, err := s.Renew(ctx, h)
					if err != nil {
						if !errors.Is(err, lease.ErrLeaseLost) {
							t.Errorf("renew: %v", err)
						}
						delete(held, key)
						continue
					}
					record(nl, me)
					held[key] = nl
					cl, err := s.WriteCheckpoint(ctx, nl, checkpoint.Value{SequenceNumber: fmt.Sprint(seq.Add(1))})
					switch {
					case err == nil:
						record(cl, me)
						held[key] = cl
					case errors.Is(err, lease.ErrLeaseLost):
						delete(held, key)
					default:
						t.Errorf("checkpoint: %v", err)
					}
					continue
				}
				obs, err := s.Get(ctx, key)
				if err != nil {
					t.Errorf("get: %v", err)
					return
				}
				if obs.Counter < last[key] {
					t.Errorf("%s saw counter of %s go back from %d to %d", me, key, last[key], obs.Counter)
				}
				last[key] = obs.Counter
				nl, err := s.Take(ctx, obs, me)
				if err != nil {
					if !errors.Is(err, lease.ErrConflict) {
						t.Errorf("take: %v", err)
					}
					continue
				}
				record(nl, me)
				held[key] = nl
			}
		}(fmt.Sprintf("worker-%d", w))
	}
	wg.Wait()
	for key, m := range owners {
		final := mustGet(t, s, key)
		if who, ok := m[final.Counter]; !ok || who != final.Owner {
			t.Errorf("lease %s: final counter %d owner %q, recorded %q", key, final.Counter, final.Owner, who)
		}
	}
	if len(owners) == 0 {
		t.Fatal("no ownership write succeeded")
	}
}
