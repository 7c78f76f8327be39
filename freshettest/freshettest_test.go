package freshettest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/freshettest"
)

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "non-API error: " + err.Error()
	}
	return ""
}

// noRetry is a client option for checking each injected fault's effect on one call.
func noRetry(o *kinesis.Options) { o.RetryMaxAttempts = 1 }

func TestOptionsAreValidated(t *testing.T) {
	for name, opt := range map[string]freshettest.Option{
		"nil":            nil,
		"negative delay": freshettest.WithStatusDelays(-time.Second, 0, 0, 0),
		"shard limit":    freshettest.WithShardLimit(0),
		"nil clock":      freshettest.WithClock(nil),
	} {
		if _, err := freshettest.New(opt); !errors.Is(err, freshettest.ErrInvalidOption) {
			t.Errorf("%s: err %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := freshettest.New(freshettest.WithAddr("256.0.0.1:1")); err == nil {
		t.Error("bad address accepted")
	}
}

func TestCreateStreamWaitsUntilActive(t *testing.T) {
	e := freshettest.Start(t, freshettest.WithStatusDelays(150*time.Millisecond, 0, 0, 0))
	ctx := context.Background()
	k := e.Kinesis()
	for _, s := range []freshettest.Stream{{Name: "provisioned", Shards: 3}, {Name: "on-demand", OnDemand: true}, {Name: "warm", OnDemand: true, WarmThroughputMiBps: 10}} {
		if err := e.CreateStream(ctx, s); err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		out, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.Name)})
		if err != nil {
			t.Fatal(err)
		}
		d := out.StreamDescriptionSummary
		wantMode := types.StreamModeProvisioned
		if s.OnDemand {
			wantMode = types.StreamModeOnDemand
		}
		if d.StreamStatus != types.StreamStatusActive || d.StreamModeDetails.StreamMode != wantMode {
			t.Errorf("%s: status %s mode %s", s.Name, d.StreamStatus, d.StreamModeDetails.StreamMode)
		}
	}
	shards, err := e.Shards("provisioned")
	if err != nil || len(shards) != 3 {
		t.Fatalf("shards %v %v", shards, err)
	}
	if n, _ := e.Shards("warm"); len(n) <= 4 {
		t.Errorf("warm stream has %d shards, want more than the 4 of a cold one", len(n))
	}
	var se *freshettest.ServiceError
	if err := e.CreateStream(ctx, freshettest.Stream{Name: "provisioned", Shards: 1}); !errors.As(err, &se) || se.Code != "ResourceInUseException" {
		t.Errorf("second create: %v", err)
	}
	if err := e.CreateStream(ctx, freshettest.Stream{Name: "bad", Shards: 0}); !errors.As(err, &se) || se.Code != "ValidationException" {
		t.Errorf("zero shards: %v", err)
	}
	if err := e.CreateStream(ctx, freshettest.Stream{Name: "bad", Shards: 1, WarmThroughputMiBps: 1}); !errors.Is(err, freshettest.ErrInvalidOption) {
		t.Errorf("warm provisioned: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.WaitForStream(cctx, "missing"); !errors.As(err, &se) || se.Code != "ResourceNotFoundException" {
		t.Errorf("wait for missing stream: %v", err)
	}
}

func TestResharding(t *testing.T) {
	e := freshettest.Start(t, freshettest.WithStatusDelays(0, 50*time.Millisecond, 0, 0))
	ctx := context.Background()
	if err := e.CreateStream(ctx, freshettest.Stream{Name: "s", Shards: 2}); err != nil {
		t.Fatal(err)
	}
	if err := e.SplitShard(ctx, "s", "shardId-000000000000", "1000"); err != nil {
		t.Fatal(err)
	}
	if err := e.MergeShards(ctx, "s", "shardId-000000000002", "shardId-000000000003"); err != nil {
		t.Fatal(err)
	}
	if err := e.UpdateShardCount(ctx, "s", 4); err != nil {
		t.Fatal(err)
	}
	shards, err := e.Shards("s")
	if err != nil {
		t.Fatal(err)
	}
	open := 0
	for _, s := range shards {
		if s.Open {
			open++
		}
	}
	if open != 4 || shards[2].ParentID != "shardId-000000000000" || shards[2].EndingHashKey != "999" ||
		shards[4].ParentID != "shardId-000000000002" || shards[4].AdjacentParentID != "shardId-000000000003" {
		t.Fatalf("shards after split, merge and update: %+v", shards)
	}
	if err := e.SplitShard(ctx, "s", "shardId-000000000000", "x"); !errors.Is(err, freshettest.ErrInvalidOption) {
		t.Errorf("bad hash key: %v", err)
	}
	var se *freshettest.ServiceError
	if err := e.MergeShards(ctx, "s", "shardId-000000000000", "shardId-000000000001"); !errors.As(err, &se) || se.Code != "ResourceInUseException" && se.Code != "InvalidArgumentException" {
		t.Errorf("merging closed shards: %v", err)
	}
}

