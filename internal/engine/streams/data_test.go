package streams_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/fxamacker/cbor/v2"

	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/internal/hashkey"
)

const shard0 = "shardId-000000000000"

func TestIteratorTypes(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 1)
	var seqs []string
	for i := 0; i < 5; i++ {
		seqs = append(seqs, *v.put(t, "s", "k", fmt.Sprint(i)).SequenceNumber)
		v.clk.Advance(time.Second)
	}
	for i := 1; i < len(seqs); i++ {
		if len(seqs[i]) != len(seqs[0]) || seqs[i] <= seqs[i-1] {
			t.Fatalf("sequence numbers not increasing: %s then %s", seqs[i-1], seqs[i])
		}
	}
	ts := t0.Add(2 * time.Second)
	cases := []struct {
		typ   types.ShardIteratorType
		seq   *string
		ts    *time.Time
		first string
		n     int
	}{
		{types.ShardIteratorTypeTrimHorizon, nil, nil, "0", 5},
		{types.ShardIteratorTypeLatest, nil, nil, "", 0},
		{types.ShardIteratorTypeAtSequenceNumber, &seqs[2], nil, "2", 3},
		{types.ShardIteratorTypeAfterSequenceNumber, &seqs[2], nil, "3", 2},
		{types.ShardIteratorTypeAtTimestamp, nil, &ts, "2", 3},
	}
	for _, c := range cases {
		t.Run(string(c.typ), func(t *testing.T) {
			recs, last := v.readAll(t, v.iter(t, "s", shard0, c.typ, c.seq, c.ts))
			if len(recs) != c.n || (c.n > 0 && string(recs[0].Data) != c.first) {
				t.Fatalf("%d records: %v", len(recs), recs)
			}
			if *last.MillisBehindLatest != 0 || last.NextShardIterator == nil {
				t.Fatalf("open shard read to the tip: behind %d, next %v", *last.MillisBehindLatest, last.NextShardIterator)
			}
		})
	}
	latest := v.iter(t, "s", shard0, types.ShardIteratorTypeLatest, nil, nil)
	v.put(t, "s", "k", "new")
	recs, _ := v.readAll(t, latest)
	if len(recs) != 1 || string(recs[0].Data) != "new" {
		t.Fatalf("LATEST then put: %v", recs)
	}
	out := must(v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: v.iter(t, "s", shard0, types.ShardIteratorTypeTrimHorizon, nil, nil), Limit: aws.Int32(2)}))(t)
	if len(out.Records) != 2 || *out.MillisBehindLatest <= 0 {
		t.Fatalf("limited read: %d records, behind %d", len(out.Records), *out.MillisBehindLatest)
	}
}

func TestIteratorExpiryAndInvalid(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 1)
	it := v.iter(t, "s", shard0, types.ShardIteratorTypeTrimHorizon, nil, nil)
	v.clk.Advance(4 * time.Minute)
	next := must(v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: it}))(t).NextShardIterator
	v.clk.Advance(2 * time.Minute)
	_, err := v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	wantCode(t, err, "ExpiredIteratorException")
	must(v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: next}))(t)
	_, err = v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("AAAAnotAniterator")})
	wantCode(t, err, "InvalidArgumentException")
	_, err = v.k.GetShardIterator(v.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000009"), ShardIteratorType: types.ShardIteratorTypeLatest})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = v.k.GetShardIterator(v.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shard0), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber})
	wantCode(t, err, "InvalidArgumentException")
	v.create(t, "other", 2)
	seq := v.put(t, "other", "k", "x")
	if *seq.ShardId != shard0 {
		seq = v.put(t, "other", "k", "x")
	}
	otherShard := "shardId-000000000001"
	if *seq.ShardId == otherShard {
		otherShard = shard0
	}
	_, err = v.k.GetShardIterator(v.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("other"), ShardId: aws.String(otherShard),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: seq.SequenceNumber})
	wantCode(t, err, "InvalidArgumentException")
}

