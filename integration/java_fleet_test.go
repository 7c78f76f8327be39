package integration

import (
	"context"
	"crypto/md5"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/integration/peers"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/producer"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestMixedFleet: one application with two Java KCL workers and two Freshet worker
// processes over 8 shards while records flow, in the single-table layout (KCL 3.5's for
// a new application; TestMixedFleetThreeTable runs the three-table one). A Freshet worker is
// killed (SIGKILL), then a Java one; a shard is split and two are merged; then every Java
// worker stops gracefully and Freshet workers take over, and back (Java workers join, the
// Freshet ones stop). Every record is delivered at least once, each worker delivers every
// key in Put order, a record is delivered twice only if a killed worker had delivered
// it, no two workers process one shard at once (by their processors' lifecycle events)
// and no two workers, Java or Freshet, lead at once (by what each one's leader election
// answers).
func TestMixedFleet(t *testing.T) {
	mixedFleet(t, false)
}

// TestMixedFleetThreeTable runs the mixed fleet of TestMixedFleet in the three-table
// layout of KCL 3.0-3.4.
func TestMixedFleetThreeTable(t *testing.T) {
	mixedFleet(t, true)
}

// delivery is one delivery of a record: by whom, from which stored record (shard,
// sequence and sub-sequence number).
type delivery struct {
	worker, shard, seq string
	sub                int64
}

// fleet is the workers of a mixed-fleet run and what the test knows of them.
type fleet struct {
	t       *testing.T
	mu      sync.Mutex
	workers []*peers.KCLWorker
	javaIDs map[string]bool
	seen    []int
	killed  map[string]time.Time // worker -> when it was killed
	count   map[int64]int        // deliveries by record id
	by      map[int64][]delivery // record id -> its deliveries, for duplicates
	order   map[string]*idLedger // worker -> its own deliveries, for per-key order
	keys    int
	start   time.Time
	// diagnose, when set, describes the lease table and the stream's shards when a
	// wait fails.
	diagnose func(ids []int64) string
}

func (f *fleet) add(w *peers.KCLWorker) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.workers = append(f.workers, w)
	f.seen = append(f.seen, 0)
	f.order[w.Config.WorkerID] = newLedger(f.keys, true)
}

func (f *fleet) kill(w *peers.KCLWorker) {
	f.feed()
	w.Kill()
	f.mu.Lock()
	f.killed[w.Config.WorkerID] = time.Now()
	f.mu.Unlock()
	f.feed()
}

// feed adds the deliveries of every worker since the last call.
func (f *fleet) feed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, w := range f.workers {
		recs := w.Records()
		l := f.order[w.Config.WorkerID]
		for _, r := range recs[f.seen[i]:] {
			l.add(r.Shard, r.PartitionKey, r.Sequence, r.SubSequence, r.Data)
			if g, ok := parseGen(r.Data); ok {
				f.count[g.id]++
				f.by[g.id] = append(f.by[g.id], delivery{worker: w.Config.WorkerID, shard: r.Shard, seq: r.Sequence, sub: r.SubSequence})
			}
		}
		f.seen[i] = len(recs)
	}
}

