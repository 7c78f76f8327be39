package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/integration/peers"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/hashkey"
)

// Names of the conformance targets.
const (
	targetEngine       = "engine"
	targetKinesalite   = "kinesalite"
	targetKinesisLocal = "kinesis-local"
)

// conformanceTarget is one Kinesis implementation the table runs against.
type conformanceTarget struct {
	name  string
	start func(t *testing.T) *kinesis.Client
}

var conformanceTargets = []conformanceTarget{
	{targetEngine, func(t *testing.T) *kinesis.Client {
		return enginetest.Kinesis(enginetest.Start(t, engine.Config{}))
	}},
	{targetKinesalite, func(t *testing.T) *kinesis.Client {
		return kinesis.NewFromConfig(peers.Kinesalite(t).AWSConfig())
	}},
	{targetKinesisLocal, func(t *testing.T) *kinesis.Client {
		return kinesis.NewFromConfig(peers.KinesisLocal(t).AWSConfig())
	}},
}

// knownGap records how a third-party peer differs from the service in one case. The case
// must still fail against that peer, with an error containing match: a gap that no longer
// reproduces, or fails some other way, fails the test.
type knownGap struct {
	why   string
	match string
}

// conformanceCase is one behaviour of the service. run returns nil when the target
// behaves as the service does, and otherwise an error saying how it differs.
type conformanceCase struct {
	name string
	gaps map[string]knownGap
	run  func(ctx context.Context, s *kstream) error
}

// TestKinesisConformance runs every case of the table against every target. The engine
// must pass every case; a peer may only fail a case that lists it as a known gap.
func TestKinesisConformance(t *testing.T) {
	for _, tg := range conformanceTargets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			client := tg.start(t)
			for _, c := range conformanceCases {
				t.Run(c.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					s := &kstream{c: client, name: streamName(c.name)}
					err := c.run(ctx, s)
					gap, isGap := c.gaps[tg.name]
					switch {
					case !isGap && err != nil:
						t.Errorf("%s differs from the service: %v", tg.name, err)
					case isGap && err == nil:
						t.Errorf("known gap of %s (%s) no longer reproduces: remove it from the table", tg.name, gap.why)
					case isGap && !strings.Contains(err.Error(), gap.match):
						t.Errorf("known gap of %s (%s) should fail with %q, failed with: %v", tg.name, gap.why, gap.match, err)
					case isGap:
						t.Logf("KNOWN GAP of %s, not of Freshet: %s (observed: %v)", tg.name, gap.why, err)
					}
				})
			}
		})
	}
}

// TestConformanceTableShape keeps the table honest: the engine has no gaps, and every
// gap names a peer and a match.
func TestConformanceTableShape(t *testing.T) {
	names := map[string]bool{}
	for _, c := range conformanceCases {
		if names[c.name] {
			t.Errorf("duplicate case %q", c.name)
		}
		names[c.name] = true
		for peer, g := range c.gaps {
			if peer != targetKinesalite && peer != targetKinesisLocal {
				t.Errorf("case %q lists a gap for %q: only third-party peers may have gaps", c.name, peer)
			}
			if g.why == "" || g.match == "" {
				t.Errorf("case %q: gap of %s needs why and match", c.name, peer)
			}
		}
	}
}

var (
	noChildShards = knownGap{"GetRecords returns no ChildShards at shard end", "ChildShards"}
	noARN         = knownGap{"no calls by StreamARN", "ValidationException"}
	noUpdateCount = knownGap{"no UpdateShardCount", "UnknownOperationException"}
	noOnDemand    = knownGap{"no ON_DEMAND capacity mode", "CreateStream ON_DEMAND"}
	noSummaries   = knownGap{"ListStreams returns no StreamSummaries", "StreamSummaries"}
)

var conformanceCases = []conformanceCase{
	{name: "create_describe_delete", run: caseCreateDescribeDelete},
	{name: "errors/resource_in_use", run: caseResourceInUse},
	{name: "errors/resource_not_found", run: caseResourceNotFound},
	{name: "shards/initial_hash_ranges", run: caseInitialHashRanges},
	{name: "put_get/trim_horizon", run: caseTrimHorizon},
	{name: "put_get/routing_by_hash_key", run: caseRouting},
	{name: "put_get/binary_and_empty_data", run: caseBinaryData},
	{name: "put_records/results_in_order", run: casePutRecordsOrder},
	{name: "get_records/limit_and_lag", run: caseGetRecordsLimit},
	{name: "iterator/latest", run: caseLatest},
	{name: "iterator/at_sequence_number", run: caseAtSequenceNumber},
	{name: "iterator/after_sequence_number", run: caseAfterSequenceNumber},
	{name: "iterator/at_timestamp", run: caseAtTimestamp},
	{name: "iterator/at_timestamp_in_future", run: caseAtTimestampInFuture, gaps: map[string]knownGap{
		targetKinesisLocal: {"GetShardIterator accepts an AT_TIMESTAMP after its clock", "succeeded"},
	}},
	{name: "iterator/invalid_sequence_number", run: caseInvalidSequenceNumber, gaps: map[string]knownGap{
		targetKinesisLocal: {"GetShardIterator accepts another shard's sequence number", "succeeded"},
	}},
	{name: "iterator/invalid_iterator", run: caseInvalidIterator, gaps: map[string]knownGap{
		targetKinesisLocal: {"a malformed shard iterator gets an HTTP 500 UnknownError", "UnknownError"},
	}},
	{name: "validation/put_records_over_500", run: casePutRecordsOver500, gaps: map[string]knownGap{
		targetKinesisLocal: {"accepts more than 500 PutRecords entries", "accepted 501 entries"},
	}},
	{name: "validation/oversized_record", run: caseOversizedRecord, gaps: map[string]knownGap{
		targetKinesisLocal: {"PutRecords accepts an entry above the stream's maximum record size", "entry succeeded"},
	}},
	{name: "validation/explicit_hash_key_range", run: caseExplicitHashKey},
	{name: "validation/explicit_hash_key_pattern", run: caseExplicitHashKeyPattern, gaps: map[string]knownGap{
		targetKinesalite:   {"its pattern check is unanchored inside the alternation, so '-1' passes and gets InvalidArgumentException", "InvalidArgumentException"},
		targetKinesisLocal: {"an explicit hash key outside the model's pattern gets an HTTP 500 UnknownError", "UnknownError"},
	}},
	{name: "validation/put_records_request_size", run: casePutRecordsRequestSize, gaps: map[string]knownGap{
		targetKinesalite:   {"its HTTP server refuses a body of a 10 MiB PutRecords call with 413", "StatusCode: 413"},
		targetKinesisLocal: {"no limit on a PutRecords call's total size", "succeeded"},
	}},
	{name: "validation/partition_key_length", run: casePartitionKeyLength, gaps: map[string]knownGap{
		targetKinesisLocal: {"a partition key of bad length gets InvalidArgumentException, not ValidationException", "InvalidArgumentException"},
	}},
	{name: "split/lineage", run: caseSplitLineage, gaps: map[string]knownGap{
		targetKinesisLocal: {"a closed parent's EndingSequenceNumber is 2^63-1, not its last sequence number", "parent ends at 9223372036854775807"},
	}},
	{name: "split/invalid_hash_key", run: caseSplitInvalidHashKey, gaps: map[string]knownGap{
		targetKinesisLocal: {"SplitShard accepts the shard's own starting hash key", "succeeded"},
	}},
	{name: "merge/lineage", run: caseMergeLineage},
	{name: "merge/not_adjacent", run: caseMergeNotAdjacent},
	{name: "get_records/child_shards_at_shard_end", run: caseChildShards, gaps: map[string]knownGap{
		targetKinesalite: noChildShards,
	}},
	{name: "list_shards/pagination", run: caseListShardsPagination, gaps: map[string]knownGap{
		targetKinesalite: {"ListShards ignores MaxResults", "MaxResults"},
	}},
	{name: "list_shards/shard_filter_at_latest", run: caseListShardsFilter, gaps: map[string]knownGap{
		targetKinesalite: {"ListShards ignores ShardFilter", "AT_LATEST"},
	}},
	{name: "describe_stream/pagination", run: caseDescribeStreamPagination, gaps: map[string]knownGap{
		targetKinesalite: {"DescribeStream ignores Limit", "Limit 2 listed 5"},
	}},
	{name: "list_streams/limit_and_exclusive_start", run: caseListStreamsLimit},
	{name: "list_streams/next_token_and_summaries", run: caseListStreamsNextToken, gaps: map[string]knownGap{
		targetKinesalite:   noSummaries,
		targetKinesisLocal: noSummaries,
	}},
	{name: "update_shard_count/uniform_scaling", run: caseUpdateShardCount, gaps: map[string]knownGap{
		targetKinesalite: noUpdateCount,
	}},
	{name: "on_demand", run: caseOnDemand, gaps: map[string]knownGap{
		targetKinesalite: noOnDemand,
	}},
	{name: "stream_arn_calls", run: caseStreamARN, gaps: map[string]knownGap{
		targetKinesalite: noARN,
	}},
	{name: "retention_period", run: caseRetention},
	{name: "tags", run: caseTags},
}