func TestInjectedFaults(t *testing.T) {
	e := freshettest.Start(t)
	ctx := context.Background()
	if err := e.CreateStream(ctx, freshettest.Stream{Name: "s", Shards: 1}); err != nil {
		t.Fatal(err)
	}
	k := e.Kinesis(noRetry)
	put := func() error {
		_, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")})
		return err
	}
	stored := func() int {
		r, err := e.Records("s")
		if err != nil {
			t.Fatal(err)
		}
		return len(r)
	}

	for _, bad := range []struct {
		op string
		f  freshettest.Fault
	}{
		{"Kinesis.NoSuchOperation", freshettest.Fault{ErrorRate: 1}},
		{"S3.*", freshettest.Fault{ErrorRate: 1}},
		{"Kinesis.PutRecord", freshettest.Fault{ErrorRate: 1.5}},
		{"Kinesis.PutRecord", freshettest.Fault{Latency: -time.Second}},
	} {
		if err := e.InjectFault(bad.op, bad.f); !errors.Is(err, freshettest.ErrInvalidOption) {
			t.Errorf("%s %+v: err %v, want ErrInvalidOption", bad.op, bad.f, err)
		}
	}

	if err := e.InjectFault("Kinesis.PutRecord", freshettest.Fault{ErrorRate: 1, ErrorCode: "ProvisionedThroughputExceededException"}); err != nil {
		t.Fatal(err)
	}
	if err := put(); errCode(err) != "ProvisionedThroughputExceededException" || stored() != 0 {
		t.Fatalf("throttling fault: %v, %d stored", err, stored())
	}
	if err := e.InjectFault("Kinesis.*", freshettest.Fault{DropAfterRate: 1}); err != nil {
		t.Fatal(err)
	}
	e.ClearFault("Kinesis.PutRecord")
	if err := put(); err == nil || stored() != 1 {
		t.Fatalf("drop after effect: err %v, %d stored (want an error and 1)", err, stored())
	}
	if err := e.InjectFault("*", freshettest.Fault{DropRate: 1}); err != nil {
		t.Fatal(err)
	}
	e.ClearFault("Kinesis.*")
	if err := put(); err == nil || stored() != 1 {
		t.Fatalf("drop before effect: err %v, %d stored (want an error and still 1)", err, stored())
	}
	if err := e.InjectFault("*", freshettest.Fault{Latency: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := put(); err != nil || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("latency: %v after %v", err, time.Since(start))
	}
	e.ClearFaults()

	if err := e.ThrottleStream("s", true); err != nil {
		t.Fatal(err)
	}
	if err := put(); errCode(err) != "ProvisionedThroughputExceededException" {
		t.Fatalf("forced throttling: %v", err)
	}
	if err := e.ThrottleStream("s", false); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPutRecordsEntryFaults(freshettest.EntryFaults{InternalFailureRate: 1, StoredRate: 1}); err != nil {
		t.Fatal(err)
	}
	out, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"),
		Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("y")}}})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 1 || stored() != 3 || e.StreamCounters().GhostRecords != 1 {
		t.Fatalf("entry faults: %v %+v, %d stored, counters %+v", err, out, stored(), e.StreamCounters())
	}
	if err := e.SetPutRecordsEntryFaults(freshettest.EntryFaults{ThrottleRate: 0.8, InternalFailureRate: 0.8}); !errors.Is(err, freshettest.ErrInvalidOption) {
		t.Errorf("entry rates above 1: %v", err)
	}
}

func TestLimits(t *testing.T) {
	e := freshettest.Start(t, freshettest.WithLimits(true))
	ctx := context.Background()
	if err := e.CreateStream(ctx, freshettest.Stream{Name: "s", Shards: 1}); err != nil {
		t.Fatal(err)
	}
	k := e.Kinesis(noRetry)
	entries := make([]types.PutRecordsRequestEntry, 500)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(i)), Data: []byte("x")}
	}
	failed := int32(0)
	for range 4 {
		out, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
		if err != nil {
			t.Fatal(err)
		}
		failed += aws.ToInt32(out.FailedRecordCount)
	}
	if failed == 0 || e.StreamCounters().ThrottledRecords != int64(failed) {
		t.Fatalf("2,000 records at once into a 1,000 records/s shard: %d failed, counters %+v", failed, e.StreamCounters())
	}
}

