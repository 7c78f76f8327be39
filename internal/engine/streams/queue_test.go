package streams_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/internal/engine/streams"
)

func (v *env) createQueue(t *testing.T, name, streamARN string, start types.QueueStartingPositionType, attrs *types.QueueAttributes) string {
	t.Helper()
	out := must(v.k.CreateQueue(v.ctx, &kinesis.CreateQueueInput{QueueName: aws.String(name),
		StreamConfigurationList: []types.QueueStreamConfiguration{{StreamARN: aws.String(streamARN),
			StartingPosition: &types.QueueStartingPosition{Type: start}}},
		QueueAttributes: attrs}))(t)
	return *out.QueueDescription.QueueARN
}

func (v *env) receive(t *testing.T, arn string, limit int32, vis *int32) []types.QueueRecord {
	t.Helper()
	out := must(v.k.ReceiveQueueRecords(v.ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(arn),
		Limit: aws.Int32(limit), WaitTimeSeconds: aws.Int32(0), VisibilityTimeoutSeconds: vis}))(t)
	return out.QueueRecords
}

func (v *env) receiveDead(t *testing.T, arn string, limit int32) []types.QueueRecord {
	t.Helper()
	out := must(v.k.ReceiveDeadLetterQueueRecords(v.ctx, &kinesis.ReceiveDeadLetterQueueRecordsInput{QueueARN: aws.String(arn),
		Limit: aws.Int32(limit), WaitTimeSeconds: aws.Int32(0)}))(t)
	return out.QueueRecords
}

func (v *env) ack(t *testing.T, arn string, recs []types.QueueRecord) *kinesis.AcknowledgeQueueRecordsOutput {
	t.Helper()
	var entries []types.AcknowledgeQueueRecordsRequestEntry
	for _, r := range recs {
		entries = append(entries, types.AcknowledgeQueueRecordsRequestEntry{ReceiptHandle: r.ReceiptHandle})
	}
	return must(v.k.AcknowledgeQueueRecords(v.ctx, &kinesis.AcknowledgeQueueRecordsInput{QueueARN: aws.String(arn), Entries: entries}))(t)
}

// rawErr sends body to op without the SDK's client-side checks and returns the
// service's error as an API error.
func (v *env) rawErr(t *testing.T, op, body string) error {
	t.Helper()
	status, resp := rawCall(t, v.e.URL(), op, "application/x-amz-json-1.1", []byte(body))
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(resp, &e); err != nil || status == 200 {
		return fmt.Errorf("status %d, body %s", status, resp)
	}
	return &smithy.GenericAPIError{Code: e.Type, Message: e.Message}
}

func onDemand(t *testing.T, v *env, name string) string {
	t.Helper()
	must(v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}))(t)
	return v.e.Streams.StreamARN(name)
}

func putData(t *testing.T, v *env, arn string, from, n int) {
	t.Helper()
	var entries []types.PutRecordsRequestEntry
	for i := from; i < from+n; i++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("k" + strconv.Itoa(i)), Data: []byte(strconv.Itoa(i))})
		if len(entries) == 500 || i == from+n-1 {
			out := must(v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(arn), Records: entries}))(t)
			if *out.FailedRecordCount != 0 {
				t.Fatalf("%d failed", *out.FailedRecordCount)
			}
			entries = nil
		}
	}
}

