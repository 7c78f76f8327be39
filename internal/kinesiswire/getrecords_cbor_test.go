package kinesiswire

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"github.com/fxamacker/cbor/v2"

	"github.com/freshet/freshet/internal/retrypolicy"
)

// wireRecord and wireOutput are a GetRecords response as a service writes it.
type wireRecord struct {
	SequenceNumber              string   `cbor:"SequenceNumber"`
	ApproximateArrivalTimestamp cbor.Tag `cbor:"ApproximateArrivalTimestamp"`
	Data                        []byte   `cbor:"Data"`
	PartitionKey                string   `cbor:"PartitionKey"`
	EncryptionType              string   `cbor:"EncryptionType,omitempty"`
	Extra                       []any    `cbor:"SomethingNew,omitempty"`
}

type wireChild struct {
	ShardId      string            `cbor:"ShardId"`
	ParentShards []string          `cbor:"ParentShards"`
	HashKeyRange map[string]string `cbor:"HashKeyRange"`
}

type wireOutput struct {
	Records            []wireRecord `cbor:"Records"`
	NextShardIterator  *string      `cbor:"NextShardIterator,omitempty"`
	MillisBehindLatest int64        `cbor:"MillisBehindLatest"`
	ChildShards        []wireChild  `cbor:"ChildShards,omitempty"`
}

