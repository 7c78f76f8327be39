package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/internal/engine/tables"
)

// state is what a restart must keep.
type state struct {
	records  []streams.Record
	shards   []streams.ShardInfo
	consumer string
	items    []tables.Item
	metrics  int
}

func capture(t *testing.T, e *engine.Engine) state {
	t.Helper()
	ctx := context.Background()
	recs, err := e.Streams.Records("s")
	if err != nil {
		t.Fatal(err)
	}
	shards, err := e.Streams.Shards("s")
	if err != nil {
		t.Fatal(err)
	}
	consumer := "none"
	if c, err := enginetest.Kinesis(e).DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(e.Streams.StreamARN("s")), ConsumerName: aws.String("c")}); err == nil {
		consumer = *c.ConsumerDescription.ConsumerARN
	}
	items, _ := e.Tables.Items("tbl")
	return state{records: recs, shards: shards, consumer: consumer, items: items, metrics: len(e.Metrics.Datums("app", "m"))}
}

// TestStateSurvivesRestart writes streams, records (some throttled by the limits), a
// split, a consumer, a table and items, and metrics through the wire, closes the engine
// and starts a new one on the same data directory: everything is there with the same
// sequence numbers, shard lineage and consumer ARN, and the engine keeps working on it.
func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := engine.Config{DataDir: dir, Streams: streams.Config{Limits: true}}
	e, err := engine.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := kinesis.NewFromConfig(e.AWSConfig(), func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	entries := make([]types.PutRecordsRequestEntry, 500)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte(fmt.Sprint("record ", i))}
	}
	throttled := int32(0)
	for range 5 {
		out, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
		if err != nil {
			t.Fatal(err)
		}
		throttled += aws.ToInt32(out.FailedRecordCount)
	}
	if throttled == 0 {
		t.Fatal("2,500 records into two shards at once: none throttled")
	}
	if _, err := k.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("after split"), Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(e.Streams.StreamARN("s")), ConsumerName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	d := dynamodb.NewFromConfig(e.AWSConfig())
	if _, err := d.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String("tbl"), BillingMode: ddbtypes.BillingModePayPerRequest,
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: ddbtypes.KeyTypeHash}},
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: ddbtypes.ScalarAttributeTypeS}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := d.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("tbl"), Item: map[string]ddbtypes.AttributeValue{
			"k": &ddbtypes.AttributeValueMemberS{Value: fmt.Sprint(i)}, "n": &ddbtypes.AttributeValueMemberN{Value: "0"}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("tbl"), Key: map[string]ddbtypes.AttributeValue{"k": &ddbtypes.AttributeValueMemberS{Value: "3"}},
		UpdateExpression: aws.String("SET n = n + :one"), ConditionExpression: aws.String("n = :zero"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": &ddbtypes.AttributeValueMemberN{Value: "1"}, ":zero": &ddbtypes.AttributeValueMemberN{Value: "0"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String("tbl"), Key: map[string]ddbtypes.AttributeValue{"k": &ddbtypes.AttributeValueMemberS{Value: "5"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cloudwatch.NewFromConfig(e.AWSConfig()).PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("app"),
		MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}}}); err != nil {
		t.Fatal(err)
	}
	before := capture(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2, err := engine.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	after := capture(t, e2)
	if len(before.records) != 2500-int(throttled)+1 || len(before.items) != 9 || before.metrics != 1 || before.consumer == "none" {
		t.Fatalf("before the restart: %d records (%d throttled), %d items, %d metrics", len(before.records), throttled, len(before.items), before.metrics)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed across the restart:\nbefore %d records %+v %s %d items\nafter  %d records %+v %s %d items",
			len(before.records), before.shards, before.consumer, len(before.items), len(after.records), after.shards, after.consumer, len(after.items))
	}
	out, err := enginetest.Kinesis(e2).PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("after restart"), Data: []byte("y")})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range before.records {
		if r.SequenceNumber == *out.SequenceNumber {
			t.Fatalf("a record put after the restart reuses sequence number %s", r.SequenceNumber)
		}
	}
}

// TestTornJournalTailIsDropped appends half a frame to the journal, as a crash in the
// middle of a write leaves it: the engine starts with every whole entry and drops the
// torn one.
func TestTornJournalTailIsDropped(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Start(engine.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := enginetest.Kinesis(e)
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, engine.JournalFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	torn, _ := os.Stat(path)
	e2, err := engine.Start(engine.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	recs, err := e2.Streams.Records("s")
	if err != nil || len(recs) != 1 || string(recs[0].Data) != "x" {
		t.Fatalf("records after a torn tail: %v %v", recs, err)
	}
	if fixed, _ := os.Stat(path); fixed.Size() != torn.Size()-11 {
		t.Fatalf("journal %d bytes after start, %d with the torn tail", fixed.Size(), torn.Size())
	}
}

// TestOnDemandScalingReplays lets an ON_DEMAND stream split a hot shard in the
// engine's own maintenance, then restarts: the children and the records written to
// them after the split are back.
func TestOnDemandScalingReplays(t *testing.T) {
	dir := t.TempDir()
	cfg := engine.Config{DataDir: dir, Streams: streams.Config{Limits: true, OnDemandWindow: 200 * time.Millisecond, MaintenanceInterval: 20 * time.Millisecond}}
	e, err := engine.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := kinesis.NewFromConfig(e.AWSConfig(), func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	entries := make([]types.PutRecordsRequestEntry, 500)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(i)), Data: make([]byte, 100)}
	}
	deadline := time.Now().Add(20 * time.Second)
	for e.Streams.Counters().Splits == 0 && time.Now().Before(deadline) {
		if _, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries}); err != nil {
			t.Fatal(err)
		}
	}
	if e.Streams.Counters().Splits == 0 {
		t.Fatal("no on-demand split within 20 s")
	}
	if _, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries}); err != nil {
		t.Fatal(err)
	}
	before := capture(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2, err := engine.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	after := capture(t, e2)
	if len(before.shards) <= 4 || !reflect.DeepEqual(before.records, after.records) || !reflect.DeepEqual(before.shards, after.shards) {
		t.Fatalf("before: %d shards, %d records; after: %d shards, %d records", len(before.shards), len(before.records), len(after.shards), len(after.records))
	}
}
