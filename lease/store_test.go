package lease_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/lease/leasetest"
)

// TestStoreOnEngine runs the lease conformance and protocol suites against the bundled
// engine's DynamoDB.
func TestStoreOnEngine(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	leasetest.Run(t, enginetest.DynamoDB(e))
}

// BenchmarkLeaseOps measures lease operations per second against the engine: one op is a
// renewal, a checkpoint or a take, in rotation, on 16 leases.
func BenchmarkLeaseOps(b *testing.B) {
	e := enginetest.Start(b, engine.Config{})
	s := leasetest.NewStore(b, enginetest.DynamoDB(e), false)
	ctx := context.Background()
	const n = 16
	held := make([]lease.Lease, n)
	for i := range held {
		key := fmt.Sprintf("shardId-%012d", i)
		if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: key, Checkpoint: checkpoint.TrimHorizon}); err != nil {
			b.Fatal(err)
		}
		l, err := s.Get(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		if held[i], err = s.Take(ctx, l, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % n
		var err error
		switch (i / n) % 3 {
		case 0:
			held[k], err = s.Renew(ctx, held[k])
		case 1:
			held[k], err = s.WriteCheckpoint(ctx, held[k], checkpoint.Value{SequenceNumber: fmt.Sprint(i + 1)})
		case 2:
			held[k], err = s.Take(ctx, held[k], "bench")
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func TestNewWorkerIDUniquePerCall(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := lease.NewWorkerID()
		if seen[id] {
			t.Fatalf("NewWorkerID repeated %q", id)
		}
		seen[id] = true
		if len(id) < 14 || id[len(id)-13] != '-' {
			t.Fatalf("NewWorkerID = %q, want host-<12 hex digits>", id)
		}
	}
}
