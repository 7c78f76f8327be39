package streams_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/fxamacker/cbor/v2"

	"github.com/freshet/freshet/internal/engine/streams"
)

func (v *env) createAuto(t *testing.T, name string) string {
	t.Helper()
	must(v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name),
		StreamModeDetails:          &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand},
		RecordDistributionStrategy: types.RecordDistributionStrategyAuto}))(t)
	return v.e.Streams.StreamARN(name)
}

// perShard counts the stream's records by shard ID.
func perShard(t *testing.T, v *env, stream string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, r := range must(v.e.Streams.Records(stream))(t) {
		n[r.ShardID]++
	}
	return n
}

func wantEven(t *testing.T, counts map[string]int, shards, total int) {
	t.Helper()
	if len(counts) != shards {
		t.Fatalf("records on %d shards, want %d: %v", len(counts), shards, counts)
	}
	sum := 0
	for id, c := range counts {
		sum += c
		if c < total/shards-1 || c > total/shards+1 {
			t.Fatalf("shard %s holds %d of %d records, want %d±1: %v", id, c, total, total/shards, counts)
		}
	}
	if sum != total {
		t.Fatalf("%d records stored, want %d", sum, total)
	}
}

// TestAutoDistributionSpreadsEvenly writes 4,000 records with one partition key (and
// some without any) to an AUTO stream: they spread evenly over the open shards, also
// after a split, and come back without a partition key where none was given.
func TestAutoDistributionSpreadsEvenly(t *testing.T) {
	v := newEnv(t, streams.Config{OnDemandShards: 4})
	arn := v.createAuto(t, "auto")
	sum := must(v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(arn)}))(t)
	if got := sum.StreamDescriptionSummary.RecordDistributionStrategy; got != types.RecordDistributionStrategyAuto {
		t.Fatalf("DescribeStreamSummary shows %q, want AUTO", got)
	}
	var entries []types.PutRecordsRequestEntry
	for i := 0; i < 4000; i++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("one-key"), Data: []byte(strconv.Itoa(i))})
		if len(entries) == 500 {
			out := must(v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(arn), Records: entries}))(t)
			if *out.FailedRecordCount != 0 {
				t.Fatalf("%d failed", *out.FailedRecordCount)
			}
			entries = nil
		}
	}
	wantEven(t, perShard(t, v, "auto"), 4, 4000)

	// Records without a partition key: accepted by PutRecord and PutRecords.
	must(v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamARN: aws.String(arn), Data: []byte("no key")}))(t)
	out := must(v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(arn),
		Records: []types.PutRecordsRequestEntry{{Data: []byte("no key 2")}, {Data: []byte("no key 3"), ExplicitHashKey: aws.String("0")}}}))(t)
	if *out.FailedRecordCount != 0 {
		t.Fatalf("keyless entries failed: %+v", out.Records)
	}
	// Read them back over JSON: PartitionKey absent, not "".
	keyless, keyed := 0, 0
	for _, sh := range must(v.e.Streams.Shards("auto"))(t) {
		recs, _ := v.readAll(t, v.iter(t, "auto", sh.ID, types.ShardIteratorTypeTrimHorizon, nil, nil))
		for _, r := range recs {
			if r.PartitionKey == nil {
				keyless++
			} else if *r.PartitionKey == "one-key" {
				keyed++
			}
		}
	}
	if keyless != 3 || keyed != 4000 {
		t.Fatalf("GetRecords: %d records without a key (want 3), %d with (want 4000)", keyless, keyed)
	}
	// And over CBOR.
	shard := *out.Records[0].ShardId
	body, _ := cbor.Marshal(map[string]any{"StreamARN": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"})
	_, resp := rawCall(t, v.e.URL(), "GetShardIterator", "application/x-amz-cbor-1.1", body)
	var it struct{ ShardIterator string }
	if err := cbor.Unmarshal(resp, &it); err != nil {
		t.Fatal(err)
	}
	body, _ = cbor.Marshal(map[string]any{"ShardIterator": it.ShardIterator})
	_, resp = rawCall(t, v.e.URL(), "GetRecords", "application/x-amz-cbor-1.1", body)
	var got struct{ Records []map[string]any }
	if err := cbor.Unmarshal(resp, &got); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range got.Records {
		if _, has := r["PartitionKey"]; !has {
			found = true
		}
	}
	if !found {
		t.Fatalf("CBOR GetRecords of shard %s: no record without PartitionKey among %d", shard, len(got.Records))
	}

	// After a split the records spread over the five open shards.
	before := perShard(t, v, "auto")
	sh0 := must(v.e.Streams.Shards("auto"))(t)[0]
	if err := v.e.Streams.SplitShard("auto", sh0.ID, sh0.HashKeyRange.Midpoint()); err != nil {
		t.Fatal(err)
	}
	v.clk.Advance(time.Minute)
	for i := 0; i < 10; i++ {
		entries = nil
		for j := 0; j < 500; j++ {
			entries = append(entries, types.PutRecordsRequestEntry{Data: []byte("after split")})
		}
		must(v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(arn), Records: entries}))(t)
	}
	after := perShard(t, v, "auto")
	added := map[string]int{}
	for id, n := range after {
		if d := n - before[id]; d > 0 {
			added[id] = d
		}
	}
	wantEven(t, added, 5, 5000)
	if added[sh0.ID] != 0 {
		t.Fatalf("the closed parent %s got %d records", sh0.ID, added[sh0.ID])
	}
}

