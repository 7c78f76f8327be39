package lease_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	a, err := lease.NewLeaderElector(s, "a", lease.WithClock(clk), lease.WithLeaderLeaseDuration(6*time.Second, 3*time.Second))
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
	b, err := lease.NewLeaderElector(s, "b", lease.WithClock(clk), lease.WithLeaderLeaseDuration(6*time.Second, 3*time.Second))
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

// slowDB delays every UpdateItem by advancing a manual clock, as a busy table or machine
// would.
type slowDB struct {
	lease.DynamoDBAPI
	clk   *clock.Manual
	delay atomic.Int64
}

func (d *slowDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	d.clk.Advance(time.Duration(d.delay.Load()))
	return d.DynamoDBAPI.UpdateItem(ctx, in, o...)
}

// TestLeaderHeartbeatPacedFromItsStart checks that a slow heartbeat does not push the
// next one back: heartbeats start every heartbeat period however long each one takes, so
// a leader whose heartbeats each take two thirds of the period keeps the lock, and a
// follower never sees it lapse.
func TestLeaderHeartbeatPacedFromItsStart(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	ctx := context.Background()
	base := enginetest.DynamoDB(e)
	tables := leasetest.NewStore(t, base, false).Tables()
	clk := clock.NewManual(epoch)
	db := &slowDB{DynamoDBAPI: base, clk: clk}
	s, err := lease.NewStore(db, tables)
	if err != nil {
		t.Fatal(err)
	}
	const hb, dur = 3 * time.Second, 5 * time.Second
	a, err := lease.NewLeaderElector(s, "a", lease.WithClock(clk), lease.WithLeaderLeaseDuration(dur, hb))
	if err != nil {
		t.Fatal(err)
	}
	b, err := lease.NewLeaderElector(s, "b", lease.WithClock(clk), lease.WithLeaderLeaseDuration(dur, hb))
	if err != nil {
		t.Fatal(err)
	}
	if lead, err := a.Tick(ctx); !lead || err != nil {
		t.Fatalf("first tick = %v, %v", lead, err)
	}
	db.delay.Store(int64(2 * time.Second))
	for i := 0; i < 10; i++ {
		clk.Advance(a.NextTick())
		if lead, err := a.Tick(ctx); !lead || err != nil {
			t.Fatalf("slow heartbeat %d = %v, %v; want leading", i, lead, err)
		}
		if d := a.NextTick(); d != hb-2*time.Second {
			t.Fatalf("next heartbeat in %v after one that took 2 s, want %v", d, hb-2*time.Second)
		}
		if !a.IsLeader() {
			t.Fatalf("heartbeat %d: not leading right after a heartbeat", i)
		}
		if lead, _ := b.Tick(ctx); lead {
			t.Fatalf("heartbeat %d: b took the lock from a leader whose heartbeats are slow", i)
		}
	}
}

// laggingDB answers eventually consistent GetItem calls, while frozen, with the item as it
// was when the freeze began, as a replica that stopped receiving updates would; it counts
// the consistent and eventually consistent GetItem calls.
type laggingDB struct {
	lease.DynamoDBAPI
	mu                   sync.Mutex
	frozen               map[string]*dynamodb.GetItemOutput // nil while not frozen
	consistent, eventual int
	stale                int // eventually consistent reads answered from the frozen item
}

func (d *laggingDB) freeze(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.frozen = nil
	if on {
		d.frozen = map[string]*dynamodb.GetItemOutput{}
	}
}

func (d *laggingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if in.ConsistentRead != nil && *in.ConsistentRead {
		d.consistent++
		return d.DynamoDBAPI.GetItem(ctx, in, o...)
	}
	d.eventual++
	key := aws.ToString(in.TableName) // the elector reads only the lock item
	if out, ok := d.frozen[key]; ok {
		d.stale++
		return out, nil
	}
	out, err := d.DynamoDBAPI.GetItem(ctx, in, o...)
	if err == nil && d.frozen != nil {
		d.frozen[key] = out
	}
	return out, err
}

// TestLeaderWatchEventuallyConsistent checks that a follower watches the leader lock with
// eventually consistent reads, that a read lagging behind the leader's heartbeats for
// longer than the lock's duration does not let it take the lock from a live leader, and
// that once reads catch up a dead leader is replaced a lock duration after its last
// heartbeat was first seen.
func TestLeaderWatchEventuallyConsistent(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	ctx := context.Background()
	base := enginetest.DynamoDB(e)
	tables := leasetest.NewStore(t, base, false).Tables()
	clk := clock.NewManual(epoch)
	newElector := func(db lease.DynamoDBAPI, id string) *lease.LeaderElector {
		s, err := lease.NewStore(db, tables)
		if err != nil {
			t.Fatal(err)
		}
		el, err := lease.NewLeaderElector(s, id, lease.WithClock(clk), lease.WithLeaderLeaseDuration(6*time.Second, 3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return el
	}
	db := &laggingDB{DynamoDBAPI: base}
	a, b := newElector(base, "a"), newElector(db, "b")
	if lead, err := a.Tick(ctx); !lead || err != nil {
		t.Fatalf("first tick = %v, %v", lead, err)
	}
	if lead, err := b.Tick(ctx); lead || err != nil {
		t.Fatalf("follower's first tick = %v, %v", lead, err)
	}
	db.freeze(true) // from its next read on, b reads that read's record version only
	for i := 0; i < 6; i++ {
		clk.Advance(3 * time.Second)
		if lead, err := a.Tick(ctx); !lead || err != nil {
			t.Fatalf("a's heartbeat %d = %v, %v", i, lead, err)
		}
		if lead, err := b.Tick(ctx); lead || err != nil {
			t.Fatalf("b, reading a record version %v old, = %v, %v; want following", time.Duration(i+1)*3*time.Second, lead, err)
		}
	}
	if !a.IsLeader() || db.stale != 5 {
		t.Fatalf("a leading %v after b's %d stale reads, want leading after 5 (the last 4 past the lock's duration)", a.IsLeader(), db.stale)
	}
	db.freeze(false)
	// a dies. b first sees its last heartbeat now, and takes the lock 6 s later.
	seen := clk.Now()
	for clk.Now().Sub(seen) < 6*time.Second {
		if lead, _ := b.Tick(ctx); lead {
			t.Fatalf("b took the lock %v after first seeing a's last heartbeat, within its 6 s", clk.Now().Sub(seen))
		}
		clk.Advance(time.Second)
	}
	if lead, err := b.Tick(ctx); !lead || err != nil {
		t.Fatalf("b's tick 6 s after a's last heartbeat = %v, %v; want leading", lead, err)
	}
	if db.eventual == 0 {
		t.Fatalf("follower's watch made %d eventually consistent reads (and %d consistent), want eventually consistent", db.eventual, db.consistent)
	}
	if db.consistent != 0 {
		t.Fatalf("follower's watch made %d consistent reads, want none", db.consistent)
	}
}
