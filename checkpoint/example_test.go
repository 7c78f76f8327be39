package checkpoint_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/lease"
)

// Example shows the consumer's side: a Checkpointer for a held lease, told what was
// delivered, handed to a processor that checkpoints; and what happens once the lease is
// taken by another worker.
func Example() {
	ctx := context.Background()
	e, err := engine.Start(engine.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	store, _ := lease.NewStore(dynamodb.NewFromConfig(e.AWSConfig()), lease.DefaultTables("example-app"))
	if err := store.CreateTables(ctx, lease.TableSettings{}); err != nil {
		fmt.Println(err)
		return
	}
	_, _ = store.CreateIfAbsent(ctx, lease.Lease{Key: "shardId-000000000000", Owner: "worker-1", Checkpoint: checkpoint.TrimHorizon})
	l, _ := store.Get(ctx, "shardId-000000000000")

	// The consumer creates the Checkpointer when its lease coordinator holds the lease;
	// its writes are fenced by the counter of the held lease.
	coord, _ := lease.NewCoordinator(store, "worker-1")
	_, _ = coord.Discover(ctx)
	cp, err := coord.Checkpointer(l.Key)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Before each ProcessRecords call: the last record of the batch.
	cp.Delivered(checkpoint.Value{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", SubSequenceNumber: 2})

	// The processor checkpoints at the last delivered record...
	if err := cp.Checkpoint(ctx); err != nil {
		fmt.Println(err)
	}
	// ...but never past it.
	err = cp.CheckpointAt(ctx, "49590338271490256608559692538361571095921575989136588899", 0)
	fmt.Println(errors.Is(err, checkpoint.ErrBeyondDelivered))

	stored, _ := store.Get(ctx, l.Key)
	fmt.Println(stored.Checkpoint)

	// Another worker takes the lease: checkpoints fail with ErrLeaseLost and write nothing.
	_, _ = store.Take(ctx, stored, "worker-2")
	cp.ShardEnded()
	fmt.Println(errors.Is(cp.Checkpoint(ctx), checkpoint.ErrLeaseLost))
	// Output:
	// true
	// 49590338271490256608559692538361571095921575989136588898/2
	// true
}

// ExampleCheckpointer_Prepare shows a two-phase checkpoint: the processor stores its own
// state with a pending checkpoint, flushes its side effects, then commits.
func ExampleCheckpointer_Prepare() {
	ctx := context.Background()
	e, err := engine.Start(engine.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	store, _ := lease.NewStore(dynamodb.NewFromConfig(e.AWSConfig()), lease.SingleTableLayout("example-2pc"))
	if err := store.CreateTables(ctx, lease.TableSettings{}); err != nil {
		fmt.Println(err)
		return
	}
	_, _ = store.CreateIfAbsent(ctx, lease.Lease{Key: "shardId-000000000001", Owner: "worker-1", Checkpoint: checkpoint.TrimHorizon})

	coord, _ := lease.NewCoordinator(store, "worker-1")
	_, _ = coord.Discover(ctx)
	cp, err := coord.Checkpointer("shardId-000000000001")
	if err != nil {
		fmt.Println(err)
		return
	}
	cp.Delivered(checkpoint.Value{SequenceNumber: "1200"})
	prepared, err := cp.Prepare(ctx, []byte(`{"window":"12:00"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	l, _ := store.Get(ctx, "shardId-000000000001")
	fmt.Println(l.Checkpoint, l.PendingCheckpoint, string(l.PendingCheckpointState))

	if err := prepared.Commit(ctx); err != nil {
		fmt.Println(err)
		return
	}
	l, _ = store.Get(ctx, "shardId-000000000001")
	fmt.Println(l.Checkpoint, l.PendingCheckpoint)
	// Output:
	// TRIM_HORIZON 1200 {"window":"12:00"}
	// 1200 <none>
}