// ---- cases ----

func caseCreateDescribeDelete(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 2); err != nil {
		return err
	}
	sum, err := s.summary(ctx)
	if err != nil {
		return err
	}
	if got := aws.ToInt32(sum.OpenShardCount); got != 2 {
		return fmt.Errorf("OpenShardCount = %d, want 2", got)
	}
	if got := aws.ToInt32(sum.RetentionPeriodHours); got != 24 {
		return fmt.Errorf("RetentionPeriodHours = %d, want 24", got)
	}
	if aws.ToString(sum.StreamName) != s.name {
		return fmt.Errorf("StreamName = %q, want %q", aws.ToString(sum.StreamName), s.name)
	}
	if sum.StreamCreationTimestamp == nil {
		return errors.New("StreamCreationTimestamp missing")
	}
	desc, err := s.c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: &s.name})
	if err != nil {
		return fmt.Errorf("DescribeStream: %w", err)
	}
	if n := len(desc.StreamDescription.Shards); n != 2 {
		return fmt.Errorf("DescribeStream lists %d shards, want 2", n)
	}
	if _, err := s.c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: &s.name}); err != nil {
		return fmt.Errorf("DeleteStream: %w", err)
	}
	return poll(ctx, func() error {
		_, err := s.summary(ctx)
		if code(err) == "ResourceNotFoundException" {
			return nil
		}
		return fmt.Errorf("DescribeStreamSummary after DeleteStream: %v, want ResourceNotFoundException", err)
	})
}

func caseResourceInUse(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	_, err := s.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &s.name, ShardCount: aws.Int32(1)})
	return wantCode("CreateStream of an existing stream", err, "ResourceInUseException")
}

func caseResourceNotFound(ctx context.Context, s *kstream) error {
	_, err := s.summary(ctx)
	if e := wantCode("DescribeStreamSummary of a missing stream", err, "ResourceNotFoundException"); e != nil {
		return e
	}
	_, err = s.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &s.name, PartitionKey: aws.String("k"), Data: []byte("x")})
	if e := wantCode("PutRecord to a missing stream", err, "ResourceNotFoundException"); e != nil {
		return e
	}
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	_, err = s.c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: &s.name, ShardId: aws.String("shardId-000000000099"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	return wantCode("GetShardIterator of a missing shard", err, "ResourceNotFoundException")
}

func caseInitialHashRanges(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 3); err != nil {
		return err
	}
	shards, err := s.shards(ctx)
	if err != nil {
		return err
	}
	if len(shards) != 3 {
		return fmt.Errorf("%d shards, want 3", len(shards))
	}
	for i, sh := range shards {
		if want := shardID(i); aws.ToString(sh.ShardId) != want {
			return fmt.Errorf("shard %d is %q, want %q", i, aws.ToString(sh.ShardId), want)
		}
		if sh.SequenceNumberRange == nil || sh.SequenceNumberRange.StartingSequenceNumber == nil {
			return fmt.Errorf("%s has no StartingSequenceNumber", aws.ToString(sh.ShardId))
		}
		if sh.SequenceNumberRange.EndingSequenceNumber != nil {
			return fmt.Errorf("new shard %s is closed", aws.ToString(sh.ShardId))
		}
		if sh.ParentShardId != nil || sh.AdjacentParentShardId != nil {
			return fmt.Errorf("new shard %s has parents", aws.ToString(sh.ShardId))
		}
	}
	return contiguous(shards)
}

func caseTrimHorizon(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	puts, err := s.putN(ctx, 3, "th")
	if err != nil {
		return err
	}
	for i, p := range puts {
		if p.shard != shardID(0) {
			return fmt.Errorf("record %d went to %s, want %s", i, p.shard, shardID(0))
		}
		if i > 0 && seqCmp(puts[i-1].seq, p.seq) >= 0 {
			return fmt.Errorf("sequence numbers not increasing: %s then %s", puts[i-1].seq, p.seq)
		}
	}
	recs, err := s.read(ctx, shardID(0), iterAt(types.ShardIteratorTypeTrimHorizon, ""), 3)
	if err != nil {
		return err
	}
	if err := sameRecords(recs, puts); err != nil {
		return err
	}
	for _, r := range recs {
		if r.ApproximateArrivalTimestamp == nil {
			return fmt.Errorf("record %s has no ApproximateArrivalTimestamp", aws.ToString(r.SequenceNumber))
		}
	}
	return nil
}

func caseRouting(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 4); err != nil {
		return err
	}
	shards, err := s.shards(ctx)
	if err != nil {
		return err
	}
	owner := func(k hashkey.Key) string {
		for _, sh := range shards {
			r, err := hashkey.ParseRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
			if err == nil && r.Contains(k) {
				return aws.ToString(sh.ShardId)
			}
		}
		return ""
	}
	// Explicit hash keys at both ends of every shard's range.
	for _, sh := range shards {
		for _, ehk := range []string{aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey)} {
			out, err := s.c.PutRecord(ctx, &kinesis.PutRecordInput{
				StreamName: &s.name, PartitionKey: aws.String("ignored"), ExplicitHashKey: aws.String(ehk), Data: []byte("e"),
			})
			if err != nil {
				return fmt.Errorf("PutRecord with ExplicitHashKey %s: %w", ehk, err)
			}
			if got := aws.ToString(out.ShardId); got != aws.ToString(sh.ShardId) {
				return fmt.Errorf("ExplicitHashKey %s went to %s, want %s", ehk, got, aws.ToString(sh.ShardId))
			}
		}
	}
	// Partition keys by MD5, through PutRecords.
	var entries []types.PutRecordsRequestEntry
	for i := range 40 {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("key-%d", i)), Data: []byte{byte(i)}})
	}
	out, err := s.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &s.name, Records: entries})
	if err != nil {
		return fmt.Errorf("PutRecords: %w", err)
	}
	if len(out.Records) != len(entries) {
		return fmt.Errorf("PutRecords returned %d results for %d entries", len(out.Records), len(entries))
	}
	for i, r := range out.Records {
		want := owner(hashkey.FromPartitionKey(aws.ToString(entries[i].PartitionKey)))
		if got := aws.ToString(r.ShardId); got != want {
			return fmt.Errorf("partition key %q went to %s, want %s (MD5 routing)", aws.ToString(entries[i].PartitionKey), got, want)
		}
	}
	return nil
}