// caughtUp waits until every id below n was delivered.
func (f *fleet) caughtUp(n int64, d time.Duration, what string) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f.feed()
		f.mu.Lock()
		missing := int64(0)
		var ids []int64
		for id := int64(0); id < n; id++ {
			if f.count[id] == 0 {
				missing++
				if len(ids) < 20 {
					ids = append(ids, id)
				}
			}
		}
		f.mu.Unlock()
		if missing == 0 {
			f.t.Logf("%v: %s: every one of the first %d records delivered", time.Since(f.start).Round(time.Millisecond), what, n)
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: %d of the first %d records not delivered within %v, first ids %v\n%s", what, missing, n, d, ids, f.report(ids))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processing reports, per worker, the shards whose processor is running.
func (f *fleet) processing() map[string][]string {
	f.mu.Lock()
	ws := slices.Clone(f.workers)
	f.mu.Unlock()
	out := map[string][]string{}
	for _, w := range ws {
		if w.Exited() {
			continue
		}
		for _, tn := range tenures(w.Events(), time.Time{}) {
			if tn.end.IsZero() {
				out[w.Config.WorkerID] = append(out[w.Config.WorkerID], tn.shard)
			}
		}
	}
	return out
}

func (f *fleet) describe() string {
	return fmt.Sprintf("processing: %v", f.processing())
}

// report describes the fleet for a failed wait: what each worker processes, the keys of
// the missing ids, the lease table and shards (diagnose) and every worker's events.
func (f *fleet) report(missing []int64) string {
	var b strings.Builder
	b.WriteString(f.describe())
	if f.diagnose != nil {
		b.WriteString("\n")
		b.WriteString(f.diagnose(missing))
	}
	f.mu.Lock()
	ws := slices.Clone(f.workers)
	f.mu.Unlock()
	for _, w := range ws {
		for _, ev := range w.Events() {
			if ev.Event != "checkpoint" {
				fmt.Fprintf(&b, "\n%s %s %s %s %s", ev.At.Format(time.StampMilli), ev.Worker, ev.Event, ev.Shard, ev.Detail)
			}
		}
	}
	return b.String()
}

// waitProcessing waits until each of ids runs at least one shard processor.
func (f *fleet) waitProcessing(d time.Duration, ids ...string) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		p := f.processing()
		ok := true
		for _, id := range ids {
			ok = ok && len(p[id]) > 0
		}
		if ok {
			f.t.Logf("%v: processing: %v", time.Since(f.start).Round(time.Millisecond), p)
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("workers %v not all processing within %v: %v", ids, d, p)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lockWatch samples the holder of the application's leader lock item every 100 ms.
type lockWatch struct {
	mu  sync.Mutex
	seq []string // distinct holders in turn ("" while none)
}

func watchLeaderLock(t *testing.T, e *engine.Engine, app string, threeTable bool) *lockWatch {
	t.Helper()
	tables := lease.SingleTableLayout(app)
	if threeTable {
		tables = lease.DefaultTables(app)
	}
	s, err := lease.NewStore(enginetest.DynamoDB(e), tables)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := lease.NewLeaderElector(s, "lock-watch")
	if err != nil {
		t.Fatal(err)
	}
	lw := &lockWatch{}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { stop(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if who, err := obs.Leader(ctx); err == nil {
				lw.mu.Lock()
				if n := len(lw.seq); n == 0 || lw.seq[n-1] != who {
					lw.seq = append(lw.seq, who)
				}
				lw.mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return lw
}

func (lw *lockWatch) holders() []string {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return slices.Clone(lw.seq)
}

// tenure is one run of a worker's processor on a shard: from its init event to the event
// that ended it, or to the worker's kill (zero end: still running).
type tenure struct {
	worker, shard string
	start, end    time.Time
}

// leaderships returns the times a worker process, Java or Freshet, reported leading (from
// its "leader" events to "leader-end", its stop, or its kill). A Java worker's leader-end
// names the last time its leader election answered that it led (it learns that it no
// longer leads only at its next question): that is when its leadership ends.
func leaderships(events []peers.JavaEvent, killed time.Time) []tenure {
	var out []tenure
	for _, ev := range events {
		switch ev.Event {
		case "leader":
			out = append(out, tenure{worker: ev.Worker, shard: "leader", start: ev.At})
		case "leader-end", "stopped":
			if n := len(out); n > 0 && out[n-1].end.IsZero() {
				out[n-1].end = ev.At
				if ms, err := strconv.ParseInt(ev.Detail, 10, 64); err == nil && ev.Event == "leader-end" {
					out[n-1].end = time.UnixMilli(ms)
				}
			}
		}
	}
	if n := len(out); n > 0 && out[n-1].end.IsZero() {
		out[n-1].end = killed
	}
	return out
}

// overlaps returns the pairs of tenures of different workers on one shard (or both
// leading) that overlap in time.
func overlaps(all []tenure) []string {
	var out []string
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			a, b := all[i], all[j]
			if a.shard != b.shard || a.worker == b.worker {
				continue
			}
			if a.start.Before(b.end) && b.start.Before(a.end) {
				out = append(out, fmt.Sprintf("%s: %s (%v to %v) and %s (%v to %v) at once", a.shard,
					a.worker, a.start.Format(time.StampMilli), a.end.Format(time.StampMilli),
					b.worker, b.start.Format(time.StampMilli), b.end.Format(time.StampMilli)))
			}
		}
	}
	return out
}

func tenures(events []peers.JavaEvent, killed time.Time) []tenure {
	open := map[string]int{}
	var out []tenure
	for _, ev := range events {
		switch ev.Event {
		case "init":
			open[ev.Shard] = len(out)
			out = append(out, tenure{worker: ev.Worker, shard: ev.Shard, start: ev.At})
		case "lease-lost", "shard-ended", "shutdown-requested", "shutdown-requested-failed":
			if i, ok := open[ev.Shard]; ok {
				out[i].end = ev.At
				delete(open, ev.Shard)
			}
		case "stopped":
			for _, i := range open {
				out[i].end = ev.At
			}
			clear(open)
		}
	}
	for _, i := range open {
		out[i].end = killed
	}
	return out
}

// fleetProducer writes generator records over keys through a Freshet producer at about
// rate records a second until stopped; next is the next id.
type fleetProducer struct {
	logs   *observer.ObservedLogs // the producer's warnings and errors
	next   atomic.Int64
	failed atomic.Int64
	stop   context.CancelFunc
	done   chan error
}

func startFleetProducer(t *testing.T, kin *kinesis.Client, stream string, keys, rate int) *fleetProducer {
	t.Helper()
	core, logs := observer.New(zap.WarnLevel)
	p, err := producer.New(kin, producer.WithStream(stream), producer.WithOrdering(true), producer.WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	fp := &fleetProducer{logs: logs, stop: stop, done: make(chan error, 1)}
	go func() {
		perKey := make([]int64, keys)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			for i := 0; i < rate/100; i++ {
				id := fp.next.Load()
				k := int(id % int64(keys))
				rec := producer.Record{PartitionKey: "k-" + strconv.Itoa(k), Data: genData(id, perKey[k], 100)}
				if err := p.Put(ctx, rec, func(r producer.Result) {
					if r.Err != nil {
						fp.failed.Add(1)
					}
				}); err != nil {
					break
				}
				perKey[k]++
				fp.next.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		fp.done <- p.Close(cctx)
	}()
	return fp
}

// finish stops producing and returns how many records were put.
func (fp *fleetProducer) finish(t *testing.T) int64 {
	t.Helper()
	fp.stop()
	if err := <-fp.done; err != nil {
		t.Fatalf("producer Close: %v", err)
	}
	if n := fp.failed.Load(); n > 0 {
		t.Fatalf("%d records failed to be put", n)
	}
	return fp.next.Load()
}

// hashRanges is the hash key range of each shard of a stream.
type hashRanges map[string][2]*big.Int

// shardRanges lists every shard of stream, open or closed, with its hash key range.
func shardRanges(ctx context.Context, t *testing.T, kin *kinesis.Client, stream string) hashRanges {
	t.Helper()
	out, err := kin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	hr := hashRanges{}
	for _, s := range out.Shards {
		lo, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		hi, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
		hr[aws.ToString(s.ShardId)] = [2]*big.Int{lo, hi}
	}
	return hr
}

// owns reports whether shard's hash key range holds the hash key of partition key pk.
func (hr hashRanges) owns(shard, pk string) bool {
	r, ok := hr[shard]
	if !ok {
		return false
	}
	sum := md5.Sum([]byte(pk))
	h := new(big.Int).SetBytes(sum[:])
	return r[0].Cmp(h) <= 0 && h.Cmp(r[1]) <= 0
}

// listOpenShards returns the open shards of stream (ListShards) by hash key range.
func listOpenShards(ctx context.Context, t *testing.T, kin *kinesis.Client, stream string) []types.Shard {
	t.Helper()
	out, err := kin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	var open []types.Shard
	for _, s := range out.Shards {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, s)
		}
	}
	slices.SortFunc(open, func(a, b types.Shard) int {
		x, _ := new(big.Int).SetString(aws.ToString(a.HashKeyRange.StartingHashKey), 10)
		y, _ := new(big.Int).SetString(aws.ToString(b.HashKeyRange.StartingHashKey), 10)
		return x.Cmp(y)
	})
	return open
}

func mixedFleet(t *testing.T, threeTable bool) {
	const keys, rate, failover = 100, 1000, 5 * time.Second
	app := "fleet-single"
	if threeTable {
		app = "fleet-three"
	}
	stream := app
	e, kin := javaEngine(t, stream, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := &fleet{t: t, killed: map[string]time.Time{}, count: map[int64]int{}, by: map[int64][]delivery{}, order: map[string]*idLedger{}, keys: keys, javaIDs: map[string]bool{}}
	java := func(id string) *peers.KCLWorker {
		f.javaIDs[id] = true
		w := peers.StartKCL(t, peers.KCLConfig{WorkerID: id, App: app, Stream: stream, Endpoint: e.TLSURL(), ThreeTable: threeTable,
			FailoverTime: failover, MetricsReport: 5 * time.Second, LeaderPoll: time.Second, RefreshShardsOnMiss: true})
		f.add(w)
		return w
	}
	freshet := func(id string) *peers.KCLWorker {
		w := startFreshetProcess(t, id, e.URL(), app, stream, failover)
		f.add(w)
		return w
	}
	start := time.Now()
	f.start = start
	locks := watchLeaderLock(t, e, app, threeTable)
	prod := startFleetProducer(t, kin, stream, keys, rate)
	defer prod.stop()
	f.diagnose = func(ids []int64) string {
		var b strings.Builder
		for _, l := range prod.logs.All() {
			fmt.Fprintf(&b, "producer %s %s %v\n", l.Time.Format(time.StampMilli), l.Message, l.ContextMap())
		}
		return b.String() + fleetState(t, e, kin, app, stream, threeTable, ids, keys)
	}

	// The three tables exist first, as KCL 3.0-3.4 leave them; a new application gets the
	// single table. Freshet workers start first and one of them leads: a Java leader
	// whose workers report no CPU (as here, outside EC2, ECS and EKS) does not move leases
	// to workers that join, while a Freshet leader hands them over.
	if threeTable {
		s, err := lease.NewStore(enginetest.DynamoDB(e), lease.DefaultTables(app))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateTables(ctx, lease.TableSettings{}); err != nil {
			t.Fatal(err)
		}
	}
	g1, g2 := freshet("freshet-1"), freshet("freshet-2")
	f.waitProcessing(30*time.Second, "freshet-1", "freshet-2")
	j1, j2 := java("java-1"), java("java-2")
	f.waitProcessing(90*time.Second, "java-1", "java-2", "freshet-1", "freshet-2")
	t.Logf("four workers processing after %v", time.Since(start).Round(time.Millisecond))

	f.kill(g1)
	f.caughtUp(prod.next.Load(), time.Minute, "after freshet-1 was killed")
	f.kill(j1)
	f.caughtUp(prod.next.Load(), time.Minute, "after java-1 was killed")

	// A split and a merge while records flow.
	open := listOpenShards(ctx, t, kin, stream)
	lo, _ := new(big.Int).SetString(aws.ToString(open[0].HashKeyRange.StartingHashKey), 10)
	hi, _ := new(big.Int).SetString(aws.ToString(open[0].HashKeyRange.EndingHashKey), 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	if _, err := kin.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: open[0].ShardId,
		NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatal(err)
	}
	waitActive(ctx, t, kin, stream)
	n := len(open)
	if _, err := kin.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream), ShardToMerge: open[n-2].ShardId,
		AdjacentShardToMerge: open[n-1].ShardId}); err != nil {
		t.Fatal(err)
	}
	waitActive(ctx, t, kin, stream)
	afterReshard := prod.next.Load() + rate // a second of records into the children
	time.Sleep(time.Second)
	f.caughtUp(afterReshard, time.Minute, "after a split and a merge")

	// Every Java worker stops gracefully: the Freshet workers take over.
	g3 := freshet("freshet-3")
	j2.Stop(t)
	f.feed()
	f.caughtUp(prod.next.Load(), time.Minute, "after the Java workers stopped")
	if p := f.processing(); len(p["freshet-2"])+len(p["freshet-3"]) == 0 || len(p) != 2 {
		t.Fatalf("after the Java workers stopped: %v", p)
	}

	// And back: Java workers join, then the Freshet workers stop gracefully.
	j3, j4 := java("java-3"), java("java-4")
	f.waitProcessing(90*time.Second, "java-3", "java-4")
	g2.Stop(t)
	g3.Stop(t)
	f.feed()
	total := prod.finish(t)
	f.caughtUp(total, time.Minute, "after the Freshet workers stopped")
	if p := f.processing(); len(p) != 2 || len(p["java-3"])+len(p["java-4"]) == 0 {
		t.Fatalf("after the Freshet workers stopped: %v", p)
	}
	j3.Stop(t)
	j4.Stop(t)
	f.feed()
	t.Logf("fleet run took %v for %d records", time.Since(start).Round(time.Millisecond), total)

	// Every worker's output well formed, each key in Put order per worker.
	for _, w := range f.workers {
		if bad := w.Malformed(); len(bad) > 0 {
			t.Fatalf("%s wrote %d malformed lines, first %q", w.Config.WorkerID, len(bad), bad[0])
		}
		if v := f.order[w.Config.WorkerID].violations; len(v) > 0 {
			t.Fatalf("%s: %d order violations, first %v", w.Config.WorkerID, len(v), v[:min(3, len(v))])
		}
	}
	// At least once; a stored record delivered again only if a killed worker had
	// delivered it. A record stored twice is two stored records, counted apart from a
	// consumer's duplicates: either a copy in a straddling aggregate, one the producer
	// sent with a shard map made stale by the split to a child whose range does not hold
	// all of its records (the producer puts every record of it again; Java KCL drops the
	// whole aggregate on reading when its shard cache holds the shard, and a Freshet
	// worker with the hash key range filter, as here, always does: no worker may deliver
	// it), or a record the producer wrote twice
	// in the shard that owns it (a put resent after an answer that was not read), which
	// the producer must not do.
	ranges := shardRanges(ctx, t, kin, stream)
	type stored struct{ shard, seq string }
	straddling := map[stored]bool{}
	for id := int64(0); id < total; id++ {
		for _, d := range f.by[id] {
			if !ranges.owns(d.shard, "k-"+strconv.FormatInt(id%keys, 10)) {
				straddling[stored{d.shard, d.seq}] = true
			}
		}
	}
	// Java KCL filters by the shard its shard cache holds: a batch read while the cache
	// lacks the shard (a child of a split the worker has not listed yet) is delivered
	// unfiltered, which the worker's log says (peers.JavaEvent "shard-unknown"). The Java
	// workers here list the shards again at the first such miss (RefreshShardsOnMiss), as
	// docs/java-migration.md tells a mixed fleet to, so none may deliver such a copy.
	unknown := map[string]map[string]bool{}
	for _, w := range f.workers {
		for _, ev := range w.Events() {
			if ev.Event == "shard-unknown" && f.javaIDs[w.Config.WorkerID] {
				id := w.Config.WorkerID
				if unknown[id] == nil {
					unknown[id] = map[string]bool{}
				}
				unknown[id][ev.Shard] = true
			}
		}
	}
	dups, stored2, misplaced, unexplained := 0, 0, 0, 0
	var first, resent []string
	for id := int64(0); id < total; id++ {
		ds := f.by[id]
		byPos := map[delivery][]string{}
		inRange := 0
		for _, d := range ds {
			pos := delivery{shard: d.shard, seq: d.seq, sub: d.sub}
			if len(byPos[pos]) == 0 {
				if !straddling[stored{d.shard, d.seq}] {
					inRange++
				} else {
					misplaced++
					lib := "Freshet"
					if f.javaIDs[d.worker] {
						lib = "Java"
					}
					t.Errorf("record %d: %s worker %s delivered the copy in shard %s, in an aggregate holding records outside its hash key range (its KCL's shard cache lacked the shard: %v)",
						id, lib, d.worker, d.shard, unknown[d.worker][d.shard])
				}
			}
			byPos[pos] = append(byPos[pos], d.worker)
		}
		switch {
		case inRange == 0:
			t.Errorf("record %d: no copy in the shard that owns its hash key outside a straddling aggregate (Java KCL and a filtering Freshet worker, which drop such an aggregate whole, lose it): %v", id, ds)
		case inRange > 1 && len(resent) < 3:
			resent = append(resent, fmt.Sprintf("record %d: %v", id, ds))
		}
		stored2 += len(byPos) - 1
		for pos, ws := range byPos {
			if len(ws) < 2 {
				continue
			}
			dups += len(ws) - 1
			byKilled := false
			for _, w := range ws {
				_, k := f.killed[w]
				byKilled = byKilled || k
			}
			if !byKilled {
				unexplained++
				if len(first) < 3 {
					first = append(first, fmt.Sprintf("record %d at %s/%d by %v", id, pos.seq, pos.sub, ws))
				}
			}
		}
	}
	if len(f.count) != int(total) {
		t.Fatalf("%d distinct ids delivered, %d put", len(f.count), total)
	}
	if unexplained > 0 {
		t.Fatalf("%d records delivered twice though no killed worker had delivered them, first %v", unexplained, first)
	}
	if n := stored2 - misplaced; n > 0 {
		t.Errorf("%d records stored twice in the shard that owns them, first %v", n, resent)
	}
	// No two workers ran a processor on one shard at the same time, and no two workers,
	// Java or Freshet, led at once.
	var all, leads []tenure
	for _, w := range f.workers {
		all = append(all, tenures(w.Events(), f.killed[w.Config.WorkerID])...)
		leads = append(leads, leaderships(w.Events(), f.killed[w.Config.WorkerID])...)
	}
	for _, o := range append(overlaps(all), overlaps(leads)...) {
		t.Error(o)
	}
	if t.Failed() {
		for _, w := range f.workers {
			for _, ev := range w.Events() {
				if ev.Shard != "-" {
					t.Logf("%s %s %s %s %s", ev.At.Format(time.StampMilli), ev.Worker, ev.Event, ev.Shard, ev.Detail)
				}
			}
		}
	}
	if len(leads) == 0 {
		t.Error("no worker ever led")
	}
	slices.SortFunc(leads, func(a, b tenure) int { return a.start.Compare(b.start) })
	var leaders []string
	for _, l := range leads {
		leaders = append(leaders, l.worker)
	}
	t.Logf("leaders in order: %v; leader lock holders in order: %v", leaders, locks.holders())
	t.Logf("%d records, %d delivered again (all had been delivered by a killed worker), %d stored twice, %d delivered from an aggregate straddling its shard's range, %d processor runs; shards missing from Java workers' shard caches: %v",
		total, dups, stored2, misplaced, len(all), unknown)
}

// fleetState describes the application's leases and the stream's shards, for a failed
// wait.
func fleetState(t *testing.T, e *engine.Engine, kin *kinesis.Client, app, stream string, threeTable bool, ids []int64, nkeys int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tables := lease.SingleTableLayout(app)
	if threeTable {
		tables = lease.DefaultTables(app)
	}
	var b strings.Builder
	s, err := lease.NewStore(enginetest.DynamoDB(e), tables)
	if err != nil {
		return err.Error()
	}
	ls, err := s.List(ctx)
	if err != nil {
		fmt.Fprintf(&b, "leases: %v", err)
	}
	for _, l := range ls {
		fmt.Fprintf(&b, "lease %s owner=%q counter=%d cp=%v pending=%v cpOwner=%q parents=%v children=%v\n",
			l.Key, l.Owner, l.Counter, l.Checkpoint, l.PendingCheckpoint, l.CheckpointOwner, l.ParentShardIDs, l.ChildShardIDs)
	}
	out, err := kin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		fmt.Fprintf(&b, "shards: %v", err)
		return b.String()
	}
	hr := shardRanges(ctx, t, kin, stream)
	want := map[int64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for sh := range hr {
		it, err := kin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(sh), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			fmt.Fprintf(&b, "iterator %s: %v\n", sh, err)
			continue
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				fmt.Fprintf(&b, "records %s: %v\n", sh, err)
				break
			}
			for _, r := range out.Records {
				urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data})
				if err != nil {
					continue
				}
				for i, u := range urs {
					if g, ok := parseGen(u.Data); ok && want[g.id] {
						fmt.Fprintf(&b, "stored id %d in %s at %s/%d of %d (aggregate pk %s, arrived %v)\n", g.id, sh, aws.ToString(r.SequenceNumber), i, len(urs),
							aws.ToString(r.PartitionKey), aws.ToTime(r.ApproximateArrivalTimestamp).Format(time.StampMilli))
					}
				}
			}
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	var keys []string
	for _, id := range ids {
		keys = append(keys, "k-"+strconv.FormatInt(id%int64(nkeys), 10))
	}
	for _, k := range keys {
		var in []string
		for sh := range hr {
			if hr.owns(sh, k) {
				in = append(in, sh)
			}
		}
		slices.Sort(in)
		fmt.Fprintf(&b, "missing key %s: shards %v\n", k, in)
	}
	for _, sh := range out.Shards {
		fmt.Fprintf(&b, "shard %s parent=%s adj=%s hash=%s-%s seq=%s-%s\n", aws.ToString(sh.ShardId), aws.ToString(sh.ParentShardId),
			aws.ToString(sh.AdjacentParentShardId), aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey),
			aws.ToString(sh.SequenceNumberRange.StartingSequenceNumber), aws.ToString(sh.SequenceNumberRange.EndingSequenceNumber))
	}
	return b.String()
}
