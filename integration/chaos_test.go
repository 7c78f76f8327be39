package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/fault"
	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/producer"
)

// chaosConfig sizes one chaos run.
type chaosConfig struct {
	records  int           // most user records produced
	rounds   int           // chaos rounds (a split or merge, and a kill, each)
	keys     int           // partition keys
	rate     int           // user records per second put
	workers  int           // workers at once
	kills    bool          // abort and restart workers during the run
	failover time.Duration // lease failover time
	drain    time.Duration // how long consumption may take after the producer finished
}

// chaosLedger records every delivery and checks the consumer's promises as they happen.
type chaosLedger struct {
	mu sync.Mutex
	// deliveries of each payload, with the worker that delivered it.
	seen map[string][]string
	// killed workers (aborted, never shut down).
	killed map[string]bool
	// orderViolations: a key's sequence went backwards inside one processor's delivery.
	orderViolations []string
	// inflight is the processor instance delivering each shard right now.
	inflight map[string]int64
	// newest is the most recently initialized processor instance of each shard that has
	// delivered; an older instance delivering after it is a fencing violation.
	newest           map[string]int64
	overlaps         int
	staleDeliveries  int
	processorsByInst map[int64]string
	instSeq          atomic.Int64
}

func newChaosLedger() *chaosLedger {
	return &chaosLedger{seen: map[string][]string{}, killed: map[string]bool{}, inflight: map[string]int64{},
		newest: map[string]int64{}, processorsByInst: map[int64]string{}}
}

// chaosProcessor is one shard's processor on one worker: it checks per-key order over
// everything it delivers, records deliveries in the ledger, and checkpoints every third
// batch and at shutdown (a checkpoint that keeps failing for a reason other than a lost
// lease is left to the next one, as a real application would do).
type chaosProcessor struct {
	l       *chaosLedger
	worker  string
	inst    int64
	shard   string
	last    map[string]int
	batches int
}

func (l *chaosLedger) factory(worker string) consumer.ProcessorFactory {
	return func(shard consumer.ShardInfo) (consumer.Processor, error) {
		inst := l.instSeq.Add(1)
		l.mu.Lock()
		l.processorsByInst[inst] = worker
		l.mu.Unlock()
		return &chaosProcessor{l: l, worker: worker, inst: inst, shard: shard.ShardID, last: map[string]int{}}, nil
	}
}

func (p *chaosProcessor) Initialize(context.Context, consumer.InitializeInput) error { return nil }

func (p *chaosProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	l := p.l
	l.mu.Lock()
	if cur, busy := l.inflight[p.shard]; busy && cur != p.inst {
		l.overlaps++
	}
	l.inflight[p.shard] = p.inst
	if n := l.newest[p.shard]; n > p.inst {
		l.staleDeliveries++
	} else {
		l.newest[p.shard] = p.inst
	}
	for _, r := range in.Records {
		k, ns, _ := strings.Cut(string(r.Data), "#")
		n, _ := strconv.Atoi(ns)
		if prev, ok := p.last[k]; ok && n < prev {
			l.orderViolations = append(l.orderViolations, fmt.Sprintf("%s: %d after %d on %s (worker %s)", k, n, prev, p.shard, p.worker))
		}
		p.last[k] = n
		l.seen[string(r.Data)] = append(l.seen[string(r.Data)], p.worker)
	}
	delete(l.inflight, p.shard)
	l.mu.Unlock()
	// Checkpoint every third batch only, so a crash leaves work to re-deliver while a
	// graceful handoff (ShutdownRequested checkpoints) must leave none.
	p.batches++
	if p.batches%3 != 0 {
		return nil
	}
	return p.checkpoint(ctx, in.Checkpointer)
}

func (p *chaosProcessor) checkpoint(ctx context.Context, cp *checkpoint.Checkpointer) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = cp.Checkpoint(ctx); err == nil || errors.Is(err, checkpoint.ErrLeaseLost) {
			return err
		}
		chaosSleep(ctx, 20*time.Millisecond)
	}
	return nil // handled; the next batch's checkpoint covers this one
}

func (p *chaosProcessor) LeaseLost(context.Context, consumer.LeaseLostInput) {}

func (p *chaosProcessor) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *chaosProcessor) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	return p.checkpoint(ctx, in.Checkpointer)
}

// chaosWorker is one running worker.
type chaosWorker struct {
	w    *consumer.Worker
	stop context.CancelFunc
	done chan error
}

