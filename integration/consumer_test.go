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

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/integration/peers"
	"github.com/freshet/freshet/internal/hashkey"
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
