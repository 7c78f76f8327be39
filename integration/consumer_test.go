package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/integration/peers"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/hashkey"
	"github.com/freshet/freshet/lease"
)

// consumerSink records deliveries and checks per-key order inside each delivery.
type consumerSink struct {
	mu         sync.Mutex
	seen       map[string]int
	violations []string
}

func (s *consumerSink) handle(ctx context.Context, shard consumer.ShardInfo, recs []consumer.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := map[string]int{}
	for _, r := range recs {
		k, ns, _ := strings.Cut(string(r.Data), "#")
		n, _ := strconv.Atoi(ns)
		if p, ok := last[k]; ok && n <= p {
			s.violations = append(s.violations, fmt.Sprintf("%s: %d after %d on %s", k, n, p, shard.ShardID))
		}
		last[k] = n
		s.seen[string(r.Data)]++
	}
	return nil
}

// assertOnceInOrder fails t unless every record was delivered exactly once and
// per-key order held.
func (s *consumerSink) assertOnceInOrder(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.violations) > 0 {
		t.Fatalf("per-key order violated: %v", s.violations[:min(5, len(s.violations))])
	}
	for p, n := range s.seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", p, n)
		}
	}
}

func (s *consumerSink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func waitActive(ctx context.Context, t *testing.T, kin *kinesis.Client, name string) {
	t.Helper()
	for {
		d, err := kin.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && d.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s not active: %v", name, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestConsumerOnKinesaliteDynalite runs two polling workers against kinesalite and
// dynalite across a shard split. Kinesalite reports no ChildShards, so the lineage comes
// from ListShards; every record must be processed, per-key order kept, and the parent
// checkpointed at SHARD_END. Nothing crashes, so no record may be delivered twice: the
// leader's rebalancing moves leases by graceful handoff.
func TestConsumerOnKinesaliteDynalite(t *testing.T) {
	kp, dp := peers.Kinesalite(t), peers.Dynalite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kin := kinesis.NewFromConfig(kp.AWSConfig())
	ddb := dynamodb.NewFromConfig(dp.AWSConfig())
	const stream = "orders"
	if _, err := kin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitActive(ctx, t, kin, stream)

	next := map[string]int{}
	total := 0
	put := func(n int) {
		var entries []types.PutRecordsRequestEntry
		for i := 0; i < n; i++ {
			k := "key" + strconv.Itoa(i%25)
			next[k]++
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: []byte(k + "#" + strconv.Itoa(next[k]))})
		}
		out, err := kin.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put records: %v", err)
		}
		total += n
	}
	put(300)
	shards, err := kin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	s0 := shards.Shards[0]
	r, err := hashkey.ParseRange(*s0.HashKeyRange.StartingHashKey, *s0.HashKeyRange.EndingHashKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kin.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: s0.ShardId,
		NewStartingHashKey: aws.String(r.Midpoint().String())}); err != nil {
		t.Fatal(err)
	}
	waitActive(ctx, t, kin, stream)
	put(300)

	sink := &consumerSink{seen: map[string]int{}}
	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	for _, id := range []string{"w1", "w2"} {
		w, err := consumer.New("peers-app", kin, ddb, consumer.HandlerFunc(sink.handle),
			consumer.WithStream(stream, consumer.TrimHorizon()), consumer.WithWorkerID(id),
			consumer.WithFailoverTime(2*time.Second), consumer.WithPolling(100, 2, 20*time.Millisecond),
			consumer.WithShardSyncInterval(500*time.Millisecond), consumer.WithParentPollInterval(50*time.Millisecond),
			consumer.WithBackoff(10*time.Millisecond, 200*time.Millisecond, 10*time.Millisecond, 200*time.Millisecond),
			consumer.WithCPUMetrics(false), consumer.WithAssignmentInterval(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(runCtx); err != nil {
				t.Errorf("worker %s: %v", w.ID(), err)
			}
		}()
	}
	deadline := time.Now().Add(90 * time.Second)
	for sink.distinct() < total && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	wg.Wait()
	if got := sink.distinct(); got != total {
		t.Fatalf("processed %d distinct records of %d", got, total)
	}
	if len(sink.violations) > 0 {
		t.Fatalf("per-key order violated: %v", sink.violations[:min(5, len(sink.violations))])
	}
	item, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("peers-app"),
		Key: map[string]dtypes.AttributeValue{"leaseKey": &dtypes.AttributeValueMemberS{Value: *s0.ShardId}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if cp, ok := item.Item["checkpoint"].(*dtypes.AttributeValueMemberS); !ok || cp.Value != "SHARD_END" {
		t.Fatalf("parent lease checkpoint %v, want SHARD_END", item.Item["checkpoint"])
	}
	dups := 0
	for _, n := range sink.seen {
		dups += n - 1
	}
	t.Logf("kinesalite+dynalite: %d records over a split, 2 workers, %d duplicates", total, dups)
	if dups != 0 {
		t.Fatalf("%d duplicates without any crash: rebalancing must hand leases over gracefully", dups)
	}
}

// engineWorker runs one worker of app on the engine until the test ends or stop is called.
func engineWorker(t *testing.T, kin *kinesis.Client, ddb *dynamodb.Client, app string, sink *consumerSink, opts ...consumer.Option) (stop func()) {
	t.Helper()
	base := []consumer.Option{consumer.WithWorkerID(app + "-w"), consumer.WithFailoverTime(3 * time.Second),
		consumer.WithPolling(1000, 2, 20*time.Millisecond), consumer.WithShardSyncInterval(200 * time.Millisecond),
		consumer.WithParentPollInterval(20 * time.Millisecond), consumer.WithCPUMetrics(false),
		consumer.WithAssignmentInterval(50 * time.Millisecond)}
	w, err := consumer.New(app, kin, ddb, consumer.HandlerFunc(sink.handle), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker %s: %v", app, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// putKeyed writes n records key#seq over keys with PutRecords and returns the payloads.
func putKeyed(ctx context.Context, t *testing.T, kin *kinesis.Client, stream string, next map[string]int, keys, n int) []string {
	t.Helper()
	var entries []types.PutRecordsRequestEntry
	var payloads []string
	for i := 0; i < n; i++ {
		k := "key" + strconv.Itoa(i%keys)
		next[k]++
		p := k + "#" + strconv.Itoa(next[k])
		payloads = append(payloads, p)
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: []byte(p)})
	}
	out, err := kin.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("put records: %v", err)
	}
	return payloads
}

