package integration

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
)

// withoutValidation removes the SDK's client-side check of required members, so a
// request missing one reaches the service and gets the service's answer.
func withoutValidation(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		_, err := s.Initialize.Remove("OperationInputValidation")
		return err
	})
}

// errCode is the service error code of err, or "" when err is nil, or the error's text.
func errCode(err error) string {
	var ae smithy.APIError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ae):
		return ae.ErrorCode()
	}
	return err.Error()
}

// sdkTour is a plain aws-sdk-go-v2 Kinesis client against an engine, with the
// helpers of TestNewOperationsWithPlainSDK.
type sdkTour struct {
	t   *testing.T
	ctx context.Context
	k   *kinesis.Client // as users build it
	raw *kinesis.Client // without client-side validation
}

// fails checks that err carries the service error code want.
func (v *sdkTour) fails(what string, err error, want string) {
	v.t.Helper()
	if got := errCode(err); got != want {
		v.t.Errorf("%s: got %q (%v), want %s", what, got, err, want)
	}
}

func (v *sdkTour) ok(what string, err error) {
	v.t.Helper()
	if err != nil {
		v.t.Fatalf("%s: %v", what, err)
	}
}

// until polls cond every 20 ms for up to 10 s.
func (v *sdkTour) until(what string, cond func() bool) {
	v.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			v.t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (v *sdkTour) streamActive(arn string) {
	v.t.Helper()
	v.until("stream "+arn+" ACTIVE", func() bool {
		out, err := v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(arn)})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	})
}

func (v *sdkTour) queueStatus(arn string) (types.QueueStatus, error) {
	out, err := v.k.DescribeQueue(v.ctx, &kinesis.DescribeQueueInput{QueueARN: aws.String(arn)})
	if err != nil {
		return "", err
	}
	return out.QueueDescription.QueueStatus, nil
}

func (v *sdkTour) queueActive(arn string) {
	v.t.Helper()
	v.until("queue "+arn+" ACTIVE", func() bool { s, err := v.queueStatus(arn); return err == nil && s == types.QueueStatusActive })
}

func (v *sdkTour) receive(arn string, limit, vis int32) []types.QueueRecord {
	v.t.Helper()
	out, err := v.k.ReceiveQueueRecords(v.ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(arn), Limit: aws.Int32(limit),
		WaitTimeSeconds: aws.Int32(0), VisibilityTimeoutSeconds: aws.Int32(vis)})
	v.ok("ReceiveQueueRecords", err)
	return out.QueueRecords
}

// hide sets the visibility of recs, ten per call, and returns the merged answers.
func (v *sdkTour) hide(arn string, recs []types.QueueRecord, vis int32) *kinesis.UpdateQueueRecordsVisibilityOutput {
	v.t.Helper()
	all := &kinesis.UpdateQueueRecordsVisibilityOutput{}
	for len(recs) > 0 {
		n := min(10, len(recs))
		var entries []types.UpdateQueueRecordsVisibilityRequestEntry
		for _, r := range recs[:n] {
			entries = append(entries, types.UpdateQueueRecordsVisibilityRequestEntry{ReceiptHandle: r.ReceiptHandle, VisibilityTimeoutSeconds: aws.Int32(vis)})
		}
		recs = recs[n:]
		out, err := v.k.UpdateQueueRecordsVisibility(v.ctx, &kinesis.UpdateQueueRecordsVisibilityInput{QueueARN: aws.String(arn), Entries: entries})
		v.ok("UpdateQueueRecordsVisibility", err)
		all.Successful = append(all.Successful, out.Successful...)
		all.Failed = append(all.Failed, out.Failed...)
	}
	return all
}

// on returns the tour reporting to the subtest t.
func (v *sdkTour) on(t *testing.T) *sdkTour {
	c := *v
	c.t = t
	return &c
}

func recordIDs(recs []types.QueueRecord) map[string]bool {
	m := map[string]bool{}
	for _, r := range recs {
		m[aws.ToString(r.RecordId)] = true
	}
	return m
}