// TestRecordDistributionStrategyErrors covers the strategy's validation: enum values,
// ON_DEMAND only, keyless records refused elsewhere, and the switch.
func TestRecordDistributionStrategyErrors(t *testing.T) {
	v := newEnv(t, streams.Config{OnDemandShards: 2})
	_, err := v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("p"), ShardCount: aws.Int32(1),
		RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
	wantCode(t, err, "InvalidArgumentException")
	_, err = v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("p"),
		StreamModeDetails:          &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand},
		RecordDistributionStrategy: "RANDOM"})
	wantCode(t, err, "ValidationException")

	v.create(t, "prov", 2)
	provARN := v.e.Streams.StreamARN("prov")
	_, err = v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("prov"), Data: []byte("x")})
	wantCode(t, err, "InvalidArgumentException")
	_, err = v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("prov"),
		Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("x")}, {Data: []byte("y")}}})
	wantCode(t, err, "InvalidArgumentException")
	if n := len(must(v.e.Streams.Records("prov"))(t)); n != 0 {
		t.Fatalf("refused calls stored %d records", n)
	}
	sum := must(v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(provARN)}))(t)
	if got := sum.StreamDescriptionSummary.RecordDistributionStrategy; got != "" {
		t.Fatalf("a PROVISIONED stream shows strategy %q", got)
	}

	_, err = v.k.UpdateStreamRecordDistributionStrategy(v.ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{
		StreamARN: aws.String(provARN), RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
	wantCode(t, err, "InvalidArgumentException")
	_, err = v.k.UpdateStreamRecordDistributionStrategy(v.ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{
		StreamARN: aws.String(v.e.Streams.StreamARN("nope")), RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = v.k.UpdateStreamRecordDistributionStrategy(v.ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{
		StreamARN: aws.String("not-an-arn"), RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
	wantCode(t, err, "ValidationException")

	must(v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("od"),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}))(t)
	odARN := v.e.Streams.StreamARN("od")
	strategy := func() types.RecordDistributionStrategy {
		out := must(v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(odARN)}))(t)
		return out.StreamDescriptionSummary.RecordDistributionStrategy
	}
	if got := strategy(); got != types.RecordDistributionStrategyUserPartitionKey {
		t.Fatalf("new ON_DEMAND stream: %q, want USER_PARTITION_KEY", got)
	}
	_, err = v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamARN: aws.String(odARN), Data: []byte("x")})
	wantCode(t, err, "InvalidArgumentException")
	_, err = v.k.UpdateStreamRecordDistributionStrategy(v.ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{
		StreamARN: aws.String(odARN), RecordDistributionStrategy: "SOMETIMES"})
	wantCode(t, err, "ValidationException")
	must(v.k.UpdateStreamRecordDistributionStrategy(v.ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{
		StreamARN: aws.String(odARN), RecordDistributionStrategy: types.RecordDistributionStrategyAuto}))(t)
	if got := strategy(); got != types.RecordDistributionStrategyAuto {
		t.Fatalf("after the switch: %q, want AUTO", got)
	}
	must(v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamARN: aws.String(odARN), Data: []byte("x")}))(t)
	// An AUTO stream cannot become PROVISIONED before it goes back to partition keys.
	_, err = v.k.UpdateStreamMode(v.ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(odARN),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}})
	wantCode(t, err, "InvalidArgumentException")
}

