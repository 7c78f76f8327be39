package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
)

// collector checks per-key order inside each processor's delivery and counts records.
type collector struct {
	mu         sync.Mutex
	seen       map[string]int // record -> deliveries
	violations []string
}

func newCollector() *collector { return &collector{seen: map[string]int{}} }

func (c *collector) factory() ProcessorFactory {
	return HandlerFunc(c.handle)
}

func (c *collector) handle(ctx context.Context, shard ShardInfo, recs []Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	last := map[string]int{}
	for _, r := range recs {
		key, n := splitData(r.Data)
		if p, ok := last[key]; ok && n <= p {
			c.violations = append(c.violations, fmt.Sprintf("%s: %d after %d on %s", key, n, p, shard.ShardID))
		}
		last[key] = n
		c.seen[string(r.Data)]++
	}
	return nil
}

func splitData(b []byte) (string, int) {
	k, n, _ := strings.Cut(string(b), "#")
	i, _ := strconv.Atoi(n)
	return k, i
}

func (c *collector) count() (distinct, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.seen {
		total += n
	}
	return len(c.seen), total
}

// producer writes records key#n with n increasing per key.
type producer struct {
	s    *memStream
	next map[string]int
	n    int
}

func (p *producer) put(keys, count int) {
	if p.next == nil {
		p.next = map[string]int{}
	}
	for i := 0; i < count; i++ {
		k := "key" + strconv.Itoa(i%keys)
		p.next[k]++
		p.s.put(k, []byte(k+"#"+strconv.Itoa(p.next[k])))
		p.n++
	}
}

func testOptions(id string) []Option {
	return []Option{
		WithStream("orders", TrimHorizon()), WithWorkerID(id), WithFailoverTime(2 * time.Second),
		WithPolling(50, 2, 5*time.Millisecond), WithShardSyncInterval(50 * time.Millisecond),
		WithParentPollInterval(5 * time.Millisecond), WithShutdownTimeout(5 * time.Second),
		WithBackoff(time.Millisecond, 5*time.Millisecond, time.Millisecond, 5*time.Millisecond),
		WithCPUMetrics(false), WithAssignmentInterval(50 * time.Millisecond),
		WithRebalance(lease.PlanConfig{ThresholdPercent: 10, DampeningPercent: 100, MaxMovesPerRound: 8}, 300*time.Millisecond),
	}
}

type testWorker struct {
	w    *Worker
	stop context.CancelFunc
	done chan error
}

// leaseDB returns a DynamoDB client of a fresh engine for the lease tables.
func leaseDB(t *testing.T) DynamoDBAPI {
	t.Helper()
	return enginetest.DynamoDB(enginetest.Start(t, engine.Config{}))
}

func startWorker(t *testing.T, kin KinesisAPI, db DynamoDBAPI, f ProcessorFactory, opts ...Option) *testWorker {
	t.Helper()
	w, err := New("app", kin, db, f, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &testWorker{w: w, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() { r.w.Abort(); <-r.done })
	return r
}

// leases reads the lease table.
func leases(t *testing.T, db DynamoDBAPI) map[string]lease.Lease {
	t.Helper()
	s, err := lease.NewStore(db, lease.DefaultTables("app"))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]lease.Lease{}
	for _, l := range ls {
		m[l.Key] = l
	}
	return m
}

func (r *testWorker) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		r.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not stop")
	}
}

func TestWorkerParentsBeforeChildren(t *testing.T) {
	s := newMemStream("orders", 2)
	kin := &memKinesis{streams: map[string]*memStream{"orders": s}}
	p := &producer{s: s}
	p.put(20, 300)
	s.split("shardId-000000000000")
	p.put(20, 300)
	s.merge("shardId-000000000002", "shardId-000000000003")
	p.put(20, 300)
	s.split("shardId-000000000001")
	p.put(20, 300)

	c := newCollector()
	db := leaseDB(t)
	r := startWorker(t, kin, db, c.factory(), testOptions("w1")...)
	waitUntil(t, func() bool { d, _ := c.count(); return d == p.n })
	r.shutdown(t)
	d, total := c.count()
	if len(c.violations) > 0 {
		t.Fatalf("order violations: %v", c.violations[:min(5, len(c.violations))])
	}
	if d != p.n || total != p.n {
		t.Fatalf("distinct %d total %d, want %d each (no duplicates without failures)", d, total, p.n)
	}
	ls := leases(t, db)
	for _, id := range []string{"shardId-000000000000", "shardId-000000000002", "shardId-000000000003", "shardId-000000000001"} {
		if !ls[id].Checkpoint.IsShardEnd() {
			t.Errorf("parent %s checkpoint %v, want SHARD_END", id, ls[id].Checkpoint)
		}
	}
	for k, l := range ls {
		if l.Owner != "" || l.CheckpointOwner != "" {
			t.Errorf("lease %s still owned by %q/%q after shutdown", k, l.Owner, l.CheckpointOwner)
		}
	}
}

