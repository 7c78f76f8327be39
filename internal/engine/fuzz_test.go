package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
)

// The content types a fuzzed request may carry: the four protocols the engine speaks,
// none, and one it does not.
var fuzzContentTypes = []string{
	"application/x-amz-json-1.1",
	"application/x-amz-json-1.0",
	"application/x-amz-cbor-1.1",
	"application/cbor",
	"",
	"text/plain",
}

type fuzzTarget struct{ service, op string }

// fuzzTargets lists every operation of every service, then targets no service serves.
func fuzzTargets() []fuzzTarget {
	var out []fuzzTarget
	ops := engine.Operations()
	for _, svc := range []string{"Kinesis", "DynamoDB", "CloudWatch"} {
		for _, op := range ops[svc] {
			out = append(out, fuzzTarget{svc, op})
		}
	}
	return append(out, fuzzTarget{"Kinesis", "NoSuchOperation"}, fuzzTarget{"DynamoDB", "NoSuchOperation"},
		fuzzTarget{"CloudWatch", "NoSuchOperation"}, fuzzTarget{"", ""})
}

// fuzzRequest builds a request for target t; raw, when not empty, replaces the
// X-Amz-Target header (odd targets), and ct indexes fuzzContentTypes.
func fuzzRequest(ctx context.Context, t fuzzTarget, raw string, ct uint8, body []byte) *http.Request {
	path := "/"
	target := ""
	switch t.service {
	case "Kinesis":
		target = "Kinesis_20131202." + t.op
	case "DynamoDB":
		target = "DynamoDB_20120810." + t.op
	case "CloudWatch":
		path = "/service/GraniteServiceVersion20100801/operation/" + t.op
	}
	if raw != "" {
		target = raw
	}
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(body))
	if c := fuzzContentTypes[int(ct)%len(fuzzContentTypes)]; c != "" {
		r.Header.Set("Content-Type", c)
		if c == "application/cbor" {
			r.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
		}
	}
	if target != "" {
		r.Header.Set("X-Amz-Target", target)
	}
	return r
}

// checkResponse fails unless the response is no 5xx and, unless it is an event stream,
// its body is valid in its protocol, error bodies carrying a non-empty "__type".
func checkResponse(t *testing.T, r *http.Request, w *httptest.ResponseRecorder) {
	t.Helper()
	body := w.Body.Bytes()
	ct := w.Header().Get("Content-Type")
	describe := func() string {
		return r.Header.Get("X-Amz-Target") + " " + r.URL.Path + " (" + r.Header.Get("Content-Type") + ")"
	}
	if w.Code >= 500 {
		t.Fatalf("%s: status %d body %q", describe(), w.Code, body)
	}
	var fields map[string]any
	switch ct {
	case "application/vnd.amazon.eventstream":
		if w.Code != http.StatusOK {
			t.Fatalf("%s: event stream with status %d", describe(), w.Code)
		}
		return
	case "application/x-amz-json-1.0", "application/x-amz-json-1.1":
		if !json.Valid(body) {
			t.Fatalf("%s: status %d, invalid JSON body %q", describe(), w.Code, body)
		}
		if w.Code == http.StatusOK {
			return
		}
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatalf("%s: error body %q is no JSON object: %v", describe(), body, err)
		}
	case "application/x-amz-cbor-1.1", "application/cbor":
		if err := cbor.Wellformed(body); err != nil {
			t.Fatalf("%s: status %d, malformed CBOR body %x: %v", describe(), w.Code, body, err)
		}
		if w.Code == http.StatusOK {
			return
		}
		if err := cbor.Unmarshal(body, &fields); err != nil {
			t.Fatalf("%s: error body %x is no CBOR map: %v", describe(), body, err)
		}
	default:
		t.Fatalf("%s: status %d with content type %q", describe(), w.Code, ct)
	}
	if typ, _ := fields["__type"].(string); typ == "" {
		t.Fatalf("%s: error body %q has no __type", describe(), body)
	}
}

// fuzzEngine is an engine with a stream "s" (one consumer "c") and a table "t", so that
// well-formed seeds reach the operations' real work.
func fuzzEngine(tb testing.TB) *engine.Engine {
	e := enginetest.Start(tb, engine.Config{Streams: streams.Config{
		MaintenanceInterval: -1, SubscriptionDuration: 50 * time.Millisecond, SubscribeHeartbeat: 10 * time.Millisecond,
		SubscribeResponseDelay: -1,
	}})
	if err := e.Streams.CreateStream("s", 2); err != nil {
		tb.Fatal(err)
	}
	serve(tb, e, fuzzRequest(context.Background(), fuzzTarget{"Kinesis", "RegisterStreamConsumer"}, "", 0,
		[]byte(`{"StreamARN":"`+e.Streams.StreamARN("s")+`","ConsumerName":"c"}`)))
	serve(tb, e, fuzzRequest(context.Background(), fuzzTarget{"DynamoDB", "CreateTable"}, "", 1,
		[]byte(`{"TableName":"t","KeySchema":[{"AttributeName":"k","KeyType":"HASH"}],"AttributeDefinitions":[{"AttributeName":"k","AttributeType":"S"}],"BillingMode":"PAY_PER_REQUEST"}`)))
	return e
}

func serve(tb testing.TB, e *engine.Engine, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	return w
}