func TestSplitMergeLineageAndChildShards(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 1)
	v.putN(t, "s", 10)
	mid := hashkey.FullRange.Midpoint().String()
	must(v.k.SplitShard(v.ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String(shard0), NewStartingHashKey: aws.String(mid)}))(t)
	_, err := v.k.SplitShard(v.ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String(shard0), NewStartingHashKey: aws.String(mid)})
	wantCode(t, err, "InvalidArgumentException")
	shards := must(v.k.ListShards(v.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")}))(t).Shards
	if got := fmt.Sprint(shardIDs(shards)); got != "[shardId-000000000000 shardId-000000000001 shardId-000000000002]" {
		t.Fatalf("shards after split: %s", got)
	}
	if shards[0].SequenceNumberRange.EndingSequenceNumber == nil || *shards[1].ParentShardId != shard0 || *shards[2].ParentShardId != shard0 {
		t.Fatalf("split lineage: %+v", shards)
	}
	if *shards[1].HashKeyRange.EndingHashKey >= mid && len(*shards[1].HashKeyRange.EndingHashKey) == len(mid) || *shards[2].HashKeyRange.StartingHashKey != mid {
		t.Fatalf("split ranges: %+v %+v", shards[1].HashKeyRange, shards[2].HashKeyRange)
	}
	if *shards[1].SequenceNumberRange.StartingSequenceNumber <= *shards[0].SequenceNumberRange.EndingSequenceNumber {
		t.Fatal("child sequence numbers do not follow the parent's")
	}
	recs, last := v.readAll(t, v.iter(t, "s", shard0, types.ShardIteratorTypeTrimHorizon, nil, nil))
	if len(recs) != 10 || last.NextShardIterator != nil || len(last.ChildShards) != 2 || last.ChildShards[0].ParentShards[0] != shard0 {
		t.Fatalf("closed parent: %d records, next %v, children %+v", len(recs), last.NextShardIterator, last.ChildShards)
	}
	v.putN(t, "s", 20)
	if n := len(must(v.e.Streams.ShardRecords("s", shard0))(t)); n != 10 {
		t.Fatalf("closed parent took writes: %d records", n)
	}
	_, err = v.k.MergeShards(v.ctx, &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String(shard0), AdjacentShardToMerge: aws.String("shardId-000000000001")})
	wantCode(t, err, "InvalidArgumentException")
	must(v.k.MergeShards(v.ctx, &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String("shardId-000000000001"), AdjacentShardToMerge: aws.String("shardId-000000000002")}))(t)
	all := must(v.k.ListShards(v.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")}))(t).Shards
	merged := all[3]
	if *merged.ParentShardId != "shardId-000000000001" || *merged.AdjacentParentShardId != "shardId-000000000002" ||
		*merged.HashKeyRange.StartingHashKey != "0" || *merged.HashKeyRange.EndingHashKey != hashkey.Max.String() {
		t.Fatalf("merged shard: %+v", merged)
	}
	_, last = v.readAll(t, v.iter(t, "s", "shardId-000000000002", types.ShardIteratorTypeTrimHorizon, nil, nil))
	if len(last.ChildShards) != 1 || *last.ChildShards[0].ShardId != *merged.ShardId || len(last.ChildShards[0].ParentShards) != 2 {
		t.Fatalf("merge child shards: %+v", last.ChildShards)
	}
	total := len(must(v.e.Streams.Records("s"))(t))
	if total != 30 || v.e.Streams.Counters().Splits != 1 || v.e.Streams.Counters().Merges != 1 {
		t.Fatalf("records %d, counters %+v", total, v.e.Streams.Counters())
	}
}

func TestListShardsPaginationAndFilters(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 4)
	v.clk.Advance(time.Hour)
	splitAt := time.Now()
	_ = splitAt
	must(v.k.UpdateShardCount(v.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(8), ScalingType: types.ScalingTypeUniformScaling}))(t)
	var ids []string
	out := must(v.k.ListShards(v.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(5)}))(t)
	ids = append(ids, shardIDs(out.Shards)...)
	for out.NextToken != nil {
		out = must(v.k.ListShards(v.ctx, &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: aws.Int32(5)}))(t)
		ids = append(ids, shardIDs(out.Shards)...)
	}
	if len(ids) != 12 {
		t.Fatalf("paged shards: %v", ids)
	}
	_, err := v.k.ListShards(v.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), NextToken: aws.String("x")})
	wantCode(t, err, "InvalidArgumentException")
	filter := func(f types.ShardFilter) int {
		return len(must(v.k.ListShards(v.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &f}))(t).Shards)
	}
	before := t0.Add(time.Minute)
	for _, c := range []struct {
		f    types.ShardFilter
		want int
	}{
		{types.ShardFilter{Type: types.ShardFilterTypeAtLatest}, 8},
		{types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}, 4},
		{types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}, 12},
		{types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-000000000009")}, 2},
		{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: &before}, 4},
		{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: &before}, 12},
	} {
		if got := filter(c.f); got != c.want {
			t.Errorf("filter %s: %d shards, want %d", c.f.Type, got, c.want)
		}
	}
	open := must(v.k.ListShards(v.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}}))(t).Shards
	want := hashkey.Uniform(8)
	for i, sh := range open {
		if *sh.HashKeyRange.StartingHashKey != want[i].Start.String() || *sh.HashKeyRange.EndingHashKey != want[i].End.String() {
			t.Fatalf("UpdateShardCount ranges not uniform at %d: %+v", i, sh.HashKeyRange)
		}
	}
	_, err = v.k.UpdateShardCount(v.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(17), ScalingType: types.ScalingTypeUniformScaling})
	wantCode(t, err, "LimitExceededException")
	must(v.k.UpdateShardCount(v.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(5), ScalingType: types.ScalingTypeUniformScaling}))(t)
	if got := filter(types.ShardFilter{Type: types.ShardFilterTypeAtLatest}); got != 5 {
		t.Fatalf("after scaling to 5: %d open", got)
	}
}

