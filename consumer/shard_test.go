package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/consumer/internal/fetch"
)

// memStore is a checkpoint.Store in memory whose ownership can be revoked.
type memStore struct {
	mu     sync.Mutex
	owner  string
	cp     map[string]checkpoint.Value
	writes int
}

func newMemStore(owner string) *memStore {
	return &memStore{owner: owner, cp: map[string]checkpoint.Value{}}
}

func (s *memStore) WriteCheckpoint(ctx context.Context, key, owner string, cp checkpoint.Value) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if owner != s.owner {
		return checkpoint.ErrLeaseLost
	}
	s.cp[key] = cp
	s.writes++
	return nil
}

func (s *memStore) WritePendingCheckpoint(ctx context.Context, key, owner string, cp checkpoint.Value, state []byte) error {
	return s.WriteCheckpoint(ctx, key, owner, cp)
}

func (s *memStore) get(key string) checkpoint.Value {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cp[key]
}

// sliceFetcher returns scripted batches; Next blocks when they run out.
type sliceFetcher struct {
	batches []fetch.Batch
	i       int
	closed  atomic.Bool
	pos     fetch.Position
}

func (f *sliceFetcher) Next(ctx context.Context) (fetch.Batch, error) {
	if f.i < len(f.batches) {
		b := f.batches[f.i]
		f.i++
		return b, nil
	}
	<-ctx.Done()
	return fetch.Batch{}, ctx.Err()
}

func (f *sliceFetcher) Close() { f.closed.Store(true) }

// recProc records the lifecycle calls of a processor.
type recProc struct {
	mu         sync.Mutex
	calls      []string
	records    []string // seq/sub of every delivered record
	failFirst  int      // ProcessRecords calls that fail before success
	noShardEnd int      // ShardEnded calls that return without checkpointing
	checkpoint bool     // checkpoint after each batch
	onBatch    func()
}

func (p *recProc) log(s string) {
	p.mu.Lock()
	p.calls = append(p.calls, s)
	p.mu.Unlock()
}

func (p *recProc) Initialize(ctx context.Context, in InitializeInput) error {
	p.log("Initialize:" + in.Checkpoint.SequenceNumber)
	return nil
}

func (p *recProc) ProcessRecords(ctx context.Context, in ProcessRecordsInput) error {
	p.mu.Lock()
	if p.failFirst > 0 {
		p.failFirst--
		p.calls = append(p.calls, "ProcessRecords:error")
		p.mu.Unlock()
		return errors.New("processor hiccup")
	}
	p.calls = append(p.calls, "ProcessRecords")
	for _, r := range in.Records {
		p.records = append(p.records, r.SequenceNumber+"/"+strconv.FormatInt(r.SubSequenceNumber, 10))
	}
	cb := p.onBatch
	p.mu.Unlock()
	if cb != nil {
		cb()
	}
	if p.checkpoint {
		return in.Checkpointer.Checkpoint(ctx)
	}
	return nil
}

func (p *recProc) LeaseLost(ctx context.Context, in LeaseLostInput) { p.log("LeaseLost") }

func (p *recProc) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	p.mu.Lock()
	skip := p.noShardEnd > 0
	if skip {
		p.noShardEnd--
	}
	p.mu.Unlock()
	p.log("ShardEnded")
	if skip {
		return nil
	}
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *recProc) ShutdownRequested(ctx context.Context, in ShutdownRequestedInput) error {
	p.log("ShutdownRequested")
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *recProc) snapshot() (calls, records []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...), append([]string(nil), p.records...)
}

func sq(i int) string { return fmt.Sprintf("4960000000000000000%05d", i) }

func plainRecs(from, to int) []types.Record {
	var out []types.Record
	for i := from; i < to; i++ {
		out = append(out, types.Record{SequenceNumber: aws.String(sq(i)), PartitionKey: aws.String("k"), Data: []byte{byte(i)}})
	}
	return out
}

// aggregate returns a Kinesis record holding n user records.
func aggregate(t testing.TB, seq string, n int) types.Record {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "pk" + strconv.Itoa(i)
	}
	return aggregateOf(t, seq, keys)
}

type harness struct {
	store    *memStore
	cp       *checkpoint.Checkpointer
	proc     *recProc
	fetcher  *sliceFetcher
	held     atomic.Bool
	parents  atomic.Bool
	children []types.ChildShard
	sc       *shardConsumer
	result   chan stopReason
	metrics  *MemoryMetrics
}

func newHarness(t *testing.T, start checkpoint.Value, batches []fetch.Batch, proc *recProc, tweaks ...func(*config, *ShardInfo)) *harness {
	t.Helper()
	h := newHarnessFor(t, context.Background(), newMemStore("w1"), start, batches, proc, tweaks...)
	h.proc = proc
	return h
}

