package sinkproc

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
)

func TestMain(m *testing.M) {
	MaybeServe()
	os.Exit(m.Run())
}

func stamped(key, rank int) []byte {
	d := make([]byte, StampSize+4)
	Stamp(d, key, rank)
	return d
}

// TestCheckCountsWhatTheChildStored runs the engine in a child process, writes records
// through the SDK (one aggregate, one duplicate, one out of order, one under a wrong key,
// one unstamped) and checks that the child's read-back counts each of them.
func TestCheckCountsWhatTheChildStored(t *testing.T) {
	s, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if err := s.CreateStream("s", 1); err != nil {
		t.Fatal(err)
	}
	agg, err := aggregation.NewAggregator()
	if err != nil {
		t.Fatal(err)
	}
	for rank := 0; rank < 3; rank++ {
		if err := agg.Add(aggregation.Record{PartitionKey: Key(1), Data: stamped(1, rank)}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := agg.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	entries := []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String(a.PartitionKey), Data: a.Data},  // key 1, ranks 0-2
		{PartitionKey: aws.String(Key(1)), Data: stamped(1, 2)},   // duplicate
		{PartitionKey: aws.String(Key(1)), Data: stamped(1, 1)},   // duplicate, not counted as reordered
		{PartitionKey: aws.String(Key(2)), Data: stamped(2, 5)},   //
		{PartitionKey: aws.String(Key(2)), Data: stamped(2, 4)},   // out of order
		{PartitionKey: aws.String(Key(9)), Data: stamped(3, 0)},   // wrong key
		{PartitionKey: aws.String(Key(4)), Data: []byte("short")}, // unstamped
	}
	c := kinesis.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""), BaseEndpoint: aws.String(s.URL())})
	out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %v %+v", err, out)
	}
	got, err := s.Check("s")
	if err != nil {
		t.Fatal(err)
	}
	want := Check{KinesisRecords: 7, Stored: 9, Distinct: 6, Duplicates: 2, OutOfOrder: 1, WrongKeys: 1, Unstamped: 1}
	if got != want {
		t.Fatalf("check: got %+v, want %+v", got, want)
	}
	if cpu, err := s.CPUSeconds(); err != nil || cpu < 0 {
		t.Fatalf("child CPU %v %v", cpu, err)
	}
	if err := s.DeleteStream("s"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check("s"); err == nil {
		t.Fatal("check of a deleted stream succeeded")
	}
}

// TestTLSAndOnDemandStreams: with Config.TLS the child serves HTTPS too, and
// CreateOnDemandStream makes an on-demand stream of Config.OnDemandShards shards.
func TestTLSAndOnDemandStreams(t *testing.T) {
	s, err := Start(Config{TLS: true, OnDemandShards: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if !strings.HasPrefix(s.TLSURL(), "https://127.0.0.1:") {
		t.Fatalf("TLSURL %q, want an https loopback endpoint", s.TLSURL())
	}
	if err := s.CreateOnDemandStream("od"); err != nil {
		t.Fatal(err)
	}
	cfg := s.AWSConfig()
	cfg.BaseEndpoint = aws.String(s.TLSURL())
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	out, err := kinesis.NewFromConfig(cfg).DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("od")})
	if err != nil {
		t.Fatalf("DescribeStreamSummary over TLS: %v", err)
	}
	if d := out.StreamDescriptionSummary; d.StreamModeDetails.StreamMode != types.StreamModeOnDemand || aws.ToInt32(d.OpenShardCount) != 3 {
		t.Fatalf("stream %+v, want on demand with 3 open shards", d)
	}
	plain, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = plain.Close() }()
	if plain.TLSURL() != "" {
		t.Fatalf("TLSURL %q without Config.TLS", plain.TLSURL())
	}
}

// TestUsageAndShardLimit: Usage reports the child's calls by operation and the read and
// write units its tables consumed, and Config.ShardLimit bounds the shards it creates.
func TestUsageAndShardLimit(t *testing.T) {
	s, err := Start(Config{ShardLimit: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.CreateStream("big", 5); err == nil {
		t.Fatal("a stream of 5 shards created under a shard limit of 4")
	}
	if err := s.CreateStream("s", 4); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db := dynamodb.NewFromConfig(s.AWSConfig())
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String("tbl"), BillingMode: dtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dtypes.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: dtypes.ScalarAttributeTypeS}},
		KeySchema:            []dtypes.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: dtypes.KeyTypeHash}}}); err != nil {
		t.Fatal(err)
	}
	key := map[string]dtypes.AttributeValue{"k": &dtypes.AttributeValueMemberS{Value: "a"}}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("tbl"), Item: key}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("tbl"), Key: key, ConsistentRead: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Calls["DynamoDB.PutItem"] != 1 || u.Calls["DynamoDB.GetItem"] != 2 {
		t.Fatalf("calls %v, want one PutItem and two GetItems", u.Calls)
	}
	tu := u.Tables["tbl"]
	if tu.WriteUnits != 1 || tu.ReadUnits != 2 || tu.ReadsByOperation["GetItem"] != 2 {
		t.Fatalf("table usage %+v, want 1 write unit and 2 read units, both GetItem", tu)
	}
}