func caseBinaryData(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	var puts []putResult
	for i, data := range [][]byte{all, {}, []byte("\x00"), bytes.Repeat([]byte{0xff}, 1000)} {
		pk := fmt.Sprintf("bin-%d-\u00e9\u6f22", i)
		out, err := s.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &s.name, PartitionKey: &pk, Data: data})
		if err != nil {
			return fmt.Errorf("PutRecord of %d bytes: %w", len(data), err)
		}
		puts = append(puts, putResult{pk: pk, data: data, shard: aws.ToString(out.ShardId), seq: aws.ToString(out.SequenceNumber)})
	}
	recs, err := s.read(ctx, shardID(0), iterAt(types.ShardIteratorTypeTrimHorizon, ""), len(puts))
	if err != nil {
		return err
	}
	return sameRecords(recs, puts)
}

func casePutRecordsOrder(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	var entries []types.PutRecordsRequestEntry
	for i := range 10 {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("pk%d", i)), Data: []byte(fmt.Sprintf("d%d", i))})
	}
	out, err := s.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &s.name, Records: entries})
	if err != nil {
		return fmt.Errorf("PutRecords: %w", err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 0 {
		return fmt.Errorf("FailedRecordCount = %d, want 0", aws.ToInt32(out.FailedRecordCount))
	}
	var puts []putResult
	for i, r := range out.Records {
		if r.ErrorCode != nil || r.SequenceNumber == nil || r.ShardId == nil {
			return fmt.Errorf("entry %d: %+v, want a shard and sequence number", i, r)
		}
		if i > 0 && seqCmp(aws.ToString(out.Records[i-1].SequenceNumber), aws.ToString(r.SequenceNumber)) >= 0 {
			return fmt.Errorf("entry sequence numbers not increasing at %d", i)
		}
		puts = append(puts, putResult{pk: aws.ToString(entries[i].PartitionKey), data: entries[i].Data, shard: aws.ToString(r.ShardId), seq: aws.ToString(r.SequenceNumber)})
	}
	recs, err := s.read(ctx, shardID(0), iterAt(types.ShardIteratorTypeTrimHorizon, ""), len(entries))
	if err != nil {
		return err
	}
	return sameRecords(recs, puts)
}

func caseGetRecordsLimit(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	puts, err := s.putN(ctx, 5, "lim")
	if err != nil {
		return err
	}
	it, err := s.iterator(ctx, shardID(0), iterAt(types.ShardIteratorTypeTrimHorizon, ""))
	if err != nil {
		return err
	}
	var got []types.Record
	for _, want := range []int{2, 2, 1} {
		out, err := s.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(2)})
		if err != nil {
			return fmt.Errorf("GetRecords: %w", err)
		}
		if len(out.Records) != want {
			return fmt.Errorf("GetRecords with Limit 2 returned %d records, want %d", len(out.Records), want)
		}
		if out.MillisBehindLatest == nil {
			return errors.New("GetRecords has no MillisBehindLatest")
		}
		if out.NextShardIterator == nil {
			return errors.New("GetRecords on an open shard has no NextShardIterator")
		}
		got = append(got, out.Records...)
		it = out.NextShardIterator
	}
	return sameRecords(got, puts)
}

func caseLatest(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	if _, err := s.putN(ctx, 2, "before"); err != nil {
		return err
	}
	it, err := s.iterator(ctx, shardID(0), iterAt(types.ShardIteratorTypeLatest, ""))
	if err != nil {
		return err
	}
	out, err := s.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	if err != nil {
		return fmt.Errorf("GetRecords: %w", err)
	}
	if len(out.Records) != 0 {
		return fmt.Errorf("LATEST returned %d records put before it, want 0", len(out.Records))
	}
	after, err := s.putN(ctx, 1, "after")
	if err != nil {
		return err
	}
	recs, err := s.readFrom(ctx, out.NextShardIterator, 1)
	if err != nil {
		return err
	}
	return sameRecords(recs, after)
}

func caseAtSequenceNumber(ctx context.Context, s *kstream) error {
	return seqIteratorCase(ctx, s, types.ShardIteratorTypeAtSequenceNumber, 1)
}

func caseAfterSequenceNumber(ctx context.Context, s *kstream) error {
	return seqIteratorCase(ctx, s, types.ShardIteratorTypeAfterSequenceNumber, 2)
}

// seqIteratorCase puts four records, opens an iterator of typ at the second one's
// sequence number, and expects the records from index first on.
func seqIteratorCase(ctx context.Context, s *kstream, typ types.ShardIteratorType, first int) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	puts, err := s.putN(ctx, 4, "seq")
	if err != nil {
		return err
	}
	recs, err := s.read(ctx, shardID(0), iterAt(typ, puts[1].seq), len(puts)-first)
	if err != nil {
		return err
	}
	return sameRecords(recs, puts[first:])
}

func caseAtTimestamp(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	if _, err := s.putN(ctx, 2, "early"); err != nil {
		return err
	}
	// Arrival timestamps have millisecond precision: leave a gap on both sides of ts.
	time.Sleep(50 * time.Millisecond)
	ts := time.Now()
	time.Sleep(50 * time.Millisecond)
	late, err := s.putN(ctx, 2, "late")
	if err != nil {
		return err
	}
	recs, err := s.read(ctx, shardID(0), func(in *kinesis.GetShardIteratorInput) {
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = &ts
	}, len(late))
	if err != nil {
		return err
	}
	return sameRecords(recs, late)
}

// caseAtTimestampInFuture checks that GetShardIterator refuses an AT_TIMESTAMP after the
// service's clock with InvalidArgumentException, as production Kinesis answers ("The
// timestampInMillis parameter cannot be greater than the currentTimestampInMillis").
func caseAtTimestampInFuture(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	_, err := s.iterator(ctx, shardID(0), func(in *kinesis.GetShardIteratorInput) {
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(time.Now().Add(time.Hour))
	})
	return wantCode("GetShardIterator AT_TIMESTAMP an hour ahead", err, "InvalidArgumentException")
}

