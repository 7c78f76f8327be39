package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/producer"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// engineBinary builds freshet-engine once for the process tests.
func engineBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "freshet-engine-test")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "freshet-engine")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startEngine starts the real command with args and returns it with its endpoint once
// /health answers.
func startEngine(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(engineBinary(t), append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-urls:
	case <-time.After(60 * time.Second):
		t.Fatal("freshet-engine did not start")
	}
	resp, err := http.Get(url + "/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %v %v", resp, err)
	}
	resp.Body.Close()
	return cmd, url
}

func awsConfig(url string) aws.Config {
	return aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")}
}

// acked is what the engine acknowledged before it was killed.
type acked struct {
	mu      sync.Mutex
	records map[string]string // sequence number -> data
	items   map[string]bool
}

// readStream returns every record of every shard of a stream, from the trim horizon.
func readStream(ctx context.Context, t *testing.T, k *kinesis.Client, stream string) []types.Record {
	t.Helper()
	shards, err := k.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	var recs []types.Record
	for _, sh := range shards.Shards {
		it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		for iter := it.ShardIterator; iter != nil; {
			out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, out.Records...)
			if len(out.Records) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return recs
}

// TestSIGKILLLosesNothingAcknowledged writes records and items from several clients to
// `freshet-engine -data`, kills the process with SIGKILL in the middle of the writes,
// restarts it on the same directory and finds every acknowledged record (same sequence
// number, same data, same shard) and every acknowledged item, plus the stream, its
// consumer and the table.
func TestSIGKILLLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	cmd, url := startEngine(t, "-data", dir, "-limits=false")
	ctx := context.Background()
	cfg := awsConfig(url)
	k := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	d := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	desc, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := k.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: desc.StreamDescriptionSummary.StreamARN, ConsumerName: aws.String("c")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String("tbl"), BillingMode: ddbtypes.BillingModePayPerRequest,
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: ddbtypes.KeyTypeHash}},
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: ddbtypes.ScalarAttributeTypeS}}}); err != nil {
		t.Fatal(err)
	}

	a := &acked{records: map[string]string{}, items: map[string]bool{}}
	var calls atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(2)
		go func() { // records
			defer wg.Done()
			for i := 0; ; i++ {
				entries := make([]types.PutRecordsRequestEntry, 20)
				for j := range entries {
					entries[j] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(w, "-", i, "-", j)), Data: []byte(fmt.Sprintf("w%d r%d e%d", w, i, j))}
				}
				out, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
				if err != nil {
					return // the engine is gone
				}
				calls.Add(1)
				a.mu.Lock()
				for j, r := range out.Records {
					if r.SequenceNumber != nil {
						a.records[*r.SequenceNumber] = string(entries[j].Data)
					}
				}
				a.mu.Unlock()
			}
		}()
		go func() { // items
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprint("w", w, "-", i)
				if _, err := d.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("tbl"), Item: map[string]ddbtypes.AttributeValue{
					"k": &ddbtypes.AttributeValueMemberS{Value: key}}}); err != nil {
					return
				}
				calls.Add(1)
				a.mu.Lock()
				a.items[key] = true
				a.mu.Unlock()
			}
		}()
	}
	for deadline := time.Now().Add(30 * time.Second); calls.Load() < 300 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	wg.Wait()
	if len(a.records) == 0 || len(a.items) == 0 {
		t.Fatalf("nothing acknowledged before the kill: %d records, %d items", len(a.records), len(a.items))
	}

	_, url = startEngine(t, "-data", dir, "-limits=false")
	cfg = awsConfig(url)
	k = kinesis.NewFromConfig(cfg)
	d = dynamodb.NewFromConfig(cfg)
	stored := map[string]string{}
	for _, r := range readStream(ctx, t, k, "s") {
		stored[*r.SequenceNumber] = string(r.Data)
	}
	lost := 0
	for seq, data := range a.records {
		if stored[seq] != data {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged records lost or changed after SIGKILL (%d stored)", lost, len(a.records), len(stored))
	}
	for key := range a.items {
		out, err := d.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("tbl"), Key: map[string]ddbtypes.AttributeValue{"k": &ddbtypes.AttributeValueMemberS{Value: key}}})
		if err != nil || out.Item == nil {
			t.Fatalf("acknowledged item %s lost after SIGKILL: %v", key, err)
		}
	}
	c, err := k.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: cons.Consumer.ConsumerARN})
	if err != nil || *c.ConsumerDescription.ConsumerName != "c" {
		t.Fatalf("consumer after SIGKILL: %v", err)
	}
	t.Logf("%d acknowledged records and %d items survived SIGKILL (%d records stored)", len(a.records), len(a.items), len(stored))
}

