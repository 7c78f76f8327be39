package kinesiswire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// sdkDecoder decodes PutRecords response bodies with the SDK's own JSON 1.1
// deserializer: a client whose HTTP transport answers every call with the body.
type sdkDecoder struct {
	client *kinesis.Client
	body   []byte
}

func (s *sdkDecoder) Do(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body: io.NopCloser(bytes.NewReader(s.body)), ContentLength: int64(len(s.body))}, nil
}

func newSDKDecoder() *sdkDecoder {
	s := &sdkDecoder{}
	s.client = kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1"),
		Credentials: aws.AnonymousCredentials{}, HTTPClient: s, RetryMaxAttempts: 1})
	return s
}

func (s *sdkDecoder) decode(body []byte) (*kinesis.PutRecordsOutput, error) {
	s.body = body
	return s.client.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("s"),
		Records: []types.PutRecordsRequestEntry{{Data: []byte{1}, PartitionKey: aws.String("k")}}})
}

var jsonSeeds = []string{
	`{}`,
	``,
	"  ",
	`null`,
	`{} xyz`,
	`{"FailedRecordCount":1,"Records":[{"SequenceNumber":"12","ShardId":"shardId-000000000001"},{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-000000000001"}],"EncryptionType":"NONE"}`,
	" { \"Records\" : [ null , {\"ShardId\":\"s-\\u0032\",\"Extra\":[1,-2.5e3,true,false,null,{\"a\":[]},\"x\\\"y\"]} ] , \"FailedRecordCount\" : 0 }\n",
	`{"Records":null,"FailedRecordCount":null,"EncryptionType":null}`,
	`{"Records":[{"ErrorMessage":"caf\u00e9 \ud83d\ude00 ünï"}],"Unknown":{"Nested":{"Deep":[[[]]]}}}`,
	`{"Records":[],"FailedRecordCount":0}`,
	`{"FailedRecordCount":1.5}`,
	`{"FailedRecordCount":99999999999}`,
	`{"FailedRecordCount":"1"}`,
	`{"Records":{}}`,
	`{"Records":[1]}`,
	`{"a":1,}`,
	`{"a"}`,
	`{"a":tru}`,
	`{`,
	`{} {}`,
	`[]`,
	`{"Records":[{"SequenceNumber":1}]}`,
	`{"Records":[{"ShardId":"a\u0000b"}]}`,
	"{\"Records\":[{\"ShardId\":\"a\x01b\"}]}",
	`{"Records":[{"ShardId":"\ud800"}]}`,
}

func TestDecodePutRecordsOutputJSON(t *testing.T) {
	var out kinesis.PutRecordsOutput
	if err := DecodePutRecordsOutputJSON([]byte(jsonSeeds[5]), &out); err != nil {
		t.Fatal(err)
	}
	want := []types.PutRecordsResultEntry{
		{SequenceNumber: str("12"), ShardId: str("shardId-000000000001")},
		{ErrorCode: str("ProvisionedThroughputExceededException"), ErrorMessage: str("Rate exceeded for shard shardId-000000000001")},
	}
	if !reflect.DeepEqual(out.Records, want) || *out.FailedRecordCount != 1 || out.EncryptionType != types.EncryptionTypeNone {
		t.Fatalf("decoded %+v", out)
	}
	for _, bad := range []string{`{"FailedRecordCount":1.5}`, `{"Records":{}}`, `{"a":1,}`, `{`, `null`, `[]`, `{"Records":[{"SequenceNumber":1}]}`} {
		if err := DecodePutRecordsOutputJSON([]byte(bad), &kinesis.PutRecordsOutput{}); !errors.Is(err, ErrMalformedJSON) {
			t.Errorf("%s: err %v, want ErrMalformedJSON", bad, err)
		}
	}
	sdk := newSDKDecoder()
	for _, s := range jsonSeeds {
		compareJSON(t, sdk, []byte(s))
	}
	compareJSON(t, sdk, bigJSONResponse(500, 7))
}

// bigJSONResponse is a PutRecords response of n entries, every failEvery-th throttled.
func bigJSONResponse(n, failEvery int) []byte {
	type entry struct {
		SequenceNumber *string `json:",omitempty"`
		ShardId        *string `json:",omitempty"`
		ErrorCode      *string `json:",omitempty"`
		ErrorMessage   *string `json:",omitempty"`
	}
	var recs []entry
	failed := 0
	for i := 0; i < n; i++ {
		if failEvery > 0 && i%failEvery == 0 {
			failed++
			recs = append(recs, entry{ErrorCode: str("ProvisionedThroughputExceededException"), ErrorMessage: str("Rate exceeded for shard shardId-000000000003 in stream s under account 123456789012.")})
			continue
		}
		recs = append(recs, entry{SequenceNumber: str(fmt.Sprintf("4963287302984720938472039847029384702938470293847%06d", i)), ShardId: str(fmt.Sprintf("shardId-00000000000%d", i%8))})
	}
	body, _ := json.Marshal(map[string]any{"FailedRecordCount": failed, "Records": recs, "EncryptionType": "NONE"})
	return body
}

