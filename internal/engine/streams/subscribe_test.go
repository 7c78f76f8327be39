package streams_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
)

// TestSubscribeRepeatedlyWithPlainSDK subscribes 50 times in a row, each on a fresh
// consumer, with an unmodified aws-sdk-go-v2 client (its own HTTP client, none of
// Freshet's adaptations) against an engine with the standalone engine's settings: every
// subscription delivers the record put before it, with no stream error.
func TestSubscribeRepeatedlyWithPlainSDK(t *testing.T) {
	e := enginetest.Start(t, engine.Config{Streams: streams.Config{Limits: true, ConsumerLimit: 64}})
	k := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(e.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})
	subscribeRepeatedly(t, e, k, 50, nil)
}

// TestSubscribeSurvivesSlowRequestWriter subscribes with a client whose transport pauses
// 5 ms between writing the request body and checking it for extra bytes, as a client
// descheduled at that point does. Without the engine's response delay the SDK closes the
// request body in that window, the check fails, the transport closes the connection and
// every subscription ends with "use of closed network connection".
func TestSubscribeSurvivesSlowRequestWriter(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	slow := slowExtraBytesCheck{inner: awshttp.NewBuildableClient(), checked: make(chan struct{}, 1)}
	k := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(e.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
		HTTPClient:  slow})
	subscribeRepeatedly(t, e, k, 10, func() { <-slow.checked })
}

// subscribeRepeatedly subscribes n times, each on a fresh consumer at the record put
// just before, calls written (if set) once the subscription is open, puts a second
// record, and requires both records and no stream error.
func subscribeRepeatedly(t *testing.T, e *engine.Engine, k *kinesis.Client, n int, written func()) {
	t.Helper()
	ctx := context.Background()
	if err := e.Streams.CreateStream("s", 1); err != nil {
		t.Fatal(err)
	}
	arn := e.Streams.StreamARN("s")
	put := func(data string) *kinesis.PutRecordOutput {
		out, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for i := range n {
		c, err := k.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String(fmt.Sprint("c", i))})
		if err != nil {
			t.Fatal(err)
		}
		first, second := fmt.Sprint("first-", i), fmt.Sprint("second-", i)
		at := put(first)
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		out, err := k.SubscribeToShard(sctx, &kinesis.SubscribeToShardInput{ConsumerARN: c.Consumer.ConsumerARN, ShardId: at.ShardId,
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: at.SequenceNumber}},
			ownCodec)
		if err != nil {
			cancel()
			t.Fatalf("subscription %d: %v", i, err)
		}
		if written != nil {
			written()
		}
		put(second)
		var got []string
		for ev := range out.GetStream().Events() {
			if se, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok {
				for _, r := range se.Value.Records {
					got = append(got, string(r.Data))
				}
			}
			if len(got) >= 2 {
				break
			}
		}
		streamErr := out.GetStream().Err()
		_ = out.GetStream().Close()
		cancel()
		if len(got) != 2 || got[0] != first || got[1] != second || streamErr != nil {
			t.Fatalf("subscription %d: records %q (want %q, %q), stream error %v", i, got, first, second, streamErr)
		}
	}
}

// ownCodec gives one SubscribeToShard call a protocol instance of its own: the SDK keeps
// one event-stream decoder per client, and the reader goroutine of the previous
// subscription may still be using it (a data race inside the SDK, not the engine).
func ownCodec(o *kinesis.Options) {
	o.Protocol = kinesis.New(kinesis.Options{Region: o.Region}).Options().Protocol
}

// slowExtraBytesCheck delays the extra-bytes check of SubscribeToShard requests and
// signals on checked once it is over.
type slowExtraBytesCheck struct {
	inner   *awshttp.BuildableClient
	checked chan struct{}
}

// slowBody delays WriteTo, which net/http's transport calls only for its extra-bytes
// check after it has written Content-Length bytes through Read.
type slowBody struct {
	io.ReadCloser
	checked chan<- struct{}
}

func (b slowBody) WriteTo(w io.Writer) (int64, error) {
	time.Sleep(5 * time.Millisecond)
	defer func() { b.checked <- struct{}{} }()
	return b.ReadCloser.(io.WriterTo).WriteTo(w)
}

func (c slowExtraBytesCheck) Do(r *http.Request) (*http.Response, error) {
	if _, ok := r.Body.(io.WriterTo); ok && strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".SubscribeToShard") {
		r.Body = slowBody{ReadCloser: r.Body, checked: c.checked}
	}
	return c.inner.Do(r)
}