// TestQueueDeliveryVisibilityAndDeadLetters walks a queue through its life with a plain
// SDK client: create, describe, list, receive with visibility timeouts and receive
// counts, acknowledge, change visibility, dead-letter after MaxReceiveCount, receive,
// restore and acknowledge dead-letter records, update and delete.
func TestQueueDeliveryVisibilityAndDeadLetters(t *testing.T) {
	v := newEnv(t, streams.Config{OnDemandShards: 2})
	sarn := onDemand(t, v, "s")
	putData(t, v, sarn, 0, 5) // before the queue: only TRIM_HORIZON sees these
	qarn := v.createQueue(t, "q", sarn, types.QueueStartingPositionTypeTrimHorizon, &types.QueueAttributes{
		VisibilityTimeoutSeconds: aws.Int32(10),
		DeadLetterConfiguration:  &types.DeadLetterConfiguration{TargetType: types.TargetTypeBuiltIn, MaxReceiveCount: aws.Int32(2)}})
	latest := v.createQueue(t, "latest", sarn, types.QueueStartingPositionTypeLatest, nil)
	putData(t, v, sarn, 5, 5)

	d := must(v.k.DescribeQueue(v.ctx, &kinesis.DescribeQueueInput{QueueARN: aws.String(latest)}))(t).QueueDescription
	if d.QueueStatus != types.QueueStatusActive || *d.QueueAttributes.VisibilityTimeoutSeconds != 30 ||
		d.QueueAttributes.DeadLetterConfiguration.TargetType != types.TargetTypeBuiltIn || *d.QueueAttributes.DeadLetterConfiguration.MaxReceiveCount != 6 ||
		*d.StreamConfigurationList[0].StreamARN != sarn || d.StreamConfigurationList[0].StartingPosition.Type != types.QueueStartingPositionTypeLatest {
		t.Fatalf("DescribeQueue of a default queue: %+v", d)
	}
	sum := must(v.k.DescribeStreamSummary(v.ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(sarn)}))(t).StreamDescriptionSummary
	if sum.QueueCount == nil || *sum.QueueCount != 2 {
		t.Fatalf("QueueCount %v, want 2", sum.QueueCount)
	}
	list := must(v.k.ListQueues(v.ctx, &kinesis.ListQueuesInput{MaxResults: aws.Int32(1)}))(t)
	if len(list.QueueSummaries) != 1 || list.NextToken == nil || *list.QueueSummaries[0].QueueName != "latest" {
		t.Fatalf("ListQueues page 1: %+v", list)
	}
	list = must(v.k.ListQueues(v.ctx, &kinesis.ListQueuesInput{NextToken: list.NextToken}))(t)
	if len(list.QueueSummaries) != 1 || list.NextToken != nil || *list.QueueSummaries[0].QueueName != "q" || *list.QueueSummaries[0].Streams[0].StreamARN != sarn {
		t.Fatalf("ListQueues page 2: %+v", list)
	}

	// The LATEST queue sees the five records written after it.
	recs := v.receive(t, latest, 10, nil)
	if len(recs) != 5 {
		t.Fatalf("LATEST queue received %d records, want 5", len(recs))
	}
	if out := v.ack(t, latest, recs); len(out.Successful) != 5 || len(out.Failed) != 0 {
		t.Fatalf("ack: %+v", out)
	}
	if again := v.receive(t, latest, 10, nil); len(again) != 0 {
		t.Fatalf("acknowledged records delivered again: %d", len(again))
	}

	// The TRIM_HORIZON queue: ten records, in flight for 10 s after each receive.
	first := v.receive(t, qarn, 10, nil)
	if len(first) != 10 {
		t.Fatalf("received %d, want 10", len(first))
	}
	ids := map[string]string{}
	for _, r := range first {
		if *r.ReceiveCount != 1 || r.PartitionKey == nil || *r.RecordId == "" || r.FirstReceiveTimestamp == nil {
			t.Fatalf("first delivery: %+v", r)
		}
		ids[*r.RecordId] = string(r.Data)
	}
	if len(v.receive(t, qarn, 10, nil)) != 0 {
		t.Fatal("records in flight were delivered again")
	}
	// Acknowledge four, make two visible now, extend one, leave three to time out.
	v.ack(t, qarn, first[:4])
	vis := must(v.k.UpdateQueueRecordsVisibility(v.ctx, &kinesis.UpdateQueueRecordsVisibilityInput{QueueARN: aws.String(qarn),
		Entries: []types.UpdateQueueRecordsVisibilityRequestEntry{
			{ReceiptHandle: first[4].ReceiptHandle, VisibilityTimeoutSeconds: aws.Int32(0)},
			{ReceiptHandle: first[5].ReceiptHandle, VisibilityTimeoutSeconds: aws.Int32(0)},
			{ReceiptHandle: first[6].ReceiptHandle, VisibilityTimeoutSeconds: aws.Int32(100)},
			{ReceiptHandle: first[0].ReceiptHandle, VisibilityTimeoutSeconds: aws.Int32(5)}, // acknowledged
			{ReceiptHandle: aws.String("bogus"), VisibilityTimeoutSeconds: aws.Int32(5)},
		}}))(t)
	if len(vis.Successful) != 3 || len(vis.Failed) != 2 || *vis.Failed[0].ErrorCode != "ResourceNotFoundException" || *vis.Failed[1].ErrorCode != "InvalidArgumentException" {
		t.Fatalf("UpdateQueueRecordsVisibility: %+v", vis)
	}
	second := v.receive(t, qarn, 10, nil)
	if len(second) != 2 {
		t.Fatalf("after visibility 0: %d records, want 2", len(second))
	}
	for _, r := range second {
		if *r.ReceiveCount != 2 || ids[*r.RecordId] == "" {
			t.Fatalf("second delivery: %+v", r)
		}
	}
	// The old receipt handle of a record received again no longer acknowledges it.
	stale := v.ack(t, qarn, first[4:5])
	if len(stale.Failed) != 1 || *stale.Failed[0].ErrorCode != "ResourceNotFoundException" {
		t.Fatalf("stale receipt: %+v", stale)
	}
	v.clk.Advance(11 * time.Second)
	// first[7..9] timed out (receive 1 of 2) and come back; second[*] timed out at
	// their second receive and are dead letters now; first[6] is still in flight.
	third := v.receive(t, qarn, 10, nil)
	if len(third) != 3 {
		t.Fatalf("after the timeout: %d records, want 3", len(third))
	}
	stats := must(v.e.Streams.QueueStats(qarn))(t)
	if stats.DeadLetter != 2 || stats.InFlight != 4 || stats.Loaded != 6 {
		t.Fatalf("stats %+v, want 2 dead letters, 4 in flight, 6 loaded", stats)
	}
	dead := v.receiveDead(t, qarn, 10)
	if len(dead) != 2 {
		t.Fatalf("dead letters received: %d, want 2", len(dead))
	}
	for _, r := range dead {
		if string(r.Data) != ids[*r.RecordId] {
			t.Fatalf("dead letter %s carries %q, want %q", *r.RecordId, r.Data, ids[*r.RecordId])
		}
	}
	// A dead-letter handle is not a live one, and the other way round.
	if out := v.ack(t, qarn, dead[:1]); len(out.Failed) != 1 {
		t.Fatalf("live ack of a dead letter: %+v", out)
	}
	dl := must(v.k.AcknowledgeDeadLetterQueueRecords(v.ctx, &kinesis.AcknowledgeDeadLetterQueueRecordsInput{QueueARN: aws.String(qarn),
		Entries: []types.AcknowledgeDeadLetterQueueRecordsRequestEntry{{ReceiptHandle: third[0].ReceiptHandle}}}))(t)
	if len(dl.Failed) != 1 || *dl.Failed[0].ErrorCode != "InvalidArgumentException" {
		t.Fatalf("dead-letter ack of a live record: %+v", dl)
	}
	must(v.k.UpdateDeadLetterQueueRecordsVisibility(v.ctx, &kinesis.UpdateDeadLetterQueueRecordsVisibilityInput{QueueARN: aws.String(qarn),
		Entries: []types.UpdateDeadLetterQueueRecordsVisibilityRequestEntry{{ReceiptHandle: dead[1].ReceiptHandle, VisibilityTimeoutSeconds: aws.Int32(0)}}}))(t)
	if again := v.receiveDead(t, qarn, 10); len(again) != 1 || *again[0].RecordId != *dead[1].RecordId {
		t.Fatalf("dead letter made visible: %+v", again)
	} else {
		dead[1] = again[0]
	}
	rest := must(v.k.RestoreDeadLetterQueueRecords(v.ctx, &kinesis.RestoreDeadLetterQueueRecordsInput{QueueARN: aws.String(qarn),
		Entries: []types.RestoreDeadLetterQueueRecordsRequestEntry{{ReceiptHandle: dead[0].ReceiptHandle}}}))(t)
	if len(rest.Successful) != 1 {
		t.Fatalf("restore: %+v", rest)
	}
	dl = must(v.k.AcknowledgeDeadLetterQueueRecords(v.ctx, &kinesis.AcknowledgeDeadLetterQueueRecordsInput{QueueARN: aws.String(qarn),
		Entries: []types.AcknowledgeDeadLetterQueueRecordsRequestEntry{{ReceiptHandle: dead[1].ReceiptHandle}}}))(t)
	if len(dl.Successful) != 1 {
		t.Fatalf("dead-letter ack: %+v", dl)
	}
	restored := v.receive(t, qarn, 10, nil)
	if len(restored) != 1 || *restored[0].RecordId != *dead[0].RecordId || *restored[0].ReceiveCount != 1 {
		t.Fatalf("restored record: %+v", restored)
	}

	upd := must(v.k.UpdateQueue(v.ctx, &kinesis.UpdateQueueInput{QueueARN: aws.String(qarn), QueueAttributes: &types.QueueAttributes{
		DeadLetterConfiguration: &types.DeadLetterConfiguration{TargetType: types.TargetTypeNone}}}))(t)
	if upd.QueueDescription.QueueAttributes.DeadLetterConfiguration.TargetType != types.TargetTypeNone || *upd.QueueDescription.QueueAttributes.VisibilityTimeoutSeconds != 10 {
		t.Fatalf("UpdateQueue: %+v", upd.QueueDescription.QueueAttributes)
	}
	// The stream cannot go away or become PROVISIONED while it has queues.
	_, err := v.k.DeleteStream(v.ctx, &kinesis.DeleteStreamInput{StreamARN: aws.String(sarn)})
	wantCode(t, err, "ResourceInUseException")
	_, err = v.k.UpdateStreamMode(v.ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(sarn), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}})
	wantCode(t, err, "ResourceInUseException")
	must(v.k.DeleteQueue(v.ctx, &kinesis.DeleteQueueInput{QueueARN: aws.String(qarn)}))(t)
	must(v.k.DeleteQueue(v.ctx, &kinesis.DeleteQueueInput{QueueARN: aws.String(latest)}))(t)
	_, err = v.k.DescribeQueue(v.ctx, &kinesis.DescribeQueueInput{QueueARN: aws.String(qarn)})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = v.k.AcknowledgeQueueRecords(v.ctx, &kinesis.AcknowledgeQueueRecordsInput{QueueARN: aws.String(qarn),
		Entries: []types.AcknowledgeQueueRecordsRequestEntry{{ReceiptHandle: third[0].ReceiptHandle}}})
	wantCode(t, err, "ResourceNotFoundException")
	must(v.k.DeleteStream(v.ctx, &kinesis.DeleteStreamInput{StreamARN: aws.String(sarn)}))(t)
}