// fuzzSeeds returns a well-formed body for every operation, plus garbage, wrong types,
// deep nesting and a large body.
func fuzzSeeds(e *engine.Engine) [][]byte {
	arn := e.Streams.StreamARN("s")
	kinesisJSON := `{"StreamName":"s","StreamARN":"` + arn + `","ShardId":"shardId-000000000000","ShardCount":2,"TargetShardCount":4,` +
		`"ScalingType":"UNIFORM_SCALING","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"1000",` +
		`"AdjacentShardToMerge":"shardId-000000000001","ShardToMerge":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON",` +
		`"Records":[{"Data":"eA==","PartitionKey":"k"}],"Data":"eA==","PartitionKey":"k","RetentionPeriodHours":48,` +
		`"ConsumerName":"c","ConsumerARN":"` + arn + `/consumer/c:1","Tags":{"a":"b"},"TagKeys":["a"],` +
		`"StartingPosition":{"Type":"LATEST"},"StreamModeDetails":{"StreamMode":"ON_DEMAND"},"Limit":10,` +
		`"EncryptionType":"KMS","KeyId":"alias/aws/kinesis","ShardLevelMetrics":["ALL"],"MaxRecordSizeInKiB":2048}`
	dynamoJSON := `{"TableName":"t","Key":{"k":{"S":"a"}},"Item":{"k":{"S":"a"},"n":{"N":"1"}},` +
		`"ConditionExpression":"attribute_not_exists(k)","UpdateExpression":"SET n = n + :one","ExpressionAttributeValues":{":one":{"N":"1"}},` +
		`"KeyConditionExpression":"k = :k","RequestItems":{"t":[{"PutRequest":{"Item":{"k":{"S":"b"}}}}]},` +
		`"KeySchema":[{"AttributeName":"k","KeyType":"HASH"}],"AttributeDefinitions":[{"AttributeName":"k","AttributeType":"S"}],` +
		`"BillingMode":"PAY_PER_REQUEST","ResourceArn":"arn:aws:dynamodb:us-east-1:000000000000:table/t","Tags":[{"Key":"a","Value":"b"}]}`
	metricsCBOR, _ := cbor.Marshal(map[string]any{"Namespace": "n", "MetricData": []any{map[string]any{"MetricName": "m", "Value": 1.0}},
		"MetricDataQueries": []any{map[string]any{"Id": "q", "MetricStat": map[string]any{"Metric": map[string]any{"Namespace": "n", "MetricName": "m"}, "Period": 60, "Stat": "Sum"}}},
		"StartTime":         cbor.Tag{Number: 1, Content: 1.7e9}, "EndTime": cbor.Tag{Number: 1, Content: 1.8e9}})
	var kinesisCBOR map[string]any
	_ = json.Unmarshal([]byte(kinesisJSON), &kinesisCBOR)
	kc, _ := cbor.Marshal(kinesisCBOR)
	return [][]byte{
		[]byte(kinesisJSON), kc, []byte(dynamoJSON), metricsCBOR,
		nil, []byte("{}"), []byte("null"), []byte("\xff\x00garbage"), []byte(`{"StreamName":5,"TableName":[],"Records":"x"}`),
		[]byte(strings.Repeat("[", 5000) + strings.Repeat("]", 5000)), []byte(strings.Repeat(`{"a":`, 3000) + "1" + strings.Repeat("}", 3000)),
		append(append([]byte(`{"StreamName":"s","Data":"`), bytes.Repeat([]byte("QUFB"), 64<<10)...), `","PartitionKey":"k"}`...),
		{0xbf, 0xbf, 0xbf, 0xbf}, {0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
}

// FuzzRequests sends whole requests (any operation of any service, odd targets, every
// content type, any body) to the engine's router. No request may get a 5xx (no faults
// are injected), and every body must be valid in the protocol of its Content-Type, error
// bodies with a "__type".
func FuzzRequests(f *testing.F) {
	e := fuzzEngine(f)
	targets := fuzzTargets()
	seeds := fuzzSeeds(e)
	for i := range targets {
		for j, body := range seeds {
			f.Add(uint16(i), "", uint8(i+j), body)
		}
	}
	for _, odd := range []string{"/", "Kinesis_20131202.", "DynamoDB_20120810.", `Nope."\`, "Kinesis_20131202.\x00\xff", "kinesis_20131202.ListStreams",
		strings.Repeat("x", 300), "DynamoDB_20120810.Get\"Item", "\u2028\u00e9"} {
		for ct := range fuzzContentTypes {
			f.Add(uint16(0), odd, uint8(ct), []byte("{}"))
		}
	}
	f.Fuzz(func(t *testing.T, target uint16, raw string, ct uint8, body []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		r := fuzzRequest(ctx, targets[int(target)%len(targets)], raw, ct, body)
		checkResponse(t, r, serve(t, e, r))
	})
}

// TestUnknownTargetBodiesAreValid is the case: an unknown or missing target in
// each protocol gets a valid error body in that protocol.
func TestUnknownTargetBodiesAreValid(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	for _, raw := range []string{"", "/", `Nope_2020.Do"x`, "Kinesis\\", "\xff\xfe"} {
		for ct, name := range fuzzContentTypes {
			t.Run(name+"/"+raw, func(t *testing.T) {
				r := fuzzRequest(context.Background(), fuzzTarget{}, raw, uint8(ct), []byte("{}"))
				w := serve(t, e, r)
				if w.Code != http.StatusBadRequest {
					t.Fatalf("status %d", w.Code)
				}
				checkResponse(t, r, w)
				wantCBOR := strings.Contains(name, "cbor")
				if gotCBOR := strings.Contains(w.Header().Get("Content-Type"), "cbor"); gotCBOR != wantCBOR {
					t.Fatalf("request %q answered with %q", name, w.Header().Get("Content-Type"))
				}
			})
		}
	}
}