// TestConsumerChaos is the reliability test on the bundled engine with limits
// on: a producer writes records over many keys with per-key sequence numbers, 4 workers
// consume (joining one after the other), shards are split and merged during the run,
// 5% of Kinesis and DynamoDB calls fail, reads are throttled, and (in the "kills" run)
// workers are aborted without shutdown and restarted. It checks that every stored record
// is processed, per-key order holds within each processor's delivery, no shard is
// delivered by two processors at once or by a processor whose lease was given away,
// duplicates occur only in the run with kills and only for records a killed worker had
// delivered, and the fleet reaches a fair share after workers join. FRESHET_SOAK=1 runs a
// longer, larger variant.
func TestConsumerChaos(t *testing.T) {
	soak := os.Getenv("FRESHET_SOAK") == "1"
	base := chaosConfig{records: 40000, rounds: 4, keys: 400, rate: 500, workers: 4, failover: 5 * time.Second, drain: 90 * time.Second}
	if soak {
		base.records, base.rounds, base.keys, base.rate, base.drain = 1000000, 30, 5000, 3000, 5*time.Minute
	}
	for _, kills := range []bool{false, true} {
		name := "no-kills"
		if kills {
			name = "kills"
		}
		t.Run(name, func(t *testing.T) {
			cfg := base
			cfg.kills = kills
			runChaos(t, cfg)
		})
	}
}