func TestItemsAndMetrics(t *testing.T) {
	e := freshettest.Start(t)
	ctx := context.Background()
	d := e.DynamoDB()
	if _, err := d.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String("tbl"), BillingMode: ddbtypes.BillingModePayPerRequest,
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: ddbtypes.KeyTypeHash}},
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: ddbtypes.ScalarAttributeTypeS}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("tbl"), Item: map[string]ddbtypes.AttributeValue{
		"k": &ddbtypes.AttributeValueMemberS{Value: "a"}, "n": &ddbtypes.AttributeValueMemberN{Value: "7"},
		"l":  &ddbtypes.AttributeValueMemberL{Value: []ddbtypes.AttributeValue{&ddbtypes.AttributeValueMemberBOOL{Value: true}}},
		"ss": &ddbtypes.AttributeValueMemberSS{Value: []string{"x", "y"}}, "b": &ddbtypes.AttributeValueMemberB{Value: []byte{1, 2}},
	}}); err != nil {
		t.Fatal(err)
	}
	items, err := e.Items("tbl")
	if err != nil || len(items) != 1 {
		t.Fatalf("items %v %v", items, err)
	}
	it := items[0]
	if it["k"].(*ddbtypes.AttributeValueMemberS).Value != "a" || it["n"].(*ddbtypes.AttributeValueMemberN).Value != "7" ||
		!it["l"].(*ddbtypes.AttributeValueMemberL).Value[0].(*ddbtypes.AttributeValueMemberBOOL).Value ||
		len(it["ss"].(*ddbtypes.AttributeValueMemberSS).Value) != 2 || string(it["b"].(*ddbtypes.AttributeValueMemberB).Value) != "\x01\x02" {
		t.Fatalf("item %#v", it)
	}
	if names := e.TableNames(); len(names) != 1 || names[0] != "tbl" {
		t.Fatalf("tables %v", names)
	}
	if _, err := e.Items("missing"); err == nil {
		t.Fatal("items of a missing table")
	}

	cw := e.CloudWatch()
	if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("app"), MetricData: []cwtypes.MetricDatum{
		{MetricName: aws.String("Orders"), Value: aws.Float64(3), Dimensions: []cwtypes.Dimension{{Name: aws.String("Shard"), Value: aws.String("0")}}},
		{MetricName: aws.String("Orders"), Value: aws.Float64(5)},
	}}); err != nil {
		t.Fatal(err)
	}
	data := e.MetricData("app", "Orders")
	if len(data) != 2 || data[0].Dimensions[0] != (freshettest.Dimension{Name: "Shard", Value: "0"}) || data[1].Stats.Sum != 5 {
		t.Fatalf("metric data %+v", data)
	}
	if s := e.MetricStats("app", "Orders"); s.SampleCount != 2 || s.Sum != 8 || s.Maximum != 5 {
		t.Fatalf("stats %+v", s)
	}
	if len(e.AllMetricData()) != 2 {
		t.Fatal("all metric data")
	}
}

// TestManualClock: with a manual clock, an iterator expires and retention drops a
// record exactly when the test moves time, not before.
func TestManualClock(t *testing.T) {
	m := clock.NewManual(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	e := freshettest.Start(t, freshettest.WithClock(m))
	ctx := context.Background()
	if err := e.CreateStream(ctx, freshettest.Stream{Name: "s", Shards: 1}); err != nil {
		t.Fatal(err)
	}
	k := e.Kinesis()
	if _, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("r")}); err != nil {
		t.Fatal(err)
	}
	read := func() (*kinesis.GetRecordsOutput, error) {
		it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"),
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		m.Advance(4 * time.Minute)
		if out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator}); err != nil {
			return out, err
		}
		m.Advance(2 * time.Minute)
		return k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	}
	_, err := read()
	var expired *types.ExpiredIteratorException
	if !errors.As(err, &expired) {
		t.Fatalf("GetRecords 6 minutes after GetShardIterator: %v, want ExpiredIteratorException", err)
	}
	m.Advance(23 * time.Hour)
	it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(out.Records) != 1 {
		t.Fatalf("23 h 6 min after the put: %v %v, want the record (retention is 24 h)", out, err)
	}
	m.Advance(time.Hour)
	it, err = k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	out, err = k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(out.Records) != 0 {
		t.Fatalf("24 h 6 min after the put: %d records, %v; want none (past retention)", len(out.Records), err)
	}
}
