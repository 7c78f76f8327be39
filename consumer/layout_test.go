package consumer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/lease"
)

// TestDefaultWorkerJoinsSingleTableApplication: a default worker (no table option) on a
// KCL 3.5 single-table application whose leader lock (leaseKey=Leader in the lease
// table) a Java worker holds creates no coordinator-state or worker-metrics table, does
// not lead while that lock is heartbeated, reports its metrics in the lease table, and
// leads through the same lock item once it is released.
func TestDefaultWorkerJoinsSingleTableApplication(t *testing.T) {
	db := leaseDB(t)
	ctx := context.Background()
	java, err := lease.NewStore(db, lease.SingleTableLayout("app"), lease.WithTablePollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := java.CreateTables(ctx, lease.TableSettings{}); err != nil {
		t.Fatal(err)
	}
	javaLeader, err := lease.NewLeaderElector(java, "java-leader", lease.WithLeaderLeaseDuration(2*time.Second, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if lead, err := javaLeader.Tick(ctx); !lead || err != nil {
		t.Fatalf("Java leader lock not taken: %v %v", lead, err)
	}
	hb, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); _ = javaLeader.Run(hb) }()

	s := newMemStream("orders", 2)
	kin := &memKinesis{streams: map[string]*memStream{"orders": s}}
	p := &producer{s: s}
	p.put(10, 100)
	c := newCollector()
	r := startWorker(t, kin, db, c.factory(), testOptions("go-worker")...)

	waitUntil(t, func() bool {
		ms, err := java.ListWorkerMetrics(ctx)
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.WorkerID == "go-worker" {
				return true
			}
		}
		return false
	})
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if r.w.IsLeader() {
			t.Fatal("Freshet worker leads while the Java leader holds leaseKey=Leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, name := range []string{"app-CoordinatorState", "app-WorkerMetricStats"} {
		_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("table %s: %v, want ResourceNotFoundException", name, err)
		}
	}

	stopHB() // Run releases the lock.
	<-hbDone
	waitUntil(t, func() bool { return r.w.IsLeader() })
	if who, err := javaLeader.Leader(ctx); err != nil || who != "go-worker" {
		t.Fatalf("leader in leaseKey=Leader: %q, %v", who, err)
	}
	waitUntil(t, func() bool { d, _ := c.count(); return d == p.n })
	r.shutdown(t)
}