// TestNewOperationsWithPlainSDK drives every operation Kinesis added for
// service-managed distribution, queues, dry runs and large records through a plain
// aws-sdk-go-v2 client against the engine: the happy path, then bad input (missing
// members, sent past the SDK's own checks; wrong states; unknown receipt handles;
// visibility out of range; too many entries) answered with the service's error codes
// (ValidationException for members outside the model's constraints,
// InvalidArgumentException for requests the service refuses, ResourceInUseException for
// resources in the wrong state, ResourceNotFoundException, DryRunOperationException).
func TestNewOperationsWithPlainSDK(t *testing.T) {
	const delay = 300 * time.Millisecond
	e := enginetest.Start(t, engine.Config{Streams: streams.Config{OnDemandShards: 2, CreateDelay: delay, UpdateDelay: delay, DeleteDelay: delay}})
	v := &sdkTour{t: t, ctx: context.Background(), k: enginetest.Kinesis(e), raw: kinesis.NewFromConfig(e.AWSConfig(), withoutValidation)}
	k, ctx := v.k, v.ctx
	onDemand := &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}

	// Streams: AUTO at creation, USER_PARTITION_KEY switched later, PROVISIONED.
	_, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("auto"), StreamModeDetails: onDemand, RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
	v.ok("CreateStream AUTO", err)
	_, err = k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("keyed"), StreamModeDetails: onDemand})
	v.ok("CreateStream ON_DEMAND", err)
	_, err = k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("prov"), ShardCount: aws.Int32(1)})
	v.ok("CreateStream PROVISIONED", err)
	v.fails("CreateStream AUTO on PROVISIONED", func() error {
		_, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("bad"), ShardCount: aws.Int32(1), RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
		return err
	}(), "InvalidArgumentException")
	autoARN, keyedARN, provARN := e.Streams.StreamARN("auto"), e.Streams.StreamARN("keyed"), e.Streams.StreamARN("prov")
	for _, arn := range []string{autoARN, keyedARN, provARN} {
		v.streamActive(arn)
	}

	t.Run("UpdateStreamRecordDistributionStrategy", func(t *testing.T) {
		v := v.on(t)
		_, err := v.raw.PutRecord(ctx, &kinesis.PutRecordInput{StreamARN: aws.String(keyedARN), Data: []byte("x")})
		v.fails("keyless PutRecord on USER_PARTITION_KEY", err, "InvalidArgumentException")
		_, err = k.UpdateStreamRecordDistributionStrategy(ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{StreamARN: aws.String(keyedARN), RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
		v.ok("switch to AUTO", err)
		// The switch takes effect at once, without an UPDATING phase.
		sum, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(keyedARN)})
		v.ok("DescribeStreamSummary", err)
		if d := sum.StreamDescriptionSummary; d.RecordDistributionStrategy != types.RecordDistributionStrategyAuto || d.StreamStatus != types.StreamStatusActive {
			t.Fatalf("strategy %q, status %q right after the switch, want AUTO and ACTIVE", d.RecordDistributionStrategy, d.StreamStatus)
		}
		_, err = k.PutRecord(ctx, &kinesis.PutRecordInput{StreamARN: aws.String(keyedARN), Data: []byte("x")})
		v.ok("keyless PutRecord after the switch", err)
		_, err = k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("fresh"), StreamModeDetails: onDemand})
		v.ok("CreateStream", err)
		_, err = k.UpdateStreamRecordDistributionStrategy(ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{StreamARN: aws.String(e.Streams.StreamARN("fresh")), RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
		v.fails("switch while CREATING", err, "ResourceInUseException")
		_, err = v.raw.UpdateStreamRecordDistributionStrategy(ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{StreamARN: aws.String(keyedARN)})
		v.fails("missing strategy", err, "ValidationException")
		_, err = k.UpdateStreamRecordDistributionStrategy(ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{StreamARN: aws.String(keyedARN), RecordDistributionStrategy: "RANDOM"})
		v.fails("unknown strategy", err, "ValidationException")
		_, err = k.UpdateStreamRecordDistributionStrategy(ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{StreamARN: aws.String(provARN), RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
		v.fails("PROVISIONED stream", err, "InvalidArgumentException")
		_, err = k.UpdateStreamRecordDistributionStrategy(ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{StreamARN: aws.String(e.Streams.StreamARN("nope")), RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
		v.fails("unknown stream", err, "ResourceNotFoundException")
	})

	t.Run("keyless records on AUTO", func(t *testing.T) {
		v := v.on(t)
		_, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(autoARN), Records: []types.PutRecordsRequestEntry{{Data: []byte("a")}, {Data: []byte("b"), PartitionKey: aws.String("k")}}})
		v.ok("PutRecords with and without keys", err)
		var got []types.Record
		for _, s := range openShards(t, e, "auto") {
			it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamARN: aws.String(autoARN), ShardId: aws.String(s.ID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			v.ok("GetShardIterator", err)
			out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{StreamARN: aws.String(autoARN), ShardIterator: it.ShardIterator})
			v.ok("GetRecords", err)
			got = append(got, out.Records...)
		}
		if len(got) != 2 {
			t.Fatalf("%d records read back, want 2", len(got))
		}
		for _, r := range got {
			if keyless := r.PartitionKey == nil; keyless != (string(r.Data) == "a") {
				t.Fatalf("record %q has partition key %v", r.Data, r.PartitionKey)
			}
		}
	})

	t.Run("DryRun", func(t *testing.T) {
		v := v.on(t)
		yes := aws.Bool(true)
		before := len(mustRecords(t, e, "prov"))
		_, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamARN: aws.String(provARN), PartitionKey: aws.String("k"), Data: []byte("x"), DryRun: yes})
		v.fails("PutRecord", err, "DryRunOperationException")
		_, err = k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(provARN), DryRun: yes, Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("x")}}})
		v.fails("PutRecords", err, "DryRunOperationException")
		_, err = k.PutRecord(ctx, &kinesis.PutRecordInput{StreamARN: aws.String(provARN), Data: []byte("x"), DryRun: yes})
		v.fails("PutRecord failing its checks", err, "InvalidArgumentException")
		shard := openShards(t, e, "prov")[0].ID
		_, err = k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamARN: aws.String(provARN), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon, DryRun: yes})
		v.fails("GetShardIterator", err, "DryRunOperationException")
		it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamARN: aws.String(provARN), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		v.ok("GetShardIterator", err)
		_, err = k.GetRecords(ctx, &kinesis.GetRecordsInput{StreamARN: aws.String(provARN), ShardIterator: it.ShardIterator, DryRun: yes})
		v.fails("GetRecords", err, "DryRunOperationException")
		reg, err := k.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(provARN), ConsumerName: aws.String("efo")})
		v.ok("RegisterStreamConsumer", err)
		v.until("consumer ACTIVE", func() bool {
			d, err := k.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: reg.Consumer.ConsumerARN})
			return err == nil && d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive
		})
		_, err = k.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: reg.Consumer.ConsumerARN, ShardId: aws.String(shard),
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}, DryRun: yes})
		v.fails("SubscribeToShard", err, "DryRunOperationException")
		if after := len(mustRecords(t, e, "prov")); after != before {
			t.Fatalf("dry runs stored %d records", after-before)
		}
	})

	t.Run("UpdateMaxRecordSize", func(t *testing.T) {
		v := v.on(t)
		big := make([]byte, 2<<20)
		_, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamARN: aws.String(provARN), PartitionKey: aws.String("k"), Data: big})
		v.fails("2 MiB record at the 1 MiB default", err, "InvalidArgumentException")
		_, err = k.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(provARN), MaxRecordSizeInKiB: aws.Int32(10240)})
		v.ok("UpdateMaxRecordSize 10 MiB", err)
		v.streamActive(provARN)
		sum, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(provARN)})
		v.ok("DescribeStreamSummary", err)
		if got := aws.ToInt32(sum.StreamDescriptionSummary.MaxRecordSizeInKiB); got != 10240 {
			t.Fatalf("MaxRecordSizeInKiB %d, want 10240", got)
		}
		_, err = k.PutRecord(ctx, &kinesis.PutRecordInput{StreamARN: aws.String(provARN), PartitionKey: aws.String("k"), Data: big})
		v.ok("2 MiB record at 10 MiB", err)
		for _, kib := range []int32{1023, 10241} {
			_, err = k.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(provARN), MaxRecordSizeInKiB: aws.Int32(kib)})
			v.fails("MaxRecordSizeInKiB "+strconv.Itoa(int(kib)), err, "ValidationException")
		}
		_, err = v.raw.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(provARN)})
		v.fails("missing MaxRecordSizeInKiB", err, "ValidationException")
		_, err = k.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(e.Streams.StreamARN("nope")), MaxRecordSizeInKiB: aws.Int32(2048)})
		v.fails("unknown stream", err, "ResourceNotFoundException")
	})

	// Queues on the AUTO stream: two records a queue already holds above.
	dlq := &types.QueueAttributes{VisibilityTimeoutSeconds: aws.Int32(20),
		DeadLetterConfiguration: &types.DeadLetterConfiguration{TargetType: types.TargetTypeBuiltIn, MaxReceiveCount: aws.Int32(2)}}
	from := func(arn string) []types.QueueStreamConfiguration {
		return []types.QueueStreamConfiguration{{StreamARN: aws.String(arn), StartingPosition: &types.QueueStartingPosition{Type: types.QueueStartingPositionTypeTrimHorizon}}}
	}
	created, err := k.CreateQueue(ctx, &kinesis.CreateQueueInput{QueueName: aws.String("work"), StreamConfigurationList: from(autoARN), QueueAttributes: dlq})
	v.ok("CreateQueue", err)
	qarn := aws.ToString(created.QueueDescription.QueueARN)
	_, err = k.ReceiveQueueRecords(ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(qarn), WaitTimeSeconds: aws.Int32(0)})
	v.fails("ReceiveQueueRecords while CREATING", err, "ResourceInUseException")
	v.queueActive(qarn)
	_, err = k.CreateQueue(ctx, &kinesis.CreateQueueInput{QueueName: aws.String("other"), StreamConfigurationList: from(autoARN)})
	v.ok("CreateQueue", err)
	unknownQueue := strings.Replace(qarn, ":queue/", ":queue/zz", 1)

	t.Run("CreateQueue, DescribeQueue, ListQueues", func(t *testing.T) {
		v := v.on(t)
		d, err := k.DescribeQueue(ctx, &kinesis.DescribeQueueInput{QueueARN: aws.String(qarn)})
		v.ok("DescribeQueue", err)
		a := d.QueueDescription.QueueAttributes
		if aws.ToString(d.QueueDescription.QueueName) != "work" || aws.ToInt32(a.VisibilityTimeoutSeconds) != 20 ||
			a.DeadLetterConfiguration.TargetType != types.TargetTypeBuiltIn || aws.ToInt32(a.DeadLetterConfiguration.MaxReceiveCount) != 2 ||
			aws.ToString(d.QueueDescription.StreamConfigurationList[0].StreamARN) != autoARN {
			t.Fatalf("DescribeQueue %+v", d.QueueDescription)
		}
		seen := map[string]bool{}
		var token *string
		for page := 0; ; page++ {
			out, err := k.ListQueues(ctx, &kinesis.ListQueuesInput{MaxResults: aws.Int32(1), NextToken: token,
				StreamFilter: []types.QueueStreamFilter{{StreamARN: aws.String(autoARN)}}})
			v.ok("ListQueues", err)
			for _, s := range out.QueueSummaries {
				seen[aws.ToString(s.QueueName)] = true
			}
			if token = out.NextToken; token == nil || page > 3 {
				break
			}
		}
		if len(seen) != 2 || !seen["work"] || !seen["other"] {
			t.Fatalf("ListQueues pages gave %v, want work and other", seen)
		}
		out, err := k.ListQueues(ctx, &kinesis.ListQueuesInput{StreamFilter: []types.QueueStreamFilter{{StreamARN: aws.String(provARN)}}})
		if v.ok("ListQueues", err); len(out.QueueSummaries) != 0 {
			t.Fatalf("queues listed for a stream without any: %+v", out.QueueSummaries)
		}
		_, err = k.ListQueues(ctx, &kinesis.ListQueuesInput{MaxResults: aws.Int32(0)})
		v.fails("ListQueues MaxResults 0", err, "ValidationException")
		_, err = k.ListQueues(ctx, &kinesis.ListQueuesInput{NextToken: aws.String("not-a-token")})
		v.fails("ListQueues bad token", err, "InvalidArgumentException")

		_, err = v.raw.CreateQueue(ctx, &kinesis.CreateQueueInput{StreamConfigurationList: from(autoARN)})
		v.fails("CreateQueue without name", err, "ValidationException")
		_, err = v.raw.CreateQueue(ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n")})
		v.fails("CreateQueue without stream", err, "ValidationException")
		_, err = k.CreateQueue(ctx, &kinesis.CreateQueueInput{QueueName: aws.String("work"), StreamConfigurationList: from(autoARN)})
		v.fails("CreateQueue name taken", err, "ResourceInUseException")
		_, err = k.CreateQueue(ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"), StreamConfigurationList: from(provARN)})
		v.fails("CreateQueue on PROVISIONED", err, "InvalidArgumentException")
		_, err = k.CreateQueue(ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"), StreamConfigurationList: from(e.Streams.StreamARN("nope"))})
		v.fails("CreateQueue on an unknown stream", err, "ResourceNotFoundException")
		_, err = k.CreateQueue(ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"), StreamConfigurationList: from(autoARN),
			QueueAttributes: &types.QueueAttributes{VisibilityTimeoutSeconds: aws.Int32(43201)}})
		v.fails("CreateQueue visibility 12 h + 1 s", err, "ValidationException")
		_, err = k.CreateQueue(ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"), StreamConfigurationList: from(autoARN),
			QueueAttributes: &types.QueueAttributes{DeadLetterConfiguration: &types.DeadLetterConfiguration{TargetType: types.TargetTypeBuiltIn, MaxReceiveCount: aws.Int32(0)}}})
		v.fails("CreateQueue MaxReceiveCount 0", err, "ValidationException")
		_, err = k.CreateQueue(ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"), StreamConfigurationList: from(autoARN),
			QueueAttributes: &types.QueueAttributes{DeadLetterConfiguration: &types.DeadLetterConfiguration{TargetType: types.TargetTypeBuiltIn}}})
		v.fails("CreateQueue BUILT_IN without MaxReceiveCount", err, "InvalidArgumentException")
		_, err = v.raw.DescribeQueue(ctx, &kinesis.DescribeQueueInput{})
		v.fails("DescribeQueue without ARN", err, "ValidationException")
		_, err = k.DescribeQueue(ctx, &kinesis.DescribeQueueInput{QueueARN: aws.String(autoARN)})
		v.fails("DescribeQueue with a stream ARN", err, "ValidationException")
		_, err = k.DescribeQueue(ctx, &kinesis.DescribeQueueInput{QueueARN: aws.String(unknownQueue)})
		v.fails("DescribeQueue unknown", err, "ResourceNotFoundException")
	})

	t.Run("receive, acknowledge, visibility, dead letters", func(t *testing.T) {
		v := v.on(t)
		var entries []types.PutRecordsRequestEntry
		for i := 0; i < 28; i++ {
			en := types.PutRecordsRequestEntry{Data: []byte("q" + strconv.Itoa(i))}
			if i%2 == 0 {
				en.PartitionKey = aws.String("k" + strconv.Itoa(i))
			}
			entries = append(entries, en)
		}
		out, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(autoARN), Records: entries})
		if v.ok("PutRecords", err); aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatal("PutRecords failed entries")
		}
		var all []types.QueueRecord // 30: the two from above and these 28
		for len(all) < 30 {
			got := v.receive(qarn, 10, 60)
			if len(got) == 0 || len(got) > 10 {
				t.Fatalf("a receive of up to 10 returned %d with %d of 30 received", len(got), len(all))
			}
			all = append(all, got...)
		}
		if more := v.receive(qarn, 10, 60); len(more) != 0 || len(recordIDs(all)) != 30 {
			t.Fatalf("%d more records while all are in flight; %d distinct IDs", len(more), len(recordIDs(all)))
		}
		for _, r := range all {
			keyless := r.PartitionKey == nil
			n, _ := strconv.Atoi(strings.TrimPrefix(string(r.Data), "q"))
			wantKeyless := strings.HasPrefix(string(r.Data), "q") && n%2 == 1 || string(r.Data) == "a"
			if keyless != wantKeyless || aws.ToInt32(r.ReceiveCount) != 1 || r.ReceiptHandle == nil || r.ApproximateArrivalTimestamp == nil {
				t.Fatalf("queue record %+v", r)
			}
		}
		// Acknowledge ten, with one unknown handle among them.
		acks := []types.AcknowledgeQueueRecordsRequestEntry{{ReceiptHandle: aws.String("not-a-receipt-handle")}}
		for _, r := range all[:9] {
			acks = append(acks, types.AcknowledgeQueueRecordsRequestEntry{ReceiptHandle: r.ReceiptHandle})
		}
		ack, err := k.AcknowledgeQueueRecords(ctx, &kinesis.AcknowledgeQueueRecordsInput{QueueARN: aws.String(qarn), Entries: acks})
		v.ok("AcknowledgeQueueRecords", err)
		if len(ack.Successful) != 9 || len(ack.Failed) != 1 || aws.ToString(ack.Failed[0].ErrorCode) != "InvalidArgumentException" ||
			aws.ToString(ack.Failed[0].ReceiptHandle) != "not-a-receipt-handle" || ack.Failed[0].ErrorMessage == nil {
			t.Fatalf("acknowledge: %d successful, failed %+v", len(ack.Successful), ack.Failed)
		}
		// The rest: visible again now, received a second time, then dead letters.
		rest := all[9:]
		if h := v.hide(qarn, rest, 0); len(h.Successful) != 21 || len(h.Failed) != 0 {
			t.Fatalf("visibility 0: %+v", h)
		}
		stale := v.hide(qarn, rest[:1], 30)
		if len(stale.Failed) != 1 || aws.ToString(stale.Failed[0].ErrorCode) == "" {
			t.Fatalf("a receipt handle of an ended delivery: %+v", stale)
		}
		var second []types.QueueRecord
		for len(second) < 21 {
			got := v.receive(qarn, 10, 60)
			if len(got) == 0 {
				t.Fatalf("%d of 21 received a second time", len(second))
			}
			second = append(second, got...)
		}
		for _, r := range second {
			if !recordIDs(rest)[aws.ToString(r.RecordId)] || aws.ToInt32(r.ReceiveCount) != 2 || r.FirstReceiveTimestamp == nil {
				t.Fatalf("second delivery %+v: not one of the released records with receive count 2", r)
			}
		}
		if h := v.hide(qarn, second, 0); len(h.Successful) != 21 {
			t.Fatalf("visibility 0: %+v", h)
		}
		var dead []types.QueueRecord
		v.until("21 dead-letter records", func() bool {
			out, err := k.ReceiveDeadLetterQueueRecords(ctx, &kinesis.ReceiveDeadLetterQueueRecordsInput{QueueARN: aws.String(qarn),
				Limit: aws.Int32(10), WaitTimeSeconds: aws.Int32(0), VisibilityTimeoutSeconds: aws.Int32(60)})
			v.ok("ReceiveDeadLetterQueueRecords", err)
			dead = append(dead, out.QueueRecords...)
			return len(dead) >= 21
		})
		if got := v.receive(qarn, 10, 60); len(got) != 0 {
			t.Fatalf("the queue delivered %d dead-letter records", len(got))
		}
		if len(recordIDs(dead)) != 21 {
			t.Fatalf("%d distinct dead-letter records, want 21", len(recordIDs(dead)))
		}
		// Dead letters: make five visible again, acknowledge six, restore ten.
		dvis := []types.UpdateDeadLetterQueueRecordsVisibilityRequestEntry{{ReceiptHandle: aws.String("not-a-receipt-handle"), VisibilityTimeoutSeconds: aws.Int32(0)}}
		for _, r := range dead[:5] {
			dvis = append(dvis, types.UpdateDeadLetterQueueRecordsVisibilityRequestEntry{ReceiptHandle: r.ReceiptHandle, VisibilityTimeoutSeconds: aws.Int32(0)})
		}
		dv, err := k.UpdateDeadLetterQueueRecordsVisibility(ctx, &kinesis.UpdateDeadLetterQueueRecordsVisibilityInput{QueueARN: aws.String(qarn), Entries: dvis})
		if v.ok("UpdateDeadLetterQueueRecordsVisibility", err); len(dv.Successful) != 5 || len(dv.Failed) != 1 || aws.ToString(dv.Failed[0].ErrorCode) != "InvalidArgumentException" {
			t.Fatalf("dead-letter visibility: %+v", dv)
		}
		var dacks []types.AcknowledgeDeadLetterQueueRecordsRequestEntry
		for _, r := range dead[5:11] {
			dacks = append(dacks, types.AcknowledgeDeadLetterQueueRecordsRequestEntry{ReceiptHandle: r.ReceiptHandle})
		}
		da, err := k.AcknowledgeDeadLetterQueueRecords(ctx, &kinesis.AcknowledgeDeadLetterQueueRecordsInput{QueueARN: aws.String(qarn), Entries: dacks})
		if v.ok("AcknowledgeDeadLetterQueueRecords", err); len(da.Successful) != 6 || len(da.Failed) != 0 {
			t.Fatalf("dead-letter acknowledge: %+v", da)
		}
		var restores []types.RestoreDeadLetterQueueRecordsRequestEntry
		for _, r := range dead[11:] {
			restores = append(restores, types.RestoreDeadLetterQueueRecordsRequestEntry{ReceiptHandle: r.ReceiptHandle})
		}
		rs, err := k.RestoreDeadLetterQueueRecords(ctx, &kinesis.RestoreDeadLetterQueueRecordsInput{QueueARN: aws.String(qarn), Entries: restores})
		if v.ok("RestoreDeadLetterQueueRecords", err); len(rs.Successful) != 10 || len(rs.Failed) != 0 {
			t.Fatalf("restore: %+v", rs)
		}
		var restored []types.QueueRecord
		for len(restored) < 10 {
			got := v.receive(qarn, 10, 60)
			if len(got) == 0 {
				t.Fatalf("%d of 10 restored records received", len(restored))
			}
			restored = append(restored, got...)
		}
		for _, r := range restored {
			if !recordIDs(dead[11:])[aws.ToString(r.RecordId)] || aws.ToInt32(r.ReceiveCount) != 1 {
				t.Fatalf("restored delivery %+v: not a restored record with a fresh receive count", r)
			}
		}
		again, err := k.ReceiveDeadLetterQueueRecords(ctx, &kinesis.ReceiveDeadLetterQueueRecordsInput{QueueARN: aws.String(qarn), WaitTimeSeconds: aws.Int32(0)})
		v.ok("ReceiveDeadLetterQueueRecords", err)
		if ids := recordIDs(again.QueueRecords); len(ids) != 5 || !recordIDs(dead[:5])[aws.ToString(again.QueueRecords[0].RecordId)] {
			t.Fatalf("dead letters visible after the changes: %d, want the 5 made visible", len(ids))
		}
		// Acknowledging the ten restored deliveries empties what the queue holds but the 5.
		var last []types.AcknowledgeQueueRecordsRequestEntry
		for _, r := range restored {
			last = append(last, types.AcknowledgeQueueRecordsRequestEntry{ReceiptHandle: r.ReceiptHandle})
		}
		if a, err := k.AcknowledgeQueueRecords(ctx, &kinesis.AcknowledgeQueueRecordsInput{QueueARN: aws.String(qarn), Entries: last}); err != nil || len(a.Successful) != 10 {
			t.Fatalf("acknowledge restored: %v %+v", err, a)
		}
		if st, err := e.Streams.QueueStats(qarn); err != nil || st.Loaded != 5 || st.DeadLetter+st.DeadLetterInFlight != 5 {
			t.Fatalf("queue %+v (%v), want only the 5 dead letters left", st, err)
		}
	})

	t.Run("bad input to the record operations", func(t *testing.T) {
		v := v.on(t)
		eleven := make([]types.AcknowledgeQueueRecordsRequestEntry, 11)
		elevenVis := make([]types.UpdateQueueRecordsVisibilityRequestEntry, 11)
		elevenDead := make([]types.RestoreDeadLetterQueueRecordsRequestEntry, 11)
		elevenDeadAck := make([]types.AcknowledgeDeadLetterQueueRecordsRequestEntry, 11)
		elevenDeadVis := make([]types.UpdateDeadLetterQueueRecordsVisibilityRequestEntry, 11)
		for i := range eleven {
			eleven[i].ReceiptHandle = aws.String("h")
			elevenVis[i] = types.UpdateQueueRecordsVisibilityRequestEntry{ReceiptHandle: aws.String("h"), VisibilityTimeoutSeconds: aws.Int32(1)}
			elevenDead[i].ReceiptHandle = aws.String("h")
			elevenDeadAck[i].ReceiptHandle = aws.String("h")
			elevenDeadVis[i] = types.UpdateDeadLetterQueueRecordsVisibilityRequestEntry{ReceiptHandle: aws.String("h"), VisibilityTimeoutSeconds: aws.Int32(1)}
		}
		q := aws.String(qarn)
		for _, c := range []struct {
			name string
			call func() error
			code string
		}{
			{"receive limit 11", func() error {
				_, err := k.ReceiveQueueRecords(ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: q, Limit: aws.Int32(11)})
				return err
			}, "ValidationException"},
			{"receive limit 0", func() error {
				_, err := k.ReceiveQueueRecords(ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: q, Limit: aws.Int32(0)})
				return err
			}, "ValidationException"},
			{"receive wait 21 s", func() error {
				_, err := k.ReceiveQueueRecords(ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: q, WaitTimeSeconds: aws.Int32(21)})
				return err
			}, "ValidationException"},
			{"receive visibility 12 h + 1 s", func() error {
				_, err := k.ReceiveQueueRecords(ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: q, WaitTimeSeconds: aws.Int32(0), VisibilityTimeoutSeconds: aws.Int32(43201)})
				return err
			}, "ValidationException"},
			{"receive without queue", func() error {
				_, err := v.raw.ReceiveQueueRecords(ctx, &kinesis.ReceiveQueueRecordsInput{WaitTimeSeconds: aws.Int32(0)})
				return err
			}, "ValidationException"},
			{"receive from an unknown queue", func() error {
				_, err := k.ReceiveQueueRecords(ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(unknownQueue), WaitTimeSeconds: aws.Int32(0)})
				return err
			}, "ResourceNotFoundException"},
			{"acknowledge 11", func() error {
				_, err := k.AcknowledgeQueueRecords(ctx, &kinesis.AcknowledgeQueueRecordsInput{QueueARN: q, Entries: eleven})
				return err
			}, "ValidationException"},
			{"acknowledge without entries", func() error {
				_, err := v.raw.AcknowledgeQueueRecords(ctx, &kinesis.AcknowledgeQueueRecordsInput{QueueARN: q})
				return err
			}, "ValidationException"},
			{"acknowledge an entry without handle", func() error {
				_, err := v.raw.AcknowledgeQueueRecords(ctx, &kinesis.AcknowledgeQueueRecordsInput{QueueARN: q, Entries: []types.AcknowledgeQueueRecordsRequestEntry{{}}})
				return err
			}, "ValidationException"},
			{"acknowledge on an unknown queue", func() error {
				_, err := k.AcknowledgeQueueRecords(ctx, &kinesis.AcknowledgeQueueRecordsInput{QueueARN: aws.String(unknownQueue), Entries: eleven[:1]})
				return err
			}, "ResourceNotFoundException"},
			{"visibility 11", func() error {
				_, err := k.UpdateQueueRecordsVisibility(ctx, &kinesis.UpdateQueueRecordsVisibilityInput{QueueARN: q, Entries: elevenVis})
				return err
			}, "ValidationException"},
			{"visibility 12 h + 1 s", func() error {
				_, err := k.UpdateQueueRecordsVisibility(ctx, &kinesis.UpdateQueueRecordsVisibilityInput{QueueARN: q,
					Entries: []types.UpdateQueueRecordsVisibilityRequestEntry{{ReceiptHandle: aws.String("h"), VisibilityTimeoutSeconds: aws.Int32(43201)}}})
				return err
			}, "ValidationException"},
			{"visibility -1", func() error {
				_, err := k.UpdateQueueRecordsVisibility(ctx, &kinesis.UpdateQueueRecordsVisibilityInput{QueueARN: q,
					Entries: []types.UpdateQueueRecordsVisibilityRequestEntry{{ReceiptHandle: aws.String("h"), VisibilityTimeoutSeconds: aws.Int32(-1)}}})
				return err
			}, "ValidationException"},
			{"visibility missing", func() error {
				_, err := v.raw.UpdateQueueRecordsVisibility(ctx, &kinesis.UpdateQueueRecordsVisibilityInput{QueueARN: q,
					Entries: []types.UpdateQueueRecordsVisibilityRequestEntry{{ReceiptHandle: aws.String("h")}}})
				return err
			}, "ValidationException"},
			{"dead-letter receive limit 11", func() error {
				_, err := k.ReceiveDeadLetterQueueRecords(ctx, &kinesis.ReceiveDeadLetterQueueRecordsInput{QueueARN: q, Limit: aws.Int32(11)})
				return err
			}, "ValidationException"},
			{"dead-letter receive visibility 12 h + 1 s", func() error {
				_, err := k.ReceiveDeadLetterQueueRecords(ctx, &kinesis.ReceiveDeadLetterQueueRecordsInput{QueueARN: q, WaitTimeSeconds: aws.Int32(0), VisibilityTimeoutSeconds: aws.Int32(43201)})
				return err
			}, "ValidationException"},
			{"dead-letter receive from an unknown queue", func() error {
				_, err := k.ReceiveDeadLetterQueueRecords(ctx, &kinesis.ReceiveDeadLetterQueueRecordsInput{QueueARN: aws.String(unknownQueue), WaitTimeSeconds: aws.Int32(0)})
				return err
			}, "ResourceNotFoundException"},
			{"dead-letter acknowledge 11", func() error {
				_, err := k.AcknowledgeDeadLetterQueueRecords(ctx, &kinesis.AcknowledgeDeadLetterQueueRecordsInput{QueueARN: q, Entries: elevenDeadAck})
				return err
			}, "ValidationException"},
			{"dead-letter restore 11", func() error {
				_, err := k.RestoreDeadLetterQueueRecords(ctx, &kinesis.RestoreDeadLetterQueueRecordsInput{QueueARN: q, Entries: elevenDead})
				return err
			}, "ValidationException"},
			{"dead-letter restore without entries", func() error {
				_, err := v.raw.RestoreDeadLetterQueueRecords(ctx, &kinesis.RestoreDeadLetterQueueRecordsInput{QueueARN: q})
				return err
			}, "ValidationException"},
			{"dead-letter visibility 11", func() error {
				_, err := k.UpdateDeadLetterQueueRecordsVisibility(ctx, &kinesis.UpdateDeadLetterQueueRecordsVisibilityInput{QueueARN: q, Entries: elevenDeadVis})
				return err
			}, "ValidationException"},
			{"dead-letter visibility 12 h + 1 s", func() error {
				_, err := k.UpdateDeadLetterQueueRecordsVisibility(ctx, &kinesis.UpdateDeadLetterQueueRecordsVisibilityInput{QueueARN: q,
					Entries: []types.UpdateDeadLetterQueueRecordsVisibilityRequestEntry{{ReceiptHandle: aws.String("h"), VisibilityTimeoutSeconds: aws.Int32(43201)}}})
				return err
			}, "ValidationException"},
		} {
			v.fails(c.name, c.call(), c.code)
		}
		rs, err := k.RestoreDeadLetterQueueRecords(ctx, &kinesis.RestoreDeadLetterQueueRecordsInput{QueueARN: q,
			Entries: []types.RestoreDeadLetterQueueRecordsRequestEntry{{ReceiptHandle: aws.String("not-a-receipt-handle")}}})
		if v.ok("RestoreDeadLetterQueueRecords", err); len(rs.Failed) != 1 || aws.ToString(rs.Failed[0].ErrorCode) != "InvalidArgumentException" {
			t.Fatalf("restore of an unknown handle: %+v", rs)
		}
	})

	t.Run("UpdateQueue, DeleteQueue and their states", func(t *testing.T) {
		v := v.on(t)
		_, err := k.UpdateQueue(ctx, &kinesis.UpdateQueueInput{QueueARN: aws.String(qarn), QueueAttributes: &types.QueueAttributes{VisibilityTimeoutSeconds: aws.Int32(40)}})
		v.ok("UpdateQueue", err)
		_, err = k.UpdateQueue(ctx, &kinesis.UpdateQueueInput{QueueARN: aws.String(qarn), QueueAttributes: &types.QueueAttributes{VisibilityTimeoutSeconds: aws.Int32(50)}})
		v.fails("UpdateQueue while UPDATING", err, "ResourceInUseException")
		v.queueActive(qarn)
		d, err := k.DescribeQueue(ctx, &kinesis.DescribeQueueInput{QueueARN: aws.String(qarn)})
		v.ok("DescribeQueue", err)
		if a := d.QueueDescription.QueueAttributes; aws.ToInt32(a.VisibilityTimeoutSeconds) != 40 || aws.ToInt32(a.DeadLetterConfiguration.MaxReceiveCount) != 2 {
			t.Fatalf("attributes after UpdateQueue %+v (the dead-letter settings must stay)", a)
		}
		_, err = v.raw.UpdateQueue(ctx, &kinesis.UpdateQueueInput{QueueARN: aws.String(qarn)})
		v.fails("UpdateQueue without attributes", err, "ValidationException")
		_, err = k.UpdateQueue(ctx, &kinesis.UpdateQueueInput{QueueARN: aws.String(qarn), QueueAttributes: &types.QueueAttributes{
			DeadLetterConfiguration: &types.DeadLetterConfiguration{TargetType: types.TargetTypeNone, MaxReceiveCount: aws.Int32(3)}}})
		v.fails("UpdateQueue NONE with MaxReceiveCount", err, "InvalidArgumentException")
		_, err = k.UpdateQueue(ctx, &kinesis.UpdateQueueInput{QueueARN: aws.String(qarn), QueueAttributes: &types.QueueAttributes{VisibilityTimeoutSeconds: aws.Int32(43201)}})
		v.fails("UpdateQueue visibility 12 h + 1 s", err, "ValidationException")
		_, err = k.UpdateQueue(ctx, &kinesis.UpdateQueueInput{QueueARN: aws.String(unknownQueue), QueueAttributes: &types.QueueAttributes{VisibilityTimeoutSeconds: aws.Int32(40)}})
		v.fails("UpdateQueue unknown", err, "ResourceNotFoundException")

		_, err = k.DeleteQueue(ctx, &kinesis.DeleteQueueInput{QueueARN: aws.String(qarn)})
		v.ok("DeleteQueue", err)
		if s, err := v.queueStatus(qarn); err != nil || s != types.QueueStatusDeleting {
			t.Fatalf("status %q (%v) right after DeleteQueue, want DELETING", s, err)
		}
		_, err = k.DeleteQueue(ctx, &kinesis.DeleteQueueInput{QueueARN: aws.String(qarn)})
		v.fails("DeleteQueue while DELETING", err, "ResourceInUseException")
		_, err = k.ReceiveQueueRecords(ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(qarn), WaitTimeSeconds: aws.Int32(0)})
		v.fails("ReceiveQueueRecords while DELETING", err, "ResourceInUseException")
		_, err = k.UpdateQueue(ctx, &kinesis.UpdateQueueInput{QueueARN: aws.String(qarn), QueueAttributes: &types.QueueAttributes{VisibilityTimeoutSeconds: aws.Int32(40)}})
		v.fails("UpdateQueue while DELETING", err, "ResourceInUseException")
		v.until("the queue gone", func() bool { _, err := v.queueStatus(qarn); return errCode(err) == "ResourceNotFoundException" })
		_, err = v.raw.DeleteQueue(ctx, &kinesis.DeleteQueueInput{})
		v.fails("DeleteQueue without ARN", err, "ValidationException")
		_, err = k.DeleteQueue(ctx, &kinesis.DeleteQueueInput{QueueARN: aws.String(unknownQueue)})
		v.fails("DeleteQueue unknown", err, "ResourceNotFoundException")
		out, err := k.ListQueues(ctx, &kinesis.ListQueuesInput{})
		if v.ok("ListQueues", err); len(out.QueueSummaries) != 1 || aws.ToString(out.QueueSummaries[0].QueueName) != "other" {
			t.Fatalf("queues after the delete: %+v", out.QueueSummaries)
		}
	})
}