func caseInvalidSequenceNumber(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 2); err != nil {
		return err
	}
	// A sequence number of shard 0 used on shard 1.
	out, err := s.c.PutRecord(ctx, &kinesis.PutRecordInput{
		StreamName: &s.name, PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("0"), Data: []byte("x"),
	})
	if err != nil {
		return fmt.Errorf("PutRecord: %w", err)
	}
	_, err = s.iterator(ctx, shardID(1), iterAt(types.ShardIteratorTypeAtSequenceNumber, aws.ToString(out.SequenceNumber)))
	if e := wantCode("GetShardIterator with another shard's sequence number", err, "InvalidArgumentException"); e != nil {
		return e
	}
	// A sequence number type without a sequence number.
	_, err = s.iterator(ctx, shardID(0), iterAt(types.ShardIteratorTypeAfterSequenceNumber, ""))
	return wantCode("GetShardIterator AFTER_SEQUENCE_NUMBER without a sequence number", err, "InvalidArgumentException")
}

func caseInvalidIterator(ctx context.Context, s *kstream) error {
	_, err := s.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(strings.Repeat("A", 64))})
	return wantCode("GetRecords with a made-up iterator", err, "InvalidArgumentException")
}

func casePutRecordsOver500(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	entries := make([]types.PutRecordsRequestEntry, 501)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("x")}
	}
	_, err := s.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &s.name, Records: entries})
	if err == nil {
		return errors.New("PutRecords accepted 501 entries, want ValidationException")
	}
	return wantCode("PutRecords of 501 entries", err, "ValidationException")
}

func caseOversizedRecord(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	// The API model admits records up to 10 MiB for streams configured so; above the
	// stream's maximum the service has answered ValidationException (before large record
	// support) and answers InvalidArgumentException (since), so either is the service's.
	big := make([]byte, 1<<20+1)
	_, err := s.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &s.name, PartitionKey: aws.String("k"), Data: big})
	if e := wantCode("PutRecord of 1 MiB + 1 B", err, "ValidationException", "InvalidArgumentException"); e != nil {
		return e
	}
	_, err = s.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &s.name, Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("k"), Data: []byte("fine")},
		{PartitionKey: aws.String("k"), Data: big},
	}})
	if e := wantCode("PutRecords with a 1 MiB + 1 B entry", err, "ValidationException", "InvalidArgumentException"); e != nil {
		return e
	}
	// Nothing of the rejected call was stored.
	recs, err := s.read(ctx, shardID(0), iterAt(types.ShardIteratorTypeTrimHorizon, ""), 0)
	if err != nil {
		return err
	}
	if len(recs) != 0 {
		return fmt.Errorf("rejected calls stored %d records", len(recs))
	}
	return nil
}

func caseExplicitHashKey(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	put := func(ehk string) error {
		_, err := s.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &s.name, PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(ehk), Data: []byte("x")})
		return err
	}
	if e := wantCode("ExplicitHashKey 2^128", put(new(big.Int).Lsh(big.NewInt(1), 128).String()), "InvalidArgumentException"); e != nil {
		return e
	}
	if err := put(hashkey.Max.String()); err != nil {
		return fmt.Errorf("ExplicitHashKey 2^128-1: %w", err)
	}
	_, err := s.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &s.name, Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("k"), Data: []byte("x")},
		{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(new(big.Int).Lsh(big.NewInt(1), 128).String()), Data: []byte("x")},
	}})
	return wantCode("PutRecords entry with ExplicitHashKey 2^128", err, "InvalidArgumentException")
}

// hashKeyPatternMessage is the service's validation message for an explicit hash key
// outside the model's pattern, after the member name.
const hashKeyPatternMessage = `failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\d{0,38})`

func caseExplicitHashKeyPattern(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	for _, bad := range []string{"abc", "", "-1", "01"} {
		_, err := s.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &s.name, PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(bad), Data: []byte("x")})
		if e := wantMessage(fmt.Sprintf("PutRecord with ExplicitHashKey %q", bad), err, "ValidationException",
			"1 validation error detected: Value '"+bad+"' at 'explicitHashKey' "+hashKeyPatternMessage); e != nil {
			return e
		}
		_, err = s.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &s.name, Records: []types.PutRecordsRequestEntry{
			{PartitionKey: aws.String("k"), Data: []byte("x")},
			{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(bad), Data: []byte("x")},
		}})
		if e := wantMessage(fmt.Sprintf("PutRecords entry with ExplicitHashKey %q", bad), err, "ValidationException",
			"Value '"+bad+"' at 'records.2.member.explicitHashKey' "+hashKeyPatternMessage); e != nil {
			return e
		}
	}
	recs, err := s.read(ctx, shardID(0), iterAt(types.ShardIteratorTypeTrimHorizon, ""), 0)
	if err != nil {
		return err
	}
	if len(recs) != 0 {
		return fmt.Errorf("rejected calls stored %d records", len(recs))
	}
	return nil
}

// casePutRecordsRequestSize checks the PutRecords call limit of 10 MiB of partition keys
// plus data (5 MiB before large-record support): one byte more than 10 MiB is refused
// whole, ten records of exactly 1 MiB are accepted. The refused call comes first, so a
// peer without the limit fails after one large call.
func casePutRecordsRequestSize(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	data := make([]byte, 1<<20-1)
	entries := make([]types.PutRecordsRequestEntry, 10)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: data}
	}
	over := append(slices.Clone(entries), types.PutRecordsRequestEntry{PartitionKey: aws.String("x"), Data: []byte{}})
	_, err := s.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &s.name, Records: over})
	if e := wantCode("PutRecords of 10 MiB + 1 B", err, "InvalidArgumentException"); e != nil {
		return e
	}
	out, err := s.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &s.name, Records: entries})
	if err != nil {
		return fmt.Errorf("PutRecords of 10 MiB: %w", err)
	}
	if n := aws.ToInt32(out.FailedRecordCount); n != 0 {
		return fmt.Errorf("PutRecords of 10 MiB: %d entries failed", n)
	}
	recs, err := s.read(ctx, shardID(0), iterAt(types.ShardIteratorTypeTrimHorizon, ""), 10)
	if err != nil {
		return err
	}
	if len(recs) != 10 {
		return fmt.Errorf("stream holds %d records, want the accepted call's 10", len(recs))
	}
	return nil
}

func casePartitionKeyLength(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	put := func(pk string) error {
		_, err := s.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &s.name, PartitionKey: aws.String(pk), Data: []byte("x")})
		return err
	}
	if e := wantCode("empty partition key", put(""), "ValidationException"); e != nil {
		return e
	}
	if e := wantCode("257-character partition key", put(strings.Repeat("p", 257)), "ValidationException"); e != nil {
		return e
	}
	if err := put(strings.Repeat("p", 256)); err != nil {
		return fmt.Errorf("256-character partition key: %w", err)
	}
	_, err := s.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &s.name, Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("k"), Data: []byte("x")},
		{PartitionKey: aws.String(""), Data: []byte("x")},
	}})
	return wantCode("PutRecords entry with an empty partition key", err, "ValidationException")
}

