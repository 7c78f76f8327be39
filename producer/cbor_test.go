package producer

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
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
		if err := cbor.Unmarshal(appendPutRecordsCBOR(nil, in), &got); err != nil {
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

func TestCBORResponse(t *testing.T) {
	body, _ := cbor.Marshal(map[string]any{
		"FailedRecordCount": 1,
		"EncryptionType":    "NONE",
		"Records": []map[string]string{
			{"SequenceNumber": "1", "ShardId": "shardId-000000000000"},
			{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"},
		},
	})
	var out kinesis.PutRecordsOutput
	if err := decodePutRecordsCBOR(body, &out); err != nil {
		t.Fatal(err)
	}
	if *out.FailedRecordCount != 1 || len(out.Records) != 2 || *out.Records[0].ShardId != "shardId-000000000000" || *out.Records[1].ErrorCode != "ProvisionedThroughputExceededException" {
		t.Fatalf("decoded %+v", out)
	}
	errBody, _ := cbor.Marshal(map[string]string{"__type": "com.amazonaws.kinesis#ResourceNotFoundException", "message": "no stream"})
	err := decodeCBORError(http.StatusBadRequest, "", errBody)
	ae, ok := err.(smithy.APIError)
	if !ok || ae.ErrorCode() != "ResourceNotFoundException" || ae.ErrorMessage() != "no stream" || IsRetryable(err) {
		t.Fatalf("error %v", err)
	}
	if err := decodeCBORError(http.StatusInternalServerError, "InternalFailure", nil); !IsRetryable(err) {
		t.Fatalf("500 not retryable: %v", err)
	}
}

func FuzzDecodePutRecordsCBOR(f *testing.F) {
	good, _ := cbor.Marshal(map[string]any{"FailedRecordCount": 0, "Records": []map[string]string{{"SequenceNumber": "1", "ShardId": "s"}}})
	f.Add(good)
	f.Add([]byte{0xa0})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out kinesis.PutRecordsOutput
		_ = decodePutRecordsCBOR(b, &out)
		_ = decodeCBORError(400, "", b)
	})
}
