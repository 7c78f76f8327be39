package consumer

import (
	"context"
	"errors"
	"testing"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
)

// TestDynamoLeaseTable checks the conditional semantics of the DynamoDB lease table
// against the engine's DynamoDB.
func TestDynamoLeaseTable(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	ctx := context.Background()
	tb := &ddbTable{api: enginetest.DynamoDB(e), name: "app"}
	cfg := defaultConfig()
	if err := tb.ensure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := tb.ensure(ctx, cfg); err != nil {
		t.Fatalf("second ensure: %v", err)
	}
	row := leaseRow{Key: "shardId-000000000002", Checkpoint: checkpoint.TrimHorizon, Parents: []string{"shardId-000000000000", "shardId-000000000001"}}
	if err := tb.Create(ctx, row); err != nil {
		t.Fatal(err)
	}
	if err := tb.Create(ctx, leaseRow{Key: row.Key, Checkpoint: checkpoint.Latest}); err != nil {
		t.Fatalf("create over existing: %v", err)
	}
	got, found, err := tb.Get(ctx, row.Key)
	if err != nil || !found || got.Checkpoint != checkpoint.TrimHorizon || len(got.Parents) != 2 || got.Owner != "" {
		t.Fatalf("get %+v %v %v", got, found, err)
	}
	a, err := tb.Take(ctx, got, "a")
	if err != nil || a.Owner != "a" || a.Counter != got.Counter+1 {
		t.Fatalf("take %+v %v", a, err)
	}
	if _, err := tb.Take(ctx, got, "b"); !errors.Is(err, errLeaseConflict) {
		t.Fatalf("stale take: %v", err)
	}
	a2, err := tb.Renew(ctx, a, "a")
	if err != nil || a2.Counter != a.Counter+1 {
		t.Fatalf("renew %+v %v", a2, err)
	}
	if _, err := tb.Renew(ctx, a, "a"); !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Fatalf("renew at stale counter: %v", err)
	}
	b, err := tb.Take(ctx, a2, "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.WriteCheckpoint(ctx, row.Key, "a", checkpoint.Value{SequenceNumber: "5"}); !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Fatalf("checkpoint by old owner: %v", err)
	}
	if err := tb.WritePendingCheckpoint(ctx, row.Key, "b", checkpoint.Value{SequenceNumber: "6"}, []byte("state")); err != nil {
		t.Fatal(err)
	}
	if err := tb.WriteCheckpoint(ctx, row.Key, "b", checkpoint.Value{SequenceNumber: "7", SubSequenceNumber: 3}); err != nil {
		t.Fatal(err)
	}
	if err := tb.Release(ctx, b, "a"); !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Fatalf("release by non-owner: %v", err)
	}
	if err := tb.Release(ctx, b, "b"); err != nil {
		t.Fatal(err)
	}
	rows, err := tb.List(ctx)
	if err != nil || len(rows) != 1 {
		t.Fatalf("list %v %v", rows, err)
	}
	r := rows[0]
	if r.Owner != "" || r.Checkpoint.SequenceNumber != "7" || r.Checkpoint.SubSequenceNumber != 3 || !r.Pending.IsZero() {
		t.Fatalf("final row %+v", r)
	}
}