func runChaos(t *testing.T, cfg chaosConfig) {
	e := enginetest.Start(t, engine.Config{FaultSeed: 7, Streams: streams.Config{Limits: true}})
	// A failover time of a few seconds needs SDK retries that back off in milliseconds,
	// not the default seconds: a renewal that sleeps through the failover time loses its
	// lease. The retry quota is off since 5% of calls fail on purpose.
	awsCfg := e.AWSConfig()
	awsCfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts, o.MaxBackoff, o.RateLimiter = 6, 100*time.Millisecond, ratelimit.None
		})
	}
	kin, ddb := kinesis.NewFromConfig(awsCfg), dynamodb.NewFromConfig(awsCfg)
	const stream = "chaos"
	if err := e.Streams.CreateStream(stream, 8); err != nil {
		t.Fatal(err)
	}
	e.Faults.Set("Kinesis.*", fault.Rule{ErrorRate: 0.05, ErrorCode: "InternalFailure"})
	e.Faults.Set("DynamoDB.*", fault.Rule{ErrorRate: 0.05, ErrorCode: "InternalServerError"})

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute+time.Duration(cfg.rounds)*10*time.Second)
	defer cancel()
	l := newChaosLedger()

	// Producer: per-key sequence numbers, ordering on, at a steady rate.
	prod, err := producer.New(kin, producer.WithStream(stream), producer.WithOrdering(true), producer.WithLinger(20*time.Millisecond),
		producer.WithBackoff(20*time.Millisecond, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var putFailed atomic.Int64
	var ackMu sync.Mutex
	acked := make(map[string]bool, cfg.records)
	prodDone := make(chan struct{})
	stopProducing := make(chan struct{})
	var produced atomic.Int64
	go func() {
		defer close(prodDone)
		next := make([]int, cfg.keys)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		perTick := max(1, cfg.rate/100)
		for i := 0; i < cfg.records; {
			select {
			case <-ctx.Done():
				return
			case <-stopProducing:
				i = cfg.records
				continue
			case <-tick.C:
			}
			for j := 0; j < perTick && i < cfg.records; j, i = j+1, i+1 {
				k := i % cfg.keys
				next[k]++
				key := "k" + strconv.Itoa(k)
				payload := key + "#" + strconv.Itoa(next[k])
				rec := producer.Record{PartitionKey: key, Data: []byte(payload)}
				if err := prod.Put(ctx, rec, func(r producer.Result) {
					if r.Err != nil {
						putFailed.Add(1)
						return
					}
					ackMu.Lock()
					acked[payload] = true
					ackMu.Unlock()
				}); err != nil {
					putFailed.Add(1)
				}
				produced.Add(1)
			}
		}
		_ = prod.Close(ctx)
	}()

	var mu sync.Mutex
	live := map[string]*chaosWorker{}
	gen := 0
	start := func(slot int) {
		gen++
		id := fmt.Sprintf("w%d-g%d", slot, gen)
		w, err := consumer.New("chaos-app", kin, ddb, l.factory(id),
			consumer.WithStream(stream, consumer.TrimHorizon()), consumer.WithWorkerID(id),
			consumer.WithFailoverTime(cfg.failover), consumer.WithPolling(1000, 2, 200*time.Millisecond),
			consumer.WithShardSyncInterval(time.Second), consumer.WithParentPollInterval(100*time.Millisecond),
			consumer.WithBackoff(50*time.Millisecond, time.Second, 20*time.Millisecond, 500*time.Millisecond),
			consumer.WithCPUMetrics(false), consumer.WithAssignmentInterval(100*time.Millisecond),
			consumer.WithShutdownTimeout(20*time.Second), consumer.WithLogger(chaosLogger(id)))
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		cw := &chaosWorker{w: w, stop: stop, done: make(chan error, 1)}
		go func() { cw.done <- w.Run(runCtx) }()
		mu.Lock()
		live[id] = cw
		mu.Unlock()
	}
	held := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		m := map[string]int{}
		for id, cw := range live {
			m[id] = len(cw.w.HeldLeases())
		}
		return m
	}
	// The leader balances throughput, and the keys are spread evenly over the 8 shards,
	// so a fair share is within one lease of 8/workers for everyone.
	fair := func() bool {
		m := held()
		even := 8 / cfg.workers
		lo, hi, total := 1<<30, 0, 0
		for _, n := range m {
			lo, hi, total = min(lo, n), max(hi, n), total+n
		}
		return len(m) == cfg.workers && lo >= even-1 && lo >= 1 && hi <= even+1 && total == 8
	}
	defer func() {
		mu.Lock()
		for _, cw := range live {
			cw.w.Abort()
			<-cw.done
		}
		mu.Unlock()
	}()

	// Joins: one worker takes every shard, then the others join; the leader must move
	// leases (by graceful handoff) until each holds its fair share.
	start(1)
	chaosWait(t, ctx, 30*time.Second, "first worker holds every shard", func() bool { return held()["w1-g1"] == 8 })
	joined := time.Now()
	for slot := 2; slot <= cfg.workers; slot++ {
		start(slot)
	}
	chaosWait(t, ctx, 60*time.Second, "fair share after joins", func() bool {
		ok := fair()
		if !ok && time.Since(joined) > 50*time.Second {
			t.Logf("held: %v", held())
		}
		return ok
	})
	fairAfter := time.Since(joined)
	fairHeld := held()

	// Chaos: reshard while producing, and (with kills) abort and restart workers.
	rng := rand.New(rand.NewSource(11))
	kills := 0
	reshards := 0
	for round := 0; round < cfg.rounds; round++ {
		open := openShards(t, e, stream)
		switch {
		case round%2 == 0 && len(open) < 16, len(open) < 3:
			sh := open[rng.Intn(len(open))]
			if err := e.Streams.SplitShard(stream, sh.ID, sh.HashKeyRange.Midpoint()); err != nil {
				t.Fatalf("split %s: %v", sh.ID, err)
			}
			reshards++
		default:
			i := rng.Intn(len(open) - 1)
			if err := e.Streams.MergeShards(stream, open[i].ID, open[i+1].ID); err != nil {
				t.Fatalf("merge %s %s: %v", open[i].ID, open[i+1].ID, err)
			}
			reshards++
		}
		if cfg.kills {
			mu.Lock()
			ids := make([]string, 0, len(live))
			for id := range live {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			victim := ids[rng.Intn(len(ids))]
			cw := live[victim]
			delete(live, victim)
			mu.Unlock()
			l.mu.Lock()
			l.killed[victim] = true
			l.mu.Unlock()
			cw.w.Abort()
			<-cw.done
			kills++
			slot, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(victim, "-", 2)[0], "w"))
			chaosSleep(ctx, 500*time.Millisecond)
			start(slot)
		}
		chaosSleep(ctx, 2*time.Second)
	}

	close(stopProducing)
	select {
	case <-prodDone:
	case <-ctx.Done():
		t.Fatal("producer did not finish")
	}
	stored, err := e.Streams.Records(stream)
	if err != nil {
		t.Fatal(err)
	}
	// Copies of each payload in the stream (a producer retry can store one twice).
	copies := map[string]int{}
	deagg, err := aggregation.NewDeaggregator()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range stored {
		urs, err := deagg.Append(nil, aggregation.Record{PartitionKey: r.PartitionKey, Data: r.Data})
		if err != nil {
			t.Fatalf("stored record %s: %v", r.SequenceNumber, err)
		}
		for _, u := range urs {
			copies[string(u.Data)]++
		}
	}
	// Every record the producer acknowledged must be processed. A payload stored twice
	// (a producer retry of a call that had succeeded) is delivered twice without being a
	// consumer duplicate.
	ackMu.Lock()
	want := acked
	ackMu.Unlock()
	missing := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		n := 0
		for p := range want {
			if len(l.seen[p]) == 0 {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(cfg.drain)
	for missing() > 0 && time.Now().Before(deadline) {
		chaosSleep(ctx, 200*time.Millisecond)
	}
	// Graceful shutdown of the fleet.
	mu.Lock()
	for _, cw := range live {
		cw.stop()
	}
	for id, cw := range live {
		select {
		case err := <-cw.done:
			if err != nil {
				t.Errorf("worker %s: %v", id, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("worker %s did not shut down", id)
		}
		cw.done <- nil
	}
	mu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	deliveries, dups, explained := 0, 0, 0
	var dupSamples []string
	lost := 0
	for p := range want {
		ws := l.seen[p]
		if len(ws) == 0 {
			lost++
			continue
		}
		deliveries += len(ws)
		extra := len(ws) - max(1, copies[p])
		if extra <= 0 {
			continue
		}
		dups += extra
		byKilled := false
		for _, w := range ws[:len(ws)-1] {
			byKilled = byKilled || l.killed[w]
		}
		if byKilled {
			explained += extra
		} else if len(dupSamples) < 5 {
			dupSamples = append(dupSamples, fmt.Sprintf("%s by %v", p, ws))
		}
	}
	c := e.Streams.Counters()
	t.Logf("chaos (kills=%v): %d records over %d keys, %d workers, %d reshards (%d splits, %d merges), %d kills; "+
		"%d acknowledged, delivered %d times, %d missing (%d puts failed), %d duplicates (%d explained by kills), %d order violations, "+
		"%d overlapping deliveries, %d stale deliveries; fair share %v after joins in %v; throttled reads+writes %d",
		cfg.kills, produced.Load(), cfg.keys, cfg.workers, reshards, c.Splits, c.Merges, kills, len(want), deliveries, lost, putFailed.Load(),
		dups, explained, len(l.orderViolations), l.overlaps, l.staleDeliveries, fairHeld, fairAfter.Round(time.Millisecond), c.ThrottledRequests)
	if lost > 0 {
		t.Errorf("%d acknowledged records never processed", lost)
	}
	if len(l.orderViolations) > 0 {
		t.Errorf("per-key order violated: %v", l.orderViolations[:min(5, len(l.orderViolations))])
	}
	if l.overlaps > 0 || l.staleDeliveries > 0 {
		t.Errorf("a shard was delivered by two processors at once (%d) or by a fenced-off one (%d)", l.overlaps, l.staleDeliveries)
	}
	if !cfg.kills && dups > 0 {
		t.Errorf("%d duplicates in a run without crashes", dups)
	}
	if dups != explained {
		t.Errorf("%d duplicates not explained by a killed worker, e.g. %v", dups-explained, dupSamples)
	}
	if !cfg.kills {
		// After a kill a lease may still wait for its dead previous owner when the run
		// ends; without kills every handoff must have completed.
		checkLeaseTable(t, ddb)
	}
}

// checkLeaseTable checks the end state: no lease left owned after a graceful shutdown.
func checkLeaseTable(t *testing.T, ddb *dynamodb.Client) {
	t.Helper()
	s, err := lease.NewStore(ddb, lease.DefaultTables("chaos-app"))
	if err != nil {
		t.Fatal(err)
	}
	var ls []lease.Lease
	for attempt := 0; attempt < 5; attempt++ {
		if ls, err = s.List(context.Background()); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.CheckpointOwner != "" {
			t.Errorf("lease %s still in a handoff from %s after shutdown", l.Key, l.CheckpointOwner)
		}
	}
}

func openShards(t *testing.T, e *engine.Engine, stream string) []streams.ShardInfo {
	t.Helper()
	all, err := e.Streams.Shards(stream)
	if err != nil {
		t.Fatal(err)
	}
	var open []streams.ShardInfo
	for _, s := range all {
		if s.Open {
			open = append(open, s)
		}
	}
	sort.Slice(open, func(i, j int) bool { return open[i].HashKeyRange.Start.Cmp(open[j].HashKeyRange.Start) < 0 })
	return open
}

func chaosWait(t *testing.T, ctx context.Context, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: not reached within %v", what, d)
		}
		chaosSleep(ctx, 50*time.Millisecond)
	}
}

func chaosSleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// chaosLogger logs a worker's decisions when FRESHET_CHAOS_DEBUG is set.
func chaosLogger(worker string) *zap.Logger {
	if os.Getenv("FRESHET_CHAOS_DEBUG") == "" {
		return zap.NewNop()
	}
	l, err := zap.NewDevelopment()
	if err != nil {
		return zap.NewNop()
	}
	return l.With(zap.String("w", worker))
}