// TestDryRunStoresNothing: every data-plane call with DryRun set answers
// DryRunOperationException when its checks pass, its usual error when they do not, and
// changes nothing.
func TestDryRunStoresNothing(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 1)
	yes := aws.Bool(true)
	_, err := v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), DryRun: yes,
		Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("x")}}})
	wantCode(t, err, "DryRunOperationException")
	_, err = v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), DryRun: yes, PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, "DryRunOperationException")
	// Failing checks win over the dry run.
	_, err = v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("missing"), DryRun: yes, PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), DryRun: yes, Data: []byte("x")})
	wantCode(t, err, "InvalidArgumentException")
	if n := len(must(v.e.Streams.Records("s"))(t)); n != 0 {
		t.Fatalf("dry runs stored %d records", n)
	}
	shard := must(v.e.Streams.Shards("s"))(t)[0].ID
	_, err = v.k.GetShardIterator(v.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shard),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon, DryRun: yes})
	wantCode(t, err, "DryRunOperationException")
	it := v.iter(t, "s", shard, types.ShardIteratorTypeTrimHorizon, nil, nil)
	v.put(t, "s", "k", "one")
	_, err = v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: it, DryRun: yes})
	wantCode(t, err, "DryRunOperationException")
	if c := v.e.Streams.Counters(); c.RecordsOut != 0 {
		t.Fatalf("a dry GetRecords returned %d records", c.RecordsOut)
	}
	_, err = v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("bogus"), DryRun: yes})
	wantCode(t, err, "InvalidArgumentException")
	recs, _ := v.readAll(t, it)
	if len(recs) != 1 {
		t.Fatalf("the iterator used in a dry run then read %d records, want 1", len(recs))
	}
}

// TestMaxRecordSizeBurstsThroughFreshBucket: after UpdateMaxRecordSize to 10 MiB, a
// 5 MiB record on a fresh shard goes through at once (the bucket holds a whole large
// record, seed 001); the next one is throttled until the bucket refills.
func TestMaxRecordSizeBurstsThroughFreshBucket(t *testing.T) {
	v := newEnv(t, streams.Config{Limits: true})
	v.create(t, "big", 1)
	arn := v.e.Streams.StreamARN("big")
	must(v.k.UpdateMaxRecordSize(v.ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(arn), MaxRecordSizeInKiB: aws.Int32(10240)}))(t)
	data := make([]byte, 5<<20)
	must(v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamARN: aws.String(arn), PartitionKey: aws.String("k"), Data: data}))(t)
	// 5 MiB less the first record's key are left: the second record does not fit yet.
	_, err := v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamARN: aws.String(arn), PartitionKey: aws.String("k"), Data: data})
	wantCode(t, err, "ProvisionedThroughputExceededException")
	v.clk.Advance(time.Second)
	must(v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamARN: aws.String(arn), PartitionKey: aws.String("k"), Data: data}))(t)
}