func TestWorkerFairShareAndFailover(t *testing.T) {
	s := newMemStream("orders", 4)
	kin := &memKinesis{streams: map[string]*memStream{"orders": s}}
	p := &producer{s: s}
	p.put(40, 400)
	c := newCollector()
	db := leaseDB(t)
	a := startWorker(t, kin, db, c.factory(), testOptions("a")...)
	waitUntil(t, func() bool { return len(a.w.HeldLeases()) == 4 })
	b := startWorker(t, kin, db, c.factory(), testOptions("b")...)
	waitUntil(t, func() bool { return len(a.w.HeldLeases()) == 2 && len(b.w.HeldLeases()) == 2 })
	waitUntil(t, func() bool { d, _ := c.count(); return d == p.n })

	a.w.Abort()
	p.put(40, 400)
	waitUntil(t, func() bool { return len(b.w.HeldLeases()) == 4 })
	waitUntil(t, func() bool { d, _ := c.count(); return d == p.n })
	if len(c.violations) > 0 {
		t.Fatalf("order violations: %v", c.violations[:min(5, len(c.violations))])
	}
	b.shutdown(t)
}

func TestWorkerMultiStream(t *testing.T) {
	s1, s2 := newMemStream("orders", 2), newMemStream("payments", 1)
	kin := &memKinesis{streams: map[string]*memStream{"orders": s1, "payments": s2}}
	p1, p2 := &producer{s: s1}, &producer{s: s2}
	p1.put(5, 50)
	p2.put(5, 30)
	c := newCollector()
	db := leaseDB(t)
	opts := append(testOptions("w"), WithStream("payments", TrimHorizon()))
	r := startWorker(t, kin, db, c.factory(), opts...)
	waitUntil(t, func() bool { _, total := c.count(); return total == 50+30 })
	r.shutdown(t)
	keys := leases(t, db)
	want := []string{
		"123456789012:orders:1700000000:shardId-000000000000",
		"123456789012:orders:1700000000:shardId-000000000001",
		"123456789012:payments:1700000000:shardId-000000000000",
	}
	if len(keys) != len(want) {
		t.Fatalf("lease keys %v", keys)
	}
	for _, k := range want {
		if _, ok := keys[k]; !ok {
			t.Fatalf("lease keys %v, missing %s", keys, k)
		}
	}
}

func TestWorkerResumesFromCheckpoint(t *testing.T) {
	s := newMemStream("orders", 1)
	kin := &memKinesis{streams: map[string]*memStream{"orders": s}}
	p := &producer{s: s}
	p.put(3, 30)
	c := newCollector()
	db := leaseDB(t)
	r := startWorker(t, kin, db, c.factory(), testOptions("w1")...)
	waitUntil(t, func() bool { d, _ := c.count(); return d == 30 })
	r.shutdown(t)
	p.put(3, 30)
	r2 := startWorker(t, kin, db, c.factory(), testOptions("w2")...)
	waitUntil(t, func() bool { d, _ := c.count(); return d == 60 })
	r2.shutdown(t)
	if _, total := c.count(); total != 60 {
		t.Fatalf("%d deliveries of 60 records: the restart re-delivered checkpointed records", total)
	}
}

func TestNewWorkerValidates(t *testing.T) {
	kin, db, f := &memKinesis{}, leaseDB(t), HandlerFunc(func(context.Context, ShardInfo, []Record) error { return nil })
	tests := []struct {
		name string
		app  string
		opts []Option
	}{
		{"no stream", "app", nil},
		{"no app", "", []Option{WithStream("s", TrimHorizon())}},
		{"duplicate stream", "app", []Option{WithStream("s", TrimHorizon()), WithStream("s", Latest())}},
		{"max records", "app", []Option{WithStream("s", TrimHorizon()), WithPolling(0, 1, 0)}},
		{"prefetch", "app", []Option{WithStream("s", TrimHorizon()), WithPolling(10, 0, 0)}},
		{"failover", "app", []Option{WithStream("s", TrimHorizon()), WithFailoverTime(time.Millisecond)}},
		{"worker id", "app", []Option{WithStream("s", TrimHorizon()), WithWorkerID("")}},
		{"nil logger", "app", []Option{WithStream("s", TrimHorizon()), WithLogger(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.app, kin, db, f, tt.opts...); !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("err = %v, want ErrInvalidOption", err)
			}
		})
	}
	if _, err := New("app", nil, db, f, WithStream("s", TrimHorizon())); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("nil client: %v", err)
	}
}