func waitDelivered(t *testing.T, sink *consumerSink, payloads []string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		sink.mu.Lock()
		missing := 0
		for _, p := range payloads {
			if sink.seen[p] == 0 {
				missing++
			}
		}
		sink.mu.Unlock()
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records not delivered within %v", missing, len(payloads), d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsumerFanOutOnEngine consumes with enhanced fan-out (RegisterStreamConsumer and
// SubscribeToShard through the SDK's event stream) from the engine, across a split and a
// merge: every record is delivered once, per-key order holds, and the parents end at
// SHARD_END (their children found through the subscription's ChildShards).
func TestConsumerFanOutOnEngine(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	kin, ddb := enginetest.Kinesis(e), enginetest.DynamoDB(e)
	ctx := context.Background()
	const stream = "efo"
	if err := e.Streams.CreateStream(stream, 2); err != nil {
		t.Fatal(err)
	}
	sink := &consumerSink{seen: map[string]int{}}
	next := map[string]int{}
	all := putKeyed(ctx, t, kin, stream, next, 20, 200)
	stop := engineWorker(t, kin, ddb, "efo-app", sink, consumer.WithStream(stream, consumer.TrimHorizon()), consumer.WithFanOut("efo-consumer"))
	waitDelivered(t, sink, all, 30*time.Second)

	shards, err := e.Streams.Shards(stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Streams.SplitShard(stream, shards[0].ID, shards[0].HashKeyRange.Midpoint()); err != nil {
		t.Fatal(err)
	}
	all = append(all, putKeyed(ctx, t, kin, stream, next, 20, 200)...)
	open := openShards(t, e, stream)
	if err := e.Streams.MergeShards(stream, open[1].ID, open[2].ID); err != nil {
		t.Fatal(err)
	}
	all = append(all, putKeyed(ctx, t, kin, stream, next, 20, 200)...)
	waitDelivered(t, sink, all, 60*time.Second)
	stop()

	sink.assertOnceInOrder(t)
	consumers, err := kin.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(e.Streams.StreamARN(stream))})
	if err != nil || len(consumers.Consumers) != 1 || aws.ToString(consumers.Consumers[0].ConsumerName) != "efo-consumer" {
		t.Fatalf("stream consumers %+v, %v", consumers, err)
	}
	s, err := lease.NewStore(ddb, lease.DefaultTables("efo-app"))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ended := 0
	for _, l := range ls {
		if l.Checkpoint.IsShardEnd() {
			ended++
		}
	}
	if ended != 3 { // the split parent and both merge parents
		t.Fatalf("%d leases at SHARD_END, want 3: %+v", ended, ls)
	}
}

