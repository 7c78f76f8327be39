package streams_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/freshet/freshet/internal/sdkhttp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/internal/hashkey"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// env is an engine on a manual clock with an SDK client that does not retry.
type env struct {
	e   *engine.Engine
	k   *kinesis.Client
	clk *clock.Manual
	ctx context.Context
}

func newEnv(t testing.TB, cfg streams.Config) *env {
	t.Helper()
	clk := clock.NewManual(t0)
	if cfg.MaintenanceInterval == 0 {
		cfg.MaintenanceInterval = -1
	}
	e := enginetest.Start(t, engine.Config{Clock: clk, Streams: cfg})
	k := kinesis.NewFromConfig(e.AWSConfig(), func(o *kinesis.Options) {
		o.RetryMaxAttempts = 1
		o.HTTPClient = sdkhttp.ReadOnlyBodies(o.HTTPClient)
	})
	return &env{e: e, k: k, clk: clk, ctx: context.Background()}
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "non-API error: " + err.Error()
	}
	return ""
}

func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("error code %q (%v), want %q", got, err, want)
	}
}

// must turns a call's (value, error) into a function that fails the test on error:
// must(client.Call(ctx, in))(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func (v *env) create(t *testing.T, name string, shards int32) {
	t.Helper()
	must(v.k.CreateStream(v.ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}))(t)
}

func (v *env) put(t *testing.T, stream, pk string, data string) *kinesis.PutRecordOutput {
	t.Helper()
	return must(v.k.PutRecord(v.ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(pk), Data: []byte(data)}))(t)
}

func (v *env) putN(t *testing.T, stream string, n int) {
	t.Helper()
	var entries []types.PutRecordsRequestEntry
	for i := 0; i < n; i++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("k" + strconv.Itoa(i)), Data: []byte("v" + strconv.Itoa(i))})
		if len(entries) == 500 || i == n-1 {
			out := must(v.k.PutRecords(v.ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries}))(t)
			if *out.FailedRecordCount != 0 {
				t.Fatalf("%d entries failed", *out.FailedRecordCount)
			}
			entries = nil
		}
	}
}

func (v *env) iter(t *testing.T, stream, shard string, typ types.ShardIteratorType, seq *string, ts *time.Time) *string {
	t.Helper()
	out := must(v.k.GetShardIterator(v.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard),
		ShardIteratorType: typ, StartingSequenceNumber: seq, Timestamp: ts}))(t)
	return out.ShardIterator
}

// readAll follows one shard from it to its end or until caught up.
func (v *env) readAll(t *testing.T, it *string) ([]types.Record, *kinesis.GetRecordsOutput) {
	t.Helper()
	var recs []types.Record
	for i := 0; i < 10000; i++ {
		out := must(v.k.GetRecords(v.ctx, &kinesis.GetRecordsInput{ShardIterator: it}))(t)
		recs = append(recs, out.Records...)
		if out.NextShardIterator == nil || (len(out.Records) == 0 && *out.MillisBehindLatest == 0) {
			return recs, out
		}
		it = out.NextShardIterator
	}
	t.Fatal("shard never ended")
	return nil, nil
}

func shardIDs(shards []types.Shard) []string {
	var ids []string
	for _, s := range shards {
		ids = append(ids, *s.ShardId)
	}
	return ids
}

func mustKey(t testing.TB, s string) hashkey.Key {
	t.Helper()
	k, err := hashkey.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