func TestPutRecordsPartialFailuresAndGhosts(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 2)
	if err := v.e.Streams.SetEntryFaults(streams.EntryFaults{ThrottleRate: 0.2, InternalFailureRate: 0.05, StoredRate: 0.5}); err != nil {
		t.Fatal(err)
	}
	var entries []types.PutRecordsRequestEntry
	for i := 0; i < 500; i++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(i)), Data: []byte("x")})
	}
	out := must(v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries}))(t)
	var throttled, internal, ok int
	for _, r := range out.Records {
		switch {
		case r.ErrorCode == nil:
			ok++
			if r.SequenceNumber == nil || r.ShardId == nil {
				t.Fatal("successful entry without sequence number")
			}
		case *r.ErrorCode == "ProvisionedThroughputExceededException":
			throttled++
			if !strings.Contains(*r.ErrorMessage, "Rate exceeded for shard") {
				t.Fatalf("message %q", *r.ErrorMessage)
			}
		case *r.ErrorCode == "InternalFailure":
			internal++
		}
	}
	if int(*out.FailedRecordCount) != throttled+internal || throttled < 50 || throttled > 150 || internal < 5 || internal > 50 {
		t.Fatalf("failed %d: throttled %d internal %d", *out.FailedRecordCount, throttled, internal)
	}
	c := v.e.Streams.Counters()
	stored := len(must(v.e.Streams.Records("s"))(t))
	if int64(stored) != c.RecordsIn || stored != ok+int(c.GhostRecords) || c.GhostRecords == 0 || c.FaultedEntries != int64(throttled+internal) {
		t.Fatalf("stored %d, ok %d, counters %+v", stored, ok, c)
	}
	if err := v.e.Streams.SetEntryFaults(streams.EntryFaults{ThrottleRate: 2}); err == nil {
		t.Fatal("rate above 1 accepted")
	}
}

