package integration

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/integration/peers"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/producer"
)

// The tests in this file run the real Java KCL 3.x and KPL (integration/java, started
// through integration/peers) against the engine's HTTPS listener, beside Freshet.

// javaEngine starts an engine with its TLS listener and a stream of shards shards.
func javaEngine(t *testing.T, stream string, shards int32) (*engine.Engine, *kinesis.Client) {
	t.Helper()
	e := enginetest.Start(t, engine.Config{TLS: &engine.TLSConfig{}})
	kin := enginetest.Kinesis(e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	waitActive(ctx, t, kin, stream)
	return e, kin
}

// genRecord is a record of the generator both sides share: id i has partition key
// "k-(i mod keys)" and data "i:(per-key index):" padded with 'x'.
type genRecord struct {
	id, perKey int64
}

func parseGen(data []byte) (genRecord, bool) {
	a, rest, ok1 := bytes.Cut(data, []byte(":"))
	b, _, ok2 := bytes.Cut(rest, []byte(":"))
	id, err1 := strconv.ParseInt(string(a), 10, 64)
	k, err2 := strconv.ParseInt(string(b), 10, 64)
	return genRecord{id, k}, ok1 && ok2 && err1 == nil && err2 == nil
}

func genData(id, perKey int64, size int) []byte {
	b := fmt.Appendf(make([]byte, 0, size), "%d:%d:", id, perKey)
	for len(b) < size {
		b = append(b, 'x')
	}
	return b
}

// idLedger counts deliveries by record id and checks partition keys and per-key order:
// a record delivered for the first time must come after every record of its key
// delivered before it, by its per-key put index (putOrder) or by its stored position
// (sequence and sub-sequence number). Replays (a record seen before) are not checked.
type idLedger struct {
	mu         sync.Mutex
	keys       int64
	putOrder   bool
	count      map[int64]int
	last       map[string]position
	violations []string
}

// position orders user records of one key: by put index, or by stored position.
type position struct {
	perKey int64
	seq    string
	sub    int64
}

func (p position) before(q position, putOrder bool) bool {
	if putOrder {
		return p.perKey < q.perKey
	}
	if len(p.seq) != len(q.seq) {
		return len(p.seq) < len(q.seq)
	}
	if p.seq != q.seq {
		return p.seq < q.seq
	}
	return p.sub < q.sub
}

func newLedger(keys int, putOrder bool) *idLedger {
	return &idLedger{keys: int64(keys), putOrder: putOrder, count: map[int64]int{}, last: map[string]position{}}
}

func (l *idLedger) add(shard, pk, seq string, sub int64, data []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g, ok := parseGen(data)
	if !ok {
		l.violations = append(l.violations, fmt.Sprintf("%s: unreadable record %q", shard, data))
		return
	}
	if want := "k-" + strconv.FormatInt(g.id%l.keys, 10); pk != want {
		l.violations = append(l.violations, fmt.Sprintf("record %d has partition key %q, want %q", g.id, pk, want))
	}
	pos := position{perKey: g.perKey, seq: seq, sub: sub}
	last, seen := l.last[pk]
	if seen && l.count[g.id] == 0 && !last.before(pos, l.putOrder) {
		l.violations = append(l.violations, fmt.Sprintf("key %s: record %d (index %d, %s/%d) delivered after index %d (%s/%d) on %s",
			pk, g.id, g.perKey, seq, sub, last.perKey, last.seq, last.sub, shard))
	}
	if !seen || last.before(pos, l.putOrder) {
		l.last[pk] = pos
	}
	l.count[g.id]++
}

func (l *idLedger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.count)
}

// check fails t unless ids 0..n-1 were each delivered, nothing else was, per-key order
// held and (exactlyOnce) nothing was delivered twice. It returns the duplicate count.
func (l *idLedger) check(t *testing.T, n int64, exactlyOnce bool) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.violations) > 0 {
		t.Fatalf("%d violations, first: %v", len(l.violations), l.violations[:min(5, len(l.violations))])
	}
	missing, dups := 0, 0
	for id := int64(0); id < n; id++ {
		switch c := l.count[id]; {
		case c == 0:
			missing++
		case c > 1:
			dups += c - 1
		}
	}
	if len(l.count) > int(n) || missing > 0 {
		t.Fatalf("%d of %d records missing, %d distinct ids delivered", missing, n, len(l.count))
	}
	if exactlyOnce && dups > 0 {
		t.Fatalf("%d duplicate deliveries, want none", dups)
	}
	return dups
}