// newHarnessFor builds a shard consumer of any processor over scripted batches, whose
// worker context is parent and whose checkpoints go to store.
func newHarnessFor(t testing.TB, parent context.Context, store *memStore, start checkpoint.Value, batches []fetch.Batch, proc Processor, tweaks ...func(*config, *ShardInfo)) *harness {
	t.Helper()
	h := &harness{store: store, fetcher: &sliceFetcher{batches: batches}, result: make(chan stopReason, 1), metrics: NewMemoryMetrics()}
	h.held.Store(true)
	h.parents.Store(true)
	cp, err := checkpoint.New(h.store, "shardId-000000000001", "w1", start)
	if err != nil {
		t.Fatal(err)
	}
	h.cp = cp
	cfg := defaultConfig()
	cfg.processorRetry, cfg.processorRetryMax, cfg.parentPollInterval = time.Millisecond, 2*time.Millisecond, time.Millisecond
	var mu sync.Mutex
	env := shardEnv{
		cfg:         &cfg,
		held:        h.held.Load,
		parentsDone: func(context.Context) (bool, error) { return h.parents.Load(), nil },
		childrenFound: func(_ context.Context, c []types.ChildShard) error {
			mu.Lock()
			h.children = c
			mu.Unlock()
			return nil
		},
		newFetcher: func(_ context.Context, pos fetch.Position) (fetch.Fetcher, error) {
			h.fetcher.pos = pos
			return h.fetcher, nil
		},
		metrics: h.metrics,
	}
	info := ShardInfo{StreamName: "s", ShardID: "shardId-000000000001", LeaseKey: "shardId-000000000001"}
	for _, tw := range tweaks {
		tw(&cfg, &info)
	}
	sc, err := newShardConsumer(parent, env, info, proc, cp, start)
	if err != nil {
		t.Fatal(err)
	}
	h.sc = sc
	return h
}

func (h *harness) start() { go func() { h.result <- h.sc.run() }() }

func (h *harness) wait(t testing.TB) stopReason {
	t.Helper()
	select {
	case r := <-h.result:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("shard consumer did not stop; state %v", h.sc.State())
		return reasonNone
	}
}

func TestShardConsumerShardEnd(t *testing.T) {
	children := []types.ChildShard{{ShardId: aws.String("shardId-000000000002")}}
	batches := []fetch.Batch{
		{Records: plainRecs(0, 3)},
		{},
		{Records: plainRecs(3, 5), ShardEnd: true, ChildShards: children},
	}
	proc := &recProc{noShardEnd: 1}
	h := newHarness(t, checkpoint.TrimHorizon, batches, proc)
	h.start()
	if r := h.wait(t); r != reasonShardEnd {
		t.Fatalf("stopped with %v", r)
	}
	calls, recs := proc.snapshot()
	want := []string{"Initialize:TRIM_HORIZON", "ProcessRecords", "ProcessRecords", "ShardEnded", "ShardEnded"}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	if len(recs) != 5 || recs[0] != sq(0)+"/0" || recs[4] != sq(4)+"/0" {
		t.Fatalf("records %v", recs)
	}
	if got := h.store.get("shardId-000000000001"); got.SequenceNumber != checkpoint.SentinelShardEnd {
		t.Fatalf("stored checkpoint %v, want SHARD_END", got)
	}
	if len(h.children) != 1 {
		t.Fatalf("children %v", h.children)
	}
	if h.fetcher.pos.Type != types.ShardIteratorTypeTrimHorizon || !h.fetcher.closed.Load() {
		t.Fatalf("fetcher at %v closed=%v", h.fetcher.pos, h.fetcher.closed.Load())
	}
}

func TestShardConsumerResumesMidAggregate(t *testing.T) {
	tests := []struct {
		name      string
		start     checkpoint.Value
		wantFirst string
		wantN     int
	}{
		{"middle of aggregate", checkpoint.Value{SequenceNumber: sq(10), SubSequenceNumber: 2}, sq(10) + "/3", 2 + 5},
		{"end of aggregate", checkpoint.Value{SequenceNumber: sq(10), SubSequenceNumber: 4}, sq(11) + "/0", 5},
		{"plain record", checkpoint.Value{SequenceNumber: sq(10)}, sq(10) + "/1", 4 + 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batches := []fetch.Batch{{Records: []types.Record{aggregate(t, sq(10), 5), aggregate(t, sq(11), 5)}}}
			proc := &recProc{checkpoint: true}
			h := newHarness(t, tt.start, batches, proc)
			h.start()
			waitUntil(t, func() bool { _, r := proc.snapshot(); return len(r) >= tt.wantN })
			h.sc.requestShutdown()
			if r := h.wait(t); r != reasonShutdown {
				t.Fatalf("stopped with %v", r)
			}
			_, recs := proc.snapshot()
			if len(recs) != tt.wantN || recs[0] != tt.wantFirst {
				t.Fatalf("records %v, want %d starting at %s", recs, tt.wantN, tt.wantFirst)
			}
			if h.fetcher.pos.Type != types.ShardIteratorTypeAtSequenceNumber || h.fetcher.pos.SequenceNumber != sq(10) {
				t.Fatalf("fetch position %v", h.fetcher.pos)
			}
			if got := h.store.get("shardId-000000000001"); got.SequenceNumber != sq(11) || got.SubSequenceNumber != 4 {
				t.Fatalf("stored %v, want %s/4", got, sq(11))
			}
		})
	}
}