func caseSplitLineage(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	before, err := s.putN(ctx, 2, "pre-split")
	if err != nil {
		return err
	}
	mid := hashkey.Uniform(2)[1].Start
	if err := s.split(ctx, shardID(0), mid); err != nil {
		return err
	}
	shards, err := s.shards(ctx)
	if err != nil {
		return err
	}
	if len(shards) != 3 {
		return fmt.Errorf("%d shards after split, want 3", len(shards))
	}
	parent, a, b := shards[0], shards[1], shards[2]
	if parent.SequenceNumberRange.EndingSequenceNumber == nil {
		return errors.New("split parent is still open")
	}
	for i, ch := range []types.Shard{a, b} {
		if want := shardID(i + 1); aws.ToString(ch.ShardId) != want {
			return fmt.Errorf("child %d is %s, want %s", i, aws.ToString(ch.ShardId), want)
		}
		if aws.ToString(ch.ParentShardId) != shardID(0) || ch.AdjacentParentShardId != nil {
			return fmt.Errorf("child %s: parent %v, adjacent %v; want %s and none", aws.ToString(ch.ShardId), aws.ToString(ch.ParentShardId), aws.ToString(ch.AdjacentParentShardId), shardID(0))
		}
		if ch.SequenceNumberRange.EndingSequenceNumber != nil {
			return fmt.Errorf("child %s is closed", aws.ToString(ch.ShardId))
		}
	}
	parentEnd := aws.ToString(parent.SequenceNumberRange.EndingSequenceNumber)
	if seqCmp(parentEnd, before[len(before)-1].seq) < 0 {
		return fmt.Errorf("parent ends at %s, before its last record %s", parentEnd, before[len(before)-1].seq)
	}
	for _, ch := range []types.Shard{a, b} {
		if start := aws.ToString(ch.SequenceNumberRange.StartingSequenceNumber); seqCmp(start, parentEnd) <= 0 {
			return fmt.Errorf("child %s starts at %s, not after its parent's end %s", aws.ToString(ch.ShardId), start, parentEnd)
		}
	}
	if err := wantRange(a, hashkey.Key{}, mid.Sub1()); err != nil {
		return err
	}
	if err := wantRange(b, mid, hashkey.Max); err != nil {
		return err
	}
	// The parent's records stay readable; new records go to the children.
	recs, err := s.read(ctx, shardID(0), iterAt(types.ShardIteratorTypeTrimHorizon, ""), len(before))
	if err != nil {
		return err
	}
	if err := sameRecords(recs, before); err != nil {
		return fmt.Errorf("parent after split: %w", err)
	}
	out, err := s.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &s.name, PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(mid.String()), Data: []byte("x")})
	if err != nil {
		return fmt.Errorf("PutRecord after split: %w", err)
	}
	if aws.ToString(out.ShardId) != shardID(2) {
		return fmt.Errorf("hash key %s went to %s after split, want %s", mid, aws.ToString(out.ShardId), shardID(2))
	}
	return nil
}

func caseSplitInvalidHashKey(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	_, err := s.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: &s.name, ShardToSplit: aws.String(shardID(0)), NewStartingHashKey: aws.String("0")})
	return wantCode("SplitShard at the shard's starting hash key", err, "InvalidArgumentException")
}

func caseMergeLineage(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 2); err != nil {
		return err
	}
	if _, err := s.c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: &s.name, ShardToMerge: aws.String(shardID(0)), AdjacentShardToMerge: aws.String(shardID(1))}); err != nil {
		return fmt.Errorf("MergeShards: %w", err)
	}
	if err := s.waitActive(ctx); err != nil {
		return err
	}
	shards, err := s.shards(ctx)
	if err != nil {
		return err
	}
	if len(shards) != 3 {
		return fmt.Errorf("%d shards after merge, want 3", len(shards))
	}
	for _, p := range shards[:2] {
		if p.SequenceNumberRange.EndingSequenceNumber == nil {
			return fmt.Errorf("merge parent %s is still open", aws.ToString(p.ShardId))
		}
	}
	ch := shards[2]
	if aws.ToString(ch.ShardId) != shardID(2) || aws.ToString(ch.ParentShardId) != shardID(0) || aws.ToString(ch.AdjacentParentShardId) != shardID(1) {
		return fmt.Errorf("merged child %s: parent %s, adjacent %s; want %s, %s, %s", aws.ToString(ch.ShardId),
			aws.ToString(ch.ParentShardId), aws.ToString(ch.AdjacentParentShardId), shardID(2), shardID(0), shardID(1))
	}
	return wantRange(ch, hashkey.Key{}, hashkey.Max)
}

func caseMergeNotAdjacent(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 3); err != nil {
		return err
	}
	_, err := s.c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: &s.name, ShardToMerge: aws.String(shardID(0)), AdjacentShardToMerge: aws.String(shardID(2))})
	return wantCode("MergeShards of non-adjacent shards", err, "InvalidArgumentException")
}

func caseChildShards(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	puts, err := s.putN(ctx, 2, "cs")
	if err != nil {
		return err
	}
	mid := hashkey.Uniform(2)[1].Start
	if err := s.split(ctx, shardID(0), mid); err != nil {
		return err
	}
	it, err := s.iterator(ctx, shardID(0), iterAt(types.ShardIteratorTypeTrimHorizon, ""))
	if err != nil {
		return err
	}
	var recs []types.Record
	var last *kinesis.GetRecordsOutput
	for i := 0; it != nil; i++ {
		if i == 50 {
			return errors.New("closed shard never ended: NextShardIterator still set after 50 GetRecords")
		}
		last, err = s.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
		if err != nil {
			return fmt.Errorf("GetRecords: %w", err)
		}
		recs = append(recs, last.Records...)
		it = last.NextShardIterator
	}
	if err := sameRecords(recs, puts); err != nil {
		return err
	}
	if len(last.ChildShards) != 2 {
		return fmt.Errorf("GetRecords at shard end has %d ChildShards, want 2", len(last.ChildShards))
	}
	for i, ch := range last.ChildShards {
		if aws.ToString(ch.ShardId) != shardID(i+1) || !slices.Equal(ch.ParentShards, []string{shardID(0)}) || ch.HashKeyRange == nil {
			return fmt.Errorf("ChildShards[%d] = %s with parents %v, want %s with parents [%s] and a hash key range",
				i, aws.ToString(ch.ShardId), ch.ParentShards, shardID(i+1), shardID(0))
		}
	}
	return nil
}

func caseListShardsPagination(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 5); err != nil {
		return err
	}
	var ids []string
	in := &kinesis.ListShardsInput{StreamName: &s.name, MaxResults: aws.Int32(2)}
	for page := 0; ; page++ {
		if page == 10 {
			return errors.New("ListShards paging did not end")
		}
		out, err := s.c.ListShards(ctx, in)
		if err != nil {
			return fmt.Errorf("ListShards page %d: %w", page, err)
		}
		if len(out.Shards) > 2 {
			return fmt.Errorf("ListShards with MaxResults 2 returned %d shards", len(out.Shards))
		}
		for _, sh := range out.Shards {
			ids = append(ids, aws.ToString(sh.ShardId))
		}
		if out.NextToken == nil {
			break
		}
		// The service rejects StreamName together with NextToken.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: aws.Int32(2)}
	}
	want := []string{shardID(0), shardID(1), shardID(2), shardID(3), shardID(4)}
	if !slices.Equal(ids, want) {
		return fmt.Errorf("ListShards pages gave %v, want %v", ids, want)
	}
	_, err := s.c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &s.name, NextToken: aws.String("token")})
	return wantCode("ListShards with both StreamName and NextToken", err, "InvalidArgumentException")
}

func caseListShardsFilter(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	if err := s.split(ctx, shardID(0), hashkey.Uniform(2)[1].Start); err != nil {
		return err
	}
	out, err := s.c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &s.name, ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
	if err != nil {
		return fmt.Errorf("ListShards AT_LATEST: %w", err)
	}
	var ids []string
	for _, sh := range out.Shards {
		ids = append(ids, aws.ToString(sh.ShardId))
	}
	if want := []string{shardID(1), shardID(2)}; !slices.Equal(ids, want) {
		return fmt.Errorf("ListShards AT_LATEST = %v, want the open shards %v", ids, want)
	}
	return nil
}