func TestDecodeGetRecordsOutputCBOR(t *testing.T) {
	ts := cbor.Tag{Number: 1, Content: 1700000000.25}
	tests := []struct {
		name string
		in   wireOutput
	}{
		{"records and iterator", wireOutput{
			Records: []wireRecord{
				{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", ApproximateArrivalTimestamp: ts, Data: []byte("hello"), PartitionKey: "pk-1"},
				{SequenceNumber: "49590338271490256608559692538361571095921575989136588899", ApproximateArrivalTimestamp: ts, Data: bytes.Repeat([]byte{0, 255}, 300), PartitionKey: "pk-2", EncryptionType: "KMS", Extra: []any{1, "x", []byte{2}}},
				{SequenceNumber: "4", ApproximateArrivalTimestamp: cbor.Tag{Number: 1, Content: uint64(1700000001)}, Data: []byte{}, PartitionKey: "p"},
				// Kinesis itself: integer epoch milliseconds under tag 1.
				{SequenceNumber: "5", ApproximateArrivalTimestamp: cbor.Tag{Number: 1, Content: uint64(1603152823565)}, Data: []byte("aws"), PartitionKey: "p"},
			},
			NextShardIterator: aws.String("AAAA-iterator"), MillisBehindLatest: 1234}},
		{"shard end with children", wireOutput{
			MillisBehindLatest: 0,
			ChildShards: []wireChild{
				{ShardId: "shardId-000000000002", ParentShards: []string{"shardId-000000000000"}, HashKeyRange: map[string]string{"StartingHashKey": "0", "EndingHashKey": "170141183460469231731687303715884105727"}},
				{ShardId: "shardId-000000000003", ParentShards: []string{"shardId-000000000000", "shardId-000000000001"}, HashKeyRange: map[string]string{"StartingHashKey": "1", "EndingHashKey": "2"}},
			}}},
		{"empty", wireOutput{Records: []wireRecord{}, NextShardIterator: aws.String("i"), MillisBehindLatest: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := cbor.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var out kinesis.GetRecordsOutput
			if err := DecodeGetRecordsOutputCBOR(body, &out); err != nil {
				t.Fatal(err)
			}
			if len(out.Records) != len(tt.in.Records) {
				t.Fatalf("%d records, want %d", len(out.Records), len(tt.in.Records))
			}
			for i, w := range tt.in.Records {
				g := out.Records[i]
				if aws.ToString(g.SequenceNumber) != w.SequenceNumber || aws.ToString(g.PartitionKey) != w.PartitionKey ||
					!bytes.Equal(g.Data, w.Data) || string(g.EncryptionType) != w.EncryptionType || g.Data == nil {
					t.Errorf("record %d = %+v, want %+v", i, g, w)
				}
				var want time.Time
				switch c := w.ApproximateArrivalTimestamp.Content.(type) {
				case float64:
					want = time.UnixMilli(int64(c * 1000))
				case uint64:
					want = time.Unix(int64(c), 0)
					if c >= 1e11 {
						want = time.UnixMilli(int64(c))
					}
				}
				if g.ApproximateArrivalTimestamp == nil || !g.ApproximateArrivalTimestamp.Equal(want) {
					t.Errorf("record %d arrival %v, want %v", i, g.ApproximateArrivalTimestamp, want)
				}
			}
			if aws.ToString(out.NextShardIterator) != aws.ToString(tt.in.NextShardIterator) || (out.NextShardIterator == nil) != (tt.in.NextShardIterator == nil) {
				t.Errorf("iterator %v, want %v", out.NextShardIterator, tt.in.NextShardIterator)
			}
			if aws.ToInt64(out.MillisBehindLatest) != tt.in.MillisBehindLatest {
				t.Errorf("MillisBehindLatest %v, want %d", out.MillisBehindLatest, tt.in.MillisBehindLatest)
			}
			if len(out.ChildShards) != len(tt.in.ChildShards) {
				t.Fatalf("%d children, want %d", len(out.ChildShards), len(tt.in.ChildShards))
			}
			for i, w := range tt.in.ChildShards {
				g := out.ChildShards[i]
				if aws.ToString(g.ShardId) != w.ShardId || fmt.Sprint(g.ParentShards) != fmt.Sprint(w.ParentShards) ||
					aws.ToString(g.HashKeyRange.StartingHashKey) != w.HashKeyRange["StartingHashKey"] ||
					aws.ToString(g.HashKeyRange.EndingHashKey) != w.HashKeyRange["EndingHashKey"] {
					t.Errorf("child %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestDecodeGetRecordsOutputCBORMalformed(t *testing.T) {
	good, err := cbor.Marshal(wireOutput{Records: []wireRecord{{SequenceNumber: "1", ApproximateArrivalTimestamp: cbor.Tag{Number: 1, Content: 1.5}, Data: []byte("abc"), PartitionKey: "k"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range [][]byte{
		nil,
		{0xa1},                               // map without its entry
		good[:len(good)-2],                   // truncated
		append(append([]byte{}, good...), 0), // trailing byte
		{0x82, 0x01, 0x02},                   // an array, not a map
		{0xa1, 0x67, 'R', 'e', 'c', 'o', 'r', 'd', 's', 0x81, 0x01}, // a record that is not a map
		{0xbf, 0xff, 0xff}, // break outside an item
	} {
		var out kinesis.GetRecordsOutput
		if err := DecodeGetRecordsOutputCBOR(body, &out); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: err = %v, want ErrMalformed", body, err)
		}
	}
}

func TestDecodeCBORError(t *testing.T) {
	body, _ := cbor.Marshal(map[string]string{"__type": "com.amazonaws#ExpiredIteratorException", "message": "old"})
	err := DecodeCBORError(400, "", body)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ExpiredIteratorException" || ae.ErrorMessage() != "old" || ae.ErrorFault() != smithy.FaultClient {
		t.Fatalf("err = %#v", err)
	}
	if c := retrypolicy.ErrorClass(err); c != retrypolicy.ExpiredIterator {
		t.Fatalf("classified as %v", c)
	}
	if err := DecodeCBORError(503, "ServiceUnavailable:http://x", nil); !errors.As(err, &ae) || ae.ErrorCode() != "ServiceUnavailable" || ae.ErrorFault() != smithy.FaultServer {
		t.Fatalf("err = %#v", err)
	}
}

func FuzzDecodeGetRecordsOutputCBOR(f *testing.F) {
	seed, _ := cbor.Marshal(wireOutput{Records: []wireRecord{{SequenceNumber: "1", ApproximateArrivalTimestamp: cbor.Tag{Number: 1, Content: 1.5}, Data: []byte("abc"), PartitionKey: "k"}},
		NextShardIterator: aws.String("it"), ChildShards: []wireChild{{ShardId: "s", ParentShards: []string{"p"}, HashKeyRange: map[string]string{"StartingHashKey": "0"}}}})
	f.Add(seed)
	f.Add([]byte{0xbf, 0x67, 'R', 'e', 'c', 'o', 'r', 'd', 's', 0x9f, 0xff, 0xff})
	f.Add([]byte{0xa1, 0x62, 'x', 'y', 0xf9, 0x3c, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		var out kinesis.GetRecordsOutput
		if err := DecodeGetRecordsOutputCBOR(body, &out); err != nil {
			return
		}
		for _, r := range out.Records {
			if len(r.Data) > len(body) {
				t.Fatalf("record data longer than the body")
			}
		}
	})
}

func BenchmarkDecodeGetRecordsOutputCBOR(b *testing.B) {
	var w wireOutput
	bytesTotal := 0
	for i := 0; i < 1000; i++ {
		d := bytes.Repeat([]byte{byte(i)}, 25000)
		bytesTotal += len(d)
		w.Records = append(w.Records, wireRecord{SequenceNumber: fmt.Sprintf("4959033827149025660855969253836157109592157598913%07d", i),
			ApproximateArrivalTimestamp: cbor.Tag{Number: 1, Content: 1700000000.125}, Data: d, PartitionKey: "partition-key"})
	}
	w.NextShardIterator = aws.String("iterator")
	body, err := cbor.Marshal(w)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(bytesTotal))
	for i := 0; i < b.N; i++ {
		var out kinesis.GetRecordsOutput
		if err := DecodeGetRecordsOutputCBOR(body, &out); err != nil {
			b.Fatal(err)
		}
	}
}
