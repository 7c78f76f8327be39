package consumer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// indexQueryCounter counts one worker's queries of the owner index.
type indexQueryCounter struct {
	DynamoDBAPI
	queries atomic.Int64
}

func (d *indexQueryCounter) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if aws.ToString(in.IndexName) != "" {
		d.queries.Add(1)
	}
	return d.DynamoDBAPI.Query(ctx, in, opts...)
}

// TestDiscoveryOnHintsOnly: with a Freshet leader, workers that hold their fair share
// stop querying the owner index once their start-up window has passed (the leader's
// hints, returned by their own metrics writes, tell them when to look). When a follower
// is killed, the other follower finds its share of the dead worker's leases on the
// leader's hints (expected, then assigned), and a newcomer is given its share by
// handoffs the old owners learn of from hints.
func TestDiscoveryOnHintsOnly(t *testing.T) {
	s := newMemStream("orders", 6)
	kin := &memKinesis{streams: map[string]*memStream{"orders": s}}
	db := leaseDB(t)
	c := newCollector()
	var ws []*testWorker
	var dbs []*indexQueryCounter
	for _, id := range []string{"a", "b", "x"} {
		d := &indexQueryCounter{DynamoDBAPI: db}
		dbs = append(dbs, d)
		ws = append(ws, startWorker(t, kin, d, c.factory(), testOptions(id)...))
	}
	held := func(w *testWorker) int { return len(w.w.HeldLeases()) }
	waitUntil(t, func() bool { return held(ws[0]) == 2 && held(ws[1]) == 2 && held(ws[2]) == 2 })

	// The start-up windows (two failover times, 4 s here) and the windows after hints
	// (half a failover time) pass; the fallback (six failover times) does not come yet.
	time.Sleep(5 * time.Second)
	before := make([]int64, len(dbs))
	for i, d := range dbs {
		before[i] = d.queries.Load()
	}
	time.Sleep(3 * time.Second)
	for i, w := range ws {
		if held(w) != 2 {
			t.Fatalf("leases moved in steady state: %s holds %v", w.w.ID(), w.w.HeldLeases())
		}
		if n := dbs[i].queries.Load() - before[i]; n != 0 {
			t.Errorf("worker %s queried the owner index %d times in 3 s of steady state (leader %v)", w.w.ID(), n, w.w.IsLeader())
		}
	}

	// A follower is killed: the other follower gets some of its leases.
	var leader, followers []*testWorker
	for _, w := range ws {
		if w.w.IsLeader() {
			leader = append(leader, w)
		} else {
			followers = append(followers, w)
		}
	}
	if len(leader) != 1 {
		t.Fatalf("%d leaders", len(leader))
	}
	followers[0].w.Abort()
	waitUntil(t, func() bool { return held(leader[0]) == 3 && held(followers[1]) == 3 })
	// A newcomer gets its share by handoffs.
	n := startWorker(t, kin, db, c.factory(), testOptions("n")...)
	waitUntil(t, func() bool { return held(leader[0]) == 2 && held(followers[1]) == 2 && held(n) == 2 })
}