func caseDescribeStreamPagination(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 5); err != nil {
		return err
	}
	var ids []string
	in := &kinesis.DescribeStreamInput{StreamName: &s.name, Limit: aws.Int32(2)}
	for page := 0; ; page++ {
		if page == 10 {
			return errors.New("DescribeStream paging did not end")
		}
		out, err := s.c.DescribeStream(ctx, in)
		if err != nil {
			return fmt.Errorf("DescribeStream: %w", err)
		}
		d := out.StreamDescription
		if len(d.Shards) > 2 {
			return fmt.Errorf("DescribeStream with Limit 2 listed %d shards", len(d.Shards))
		}
		for _, sh := range d.Shards {
			ids = append(ids, aws.ToString(sh.ShardId))
		}
		if !aws.ToBool(d.HasMoreShards) {
			break
		}
		if len(d.Shards) == 0 {
			return errors.New("DescribeStream says HasMoreShards with an empty page")
		}
		in = &kinesis.DescribeStreamInput{StreamName: &s.name, Limit: aws.Int32(2), ExclusiveStartShardId: d.Shards[len(d.Shards)-1].ShardId}
	}
	if want := []string{shardID(0), shardID(1), shardID(2), shardID(3), shardID(4)}; !slices.Equal(ids, want) {
		return fmt.Errorf("DescribeStream pages gave %v, want %v", ids, want)
	}
	return nil
}

func caseListStreamsLimit(ctx context.Context, s *kstream) error {
	names, err := s.createFamily(ctx, 3)
	if err != nil {
		return err
	}
	var seen []string
	in := &kinesis.ListStreamsInput{Limit: aws.Int32(2)}
	for page := 0; ; page++ {
		if page == 1000 {
			return errors.New("ListStreams paging did not end")
		}
		out, err := s.c.ListStreams(ctx, in)
		if err != nil {
			return fmt.Errorf("ListStreams: %w", err)
		}
		if len(out.StreamNames) > 2 {
			return fmt.Errorf("ListStreams with Limit 2 returned %d names", len(out.StreamNames))
		}
		seen = append(seen, out.StreamNames...)
		if !aws.ToBool(out.HasMoreStreams) {
			break
		}
		if len(out.StreamNames) == 0 {
			return errors.New("ListStreams says HasMoreStreams with an empty page")
		}
		in = &kinesis.ListStreamsInput{Limit: aws.Int32(2), ExclusiveStartStreamName: aws.String(out.StreamNames[len(out.StreamNames)-1])}
	}
	return checkListed(seen, names)
}

func caseListStreamsNextToken(ctx context.Context, s *kstream) error {
	names, err := s.createFamily(ctx, 3)
	if err != nil {
		return err
	}
	var seen []string
	in := &kinesis.ListStreamsInput{Limit: aws.Int32(2)}
	for page := 0; ; page++ {
		if page == 1000 {
			return errors.New("ListStreams paging did not end")
		}
		out, err := s.c.ListStreams(ctx, in)
		if err != nil {
			return fmt.Errorf("ListStreams: %w", err)
		}
		if len(out.StreamSummaries) != len(out.StreamNames) {
			return fmt.Errorf("ListStreams gave %d StreamSummaries for %d names", len(out.StreamSummaries), len(out.StreamNames))
		}
		for i, sum := range out.StreamSummaries {
			if aws.ToString(sum.StreamName) != out.StreamNames[i] || sum.StreamARN == nil || sum.StreamStatus == "" {
				return fmt.Errorf("StreamSummaries[%d] = %+v for %s", i, sum, out.StreamNames[i])
			}
		}
		seen = append(seen, out.StreamNames...)
		if !aws.ToBool(out.HasMoreStreams) {
			break
		}
		if out.NextToken == nil {
			return errors.New("ListStreams says HasMoreStreams without a NextToken")
		}
		in = &kinesis.ListStreamsInput{Limit: aws.Int32(2), NextToken: out.NextToken}
	}
	return checkListed(seen, names)
}

func caseUpdateShardCount(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 2); err != nil {
		return err
	}
	out, err := s.c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: &s.name, TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil {
		return fmt.Errorf("UpdateShardCount: %w", err)
	}
	if aws.ToInt32(out.CurrentShardCount) != 2 || aws.ToInt32(out.TargetShardCount) != 4 {
		return fmt.Errorf("UpdateShardCount says %d -> %d, want 2 -> 4", aws.ToInt32(out.CurrentShardCount), aws.ToInt32(out.TargetShardCount))
	}
	if err := s.waitActive(ctx); err != nil {
		return err
	}
	sum, err := s.summary(ctx)
	if err != nil {
		return err
	}
	if aws.ToInt32(sum.OpenShardCount) != 4 {
		return fmt.Errorf("OpenShardCount = %d after UpdateShardCount to 4", aws.ToInt32(sum.OpenShardCount))
	}
	shards, err := s.shards(ctx)
	if err != nil {
		return err
	}
	var open []types.Shard
	for _, sh := range shards {
		if sh.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, sh)
		} else if id := aws.ToString(sh.ShardId); id != shardID(0) && id != shardID(1) {
			return fmt.Errorf("closed shard %s is not one of the original two", id)
		}
	}
	for _, id := range []string{shardID(0), shardID(1)} {
		if i := slices.IndexFunc(open, func(sh types.Shard) bool { return aws.ToString(sh.ShardId) == id }); i >= 0 {
			return fmt.Errorf("original shard %s is still open", id)
		}
	}
	if len(open) != 4 {
		return fmt.Errorf("%d open shards, want 4", len(open))
	}
	slices.SortFunc(open, func(a, b types.Shard) int {
		return hashkey.MustParse(aws.ToString(a.HashKeyRange.StartingHashKey)).Cmp(hashkey.MustParse(aws.ToString(b.HashKeyRange.StartingHashKey)))
	})
	if err := contiguous(open); err != nil {
		return fmt.Errorf("open shards after UpdateShardCount: %w", err)
	}
	for _, sh := range open {
		if sh.ParentShardId == nil {
			return fmt.Errorf("new shard %s has no parent", aws.ToString(sh.ShardId))
		}
	}
	return nil
}

func caseOnDemand(ctx context.Context, s *kstream) error {
	if _, err := s.c.CreateStream(ctx, &kinesis.CreateStreamInput{
		StreamName: &s.name, StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand},
	}); err != nil {
		return fmt.Errorf("CreateStream ON_DEMAND: %w", err)
	}
	if err := s.waitActive(ctx); err != nil {
		return err
	}
	sum, err := s.summary(ctx)
	if err != nil {
		return err
	}
	if sum.StreamModeDetails == nil || sum.StreamModeDetails.StreamMode != types.StreamModeOnDemand {
		return fmt.Errorf("StreamMode = %v, want ON_DEMAND", sum.StreamModeDetails)
	}
	if n := aws.ToInt32(sum.OpenShardCount); n != 4 {
		return fmt.Errorf("new ON_DEMAND stream has %d open shards, want 4", n)
	}
	if _, err := s.putN(ctx, 3, "od"); err != nil {
		return err
	}
	if _, err := s.c.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{
		StreamARN: sum.StreamARN, StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned},
	}); err != nil {
		return fmt.Errorf("UpdateStreamMode PROVISIONED: %w", err)
	}
	if err := s.waitActive(ctx); err != nil {
		return err
	}
	sum, err = s.summary(ctx)
	if err != nil {
		return err
	}
	if sum.StreamModeDetails == nil || sum.StreamModeDetails.StreamMode != types.StreamModeProvisioned {
		return fmt.Errorf("StreamMode after UpdateStreamMode = %v, want PROVISIONED", sum.StreamModeDetails)
	}
	return nil
}

