package kinesiswire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/fxamacker/cbor/v2"
)

// reference decodes a PutRecords response with a general CBOR decoder, as the
// producer did before DecodePutRecordsOutputCBOR.
type refEntry struct {
	SequenceNumber *string `cbor:"SequenceNumber"`
	ShardID        *string `cbor:"ShardId"`
	ErrorCode      *string `cbor:"ErrorCode"`
	ErrorMessage   *string `cbor:"ErrorMessage"`
}

type refOutput struct {
	FailedRecordCount *int32     `cbor:"FailedRecordCount"`
	Records           []refEntry `cbor:"Records"`
	EncryptionType    *string    `cbor:"EncryptionType"`
}

var refMode, _ = cbor.DecOptions{MaxArrayElements: 100000, MaxMapPairs: 100000, MaxNestedLevels: 32, DupMapKey: cbor.DupMapKeyEnforcedAPF, FieldNameMatching: cbor.FieldNameMatchingCaseSensitive}.DecMode()

func reference(b []byte) (*kinesis.PutRecordsOutput, error) {
	var v refOutput
	if err := refMode.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	out := &kinesis.PutRecordsOutput{FailedRecordCount: v.FailedRecordCount}
	if v.EncryptionType != nil {
		out.EncryptionType = types.EncryptionType(*v.EncryptionType)
	}
	if v.Records != nil {
		out.Records = make([]types.PutRecordsResultEntry, 0, len(v.Records))
	}
	for _, r := range v.Records {
		out.Records = append(out.Records, types.PutRecordsResultEntry{SequenceNumber: r.SequenceNumber, ShardId: r.ShardID, ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage})
	}
	return out, nil
}

func str(s string) *string { return &s }

// Hand-built bodies: definite and indefinite containers and strings, skipped keys of
// every major type, nulls.
var seeds = [][]byte{
	{0xa0}, // {}
	// {"FailedRecordCount": 1, "Records": [{"SequenceNumber": "12", "ShardId": "s-1"}, {"ErrorCode": "X", "ErrorMessage": "m"}]}
	func() []byte {
		b := []byte{0xa2, 0x71}
		b = append(b, "FailedRecordCount"...)
		b = append(b, 0x01, 0x67)
		b = append(b, "Records"...)
		b = append(b, 0x82, 0xa2, 0x6e)
		b = append(b, "SequenceNumber"...)
		b = append(b, 0x62, '1', '2', 0x67)
		b = append(b, "ShardId"...)
		b = append(b, 0x63, 's', '-', '1', 0xa2, 0x69)
		b = append(b, "ErrorCode"...)
		b = append(b, 0x61, 'X', 0x6c)
		b = append(b, "ErrorMessage"...)
		return append(b, 0x61, 'm')
	}(),
	// {_ "Records": [_ {_ "ShardId": (_ "s-", "2"), "Extra": [1, -2, h'00', 1.5, true, 1(3)] } ], "EncryptionType": "KMS" }
	func() []byte {
		b := []byte{0xbf, 0x67}
		b = append(b, "Records"...)
		b = append(b, 0x9f, 0xbf, 0x67)
		b = append(b, "ShardId"...)
		b = append(b, 0x7f, 0x62, 's', '-', 0x61, '2', 0xff)
		b = append(b, 0x65)
		b = append(b, "Extra"...)
		b = append(b, 0x86, 0x01, 0x21, 0x41, 0x00, 0xf9, 0x3e, 0x00, 0xf5, 0xc1, 0x03)
		b = append(b, 0xff, 0xff, 0x6e)
		b = append(b, "EncryptionType"...)
		b = append(b, 0x63, 'K', 'M', 'S', 0xff)
		return b
	}(),
	// {"Records": null, "FailedRecordCount": null}
	append(append(append([]byte{0xa2, 0x67}, "Records"...), 0xf6, 0x71), append([]byte("FailedRecordCount"), 0xf6)...),
	{0xbf},             // unterminated indefinite map
	{0xa1, 0x61, 'a'},  // a key without its value
	{0x9f, 0xff},       // not a map
	{0xa1, 0x61, 0xff}, // truncated key
}