func TestForcedThrottling(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 1)
	if err := v.e.Streams.ThrottleShard("s", shard0, true); err != nil {
		t.Fatal(err)
	}
	_, err := v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, "ProvisionedThroughputExceededException")
	_, err = v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: v.iter(t, "s", shard0, types.ShardIteratorTypeLatest, nil, nil)})
	wantCode(t, err, "ProvisionedThroughputExceededException")
	_ = v.e.Streams.ThrottleShard("s", shard0, false)
	v.put(t, "s", "k", "x")
	if err := v.e.Streams.ThrottleStream("s", true); err != nil {
		t.Fatal(err)
	}
	_, err = v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, "ProvisionedThroughputExceededException")
	if c := v.e.Streams.Counters(); c.ThrottledRequests != 3 || c.RecordsIn != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestLimitsTokenBuckets(t *testing.T) {
	v := newEnv(t, streams.Config{Limits: true})
	v.create(t, "s", 1)
	entries := make([]types.PutRecordsRequestEntry, 500)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("x")}
	}
	failed := func() int32 {
		return *must(v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries}))(t).FailedRecordCount
	}
	if f := failed() + failed(); f != 0 {
		t.Fatalf("1,000 records within the burst: %d failed", f)
	}
	if f := failed(); f != 500 {
		t.Fatalf("over 1,000 records/s: %d of 500 failed", f)
	}
	v.clk.Advance(500 * time.Millisecond)
	if f := failed(); f != 0 {
		t.Fatalf("after refilling half a second: %d failed", f)
	}
	big := make([]byte, 600<<10)
	v.clk.Advance(time.Second)
	v.put(t, "s", "k", string(big))
	_, err := v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: big})
	wantCode(t, err, "ProvisionedThroughputExceededException")

	it := v.iter(t, "s", shard0, types.ShardIteratorTypeLatest, nil, nil)
	for i := 0; i < 5; i++ {
		it = must(v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: it}))(t).NextShardIterator
	}
	_, err = v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	wantCode(t, err, "ProvisionedThroughputExceededException")
	v.clk.Advance(200 * time.Millisecond)
	must(v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: it}))(t)
}

func TestRetention(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 1)
	v.put(t, "s", "k", "old")
	v.clk.Advance(12 * time.Hour)
	v.put(t, "s", "k", "new")
	old := v.iter(t, "s", shard0, types.ShardIteratorTypeTrimHorizon, nil, nil)
	v.clk.Advance(13 * time.Hour)
	recs, _ := v.readAll(t, v.iter(t, "s", shard0, types.ShardIteratorTypeTrimHorizon, nil, nil))
	if len(recs) != 1 || string(recs[0].Data) != "new" {
		t.Fatalf("after 25 h: %v", recs)
	}
	_, err := v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: old})
	wantCode(t, err, "ExpiredIteratorException")
	v.e.Streams.Maintain()
	if n := len(must(v.e.Streams.Records("s"))(t)); n != 1 {
		t.Fatalf("records after maintenance: %d", n)
	}
	must(v.k.SplitShard(v.ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String(shard0), NewStartingHashKey: aws.String("1000")}))(t)
	v.clk.Advance(25 * time.Hour)
	shards := must(v.k.ListShards(v.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")}))(t).Shards
	if len(shards) != 2 || *shards[0].ShardId == shard0 {
		t.Fatalf("closed shard past retention still listed: %v", shardIDs(shards))
	}
}

func TestOnDemandScaling(t *testing.T) {
	v := newEnv(t, streams.Config{OnDemandWindow: time.Minute})
	if err := v.e.Streams.CreateOnDemandStream("s", 0); err != nil {
		t.Fatal(err)
	}
	open := func() int {
		n := 0
		for _, sh := range must(v.e.Streams.Shards("s"))(t) {
			if sh.Open {
				n++
			}
		}
		return n
	}
	if open() != 4 {
		t.Fatalf("on-demand stream starts with %d shards", open())
	}
	hot := make([]byte, 1000)
	for i := 0; i < 40; i++ {
		must(v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("hot"), Data: bytes.Repeat(hot, 1000)}))(t)
	}
	v.clk.Advance(time.Minute)
	v.e.Streams.Maintain()
	if open() != 5 || v.e.Streams.Counters().Splits != 1 {
		t.Fatalf("after a hot window: %d open, %+v", open(), v.e.Streams.Counters())
	}
	v.clk.Advance(time.Minute)
	v.e.Streams.Maintain()
	if open() != 4 || v.e.Streams.Counters().Merges != 1 {
		t.Fatalf("after a cold window: %d open, %+v", open(), v.e.Streams.Counters())
	}
	if err := v.e.Streams.CreateOnDemandStream("warm", 10); err != nil {
		t.Fatal(err)
	}
	sum := must(v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("warm")}))(t).StreamDescriptionSummary
	if *sum.OpenShardCount != 10 || *sum.WarmThroughput.TargetMiBps != 10 {
		t.Fatalf("warm stream: %d shards, %+v", *sum.OpenShardCount, sum.WarmThroughput)
	}
	v.clk.Advance(time.Minute)
	v.e.Streams.Maintain()
	if got := *must(v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("warm")}))(t).StreamDescriptionSummary.OpenShardCount; got != 10 {
		t.Fatalf("warm stream merged below its warm throughput: %d", got)
	}
}