// TestConsumerInitialPositionsOnEngine starts new applications at LATEST and at
// AT_TIMESTAMP on a stream that already holds records: LATEST delivers only records put
// after the worker started reading, AT_TIMESTAMP only records that arrived at or after
// the timestamp (the engine stamps arrival times on its clock).
func TestConsumerInitialPositionsOnEngine(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	kin, ddb := enginetest.Kinesis(e), enginetest.DynamoDB(e)
	ctx := context.Background()
	const stream = "positions"
	if err := e.Streams.CreateStream(stream, 2); err != nil {
		t.Fatal(err)
	}
	next := map[string]int{}
	before := putKeyed(ctx, t, kin, stream, next, 10, 100)
	time.Sleep(50 * time.Millisecond)
	at := time.Now()
	time.Sleep(50 * time.Millisecond)
	after := putKeyed(ctx, t, kin, stream, next, 10, 100)

	t.Run("AT_TIMESTAMP", func(t *testing.T) {
		sink := &consumerSink{seen: map[string]int{}}
		stop := engineWorker(t, kin, ddb, "at-app", sink, consumer.WithStream(stream, consumer.AtTimestamp(at)))
		waitDelivered(t, sink, after, 30*time.Second)
		stop()
		for _, p := range before {
			if sink.seen[p] > 0 {
				t.Fatalf("%s arrived before the timestamp but was delivered", p)
			}
		}
	})
	t.Run("LATEST", func(t *testing.T) {
		sink := &consumerSink{seen: map[string]int{}}
		w, err := consumer.New("latest-app", kin, ddb, consumer.HandlerFunc(sink.handle),
			consumer.WithStream(stream, consumer.Latest()), consumer.WithCPUMetrics(false),
			consumer.WithPolling(1000, 2, 20*time.Millisecond), consumer.WithAssignmentInterval(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(runCtx) }()
		defer func() { cancel(); <-done }()
		// LATEST starts after the newest record when a shard is first read: wait until
		// every shard is being read (held, and polled at least once), then put.
		deadline := time.Now().Add(30 * time.Second)
		for len(w.HeldLeases()) < 2 {
			if time.Now().After(deadline) {
				t.Fatal("worker did not take both shards")
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
		late := putKeyed(ctx, t, kin, stream, next, 10, 100)
		waitDelivered(t, sink, late, 30*time.Second)
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, p := range append(before, after...) {
			if sink.seen[p] > 0 {
				t.Fatalf("%s was in the stream before the worker started at LATEST but was delivered", p)
			}
		}
	})
}

// TestConsumerCBORFallbackOnKinesisLocal: kinesis-local answers CBOR GetRecords with
// record data as base64 text, which is not the protocol; a worker with its defaults
// (CBOR on) must notice, read in JSON from then on, and deliver every record once, in
// per-key order. Leases live in the engine's DynamoDB.
func TestConsumerCBORFallbackOnKinesisLocal(t *testing.T) {
	kp := peers.KinesisLocal(t)
	e := enginetest.Start(t, engine.Config{})
	kin, ddb := kinesis.NewFromConfig(kp.AWSConfig()), enginetest.DynamoDB(e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const stream = "cbor-fallback"
	if _, err := kin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitActive(ctx, t, kin, stream)
	sink := &consumerSink{seen: map[string]int{}}
	all := putKeyed(ctx, t, kin, stream, map[string]int{}, 20, 300)
	core, logs := observer.New(zap.WarnLevel)
	stop := engineWorker(t, kin, ddb, "cbor-fallback-app", sink, consumer.WithStream(stream, consumer.TrimHorizon()), consumer.WithLogger(zap.New(core)))
	waitDelivered(t, sink, all, 60*time.Second)
	stop()
	if n := logs.FilterMessageSnippet("reading in JSON from now on").Len(); n != 1 {
		t.Errorf("%d warnings that the worker switched to JSON, want 1", n)
	}
	sink.assertOnceInOrder(t)
}
