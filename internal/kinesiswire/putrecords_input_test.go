package kinesiswire

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/fxamacker/cbor/v2"
)

func cborTestInput(n, size int) *kinesis.PutRecordsInput {
	in := &kinesis.PutRecordsInput{StreamName: aws.String("s")}
	for i := 0; i < n; i++ {
		e := types.PutRecordsRequestEntry{Data: bytes.Repeat([]byte{byte(i)}, size), PartitionKey: aws.String("k" + strconv.Itoa(i))}
		if i%3 == 0 {
			e.ExplicitHashKey = aws.String(strconv.Itoa(i))
		}
		in.Records = append(in.Records, e)
	}
	return in
}

// TestCBORRequestDecodes checks the hand-written encoder against a general CBOR decoder.
func TestCBORRequestDecodes(t *testing.T) {
	for _, tc := range []struct{ n, size int }{{0, 0}, {1, 0}, {3, 23}, {30, 24}, {2, 300}, {1, 70000}} {
		in := cborTestInput(tc.n, tc.size)
		in.StreamARN = aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/s")
		var got struct {
			StreamName string `cbor:"StreamName"`
			StreamARN  string `cbor:"StreamARN"`
			Records    []struct {
				Data            []byte  `cbor:"Data"`
				PartitionKey    string  `cbor:"PartitionKey"`
				ExplicitHashKey *string `cbor:"ExplicitHashKey"`
			} `cbor:"Records"`
		}
		if err := cbor.Unmarshal(AppendPutRecordsInputCBOR(nil, in), &got); err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if got.StreamName != "s" || got.StreamARN != *in.StreamARN || len(got.Records) != tc.n {
			t.Fatalf("%+v: decoded %+v", tc, got)
		}
		for i, r := range got.Records {
			e := in.Records[i]
			if !bytes.Equal(r.Data, e.Data) || r.PartitionKey != *e.PartitionKey || (e.ExplicitHashKey == nil) != (r.ExplicitHashKey == nil) ||
				(e.ExplicitHashKey != nil && *e.ExplicitHashKey != *r.ExplicitHashKey) {
				t.Fatalf("%+v: record %d differs", tc, i)
			}
		}
	}
}

type jsonPutRecords struct {
	StreamName string
	StreamARN  string
	Records    []struct {
		Data            []byte
		PartitionKey    string
		ExplicitHashKey *string
	}
}

// TestJSONRequestDecodes checks the hand-written PutRecords encoder against
// encoding/json, with partition keys that need escaping.
func TestJSONRequestDecodes(t *testing.T) {
	keys := []string{"plain", `quote " and \ backslash`, "tab\tnew\nline\rcr", "\x00\x01\x1f control", "émoji 🦫 ünïcode", "</script>&", "\u2028\u2029"}
	for _, tc := range []struct{ n, size int }{{0, 0}, {1, 0}, {3, 23}, {30, 24}, {2, 300}, {1, 70000}} {
		in := cborTestInput(tc.n, tc.size)
		in.StreamARN = aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/s")
		for i := range in.Records {
			in.Records[i].PartitionKey = aws.String(keys[i%len(keys)])
		}
		body := AppendPutRecordsInputJSON(nil, in)
		if !json.Valid(body) {
			t.Fatalf("%+v: invalid JSON %.200s", tc, body)
		}
		var got jsonPutRecords
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if got.StreamName != "s" || got.StreamARN != *in.StreamARN || len(got.Records) != tc.n {
			t.Fatalf("%+v: decoded %+v", tc, got)
		}
		for i, r := range got.Records {
			e := in.Records[i]
			if !bytes.Equal(r.Data, e.Data) || r.PartitionKey != *e.PartitionKey || (e.ExplicitHashKey == nil) != (r.ExplicitHashKey == nil) ||
				(e.ExplicitHashKey != nil && *e.ExplicitHashKey != *r.ExplicitHashKey) {
				t.Fatalf("%+v: record %d differs: %q vs %q", tc, i, r.PartitionKey, *e.PartitionKey)
			}
		}
	}
}

// BenchmarkJSONEncode measures the PutRecords JSON body encoding of 100 aggregates.
func BenchmarkJSONEncode(b *testing.B) {
	in := cborTestInput(100, 50000)
	buf := make([]byte, 0, 8<<20)
	b.SetBytes(100 * 50000)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPutRecordsInputJSON(buf[:0], in)
	}
}

// BenchmarkCBOREncode measures the PutRecords CBOR body encoding of 100 aggregates.
func BenchmarkCBOREncode(b *testing.B) {
	in := cborTestInput(100, 50000)
	buf := make([]byte, 0, 8<<20)
	b.SetBytes(100 * 50000)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPutRecordsInputCBOR(buf[:0], in)
	}
}
