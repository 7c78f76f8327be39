package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/lease/leasetest"
)

// TestDiscoveryHintsAroundTakeover: when a self-fencing worker falls silent, the leader
// tells the live worker to expect its leases once the row has stood still for half the
// fence (the hint its next report returns covers the take: the take comes before the
// hint's expected time has passed, plus a few rounds), and tells it it was given leases
// once they are taken (its next report returns Assigned). Hints leave the rows' report
// times alone: the leader's watch of w2's row sees no silence and w1's leases still move
// at the fence time.
func TestDiscoveryHintsAroundTakeover(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(map[bool]string{false: "three tables", true: "single table"}[single], func(t *testing.T) {
			s := newFenceSim(t, 0, single)
			i := 0
			var early lease.Hint
			for ; i < 50; i++ {
				s.tick(i)
				if h := s.rep2.TakeHint(); h.Expect > 0 {
					early = h
				}
			}
			if early.Expect > 0 {
				t.Fatalf("before any silence w2 was told to expect leases: %+v", early)
			}
			s.db.setFail(true)
			last := s.lastOK
			var expectAt, assignedAt time.Time
			var expect time.Duration
			for ; i < 50+170; i++ {
				s.tick(i)
				h := s.rep2.TakeHint()
				if h.Expect > 0 && expectAt.IsZero() {
					expectAt, expect = s.lclk.Now(), h.Expect
				}
				if h.Assigned && assignedAt.IsZero() && len(s.taken) > 0 {
					assignedAt = s.lclk.Now()
				}
			}
			if len(s.taken) != len(s.keys) {
				t.Fatalf("taken %d of %d leases", len(s.taken), len(s.keys))
			}
			var takenAt time.Time
			for _, at := range s.taken {
				if at.After(takenAt) {
					takenAt = at
				}
				if d := at.Sub(last); d < fenceFailover || d > fenceFailover+1500*time.Millisecond {
					t.Fatalf("lease taken %v after the last report, want within [%v, %v]", d, fenceFailover, fenceFailover+1500*time.Millisecond)
				}
			}
			switch {
			case expectAt.IsZero():
				t.Fatal("w2 was never told to expect the silent worker's leases")
			case !expectAt.Before(takenAt):
				t.Fatalf("w2 learnt to expect leases at %v, after they were taken at %v", expectAt.Sub(epoch), takenAt.Sub(epoch))
			case expect > fenceFailover/2+time.Second:
				t.Fatalf("expect hint %v, want at most half the fence and a round", expect)
			case takenAt.After(expectAt.Add(expect + 4*fenceFailover/20)):
				t.Fatalf("taken at %v, after the window the hint opened (%v + %v and four rounds)", takenAt.Sub(epoch), expectAt.Sub(epoch), expect)
			case assignedAt.IsZero():
				t.Fatal("w2 was never told it was given leases")
			case assignedAt.Sub(takenAt) > fenceFailover/4+time.Second:
				t.Fatalf("w2 learnt of its leases %v after the take, want within a report interval", assignedAt.Sub(takenAt))
			}
		})
	}
}

// TestHintsOnlyInFreshetRows: the leader leaves hints only in rows of self-fencing
// (Freshet) workers; a Java worker's row given a lease is left byte for byte as it was,
// and a worker without a row gets none created.
func TestHintsOnlyInFreshetRows(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	db := enginetest.DynamoDB(e)
	ctx := context.Background()
	s := leasetest.NewStore(t, db, false)
	clk := clock.NewManual(epoch)
	a, err := lease.NewAssigner(s, lease.WithClock(clk), lease.WithFailoverTime(fenceFailover))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateIfAbsent(ctx, lease.Lease{Key: "shardId-0"}); err != nil {
		t.Fatal(err)
	}
	rowOf := func() map[string]types.AttributeValue {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Tables().WorkerMetrics),
			Key: map[string]types.AttributeValue{"wid": &types.AttributeValueMemberS{Value: "java"}}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}
	var before map[string]types.AttributeValue
	owner := ""
	for i := 0; i < 200 && owner == ""; i++ {
		if i%50 == 0 { // a Java worker reports every 30 s; here every 5 s of the simulation
			if err := s.PutWorkerMetrics(ctx, lease.WorkerMetrics{WorkerID: "java", LastUpdate: clk.Now()}); err != nil {
				t.Fatal(err)
			}
			before = rowOf()
		}
		if _, err := a.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		l, err := s.Get(ctx, "shardId-0")
		if err != nil {
			t.Fatal(err)
		}
		owner = l.Owner
		clk.Advance(100 * time.Millisecond)
	}
	if owner != "java" {
		t.Fatalf("lease owner %q, want java", owner)
	}
	if after := rowOf(); len(after) != len(before) {
		t.Fatalf("the Java worker's row changed: %v, was %v", after, before)
	}
}

// TestLeaderHintsMarker: a Freshet leader's lock item tells followers that it leaves
// hints; a lock item without the marker (as Java KCL's lock client writes it) does not.
func TestLeaderHintsMarker(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	db := enginetest.DynamoDB(e)
	ctx := context.Background()
	s := leasetest.NewStore(t, db, false)
	clk := clock.NewManual(epoch)
	newElector := func(id string) *lease.LeaderElector {
		el, err := lease.NewLeaderElector(s, id, lease.WithClock(clk), lease.WithLeaderLeaseDuration(20*time.Second, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return el
	}
	a, b := newElector("a"), newElector("b")
	if lead, err := a.Tick(ctx); err != nil || !lead {
		t.Fatalf("a: lead %v, %v", lead, err)
	}
	if !a.LeaderHints() {
		t.Fatal("the leader does not report that it leaves hints")
	}
	if b.LeaderHints() {
		t.Fatal("a follower that has not read the lock assumes hints")
	}
	if _, err := b.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.LeaderHints() {
		t.Fatal("a follower of a Freshet leader does not see its hints marker")
	}
	// A Java worker takes the lock: its lock client puts an item of its own.
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Tables().CoordinatorState), Item: map[string]types.AttributeValue{
		"key":                 &types.AttributeValueMemberS{Value: "Leader"},
		"ownerName":           &types.AttributeValueMemberS{Value: "java"},
		"leaseDuration":       &types.AttributeValueMemberS{Value: "120000"},
		"recordVersionNumber": &types.AttributeValueMemberS{Value: "java-rvn"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if b.LeaderHints() {
		t.Fatal("a follower of a Java leader expects hints")
	}
}