// TestRestartKeepsStateAndRefusesOtherSettings stops `freshet-engine -data` with
// SIGTERM and restarts it: streams, shards after a split and records are back; a start
// with other limits on the same directory is refused.
func TestRestartKeepsStateAndRefusesOtherSettings(t *testing.T) {
	dir := t.TempDir()
	cmd, url := startEngine(t, "-data", dir)
	ctx := context.Background()
	k := kinesis.NewFromConfig(awsConfig(url))
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	put, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("before split")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	out, err := exec.Command(engineBinary(t), "-addr", "127.0.0.1:0", "-data", dir, "-limits=false").CombinedOutput()
	if err == nil || !regexp.MustCompile(`other settings`).Match(out) {
		t.Fatalf("start with other settings: %v\n%s", err, out)
	}
	_, url = startEngine(t, "-data", dir)
	k = kinesis.NewFromConfig(awsConfig(url))
	shards, err := k.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")})
	if err != nil || len(shards.Shards) != 3 || shards.Shards[0].SequenceNumberRange.EndingSequenceNumber == nil {
		t.Fatalf("shards after restart: %+v %v", shards, err)
	}
	it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: put.SequenceNumber})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(recs.Records) != 1 || string(recs.Records[0].Data) != "before split" || len(recs.ChildShards) != 2 {
		t.Fatalf("records after restart: %+v %v", recs, err)
	}
}

// TestFaultFlagsProducerLosesNothing runs the real command with fault flags (throttled
// and failed PutRecords, connections dropped before and after the write, latency, and
// throttled ListShards) and writes 3,000 records with a Freshet producer: every record
// resolves successfully and every one is in the stream.
func TestFaultFlagsProducerLosesNothing(t *testing.T) {
	_, url := startEngine(t, "-limits=false",
		"-fault", "Kinesis.PutRecords:error=0.2,code=ProvisionedThroughputExceededException,drop=0.05,drop-after=0.05,latency=1ms",
		"-fault", "Kinesis.ListShards:error=0.3,code=LimitExceededException")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k := kinesis.NewFromConfig(awsConfig(url))
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	p, err := producer.New(k, producer.WithStream("s"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	var failed atomic.Int64
	for i := range n {
		rec := producer.Record{PartitionKey: fmt.Sprint("key-", i%97), Data: []byte(fmt.Sprint("record-", i))}
		if err := p.Put(ctx, rec, func(r producer.Result) {
			if r.Err != nil {
				failed.Add(1)
				t.Errorf("record %d: %v", i, r.Err)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if failed.Load() > 0 {
		t.Fatalf("%d records failed", failed.Load())
	}
	seen := map[string]bool{}
	deagg, err := aggregation.NewDeaggregator()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readStream(ctx, t, k, "s") {
		users, err := deagg.Deaggregate(aggregation.Record{PartitionKey: *r.PartitionKey, Data: r.Data})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			seen[string(u.Data)] = true
		}
	}
	// The faults were on: calls without the SDK's retries see them.
	once := kinesis.NewFromConfig(awsConfig(url), func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	faulted := 0
	for range 40 {
		if _, err := once.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"),
			Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("probe"), Data: []byte("probe")}}}); err != nil {
			faulted++
		}
	}
	if faulted == 0 {
		t.Fatal("40 PutRecords calls without retries met no injected fault")
	}
	for i := range n {
		if !seen[fmt.Sprint("record-", i)] {
			t.Fatalf("record-%d acknowledged but not in the stream (%d distinct stored)", i, len(seen))
		}
	}
}