var streamARNPattern = regexp.MustCompile(`^arn:aws:kinesis:us-east-1:\d{12}:stream/(.+)$`)

func caseStreamARN(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	sum, err := s.summary(ctx)
	if err != nil {
		return err
	}
	arn := aws.ToString(sum.StreamARN)
	if m := streamARNPattern.FindStringSubmatch(arn); m == nil || m[1] != s.name {
		return fmt.Errorf("StreamARN = %q, want arn:aws:kinesis:us-east-1:<account>:stream/%s", arn, s.name)
	}
	byARN, err := s.c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: &arn})
	if err != nil {
		return fmt.Errorf("DescribeStreamSummary by ARN: %w", err)
	}
	if aws.ToString(byARN.StreamDescriptionSummary.StreamName) != s.name {
		return fmt.Errorf("DescribeStreamSummary by ARN names %q", aws.ToString(byARN.StreamDescriptionSummary.StreamName))
	}
	put, err := s.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamARN: &arn, PartitionKey: aws.String("k"), Data: []byte("by-arn")})
	if err != nil {
		return fmt.Errorf("PutRecord by ARN: %w", err)
	}
	if _, err := s.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamARN: &arn, Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("x")}}}); err != nil {
		return fmt.Errorf("PutRecords by ARN: %w", err)
	}
	ls, err := s.c.ListShards(ctx, &kinesis.ListShardsInput{StreamARN: &arn})
	if err != nil {
		return fmt.Errorf("ListShards by ARN: %w", err)
	}
	if len(ls.Shards) != 1 {
		return fmt.Errorf("ListShards by ARN: %d shards, want 1", len(ls.Shards))
	}
	it, err := s.c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamARN: &arn, ShardId: put.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		return fmt.Errorf("GetShardIterator by ARN: %w", err)
	}
	gr, err := s.c.GetRecords(ctx, &kinesis.GetRecordsInput{StreamARN: &arn, ShardIterator: it.ShardIterator})
	if err != nil {
		return fmt.Errorf("GetRecords by ARN: %w", err)
	}
	if len(gr.Records) == 0 || !bytes.Equal(gr.Records[0].Data, []byte("by-arn")) {
		return fmt.Errorf("GetRecords by ARN returned %d records", len(gr.Records))
	}
	if _, err := s.c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamARN: &arn, Tags: map[string]string{"team": "freshet"}}); err != nil {
		return fmt.Errorf("AddTagsToStream by ARN: %w", err)
	}
	other := strings.Replace(arn, ":stream/", ":stream/missing-", 1)
	_, err = s.c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: &other})
	return wantCode("DescribeStreamSummary of a missing ARN", err, "ResourceNotFoundException")
}

func caseRetention(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	if _, err := s.c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: &s.name, RetentionPeriodHours: aws.Int32(48)}); err != nil {
		return fmt.Errorf("IncreaseStreamRetentionPeriod: %w", err)
	}
	if err := s.waitActive(ctx); err != nil {
		return err
	}
	sum, err := s.summary(ctx)
	if err != nil {
		return err
	}
	if got := aws.ToInt32(sum.RetentionPeriodHours); got != 48 {
		return fmt.Errorf("RetentionPeriodHours = %d after increase to 48", got)
	}
	_, err = s.c.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: &s.name, RetentionPeriodHours: aws.Int32(72)})
	if e := wantCode("DecreaseStreamRetentionPeriod above the current period", err, "InvalidArgumentException"); e != nil {
		return e
	}
	_, err = s.c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: &s.name, RetentionPeriodHours: aws.Int32(24)})
	if e := wantCode("IncreaseStreamRetentionPeriod below the current period", err, "InvalidArgumentException"); e != nil {
		return e
	}
	if _, err := s.c.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: &s.name, RetentionPeriodHours: aws.Int32(24)}); err != nil {
		return fmt.Errorf("DecreaseStreamRetentionPeriod: %w", err)
	}
	if err := s.waitActive(ctx); err != nil {
		return err
	}
	sum, err = s.summary(ctx)
	if err != nil {
		return err
	}
	if got := aws.ToInt32(sum.RetentionPeriodHours); got != 24 {
		return fmt.Errorf("RetentionPeriodHours = %d after decrease to 24", got)
	}
	return nil
}

func caseTags(ctx context.Context, s *kstream) error {
	if err := s.create(ctx, 1); err != nil {
		return err
	}
	if _, err := s.c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: &s.name, Tags: map[string]string{"b": "2", "a": "1", "c": ""}}); err != nil {
		return fmt.Errorf("AddTagsToStream: %w", err)
	}
	if _, err := s.c.RemoveTagsFromStream(ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: &s.name, TagKeys: []string{"b"}}); err != nil {
		return fmt.Errorf("RemoveTagsFromStream: %w", err)
	}
	out, err := s.c.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: &s.name})
	if err != nil {
		return fmt.Errorf("ListTagsForStream: %w", err)
	}
	var got []string
	for _, tag := range out.Tags {
		got = append(got, aws.ToString(tag.Key)+"="+aws.ToString(tag.Value))
	}
	if want := []string{"a=1", "c="}; !slices.Equal(got, want) || aws.ToBool(out.HasMoreTags) {
		return fmt.Errorf("ListTagsForStream = %v (more: %v), want %v", got, aws.ToBool(out.HasMoreTags), want)
	}
	return nil
}

// ---- helpers ----

// kstream is one case's stream on one target.
type kstream struct {
	c    *kinesis.Client
	name string
}

var streamSeq atomic.Int64

// streamName returns a unique, valid stream name for a case.
func streamName(caseName string) string {
	clean := strings.NewReplacer("/", "-", " ", "-").Replace(caseName)
	return fmt.Sprintf("c%d-%s", streamSeq.Add(1), clean)
}

func (s *kstream) create(ctx context.Context, shards int32) error {
	if _, err := s.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &s.name, ShardCount: &shards}); err != nil {
		return fmt.Errorf("CreateStream %s: %w", s.name, err)
	}
	return s.waitActive(ctx)
}

// createFamily creates n streams named after s and returns their names.
func (s *kstream) createFamily(ctx context.Context, n int) ([]string, error) {
	var names []string
	for i := range n {
		o := &kstream{c: s.c, name: fmt.Sprintf("%s-%d", s.name, i)}
		if err := o.create(ctx, 1); err != nil {
			return nil, err
		}
		names = append(names, o.name)
	}
	return names, nil
}

func (s *kstream) summary(ctx context.Context) (*types.StreamDescriptionSummary, error) {
	out, err := s.c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &s.name})
	if err != nil {
		return nil, fmt.Errorf("DescribeStreamSummary: %w", err)
	}
	return out.StreamDescriptionSummary, nil
}