// compareJSON checks DecodePutRecordsOutputJSON against the SDK's deserializer: both
// take the same bodies and, where they do, decode them to the same output.
func compareJSON(t *testing.T, sdk *sdkDecoder, b []byte) {
	t.Helper()
	want, rerr := sdk.decode(b)
	var got kinesis.PutRecordsOutput
	// The decoder must copy what it keeps: the protocol recycles response bodies.
	own := bytes.Clone(b)
	err := DecodePutRecordsOutputJSON(own, &got)
	for i := range own {
		own[i] = 0xff
	}
	if err != nil && !errors.Is(err, ErrMalformedJSON) {
		t.Fatalf("%q: error %v does not wrap ErrMalformedJSON", b, err)
	}
	if (err == nil) != (rerr == nil) {
		t.Fatalf("%q: decoder error %v, SDK error %v", b, err, rerr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(want.Records, got.Records) && !(len(want.Records) == 0 && len(got.Records) == 0) {
		t.Fatalf("%q: records %+v, want %+v", b, got.Records, want.Records)
	}
	if !reflect.DeepEqual(want.FailedRecordCount, got.FailedRecordCount) || want.EncryptionType != got.EncryptionType {
		t.Fatalf("%q: got %+v, want %+v", b, got, want)
	}
}

func FuzzDecodePutRecordsOutputJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Add(bigJSONResponse(5, 2)) // entries in the shape plainEntry reads
	sdk := newSDKDecoder()
	f.Fuzz(func(t *testing.T, b []byte) { compareJSON(t, sdk, b) })
}

func BenchmarkDecodePutRecordsOutputJSON(b *testing.B) {
	body := bigJSONResponse(500, 0)
	b.Run("kinesiswire", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var out kinesis.PutRecordsOutput
			if err := DecodePutRecordsOutputJSON(body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sdk", func(b *testing.B) {
		sdk := newSDKDecoder()
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := sdk.decode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPlainEntryShapesJSON: entries in the shape Kinesis writes are read by
// plainEntry, any other shape by the general loop, and either way the response decodes
// to what the SDK's deserializer reads.
func TestPlainEntryShapesJSON(t *testing.T) {
	seq := `"` + strings.Repeat("4", 56) + `"`
	cases := []struct {
		name, entry string
		plain       bool
	}{
		{"sequence number and shard", `{"SequenceNumber":` + seq + `,"ShardId":"shardId-000000000007"}`, true},
		{"shard first", `{"ShardId":"shardId-000000000001","SequenceNumber":` + seq + `}`, true},
		{"throttled", `{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded {for} shard"}`, true},
		{"empty object", `{}`, true},
		{"white space", `{ "ShardId":"a"}`, false},
		{"white space before the colon", `{"ShardId" :"a"}`, false},
		{"escape", `{"ShardId":"a\u0062"}`, false},
		{"unknown key", `{"ShardId":"a","Other":"x"}`, false},
		{"null value", `{"ShardId":null}`, false},
		{"unknown key, number value", `{"ShardId":"a","Other":12}`, false},
		{"five keys", `{"ShardId":"a","ShardId":"b","ShardId":"c","ShardId":"d","ShardId":"e"}`, false},
		{"null entry", `null`, false},
		{"cut off", `{"ShardId":"a"`, false},
	}
	sdk := newSDKDecoder()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := jsonDecoder{b: []byte(c.entry)}
			var e types.PutRecordsResultEntry
			ef := newEntryFields(1)
			if got := d.plainEntry(&ef, &e); got != c.plain {
				t.Fatalf("plainEntry took it: %v, want %v", got, c.plain)
			}
			if c.plain && d.i != len(c.entry) {
				t.Fatalf("plainEntry left %d bytes", len(c.entry)-d.i)
			}
			if !c.plain && d.i != 0 {
				t.Fatalf("plainEntry declined but consumed %d bytes", d.i)
			}
			body := `{"Records":[` + c.entry + `,` + c.entry + `,` + c.entry + `]}`
			if c.name == "cut off" {
				body = `{"Records":[` + c.entry
			}
			compareJSON(t, sdk, []byte(body))
			var out kinesis.PutRecordsOutput
			err := DecodePutRecordsOutputJSON([]byte(body), &out)
			if c.name != "cut off" && (err != nil || len(out.Records) != 3) {
				t.Fatalf("decoded %d entries, err %v", len(out.Records), err)
			}
		})
	}
}
