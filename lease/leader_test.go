package lease_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/lease/leasetest"
)

// lossyDB applies UpdateItem calls but, while lose is set, answers them as a network
// without a response would: with an error after the call took effect, or (retry set)
// with the ConditionalCheckFailed of an SDK-level retry of a call that took effect.
type lossyDB struct {
	lease.DynamoDBAPI
	lose, retry atomic.Bool
}

func (d *lossyDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := d.DynamoDBAPI.UpdateItem(ctx, in, o...)
	if err != nil || !d.lose.Load() {
		return out, err
	}
	if d.retry.Load() {
		return d.DynamoDBAPI.UpdateItem(ctx, in, o...)
	}
	return nil, errPartitioned
}

// TestLeaderKeepsLockUnderDroppedResponses checks that a leader whose heartbeat responses
// are lost (the heartbeat took effect) does not lose leadership: neither at its next
// heartbeat, nor when the SDK's own retry of a heartbeat fails its condition.
func TestLeaderKeepsLockUnderDroppedResponses(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	ctx := context.Background()
	base := enginetest.DynamoDB(e)
	tables := leasetest.NewStore(t, base, false).Tables()
	db := &lossyDB{DynamoDBAPI: base}
	s, err := lease.NewStore(db, tables)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(epoch)
	a, err := lease.NewLeaderElector(s, "a", lease.WithLeaderClock(clk), lease.WithLeaderLeaseDuration(6*time.Second, 3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if lead, err := a.Tick(ctx); !lead || err != nil {
		t.Fatalf("first tick = %v, %v", lead, err)
	}
	db.lose.Store(true)
	clk.Advance(3 * time.Second)
	if lead, err := a.Tick(ctx); !lead || err == nil {
		t.Fatalf("heartbeat without a response = %v, %v; want still leading, with the error", lead, err)
	}
	if d := a.NextTick(); d >= 3*time.Second {
		t.Fatalf("next tick in %v after an unknown outcome, want sooner than the heartbeat", d)
	}
	db.lose.Store(false)
	clk.Advance(time.Second)
	if lead, err := a.Tick(ctx); !lead || err != nil {
		t.Fatalf("heartbeat after a lost response = %v, %v; want leading", lead, err)
	}
	db.lose.Store(true)
	db.retry.Store(true)
	clk.Advance(3 * time.Second)
	if lead, err := a.Tick(ctx); !lead || err != nil {
		t.Fatalf("heartbeat whose SDK retry failed its condition = %v, %v; want leading", lead, err)
	}
	db.lose.Store(false)
	// Another worker never sees the lock free while a heartbeats.
	b, err := lease.NewLeaderElector(s, "b", lease.WithLeaderClock(clk), lease.WithLeaderLeaseDuration(6*time.Second, 3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		clk.Advance(3 * time.Second)
		if lead, err := a.Tick(ctx); !lead || err != nil {
			t.Fatalf("a's heartbeat %d = %v, %v", i, lead, err)
		}
		if lead, _ := b.Tick(ctx); lead {
			t.Fatal("b took the lock from a heartbeating leader")
		}
	}
	// A follower ticks again exactly when the lock it watches would expire.
	clk.Advance(4 * time.Second)
	if d := b.NextTick(); d != 2*time.Second {
		t.Fatalf("follower's next tick in %v, want the 2 s left of the lock's 6 s after it first saw it", d)
	}
}