func (s *kstream) waitActive(ctx context.Context) error {
	return poll(ctx, func() error {
		sum, err := s.summary(ctx)
		if err != nil {
			return err
		}
		if sum.StreamStatus != types.StreamStatusActive {
			return fmt.Errorf("stream %s is %s, want ACTIVE", s.name, sum.StreamStatus)
		}
		return nil
	})
}

func (s *kstream) split(ctx context.Context, shard string, at hashkey.Key) error {
	if _, err := s.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: &s.name, ShardToSplit: &shard, NewStartingHashKey: aws.String(at.String())}); err != nil {
		return fmt.Errorf("SplitShard: %w", err)
	}
	return s.waitActive(ctx)
}

// shards lists every shard of the stream through ListShards.
func (s *kstream) shards(ctx context.Context) ([]types.Shard, error) {
	var all []types.Shard
	in := &kinesis.ListShardsInput{StreamName: &s.name}
	for {
		out, err := s.c.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("ListShards: %w", err)
		}
		all = append(all, out.Shards...)
		if out.NextToken == nil {
			return all, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

type putResult struct {
	pk    string
	data  []byte
	shard string
	seq   string
}

// putN puts n records one by one with PutRecord.
func (s *kstream) putN(ctx context.Context, n int, tag string) ([]putResult, error) {
	var res []putResult
	for i := range n {
		pk, data := fmt.Sprintf("%s-pk-%d", tag, i), []byte(fmt.Sprintf("%s-data-%d", tag, i))
		out, err := s.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &s.name, PartitionKey: &pk, Data: data})
		if err != nil {
			return nil, fmt.Errorf("PutRecord: %w", err)
		}
		res = append(res, putResult{pk: pk, data: data, shard: aws.ToString(out.ShardId), seq: aws.ToString(out.SequenceNumber)})
	}
	return res, nil
}

func iterAt(typ types.ShardIteratorType, seq string) func(*kinesis.GetShardIteratorInput) {
	return func(in *kinesis.GetShardIteratorInput) {
		in.ShardIteratorType = typ
		if seq != "" {
			in.StartingSequenceNumber = &seq
		}
	}
}

func (s *kstream) iterator(ctx context.Context, shard string, opt func(*kinesis.GetShardIteratorInput)) (*string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: &s.name, ShardId: &shard}
	opt(in)
	out, err := s.c.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("GetShardIterator %s: %w", in.ShardIteratorType, err)
	}
	return out.ShardIterator, nil
}

// read opens an iterator and reads at least want records (see readFrom).
func (s *kstream) read(ctx context.Context, shard string, opt func(*kinesis.GetShardIteratorInput), want int) ([]types.Record, error) {
	it, err := s.iterator(ctx, shard, opt)
	if err != nil {
		return nil, err
	}
	return s.readFrom(ctx, it, want)
}

// readFrom reads with GetRecords until it has at least want records and a call returns
// none, or the shard ends.
func (s *kstream) readFrom(ctx context.Context, it *string, want int) ([]types.Record, error) {
	var recs []types.Record
	for i := 0; it != nil; i++ {
		if i == 100 {
			return nil, fmt.Errorf("read %d records in 100 GetRecords calls, want %d", len(recs), want)
		}
		out, err := s.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
		if err != nil {
			return nil, fmt.Errorf("GetRecords: %w", err)
		}
		recs = append(recs, out.Records...)
		if len(out.Records) == 0 && len(recs) >= want {
			break
		}
		it = out.NextShardIterator
	}
	return recs, nil
}

// sameRecords checks that got holds exactly the records of want, in order.
func sameRecords(got []types.Record, want []putResult) error {
	if len(got) != len(want) {
		return fmt.Errorf("read %d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		w := want[i]
		if aws.ToString(r.PartitionKey) != w.pk || !bytes.Equal(r.Data, w.data) || aws.ToString(r.SequenceNumber) != w.seq {
			return fmt.Errorf("record %d = (%s, %q, %s), want (%s, %q, %s)", i,
				aws.ToString(r.PartitionKey), r.Data, aws.ToString(r.SequenceNumber), w.pk, w.data, w.seq)
		}
	}
	return nil
}

// contiguous checks that shards, in order, cover [0, 2^128-1] without gap or overlap.
func contiguous(shards []types.Shard) error {
	next := hashkey.Key{}
	for i, sh := range shards {
		r, err := hashkey.ParseRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
		if err != nil {
			return fmt.Errorf("%s: %w", aws.ToString(sh.ShardId), err)
		}
		if r.Start != next {
			return fmt.Errorf("%s starts at %s, want %s", aws.ToString(sh.ShardId), r.Start, next)
		}
		if i == len(shards)-1 {
			if r.End != hashkey.Max {
				return fmt.Errorf("last shard %s ends at %s, want 2^128-1", aws.ToString(sh.ShardId), r.End)
			}
			break
		}
		next = r.End.Add1()
	}
	return nil
}

func wantRange(sh types.Shard, start, end hashkey.Key) error {
	if got, want := aws.ToString(sh.HashKeyRange.StartingHashKey)+".."+aws.ToString(sh.HashKeyRange.EndingHashKey), start.String()+".."+end.String(); got != want {
		return fmt.Errorf("%s covers %s, want %s", aws.ToString(sh.ShardId), got, want)
	}
	return nil
}

// checkListed checks that listed names are in order without repeats and include all of want.
func checkListed(listed, want []string) error {
	if !slices.IsSorted(listed) {
		return fmt.Errorf("ListStreams pages are not in name order: %v", listed)
	}
	if len(slices.Compact(slices.Clone(listed))) != len(listed) {
		return fmt.Errorf("ListStreams pages repeat a name: %v", listed)
	}
	for _, w := range want {
		if !slices.Contains(listed, w) {
			return fmt.Errorf("ListStreams pages lack %s", w)
		}
	}
	return nil
}

func shardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// seqCmp compares two decimal sequence numbers.
func seqCmp(a, b string) int {
	x, okx := new(big.Int).SetString(a, 10)
	y, oky := new(big.Int).SetString(b, 10)
	if !okx || !oky {
		return strings.Compare(a, b)
	}
	return x.Cmp(y)
}

// code returns the service error code of err, or "".
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// wantCode checks that the call described by what failed with one of the service error
// codes in want.
func wantCode(what string, err error, want ...string) error {
	if err == nil {
		return fmt.Errorf("%s succeeded, want %s", what, strings.Join(want, " or "))
	}
	if got := code(err); !slices.Contains(want, got) {
		return fmt.Errorf("%s failed with %q (%v), want %s", what, got, err, strings.Join(want, " or "))
	}
	return nil
}

// wantMessage is wantCode that also checks the error message contains msg.
func wantMessage(what string, err error, wantCode, msg string) error {
	if err == nil {
		return fmt.Errorf("%s succeeded, want %s", what, wantCode)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != wantCode {
		return fmt.Errorf("%s failed with %q (%v), want %s", what, code(err), err, wantCode)
	}
	if !strings.Contains(ae.ErrorMessage(), msg) {
		return fmt.Errorf("%s: message %q, want it to contain %q", what, ae.ErrorMessage(), msg)
	}
	return nil
}

// poll calls f until it returns nil, or returns its last error when ctx ends or 30 s pass.
func poll(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}