func waitLedger(t *testing.T, l *idLedger, n int, d time.Duration, why func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for l.distinct() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records delivered within %v; %s", l.distinct(), n, d, why())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKPLToFreshetConsumer: the real KPL (its native daemon, over HTTPS) writes 200,000
// aggregated records over 1,000 keys; a default Freshet worker delivers every one exactly
// once, with the partition key KPL was given and in per-key order as stored. (The KPL
// itself does not keep per-key put order: it sends a shard's aggregates in parallel
// PutRecords calls, so a key's records can be stored out of put order; the test counts
// and logs those inversions.)
func TestKPLToFreshetConsumer(t *testing.T) {
	const records, keys = 200_000, 1_000
	e, kin := javaEngine(t, "kpl-in", 4)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res := peers.RunKPL(ctx, t, peers.KPLConfig{Stream: "kpl-in", Endpoint: e.TLSURL(), Records: records, Keys: keys, Size: 100})
	t.Logf("KPL: %v", res)
	if res.OK != records || res.Failed != 0 || len(res.Outcomes) != records {
		t.Fatalf("KPL: %v, %d outcomes; want %d ok", res, len(res.Outcomes), records)
	}
	aggregated := map[string]int{}
	byID := make([]string, records)
	for _, o := range res.Outcomes {
		aggregated[o.Seq]++
		byID[o.ID] = o.Seq
	}
	inversions := 0
	for k := 0; k < keys; k++ {
		for id := k + keys; id < records; id += keys {
			if (position{seq: byID[id]}).before(position{seq: byID[id-keys]}, false) {
				inversions++
			}
		}
	}
	if len(aggregated) > records/10 {
		t.Fatalf("KPL stored %d Kinesis records for %d user records: not aggregated", len(aggregated), records)
	}

	ledger := newLedger(keys, false)
	handler := consumer.HandlerFunc(func(ctx context.Context, shard consumer.ShardInfo, recs []consumer.Record) error {
		for _, r := range recs {
			ledger.add(shard.ShardID, r.PartitionKey, r.SequenceNumber, r.SubSequenceNumber, r.Data)
		}
		return nil
	})
	w, err := consumer.New("kpl-reader", kin, enginetest.DynamoDB(e), handler,
		consumer.WithStream("kpl-in", consumer.TrimHorizon()), consumer.WithWorkerID("freshet-1"))
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	waitLedger(t, ledger, records, 2*time.Minute, func() string { return "" })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ledger.check(t, records, true)
	t.Logf("%d user records in %d Kinesis records, delivered once each in per-key stored order; KPL stored %d of them before an earlier put of their key",
		records, len(aggregated), inversions)
}

// produceGen writes n generator records (ids from, from+1, ...) over keys through a Freshet producer
// (aggregated, compression off, per-key Put order kept, then opts) and fails t unless
// every one was stored. It returns how many Kinesis records carried them.
func produceGen(ctx context.Context, t *testing.T, kin *kinesis.Client, stream string, from, n int64, keys int, perKey []int64, opts ...producer.Option) int {
	t.Helper()
	p, err := producer.New(kin, append([]producer.Option{producer.WithStream(stream), producer.WithOrdering(true)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var failed []error
	seqs := map[string]struct{}{}
	for id := from; id < from+n; id++ {
		k := int(id % int64(keys))
		rec := producer.Record{PartitionKey: "k-" + strconv.Itoa(k), Data: genData(id, perKey[k], 100)}
		perKey[k]++
		if err := p.Put(ctx, rec, func(r producer.Result) {
			mu.Lock()
			defer mu.Unlock()
			if r.Err != nil {
				failed = append(failed, r.Err)
				return
			}
			seqs[r.SequenceNumber] = struct{}{}
		}); err != nil {
			t.Fatalf("Put %d: %v", id, err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("producer Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		t.Fatalf("%d records failed, first: %v", len(failed), failed[0])
	}
	return len(seqs)
}

// feedLedger adds the deliveries Java workers made since the last call (seen holds how
// many of each worker's records were added before).
func feedLedger(l *idLedger, workers []*peers.KCLWorker, seen []int) {
	for i, w := range workers {
		recs := w.Records()
		for _, r := range recs[seen[i]:] {
			l.add(r.Shard, r.PartitionKey, r.Sequence, r.SubSequence, r.Data)
		}
		seen[i] = len(recs)
	}
}

// drainWithJavaKCL runs one Java KCL worker with cfg until it has delivered records
// distinct generated records over keys (or within d), stops it gracefully, and checks
// that each was delivered exactly once in per-key order and every line it wrote was
// well formed. It returns the stopped worker, for checks of the records' data.
func drainWithJavaKCL(t *testing.T, cfg peers.KCLConfig, records, keys int, d time.Duration) *peers.KCLWorker {
	t.Helper()
	w := peers.StartKCL(t, cfg)
	ledger := newLedger(keys, true)
	seen := []int{0}
	deadline := time.Now().Add(d)
	for ledger.distinct() < records && time.Now().Before(deadline) && !w.Exited() {
		time.Sleep(200 * time.Millisecond)
		feedLedger(ledger, []*peers.KCLWorker{w}, seen)
	}
	if ledger.distinct() < records {
		t.Fatalf("Java KCL delivered %d of %d records\nstderr:\n%s", ledger.distinct(), records, w.Stderr())
	}
	w.Stop(t)
	feedLedger(ledger, []*peers.KCLWorker{w}, seen)
	if bad := w.Malformed(); len(bad) > 0 {
		t.Fatalf("Java worker wrote %d malformed lines, first %q", len(bad), bad[0])
	}
	ledger.check(t, int64(records), true)
	return w
}

// TestFreshetProducerToJavaKCL: Freshet's producer writes 200,000 aggregated records
// (compression off, the default: Java KCL cannot read Freshet's compressed framing) over
// 1,000 keys; a Java KCL 3.x worker delivers every one exactly once in per-key Put order.
func TestFreshetProducerToJavaKCL(t *testing.T) {
	const records, keys = 200_000, 1_000
	e, kin := javaEngine(t, "to-java", 4)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stored := produceGen(ctx, t, kin, "to-java", 0, records, keys, make([]int64, keys))
	if stored > records/10 {
		t.Fatalf("%d Kinesis records for %d user records: not aggregated", stored, records)
	}
	drainWithJavaKCL(t, peers.KCLConfig{WorkerID: "java-1", App: "java-reader", Stream: "to-java", Endpoint: e.TLSURL(),
		FailoverTime: 5 * time.Second}, records, keys, 3*time.Minute)
	t.Logf("%d user records in %d Kinesis records, delivered once each by Java KCL in per-key Put order", records, stored)
}