func TestDecodePutRecordsOutputCBOR(t *testing.T) {
	var out kinesis.PutRecordsOutput
	if err := DecodePutRecordsOutputCBOR(seeds[1], &out); err != nil {
		t.Fatal(err)
	}
	want := kinesis.PutRecordsOutput{FailedRecordCount: func() *int32 { v := int32(1); return &v }(), Records: []types.PutRecordsResultEntry{
		{SequenceNumber: str("12"), ShardId: str("s-1")}, {ErrorCode: str("X"), ErrorMessage: str("m")},
	}}
	if !reflect.DeepEqual(out.Records, want.Records) || *out.FailedRecordCount != 1 {
		t.Fatalf("decoded %+v", out)
	}
	out = kinesis.PutRecordsOutput{}
	if err := DecodePutRecordsOutputCBOR(seeds[2], &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 1 || *out.Records[0].ShardId != "s-2" || out.EncryptionType != "KMS" {
		t.Fatalf("indefinite body decoded as %+v", out)
	}
	for _, bad := range seeds[4:] {
		if err := DecodePutRecordsOutputCBOR(bad, &kinesis.PutRecordsOutput{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: err %v, want ErrMalformed", bad, err)
		}
	}
	// A 500-entry response as a general encoder writes it decodes to what the general
	// decoder reads.
	var recs []map[string]string
	for i := 0; i < 500; i++ {
		recs = append(recs, map[string]string{"SequenceNumber": "4963" + string(rune('0'+i%10)), "ShardId": "shardId-00000000000" + string(rune('0'+i%4))})
	}
	body, _ := cbor.Marshal(map[string]any{"FailedRecordCount": 0, "Records": recs, "EncryptionType": "NONE"})
	compare(t, body)
}

// compare checks DecodePutRecordsOutputCBOR against the general decoder: where both
// succeed, their results must be equal; the hand-written one may only fail with
// ErrMalformed (it is stricter: the general one also takes, say, a simple value as
// FailedRecordCount), and strict reads every body the tests build by hand.
func compare(t *testing.T, b []byte) {
	t.Helper()
	want, rerr := reference(b)
	var got kinesis.PutRecordsOutput
	// The decoder must copy what it keeps: the protocol recycles response bodies.
	own := bytes.Clone(b)
	err := DecodePutRecordsOutputCBOR(own, &got)
	for i := range own {
		own[i] = 0xff
	}
	if err != nil && !errors.Is(err, ErrMalformed) {
		t.Fatalf("%x: error %v does not wrap ErrMalformed", b, err)
	}
	if rerr != nil || err != nil {
		return
	}
	if !reflect.DeepEqual(want.Records, got.Records) && !(len(want.Records) == 0 && len(got.Records) == 0) {
		t.Fatalf("%x: records %+v, want %+v", b, got.Records, want.Records)
	}
	if !reflect.DeepEqual(want.FailedRecordCount, got.FailedRecordCount) || want.EncryptionType != got.EncryptionType {
		t.Fatalf("%x: got %+v, want %+v", b, got, want)
	}
}

func FuzzDecodePutRecordsOutputCBOR(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { compare(t, b) })
}

func BenchmarkDecodePutRecordsOutputCBOR(b *testing.B) {
	var recs []map[string]string
	for i := 0; i < 500; i++ {
		recs = append(recs, map[string]string{"SequenceNumber": "49632873029847209384720398470293847029384702938470293847", "ShardId": "shardId-000000000003"})
	}
	body, _ := cbor.Marshal(map[string]any{"FailedRecordCount": 0, "Records": recs})
	b.Run("kinesiswire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out kinesis.PutRecordsOutput
			if err := DecodePutRecordsOutputCBOR(body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kinesiswire-recycled", func(b *testing.B) {
		// The producer's calls decode into recycled entry arrays (WithResultEntries).
		b.ReportAllocs()
		recs := make([]types.PutRecordsResultEntry, 0, 500)
		for b.Loop() {
			out := kinesis.PutRecordsOutput{Records: recs}
			if err := DecodePutRecordsOutputCBOR(body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reference(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPlainEntryShapes: entries in the shape Kinesis writes are read by plainEntry,
// any other shape by the general loop, and either way the response decodes to what
// the general CBOR decoder reads.
func TestPlainEntryShapes(t *testing.T) {
	text := func(b []byte, s string) []byte {
		switch n := len(s); {
		case n < 24:
			b = append(b, 0x60|byte(n))
		case n < 256:
			b = append(b, 0x78, byte(n))
		default:
			b = append(b, 0x79, byte(n>>8), byte(n))
		}
		return append(b, s...)
	}
	seq := strings.Repeat("4", 56)
	cases := []struct {
		name  string
		entry []byte
		plain bool
	}{
		{"sequence number and shard", text(text(text(text([]byte{0xa2}, "SequenceNumber"), seq), "ShardId"), "shardId-000000000007"), true},
		{"shard first", text(text(text(text([]byte{0xa2}, "ShardId"), "shardId-000000000001"), "SequenceNumber"), seq), true},
		{"throttled, long message", text(text(text(text([]byte{0xa2}, "ErrorCode"), "ProvisionedThroughputExceededException"), "ErrorMessage"), strings.Repeat("m", 300)), true},
		{"one key twice", text(text(text(text([]byte{0xa2}, "ShardId"), "a"), "ShardId"), "b"), true},
		{"empty map", []byte{0xa0}, true},
		{"unknown key", text(text(text(text([]byte{0xa2}, "SequenceNumber"), seq), "Other"), "x"), false},
		{"null value", append(text([]byte{0xa1}, "ShardId"), 0xf6), false},
		{"tagged value", append(text([]byte{0xa1}, "ShardId"), append([]byte{0xc0}, text(nil, "x")...)...), false},
		{"indefinite map", append(text(text([]byte{0xbf}, "ShardId"), "x"), 0xff), false},
		{"indefinite text", append(text([]byte{0xa1}, "ShardId"), 0x7f, 0x61, 'x', 0xff), false},
		{"null entry", []byte{0xf6}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(c.entry)
			var e types.PutRecordsResultEntry
			ef := newEntryFields(1)
			if got := r.plainEntry(&ef, &e); got != c.plain {
				t.Fatalf("plainEntry took it: %v, want %v", got, c.plain)
			}
			if c.plain && !r.Done() {
				t.Fatalf("plainEntry left %d bytes", len(c.entry)-r.i)
			}
			if !c.plain && r.i != 0 {
				t.Fatalf("plainEntry declined but consumed %d bytes", r.i)
			}
			body := text([]byte{0xa1}, "Records")
			body = append(body, 0x83)
			for range 3 {
				body = append(body, c.entry...)
			}
			if _, err := reference(body); err != nil && c.name != "one key twice" {
				t.Fatalf("reference decoder: %v", err)
			}
			var out kinesis.PutRecordsOutput
			if err := DecodePutRecordsOutputCBOR(body, &out); err != nil || len(out.Records) != 3 {
				t.Fatalf("decoded %d entries, err %v", len(out.Records), err)
			}
			if c.name == "one key twice" && *out.Records[2].ShardId != "b" {
				// The general decoder rejects duplicate keys; ours keeps the last.
				t.Fatalf("shard %q, want the last one, b", *out.Records[2].ShardId)
			}
			compare(t, body)
		})
	}
}
