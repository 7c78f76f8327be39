package consumer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
)

// TestNewValidatesProcessing gives consumer.New bad failure policies, lanes and
// destinations: each fails with an error wrapping ErrInvalidOption that says what is
// wrong.
func TestNewValidatesProcessing(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	kin, db := enginetest.Kinesis(e), enginetest.DynamoDB(e)
	if err := e.Streams.CreateStream("orders", 1); err != nil {
		t.Fatal(err)
	}
	missing, err := NewStreamDestination(kin, "no-such-stream")
	if err != nil {
		t.Fatal(err)
	}
	defer missing.Close(context.Background())
	dest := DestinationFunc(func(context.Context, []FailedRecord) error { return nil })
	f := HandlerFunc(func(context.Context, ShardInfo, []Record) error { return nil })
	s := WithStream("orders", TrimHorizon())
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"zero lanes", []Option{s, WithLanes(0)}, "lanes 0"},
		{"too many lanes", []Option{s, WithLanes(MaxLanes + 1)}, "lanes"},
		{"zero stream lanes", []Option{s, WithStreamLanes("orders", 0)}, "lanes 0"},
		{"negative max record age", []Option{s, WithFailurePolicy(FailurePolicy{MaxRecordAge: -time.Second, Destination: dest})}, "negative max record age"},
		{"negative attempts", []Option{s, WithFailurePolicy(FailurePolicy{MaxAttempts: -1, Destination: dest})}, "negative max attempts"},
		{"negative backoff", []Option{s, WithFailurePolicy(FailurePolicy{Backoff: -time.Millisecond})}, "negative backoff"},
		{"backoff above max", []Option{s, WithFailurePolicy(FailurePolicy{Backoff: time.Second, MaxBackoff: time.Millisecond})}, "above max backoff"},
		{"bisect for ever", []Option{s, WithFailurePolicy(FailurePolicy{BisectOnError: true, Destination: dest})}, "bisect"},
		{"attempts without destination", []Option{s, WithFailurePolicy(FailurePolicy{MaxAttempts: 3})}, "without a destination"},
		{"age without destination", []Option{s, WithStreamFailurePolicy("orders", FailurePolicy{MaxRecordAge: time.Hour})}, "without a destination"},
		{"policy of a stream not consumed", []Option{s, WithStreamFailurePolicy("other", FailurePolicy{})}, "not consumed"},
		{"lanes of a stream not consumed", []Option{s, WithStreamLanes("other", 2)}, "not consumed"},
		{"destination stream does not exist", []Option{s, WithFailurePolicy(FailurePolicy{MaxAttempts: 2, Destination: missing})}, "does not exist"},
		{"stream destination does not exist", []Option{s, WithStreamFailurePolicy("orders", FailurePolicy{MaxAttempts: 2, Destination: missing})}, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("app", kin, db, f, tt.opts...)
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidOption saying %q", err, tt.want)
			}
		})
	}
	if _, err := NewStreamDestination(nil, "dlq"); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("nil client: %v", err)
	}
	if _, err := NewStreamDestination(kin, ""); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("empty stream: %v", err)
	}
	if err := e.Streams.CreateStream("dlq", 1); err != nil {
		t.Fatal(err)
	}
	ok, err := NewStreamDestination(kin, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close(context.Background())
	if _, err := New("app", kin, db, f, s, WithLanes(8), WithStreamLanes("orders", 2),
		WithFailurePolicy(FailurePolicy{MaxAttempts: 3, BisectOnError: true, MaxRecordAge: time.Hour, Destination: ok})); err != nil {
		t.Fatalf("valid settings: %v", err)
	}
}

// TestProcessingForStream resolves the application's settings, a stream's override and
// the worker's backoff.
func TestProcessingForStream(t *testing.T) {
	dest := DestinationFunc(func(context.Context, []FailedRecord) error { return nil })
	c := defaultConfig()
	for _, o := range []Option{WithStream("a", TrimHorizon()), WithStream("b", TrimHorizon()), WithLanes(4),
		WithFailurePolicy(FailurePolicy{MaxAttempts: 5, Destination: dest}),
		WithStreamFailurePolicy("b", FailurePolicy{MaxRecordAge: time.Minute, Backoff: time.Second, Destination: dest}), WithStreamLanes("b", 2)} {
		if err := o(&c); err != nil {
			t.Fatal(err)
		}
	}
	a, b := c.processingFor("a"), c.processingFor("b")
	if a.lanes != 4 || a.policy.MaxAttempts != 5 || a.policy.Backoff != c.processorRetry || a.policy.MaxBackoff != c.processorRetryMax {
		t.Fatalf("stream a: %+v", a)
	}
	if b.lanes != 2 || b.policy.MaxAttempts != 0 || b.policy.MaxRecordAge != time.Minute || b.policy.Backoff != time.Second || b.policy.MaxBackoff != c.processorRetryMax {
		t.Fatalf("stream b: %+v", b)
	}
}

// FuzzParseFailedRecord feeds arbitrary documents to the destination's decoder: it
// never panics, and what it accepts encodes and decodes to the same record.
func FuzzParseFailedRecord(f *testing.F) {
	good := FailedRecord{Stream: "orders", ShardID: "shardId-000000000001", SequenceNumber: "49600000000000000000000000001",
		SubSequenceNumber: 3, PartitionKey: "k", ApproximateArrivalTimestamp: time.Unix(1700000000, 0).UTC(), Attempts: 3,
		Reason: ReasonMaxAttempts, Error: "boom", FailedAt: time.Unix(1700000100, 0).UTC(), Data: []byte("payload")}
	b, _ := good.Marshal()
	f.Add(b)
	f.Add([]byte(`{"shardId":"s","sequenceNumber":"1","reason":"MaxRecordAge","data":"AA=="}`))
	f.Add([]byte(`{"shardId":"s","sequenceNumber":"x","reason":"MaxAttempts"}`))
	f.Add([]byte(`{"shardId":"s","sequenceNumber":"1","reason":"MaxAttempts","data":null,"dataOmitted":true,"dataSize":2000000}`))
	f.Add([]byte(`{"shardId":"s","sequenceNumber":"1","reason":"MaxAttempts","dataSize":-1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseFailedRecord(in)
		if err != nil {
			if !errors.Is(err, ErrBadFailedRecord) {
				t.Fatalf("error %v does not wrap ErrBadFailedRecord", err)
			}
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseFailedRecord(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if r2.SequenceNumber != r.SequenceNumber || r2.ShardID != r.ShardID || string(r2.Data) != string(r.Data) || r2.Attempts != r.Attempts ||
			r2.DataOmitted != r.DataOmitted || r2.DataSize != r.DataSize {
			t.Fatalf("round trip changed %+v to %+v", r, r2)
		}
	})
}