func TestShardConsumerLeaseLostBeforeNextBatch(t *testing.T) {
	batches := []fetch.Batch{{Records: plainRecs(0, 2)}, {Records: plainRecs(2, 4)}}
	proc := &recProc{}
	h := newHarness(t, checkpoint.TrimHorizon, batches, proc)
	proc.onBatch = func() { h.held.Store(false) }
	h.start()
	if r := h.wait(t); r != reasonLeaseLost {
		t.Fatalf("stopped with %v", r)
	}
	calls, recs := proc.snapshot()
	if fmt.Sprint(calls) != "[Initialize:TRIM_HORIZON ProcessRecords LeaseLost]" || len(recs) != 2 {
		t.Fatalf("calls %v records %v", calls, recs)
	}
	if err := h.cp.Checkpoint(context.Background()); !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Fatalf("checkpoint after loss: %v", err)
	}
}

func TestShardConsumerRetriesFailedBatch(t *testing.T) {
	batches := []fetch.Batch{{Records: plainRecs(0, 3), ShardEnd: true}}
	proc := &recProc{failFirst: 2}
	h := newHarness(t, checkpoint.TrimHorizon, batches, proc)
	h.start()
	if r := h.wait(t); r != reasonShardEnd {
		t.Fatalf("stopped with %v", r)
	}
	calls, recs := proc.snapshot()
	if fmt.Sprint(calls) != "[Initialize:TRIM_HORIZON ProcessRecords:error ProcessRecords:error ProcessRecords ShardEnded]" {
		t.Fatalf("calls %v", calls)
	}
	if len(recs) != 3 {
		t.Fatalf("records %v", recs)
	}
}

func TestShardConsumerWaitsForParents(t *testing.T) {
	batches := []fetch.Batch{{Records: plainRecs(0, 1)}}
	proc := &recProc{}
	h := newHarness(t, checkpoint.TrimHorizon, batches, proc)
	h.parents.Store(false)
	h.start()
	waitUntil(t, func() bool { return h.sc.State() == stateWaitingOnParents })
	time.Sleep(5 * time.Millisecond)
	if calls, _ := proc.snapshot(); len(calls) != 0 {
		t.Fatalf("processor called before parents ended: %v", calls)
	}
	h.parents.Store(true)
	waitUntil(t, func() bool { _, r := proc.snapshot(); return len(r) == 1 })
	h.sc.requestShutdown()
	if r := h.wait(t); r != reasonShutdown {
		t.Fatalf("stopped with %v", r)
	}
	if got := h.store.get("shardId-000000000001"); got.SequenceNumber != sq(0) {
		t.Fatalf("final checkpoint %v", got)
	}
}

func TestShardConsumerShutdownWhileWaiting(t *testing.T) {
	proc := &recProc{}
	h := newHarness(t, checkpoint.TrimHorizon, nil, proc)
	h.start()
	waitUntil(t, func() bool { return h.sc.State() == stateProcessing })
	h.sc.requestShutdown()
	if r := h.wait(t); r != reasonShutdown {
		t.Fatalf("stopped with %v", r)
	}
	if calls, _ := proc.snapshot(); fmt.Sprint(calls) != "[Initialize:TRIM_HORIZON ShutdownRequested]" {
		t.Fatalf("calls %v", calls)
	}
}

func TestShardConsumerAlreadyEnded(t *testing.T) {
	proc := &recProc{}
	h := newHarness(t, checkpoint.ShardEnd, nil, proc)
	h.start()
	if r := h.wait(t); r != reasonShardEnd {
		t.Fatalf("stopped with %v", r)
	}
	if calls, _ := proc.snapshot(); len(calls) != 0 {
		t.Fatalf("calls %v", calls)
	}
}

// waitUntil polls cond until it holds. Its deadline only guards against a hang: the
// race detector on a loaded 2-core CI machine can slow a rebalance many times over.
func waitUntil(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestShardConsumerRecordsGetRecordsTime(t *testing.T) {
	batches := []fetch.Batch{
		{Records: plainRecs(0, 2), CallTime: 3 * time.Millisecond},
		{Records: plainRecs(2, 3)}, // a fan-out event: no call of its own
		{Records: plainRecs(3, 5), CallTime: 1500 * time.Microsecond, ShardEnd: true},
	}
	proc := &recProc{}
	h := newHarness(t, checkpoint.TrimHorizon, batches, proc)
	h.start()
	if r := h.wait(t); r != reasonShardEnd {
		t.Fatalf("stopped with %v", r)
	}
	m := h.sc.env.metrics.(*MemoryMetrics)
	sum, n := m.Total(MetricGetRecordsTime)
	if n != 2 || sum != 4.5 {
		t.Fatalf("GetRecords.Time: %d observations summing to %v ms, want 2 summing to 4.5", n, sum)
	}
}
