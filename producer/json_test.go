package producer

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

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
		body := appendPutRecordsJSON(nil, in)
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
		buf = appendPutRecordsJSON(buf[:0], in)
	}
}