func TestValidationErrors(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 1)
	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"bad stream name", func() error {
			_, err := v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("a b"), ShardCount: aws.Int32(1)})
			return err
		}, "ValidationException"},
		{"zero shards", func() error {
			_, err := v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("z"), ShardCount: aws.Int32(0)})
			return err
		}, "ValidationException"},
		{"missing stream", func() error {
			_, err := v.k.DescribeStream(v.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("nope")})
			return err
		}, "ResourceNotFoundException"},
		{"bad ARN", func() error {
			_, err := v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String("arn:aws:sqs:x")})
			return err
		}, "ValidationException"},
		{"empty partition key", func() error {
			_, err := v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(""), Data: []byte("x")})
			return err
		}, "ValidationException"},
		{"long partition key", func() error {
			_, err := v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(strings.Repeat("é", 257)), Data: []byte("x")})
			return err
		}, "ValidationException"},
		{"bad explicit hash key", func() error {
			_, err := v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456"), Data: []byte("x")})
			return err
		}, "InvalidArgumentException"},
		{"501 entries", func() error {
			e := make([]types.PutRecordsRequestEntry, 501)
			for i := range e {
				e[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("x")}
			}
			_, err := v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: e})
			return err
		}, "ValidationException"},
		{"over 10 MiB", func() error {
			var e []types.PutRecordsRequestEntry
			for i := 0; i < 11; i++ {
				e = append(e, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: make([]byte, 1000<<10)})
			}
			_, err := v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: e})
			return err
		}, "InvalidArgumentException"},
		{"limit 0", func() error {
			_, err := v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: v.iter(t, "s", shard0, types.ShardIteratorTypeLatest, nil, nil), Limit: aws.Int32(0)})
			return err
		}, "ValidationException"},
		{"split outside range", func() error {
			_, err := v.k.SplitShard(v.ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String(shard0), NewStartingHashKey: aws.String("0")})
			return err
		}, "InvalidArgumentException"},
		{"merge with itself", func() error {
			_, err := v.k.MergeShards(v.ctx, &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String(shard0), AdjacentShardToMerge: aws.String(shard0)})
			return err
		}, "InvalidArgumentException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantCode(t, c.call(), c.want) })
	}
}