// TestQueueBadInput: missing members, values out of range, wrong states, unknown
// queues and too many entries get the service's error codes.
func TestQueueBadInput(t *testing.T) {
	v := newEnv(t, streams.Config{OnDemandShards: 1})
	sarn := onDemand(t, v, "s")
	v.create(t, "prov", 1)
	qarn := v.createQueue(t, "q", sarn, types.QueueStartingPositionTypeTrimHorizon, nil)
	cfg := []types.QueueStreamConfiguration{{StreamARN: aws.String(sarn)}}
	unknown := strings.Replace(qarn, ":queue/", ":queue/zz", 1)
	eleven := make([]types.AcknowledgeQueueRecordsRequestEntry, 11)
	for i := range eleven {
		eleven[i].ReceiptHandle = aws.String("h")
	}
	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"create without name", func() error {
			return v.rawErr(t, "CreateQueue", `{"StreamConfigurationList":[{"StreamARN":"`+sarn+`"}]}`)
		}, "ValidationException"},
		{"create with a bad name", func() error {
			_, err := v.k.CreateQueue(v.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("a b"), StreamConfigurationList: cfg})
			return err
		}, "ValidationException"},
		{"create without streams", func() error { return v.rawErr(t, "CreateQueue", `{"QueueName":"n"}`) }, "ValidationException"},
		{"create on two streams", func() error {
			_, err := v.k.CreateQueue(v.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"), StreamConfigurationList: append(cfg, cfg...)})
			return err
		}, "ValidationException"},
		{"create with visibility out of range", func() error {
			_, err := v.k.CreateQueue(v.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"), StreamConfigurationList: cfg,
				QueueAttributes: &types.QueueAttributes{VisibilityTimeoutSeconds: aws.Int32(43201)}})
			return err
		}, "ValidationException"},
		{"create BUILT_IN without MaxReceiveCount", func() error {
			_, err := v.k.CreateQueue(v.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"), StreamConfigurationList: cfg,
				QueueAttributes: &types.QueueAttributes{DeadLetterConfiguration: &types.DeadLetterConfiguration{TargetType: types.TargetTypeBuiltIn}}})
			return err
		}, "InvalidArgumentException"},
		{"create AT_TIMESTAMP without a timestamp", func() error {
			_, err := v.k.CreateQueue(v.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"), StreamConfigurationList: []types.QueueStreamConfiguration{{
				StreamARN: aws.String(sarn), StartingPosition: &types.QueueStartingPosition{Type: types.QueueStartingPositionTypeAtTimestamp}}}})
			return err
		}, "ValidationException"},
		{"create LATEST with a timestamp", func() error {
			_, err := v.k.CreateQueue(v.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"), StreamConfigurationList: []types.QueueStreamConfiguration{{
				StreamARN: aws.String(sarn), StartingPosition: &types.QueueStartingPosition{Type: types.QueueStartingPositionTypeLatest, Timestamp: aws.Time(t0)}}}})
			return err
		}, "ValidationException"},
		{"create on a PROVISIONED stream", func() error {
			_, err := v.k.CreateQueue(v.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"),
				StreamConfigurationList: []types.QueueStreamConfiguration{{StreamARN: aws.String(v.e.Streams.StreamARN("prov"))}}})
			return err
		}, "InvalidArgumentException"},
		{"create on a missing stream", func() error {
			_, err := v.k.CreateQueue(v.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("n"),
				StreamConfigurationList: []types.QueueStreamConfiguration{{StreamARN: aws.String(v.e.Streams.StreamARN("nope"))}}})
			return err
		}, "ResourceNotFoundException"},
		{"create a name taken", func() error {
			_, err := v.k.CreateQueue(v.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("q"), StreamConfigurationList: cfg})
			return err
		}, "ResourceInUseException"},
		{"describe without ARN", func() error { return v.rawErr(t, "DescribeQueue", `{}`) }, "ValidationException"},
		{"describe a stream ARN", func() error {
			_, err := v.k.DescribeQueue(v.ctx, &kinesis.DescribeQueueInput{QueueARN: aws.String(sarn)})
			return err
		}, "ValidationException"},
		{"describe an unknown queue", func() error {
			_, err := v.k.DescribeQueue(v.ctx, &kinesis.DescribeQueueInput{QueueARN: aws.String(unknown)})
			return err
		}, "ResourceNotFoundException"},
		{"update without attributes", func() error { return v.rawErr(t, "UpdateQueue", `{"QueueARN":"`+qarn+`"}`) }, "ValidationException"},
		{"update NONE with MaxReceiveCount", func() error {
			_, err := v.k.UpdateQueue(v.ctx, &kinesis.UpdateQueueInput{QueueARN: aws.String(qarn), QueueAttributes: &types.QueueAttributes{
				DeadLetterConfiguration: &types.DeadLetterConfiguration{TargetType: types.TargetTypeNone, MaxReceiveCount: aws.Int32(3)}}})
			return err
		}, "InvalidArgumentException"},
		{"receive limit 11", func() error {
			_, err := v.k.ReceiveQueueRecords(v.ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(qarn), Limit: aws.Int32(11)})
			return err
		}, "ValidationException"},
		{"receive limit 0", func() error {
			_, err := v.k.ReceiveQueueRecords(v.ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(qarn), Limit: aws.Int32(0)})
			return err
		}, "ValidationException"},
		{"receive wait 21 s", func() error {
			_, err := v.k.ReceiveQueueRecords(v.ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(qarn), WaitTimeSeconds: aws.Int32(21)})
			return err
		}, "ValidationException"},
		{"receive visibility -1", func() error {
			_, err := v.k.ReceiveQueueRecords(v.ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(qarn), VisibilityTimeoutSeconds: aws.Int32(-1)})
			return err
		}, "ValidationException"},
		{"receive from an unknown queue", func() error {
			_, err := v.k.ReceiveQueueRecords(v.ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(unknown), WaitTimeSeconds: aws.Int32(0)})
			return err
		}, "ResourceNotFoundException"},
		{"ack without entries", func() error { return v.rawErr(t, "AcknowledgeQueueRecords", `{"QueueARN":"`+qarn+`"}`) }, "ValidationException"},
		{"ack 11 entries", func() error {
			_, err := v.k.AcknowledgeQueueRecords(v.ctx, &kinesis.AcknowledgeQueueRecordsInput{QueueARN: aws.String(qarn), Entries: eleven})
			return err
		}, "ValidationException"},
		{"ack an entry without handle", func() error { return v.rawErr(t, "AcknowledgeQueueRecords", `{"QueueARN":"`+qarn+`","Entries":[{}]}`) }, "ValidationException"},
		{"visibility out of range", func() error {
			_, err := v.k.UpdateQueueRecordsVisibility(v.ctx, &kinesis.UpdateQueueRecordsVisibilityInput{QueueARN: aws.String(qarn),
				Entries: []types.UpdateQueueRecordsVisibilityRequestEntry{{ReceiptHandle: aws.String("h"), VisibilityTimeoutSeconds: aws.Int32(43201)}}})
			return err
		}, "ValidationException"},
		{"visibility missing", func() error {
			return v.rawErr(t, "UpdateQueueRecordsVisibility", `{"QueueARN":"`+qarn+`","Entries":[{"ReceiptHandle":"h"}]}`)
		}, "ValidationException"},
		{"restore 11 entries", func() error {
			e := make([]types.RestoreDeadLetterQueueRecordsRequestEntry, 11)
			for i := range e {
				e[i].ReceiptHandle = aws.String("h")
			}
			_, err := v.k.RestoreDeadLetterQueueRecords(v.ctx, &kinesis.RestoreDeadLetterQueueRecordsInput{QueueARN: aws.String(qarn), Entries: e})
			return err
		}, "ValidationException"},
		{"list with MaxResults 0", func() error {
			_, err := v.k.ListQueues(v.ctx, &kinesis.ListQueuesInput{MaxResults: aws.Int32(0)})
			return err
		}, "ValidationException"},
		{"list with a bad token", func() error {
			_, err := v.k.ListQueues(v.ctx, &kinesis.ListQueuesInput{NextToken: aws.String("nope")})
			return err
		}, "InvalidArgumentException"},
		{"delete an unknown queue", func() error {
			_, err := v.k.DeleteQueue(v.ctx, &kinesis.DeleteQueueInput{QueueARN: aws.String(unknown)})
			return err
		}, "ResourceNotFoundException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantCode(t, c.call(), c.code) })
	}
	// Unknown and foreign receipt handles fail per entry, not the call.
	putData(t, v, sarn, 0, 1)
	other := v.createQueue(t, "other", sarn, types.QueueStartingPositionTypeTrimHorizon, nil)
	rec := v.receive(t, other, 1, nil)
	out := must(v.k.AcknowledgeQueueRecords(v.ctx, &kinesis.AcknowledgeQueueRecordsInput{QueueARN: aws.String(qarn),
		Entries: []types.AcknowledgeQueueRecordsRequestEntry{{ReceiptHandle: aws.String("not-a-handle")}, {ReceiptHandle: rec[0].ReceiptHandle}}}))(t)
	if len(out.Failed) != 2 || len(out.Successful) != 0 {
		t.Fatalf("unknown and foreign handles: %+v", out)
	}
	for _, f := range out.Failed {
		if *f.ErrorCode != "InvalidArgumentException" || f.ErrorMessage == nil {
			t.Fatalf("failed entry %+v", f)
		}
	}
	// Twenty consumers and queues at most per stream.
	for i := 0; i < 18; i++ {
		v.createQueue(t, "extra"+strconv.Itoa(i), sarn, types.QueueStartingPositionTypeLatest, nil)
	}
	_, err := v.k.CreateQueue(v.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("one-too-many"), StreamConfigurationList: cfg})
	wantCode(t, err, "LimitExceededException")
}

