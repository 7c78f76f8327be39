package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

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

// flakyGetDB fails the next GetItem once failGet is set.
type flakyGetDB struct {
	lease.DynamoDBAPI
	failGet atomic.Bool
}

var errGetThrottled = errors.New("injected: GetItem throttled")

func (d *flakyGetDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if d.failGet.CompareAndSwap(true, false) {
		return nil, errGetThrottled
	}
	return d.DynamoDBAPI.GetItem(ctx, in, o...)
}

// TestHolderWriteKeepsALeaseWhoseReadFails: when a holder's write fails its condition
// and the read that tells why fails too, the write returns that read's error, not
// ErrLeaseLost, so a worker that still holds the lease retries instead of dropping it.
// The lease here is still held: the holder's previous renewal was applied but its answer
// lost, so the holder writes with the counter before it.
func TestHolderWriteKeepsALeaseWhoseReadFails(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	db := &flakyGetDB{DynamoDBAPI: enginetest.DynamoDB(e)}
	s := leasetest.NewStore(t, db, false)
	ctx := context.Background()
	writes := []struct {
		name  string
		write func(held lease.Lease) (lease.Lease, error)
	}{
		{"renew", func(held lease.Lease) (lease.Lease, error) { return s.Renew(ctx, held) }},
		{"checkpoint", func(held lease.Lease) (lease.Lease, error) {
			return s.WriteCheckpoint(ctx, held, checkpoint.Value{SequenceNumber: "42"})
		}},
		{"pending checkpoint", func(held lease.Lease) (lease.Lease, error) {
			return s.WritePendingCheckpoint(ctx, held, checkpoint.Value{SequenceNumber: "43"}, []byte("state"))
		}},
	}
	for i, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			key := fmt.Sprintf("shardId-%012d", i)
			if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: key, Checkpoint: checkpoint.TrimHorizon}); err != nil {
				t.Fatal(err)
			}
			l, err := s.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			held, err := s.Take(ctx, l, "w1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Renew(ctx, held); err != nil { // its answer "lost": held stays behind
				t.Fatal(err)
			}
			db.failGet.Store(true)
			_, err = w.write(held)
			if db.failGet.Load() {
				t.Fatal("the write did not read the lease after its condition failed")
			}
			var le *lease.Error
			if err == nil || errors.Is(err, lease.ErrLeaseLost) || !errors.Is(err, errGetThrottled) || !errors.As(err, &le) {
				t.Fatalf("write whose read failed: %v; want the read's error, not ErrLeaseLost", err)
			}
			// The worker still holds the lease: retried, the same write succeeds.
			if _, err := w.write(held); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if cur, err := s.Get(ctx, key); err != nil || cur.Owner != "w1" {
				t.Fatalf("after the retry: %+v, %v", cur, err)
			}
		})
	}
}