func rawCall(t *testing.T, url, op, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestMalformedRequests(t *testing.T) {
	v := newEnv(t, streams.Config{MaxRequestBytes: 1 << 20})
	v.create(t, "s", 1)
	for _, c := range []struct {
		op, body, want string
		status         int
	}{
		{"PutRecords", `{"StreamName":"s","Records":[{"Data":"!!!","PartitionKey":"k"}]}`, "SerializationException", 400},
		{"PutRecords", `{"StreamName":"s","Records":[`, "SerializationException", 400},
		{"PutRecords", `{"StreamName":"s","Records":[{"Data":"eA==","PartitionKey":"k"}]} trailing`, "SerializationException", 400},
		{"CreateStream", `{"StreamName":5}`, "SerializationException", 400},
		{"GetRecords", `{"ShardIterator":{}}`, "SerializationException", 400},
		{"DescribeStream", `[]`, "SerializationException", 400},
		{"NoSuchOperation", `{}`, "UnknownOperationException", 400},
		{"PutRecords", `{"StreamName":"s","Records":[{"Data":"` + strings.Repeat("A", 2<<20) + `","PartitionKey":"k"}]}`, "RequestEntityTooLargeException", 413},
	} {
		status, body := rawCall(t, v.e.URL(), c.op, "application/x-amz-json-1.1", []byte(c.body))
		if status != c.status || !bytes.Contains(body, []byte(`"`+c.want+`"`)) {
			t.Errorf("%s %.60q: status %d body %s", c.op, c.body, status, body)
		}
	}
	status, body := rawCall(t, v.e.URL(), "PutRecords", "application/x-amz-json-1.1",
		[]byte(`{"StreamName":"s","Unknown":{"a":[1,2,{"b":null}]},"Records":[{"Data":"eA\u003d\u003d","PartitionKey":"k\u00e9","Extra":[]}]}`))
	if status != 200 || !bytes.Contains(body, []byte(`"FailedRecordCount":0`)) {
		t.Fatalf("escaped JSON with unknown members: %d %s", status, body)
	}
	recs := must(v.e.Streams.Records("s"))(t)
	if len(recs) != 1 || recs[0].PartitionKey != "ké" || string(recs[0].Data) != "x" {
		t.Fatalf("stored %+v", recs)
	}
}

func TestCBOR(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 1)
	body, _ := cbor.Marshal(map[string]any{"StreamName": "s", "Records": []map[string]any{{"Data": []byte{0, 1, 2}, "PartitionKey": "k"}}})
	status, resp := rawCall(t, v.e.URL(), "PutRecords", "application/x-amz-cbor-1.1", body)
	var put struct {
		FailedRecordCount int
		Records           []struct{ SequenceNumber, ShardId string }
	}
	if err := cbor.Unmarshal(resp, &put); status != 200 || err != nil || put.FailedRecordCount != 0 || put.Records[0].ShardId != shard0 {
		t.Fatalf("CBOR PutRecords: %d %v %+v", status, err, put)
	}
	body, _ = cbor.Marshal(map[string]any{"StreamName": "s", "ShardId": shard0, "ShardIteratorType": "TRIM_HORIZON"})
	_, resp = rawCall(t, v.e.URL(), "GetShardIterator", "application/x-amz-cbor-1.1", body)
	var it struct{ ShardIterator string }
	if err := cbor.Unmarshal(resp, &it); err != nil || it.ShardIterator == "" {
		t.Fatalf("CBOR iterator: %v %x", err, resp)
	}
	body, _ = cbor.Marshal(map[string]any{"ShardIterator": it.ShardIterator})
	_, resp = rawCall(t, v.e.URL(), "GetRecords", "application/x-amz-cbor-1.1", body)
	var got struct {
		Records []struct {
			Data           []byte
			SequenceNumber string
		}
	}
	if err := cbor.Unmarshal(resp, &got); err != nil || len(got.Records) != 1 || !bytes.Equal(got.Records[0].Data, []byte{0, 1, 2}) || got.Records[0].SequenceNumber != put.Records[0].SequenceNumber {
		t.Fatalf("CBOR GetRecords: %v %+v", err, got)
	}
	status, resp = rawCall(t, v.e.URL(), "DescribeStream", "application/x-amz-cbor-1.1", []byte{0xff, 0x00})
	var e map[string]string
	if err := cbor.Unmarshal(resp, &e); status != 400 || err != nil || e["__type"] != "SerializationException" {
		t.Fatalf("CBOR error: %d %v %v", status, err, e)
	}
}