// TestQueueFollowsResharding: a queue reads every shard of its stream through splits
// and merges, a child's records only after all its parents', and keeps its delivery
// state across the reshard.
func TestQueueFollowsResharding(t *testing.T) {
	v := newEnv(t, streams.Config{OnDemandShards: 2, QueueMaxRecords: 50})
	sarn := onDemand(t, v, "s")
	qarn := v.createQueue(t, "q", sarn, types.QueueStartingPositionTypeTrimHorizon, nil)
	putData(t, v, sarn, 0, 100)
	inFlight := v.receive(t, qarn, 10, aws.Int32(600))
	shards := must(v.e.Streams.Shards("s"))(t)
	if err := v.e.Streams.MergeShards("s", shards[0].ID, shards[1].ID); err != nil {
		t.Fatal(err)
	}
	v.clk.Advance(time.Minute)
	putData(t, v, sarn, 100, 100)
	merged := must(v.e.Streams.Shards("s"))(t)[2]
	if err := v.e.Streams.SplitShard("s", merged.ID, merged.HashKeyRange.Midpoint()); err != nil {
		t.Fatal(err)
	}
	v.clk.Advance(time.Minute)
	putData(t, v, sarn, 200, 100)

	byShard := map[string]string{}
	for _, r := range must(v.e.Streams.Records("s"))(t) {
		byShard[string(r.Data)] = r.ShardID
	}
	gen := func(data string) int { // 0 for the first shards, 1 merged, 2 its children
		id := byShard[data]
		switch id {
		case shards[0].ID, shards[1].ID:
			return 0
		case merged.ID:
			return 1
		}
		return 2
	}
	seen := map[string]int{}
	maxGen := 0
	for _, r := range inFlight {
		seen[string(r.Data)]++
	}
	for i := 0; i < 100; i++ {
		recs := v.receive(t, qarn, 10, nil)
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			g := gen(string(r.Data))
			if g < maxGen {
				t.Fatalf("record %s of generation %d delivered after generation %d", r.Data, g, maxGen)
			}
			maxGen = max(maxGen, g)
			seen[string(r.Data)]++
		}
		v.ack(t, qarn, recs)
		if st := must(v.e.Streams.QueueStats(qarn))(t); st.Loaded > 50 {
			t.Fatalf("queue holds %d records, above QueueMaxRecords 50", st.Loaded)
		}
	}
	if len(seen) != 300 {
		var missing []string
		for i := 0; i < 300; i++ {
			if seen[strconv.Itoa(i)] == 0 {
				missing = append(missing, strconv.Itoa(i))
			}
		}
		sort.Strings(missing)
		t.Fatalf("delivered %d distinct records of 300; missing %v", len(seen), missing)
	}
	for d, n := range seen {
		if n != 1 {
			t.Fatalf("record %s delivered %d times", d, n)
		}
	}
	// The ten records received before the reshard are still in flight and acknowledge.
	if out := v.ack(t, qarn, inFlight); len(out.Successful) != 10 {
		t.Fatalf("acks across the reshard: %+v", out)
	}
}

// TestQueueLongPollWakesOnNewRecords: a receive waiting for records returns as soon as
// one is written, well before its wait time.
func TestQueueLongPollWakesOnNewRecords(t *testing.T) {
	v := newEnv(t, streams.Config{OnDemandShards: 1})
	sarn := onDemand(t, v, "s")
	qarn := v.createQueue(t, "q", sarn, types.QueueStartingPositionTypeLatest, nil)
	got := make(chan []types.QueueRecord, 1)
	go func() {
		out, err := v.k.ReceiveQueueRecords(v.ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(qarn), WaitTimeSeconds: aws.Int32(20)})
		if err != nil {
			got <- nil
			return
		}
		got <- out.QueueRecords
	}()
	time.Sleep(50 * time.Millisecond)
	putData(t, v, sarn, 0, 1)
	select {
	case recs := <-got:
		if len(recs) != 1 {
			t.Fatalf("long poll returned %d records", len(recs))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not return after a record arrived")
	}
}