func mustRecords(t *testing.T, e *engine.Engine, stream string) []streams.Record {
	t.Helper()
	recs, err := e.Streams.Records(stream)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestConsumerLanesAndFilterOnAutoStream: a worker with parallel lanes and the hash key
// range filter on consumes an AUTO stream whose records spread over every shard, some
// without partition keys: each record is delivered (the filter drops none, as the
// service ignores the keys there), keyless records say so, lanes keep each key's records
// of a shard in order, and every shard reports AutoDistribution.
func TestConsumerLanesAndFilterOnAutoStream(t *testing.T) {
	e := enginetest.Start(t, engine.Config{Streams: streams.Config{OnDemandShards: 4, OnDemandWindow: -1}})
	kin, ddb := enginetest.Kinesis(e), enginetest.DynamoDB(e)
	ctx := context.Background()
	if _, err := kin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("auto"), RecordDistributionStrategy: types.RecordDistributionStrategyAuto,
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		seen     = map[string]int{}
		last     = map[string]int{} // shard/key -> last index
		problems []string
		shards   = map[string]bool{}
	)
	handle := func(ctx context.Context, s consumer.ShardInfo, recs []consumer.Record) error {
		mu.Lock()
		defer mu.Unlock()
		shards[s.ShardID] = true
		if !s.AutoDistribution {
			problems = append(problems, s.ShardID+": AutoDistribution false")
		}
		for _, r := range recs {
			key, idx, _ := strings.Cut(string(r.Data), "#")
			n, _ := strconv.Atoi(idx)
			seen[string(r.Data)]++
			if r.HasPartitionKey() != (key != "none") || r.HasPartitionKey() && r.PartitionKey != key {
				problems = append(problems, string(r.Data)+" has partition key "+strconv.Quote(r.PartitionKey))
			}
			if key == "none" {
				continue
			}
			if p, ok := last[s.ShardID+"/"+key]; ok && n <= p {
				problems = append(problems, s.ShardID+": "+string(r.Data)+" after index "+strconv.Itoa(p))
			}
			last[s.ShardID+"/"+key] = n
		}
		return nil
	}
	w, err := consumer.New("auto-app", kin, ddb, consumer.HandlerFunc(handle), consumer.WithWorkerID("auto-w"), consumer.WithFailoverTime(3*time.Second),
		consumer.WithPolling(1000, 2, 20*time.Millisecond), consumer.WithShardSyncInterval(200*time.Millisecond),
		consumer.WithParentPollInterval(20*time.Millisecond), consumer.WithCPUMetrics(false), consumer.WithAssignmentInterval(50*time.Millisecond),
		consumer.WithStream("auto", consumer.TrimHorizon()), consumer.WithLanes(4), consumer.WithHashKeyRangeFilter(true))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	const total = 4000
	var entries []types.PutRecordsRequestEntry
	for i := 0; i < total; i++ {
		en := types.PutRecordsRequestEntry{Data: []byte("none#" + strconv.Itoa(i))}
		if i%2 == 1 {
			key := "key" + strconv.Itoa(i%10)
			en = types.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: []byte(key + "#" + strconv.Itoa(i))}
		}
		entries = append(entries, en)
		if len(entries) == 500 {
			out, err := kin.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("auto"), Records: entries})
			if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
				t.Fatalf("put: %v", err)
			}
			entries = nil
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records delivered", n, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("%d problems, first: %v", len(problems), problems[:min(5, len(problems))])
	}
	for d, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", d, n)
		}
	}
	if len(shards) != 4 {
		t.Fatalf("records came from %d shards, want all 4 (AUTO spreads them)", len(shards))
	}
}