// apiMessage returns the service error message of err.
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// TestValidationMessages checks the service's error type and message for values that
// break the model's constraints (ValidationException, naming the member, the value and
// the constraint) and for values within the model that the service refuses
// (InvalidArgumentException).
func TestValidationMessages(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "s", 1)
	put := func(ehk string) error {
		_, err := v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(ehk), Data: []byte("x")})
		return err
	}
	puts := func(ehk string) error {
		_, err := v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
			{PartitionKey: aws.String("k"), Data: []byte("x")},
			{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(ehk), Data: []byte("x")},
		}})
		return err
	}
	const ehkPattern = `failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\d{0,38})`
	type tc struct {
		name string
		call func() error
		code string
		msg  string
	}
	var cases []tc
	for _, bad := range []string{"abc", "", "-1", "01", "1" + strings.Repeat("0", 39)} {
		cases = append(cases,
			tc{"PutRecord explicit hash key " + strconv.Quote(bad), func() error { return put(bad) }, "ValidationException",
				"1 validation error detected: Value '" + bad + "' at 'explicitHashKey' " + ehkPattern},
			tc{"PutRecords explicit hash key " + strconv.Quote(bad), func() error { return puts(bad) }, "ValidationException",
				"1 validation error detected: Value '" + bad + "' at 'records.2.member.explicitHashKey' " + ehkPattern})
	}
	over := "340282366920938463463374607431768211456" // 2^128: in the pattern, out of range
	cases = append(cases,
		tc{"PutRecord explicit hash key 2^128", func() error { return put(over) }, "InvalidArgumentException", "ExplicitHashKey must be in the range: [0, 2^128-1]"},
		tc{"PutRecords explicit hash key 2^128", func() error { return puts(over) }, "InvalidArgumentException", "ExplicitHashKey must be in the range: [0, 2^128-1]"},
		tc{"GetRecords limit 0", func() error {
			_, err := v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: v.iter(t, "s", shard0, types.ShardIteratorTypeLatest, nil, nil), Limit: aws.Int32(0)})
			return err
		}, "ValidationException", "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		tc{"GetRecords limit 10001", func() error {
			_, err := v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: v.iter(t, "s", shard0, types.ShardIteratorTypeLatest, nil, nil), Limit: aws.Int32(10001)})
			return err
		}, "ValidationException", "Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000"},
		tc{"GetShardIterator bad shard id", func() error {
			_, err := v.k.GetShardIterator(v.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shard 0"), ShardIteratorType: types.ShardIteratorTypeLatest})
			return err
		}, "ValidationException", "Value 'shard 0' at 'shardId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"},
		tc{"GetShardIterator empty shard id", func() error {
			_, err := v.k.GetShardIterator(v.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(""), ShardIteratorType: types.ShardIteratorTypeLatest})
			return err
		}, "ValidationException", "Value '' at 'shardId' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		tc{"GetShardIterator bad sequence number", func() error {
			_, err := v.k.GetShardIterator(v.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shard0), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String("x1")})
			return err
		}, "ValidationException", `Value 'x1' at 'startingSequenceNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\d{0,128})`},
		tc{"stream name of 129 characters", func() error {
			_, err := v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(strings.Repeat("n", 129))})
			return err
		}, "ValidationException", "at 'streamName' failed to satisfy constraint: Member must have length less than or equal to 128"},
		tc{"stream name pattern", func() error {
			_, err := v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s/1"), PartitionKey: aws.String("k"), Data: []byte("x")})
			return err
		}, "ValidationException", "Value 's/1' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"},
		tc{"partition key of 257 characters", func() error {
			_, err := v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String(strings.Repeat("p", 257)), Data: []byte("x")}}})
			return err
		}, "ValidationException", "at 'records.1.member.partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256"},
		tc{"ListShards max results 0", func() error {
			_, err := v.k.ListShards(v.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(0)})
			return err
		}, "ValidationException", "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		tc{"ListShards bad exclusive start shard id", func() error {
			_, err := v.k.ListShards(v.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), ExclusiveStartShardId: aws.String("a:b")})
			return err
		}, "ValidationException", "at 'exclusiveStartShardId' failed to satisfy constraint"},
		tc{"DescribeStream limit 10001", func() error {
			_, err := v.k.DescribeStream(v.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("s"), Limit: aws.Int32(10001)})
			return err
		}, "ValidationException", "Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000"},
		tc{"ListStreams limit 0", func() error {
			_, err := v.k.ListStreams(v.ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(0)})
			return err
		}, "ValidationException", "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		tc{"ListStreamConsumers max results 10001", func() error {
			_, err := v.k.ListStreamConsumers(v.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(v.e.Streams.StreamARN("s")), MaxResults: aws.Int32(10001)})
			return err
		}, "ValidationException", "Value '10001' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10000"},
		tc{"ListTagsForStream limit 51", func() error {
			_, err := v.k.ListTagsForStream(v.ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("s"), Limit: aws.Int32(51)})
			return err
		}, "ValidationException", "Value '51' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 50"},
		tc{"UpdateShardCount 0", func() error {
			_, err := v.k.UpdateShardCount(v.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(0), ScalingType: types.ScalingTypeUniformScaling})
			return err
		}, "ValidationException", "Value '0' at 'targetShardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		tc{"SplitShard bad hash key", func() error {
			_, err := v.k.SplitShard(v.ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String(shard0), NewStartingHashKey: aws.String("-5")})
			return err
		}, "ValidationException", "Value '-5' at 'newStartingHashKey' " + ehkPattern},
		tc{"SplitShard hash key 2^128", func() error {
			_, err := v.k.SplitShard(v.ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String(shard0), NewStartingHashKey: aws.String(over)})
			return err
		}, "InvalidArgumentException", "NewStartingHashKey " + over},
		tc{"MergeShards bad shard id", func() error {
			_, err := v.k.MergeShards(v.ctx, &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String(shard0), AdjacentShardToMerge: aws.String("x y")})
			return err
		}, "ValidationException", "Value 'x y' at 'adjacentShardToMerge'"},
		tc{"retention 0", func() error {
			_, err := v.k.IncreaseStreamRetentionPeriod(v.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(0)})
			return err
		}, "ValidationException", "Value '0' at 'retentionPeriodHours' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		tc{"retention 12", func() error {
			_, err := v.k.DecreaseStreamRetentionPeriod(v.ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(12)})
			return err
		}, "InvalidArgumentException", "Minimum allowed retention period is 24 hours"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			wantCode(t, err, c.code)
			if msg := apiMessage(err); !strings.Contains(msg, c.msg) {
				t.Fatalf("message %q, want it to contain %q", msg, c.msg)
			}
		})
	}
	if n := len(must(v.e.Streams.Records("s"))(t)); n != 0 {
		t.Fatalf("refused calls stored %d records", n)
	}
}

// TestPutRecordsRequestSize checks the 10 MiB limit on a PutRecords call's partition keys
// plus data, for streams with the default and the largest maximum record size.
func TestPutRecordsRequestSize(t *testing.T) {
	v := newEnv(t, streams.Config{})
	v.create(t, "small", 1)
	v.create(t, "large", 1)
	must(v.k.UpdateMaxRecordSize(v.ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(v.e.Streams.StreamARN("large")), MaxRecordSizeInKiB: aws.Int32(10240)}))(t)
	entries := func(n, size int) []types.PutRecordsRequestEntry {
		data := make([]byte, size-1)
		e := make([]types.PutRecordsRequestEntry, n)
		for i := range e {
			e[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: data}
		}
		return e
	}
	putN := func(stream string, e []types.PutRecordsRequestEntry) error {
		_, err := v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: e})
		return err
	}
	// Ten records of exactly 1 MiB (key included): 10 MiB, accepted.
	if err := putN("small", entries(10, 1<<20)); err != nil {
		t.Fatalf("10 x 1 MiB: %v", err)
	}
	// One byte more (an eleventh record of a 1-byte key and no data): over the limit.
	e := append(entries(10, 1<<20), types.PutRecordsRequestEntry{PartitionKey: aws.String("x"), Data: []byte{}})
	err := putN("small", e)
	wantCode(t, err, "InvalidArgumentException")
	if msg := apiMessage(err); !strings.Contains(msg, "10 MB") {
		t.Fatalf("message %q", msg)
	}
	// A single 10 MiB record fills the call on a stream that allows it.
	if err := putN("large", entries(1, 10<<20)); err != nil {
		t.Fatalf("one 10 MiB record: %v", err)
	}
	wantCode(t, putN("large", append(entries(1, 10<<20), entries(1, 1)...)), "InvalidArgumentException")
	// The same record on a 1 MiB stream is above the stream's maximum record size.
	wantCode(t, putN("small", entries(1, 10<<20)), "InvalidArgumentException")
	// Above the model's 10 MiB data bound the call is invalid whatever the stream.
	_, err = v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String("large"), PartitionKey: aws.String("k"), Data: make([]byte, 10<<20+1)})
	wantCode(t, err, "ValidationException")
	if got := len(must(v.e.Streams.Records("small"))(t)); got != 10 {
		t.Fatalf("small stream holds %d records, want 10", got)
	}
	if got := len(must(v.e.Streams.Records("large"))(t)); got != 1 {
		t.Fatalf("large stream holds %d records, want 1", got)
	}
}
