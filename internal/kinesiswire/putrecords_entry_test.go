package kinesiswire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/fxamacker/cbor/v2"
)

// encodeSome encodes every other record of in ahead (odd ones are left to the call).
func encodeSome(in *kinesis.PutRecordsInput, cbor bool) [][]byte {
	enc := make([][]byte, len(in.Records))
	for i := range in.Records {
		if i%2 == 1 {
			continue
		}
		if cbor {
			enc[i], _ = AppendEntryCBOR(nil, &in.Records[i])
		} else {
			enc[i] = AppendEntryJSON(nil, &in.Records[i])
		}
	}
	return enc
}

// TestEncodedEntriesSameBody checks that a body built from entries encoded ahead is the
// body the call would have encoded itself, in both protocols.
func TestEncodedEntriesSameBody(t *testing.T) {
	for _, tc := range []struct{ n, size int }{{0, 0}, {1, 0}, {3, 23}, {30, 24}, {2, 300}, {1, 70000}} {
		in := cborTestInput(tc.n, tc.size)
		if tc.n > 1 {
			in.Records[1].PartitionKey = nil // as on an AUTO stream
		}
		if got, want := appendPutRecordsInputCBOR(nil, in, encodeSome(in, true)), AppendPutRecordsInputCBOR(nil, in); !bytes.Equal(got, want) {
			t.Errorf("%+v: CBOR body from encoded entries differs:\n%x\n%x", tc, got, want)
		}
		if got, want := appendPutRecordsInputJSON(nil, in, encodeSome(in, false)), AppendPutRecordsInputJSON(nil, in); !bytes.Equal(got, want) {
			t.Errorf("%+v: JSON body from encoded entries differs:\n%.300s\n%.300s", tc, got, want)
		}
	}
}

// TestAppendEntryCBORDataAt checks the data index AppendEntryCBOR returns, across the
// CBOR length heads' sizes.
func TestAppendEntryCBORDataAt(t *testing.T) {
	for _, n := range []int{0, 23, 24, 255, 256, 65535, 65536} {
		e := types.PutRecordsRequestEntry{Data: bytes.Repeat([]byte{0xab}, n), PartitionKey: aws.String("k")}
		prefix := []byte("prefix")
		b, at := AppendEntryCBOR(prefix, &e)
		if !bytes.Equal(b[at:at+n], e.Data) || (n > 0 && b[at-1] == 0xab) {
			t.Fatalf("%d bytes: data index %d is wrong", n, at)
		}
		if len(b)-len(prefix) > EntrySizeCBOR(&e) {
			t.Fatalf("%d bytes: entry of %d bytes over its bound %d", n, len(b)-len(prefix), EntrySizeCBOR(&e))
		}
		if j := AppendEntryJSON(nil, &e); len(j) > EntrySizeJSON(&e) {
			t.Fatalf("%d bytes: JSON entry of %d bytes over its bound %d", n, len(j), EntrySizeJSON(&e))
		}
	}
}

// TestAppendPutRecordsInputTakesEncoded checks that entries encoded ahead are sent
// only by a call of their protocol and of their number of records.
func TestAppendPutRecordsInputTakesEncoded(t *testing.T) {
	input := func(data ...string) *kinesis.PutRecordsInput {
		in := &kinesis.PutRecordsInput{StreamName: aws.String("s")}
		for _, d := range data {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: []byte(d), PartitionKey: aws.String("k")})
		}
		return in
	}
	in, ahead := input("a", "b", "c"), input("x", "y", "z")
	enc := &Encoded{CBOR: true}
	for i := range ahead.Records {
		e, _ := AppendEntryCBOR(nil, &ahead.Records[i])
		enc.Entries = append(enc.Entries, e)
	}
	enc.Entries[1] = nil // encoded by the call
	want := AppendPutRecordsInputCBOR(nil, input("x", "b", "z"))
	if got := AppendPutRecordsInput(nil, in, enc, true); !bytes.Equal(got, want) {
		t.Fatal("CBOR call did not send the entries encoded ahead")
	}
	if got := AppendPutRecordsInput(nil, in, enc, false); !bytes.Equal(got, AppendPutRecordsInputJSON(nil, in)) {
		t.Fatal("JSON call sent CBOR entries")
	}
	enc.Entries = enc.Entries[:2]
	if got := AppendPutRecordsInput(nil, in, enc, true); !bytes.Equal(got, AppendPutRecordsInputCBOR(nil, in)) {
		t.Fatal("entries of another number of records were sent")
	}
	if got := AppendPutRecordsInput(nil, in, nil, true); !bytes.Equal(got, AppendPutRecordsInputCBOR(nil, in)) {
		t.Fatal("call without entries ahead")
	}
}

// FuzzEncodedEntries checks, for any record, that its entry encoded ahead makes the
// body the call would have made, in both protocols, and that the CBOR data index
// points at its data.
func FuzzEncodedEntries(f *testing.F) {
	f.Add([]byte("data"), "key", "", true)
	f.Add([]byte{}, "", "123", false)
	f.Add(bytes.Repeat([]byte{1}, 300), "ünï\"\\\n", "340282366920938463463374607431768211455", true)
	f.Fuzz(func(t *testing.T, data []byte, pk, ehk string, withKey bool) {
		e := types.PutRecordsRequestEntry{Data: data}
		if withKey {
			e.PartitionKey = &pk
		}
		if ehk != "" {
			e.ExplicitHashKey = &ehk
		}
		in := &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{e, e}}
		c, at := AppendEntryCBOR(nil, &e)
		if !bytes.Equal(c[at:at+len(data)], data) {
			t.Fatal("CBOR data index is wrong")
		}
		if !bytes.Equal(appendPutRecordsInputCBOR(nil, in, [][]byte{c, nil}), AppendPutRecordsInputCBOR(nil, in)) {
			t.Fatal("CBOR body differs")
		}
		j := AppendEntryJSON(nil, &e)
		if d, err := EntryDataJSON(j); err != nil || !bytes.Equal(d, data) {
			t.Fatalf("data decoded from the JSON entry: %q, %v; want %q", d, err, data)
		}
		if !bytes.Equal(appendPutRecordsInputJSON(nil, in, [][]byte{nil, j}), AppendPutRecordsInputJSON(nil, in)) {
			t.Fatal("JSON body differs")
		}
	})
}

// BenchmarkEncodedBody measures a CBOR body of 500 x 100 B records made from entries
// encoded ahead, beside the same body encoded from the records at the call.
func BenchmarkEncodedBody(b *testing.B) {
	in := cborTestInput(500, 100)
	enc := make([][]byte, len(in.Records))
	for i := range in.Records {
		enc[i], _ = AppendEntryCBOR(nil, &in.Records[i])
	}
	for _, bc := range []struct {
		name string
		enc  [][]byte
	}{{"encoded-ahead", enc}, {"at-the-call", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 1<<20)
			b.SetBytes(500 * 100)
			b.ReportAllocs()
			for b.Loop() {
				buf = appendPutRecordsInputCBOR(buf[:0], in, bc.enc)
			}
		})
	}
}

// TestEntryDataJSONMalformed checks that what is not an entry of AppendEntryJSON fails
// with ErrMalformedJSON.
func TestEntryDataJSONMalformed(t *testing.T) {
	for _, b := range []string{"", `{"Data":`, `{"Data":"AAA`, `{"Data":"A!==","PartitionKey":"k"}`, `{"PartitionKey":"k","Data":"AA=="}`} {
		if _, err := EntryDataJSON([]byte(b)); !errors.Is(err, ErrMalformedJSON) {
			t.Errorf("%q: %v, want ErrMalformedJSON", b, err)
		}
	}
}

// FuzzEntryDataJSON checks that EntryDataJSON never panics and fails only with
// ErrMalformedJSON.
func FuzzEntryDataJSON(f *testing.F) {
	f.Add([]byte(`{"Data":"AAEC","PartitionKey":"k"}`))
	f.Add([]byte(`{"Data":"`))
	f.Add([]byte(`{"Data":"=="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := EntryDataJSON(b); err != nil && !errors.Is(err, ErrMalformedJSON) {
			t.Fatalf("error %v does not wrap ErrMalformedJSON", err)
		}
	})
}

// TestResultEntriesReused checks that both decoders put a response's entries into the
// array out.Records brings when it has room for them (as WithResultEntries arranges),
// with the entries a fresh decoding gives, and allocate one when it has not.
func TestResultEntriesReused(t *testing.T) {
	var recs []map[string]string
	for i := 0; i < 50; i++ {
		recs = append(recs, map[string]string{"SequenceNumber": strconv.Itoa(1000 + i), "ShardId": "shardId-000000000003"})
	}
	cborBody, err := cbor.Marshal(map[string]any{"FailedRecordCount": 0, "Records": recs})
	if err != nil {
		t.Fatal(err)
	}
	jsonBody, err := json.Marshal(map[string]any{"FailedRecordCount": 0, "Records": recs})
	if err != nil {
		t.Fatal(err)
	}
	for name, decode := range map[string]func(*kinesis.PutRecordsOutput) error{
		"cbor": func(o *kinesis.PutRecordsOutput) error { return DecodePutRecordsOutputCBOR(cborBody, o) },
		"json": func(o *kinesis.PutRecordsOutput) error { return DecodePutRecordsOutputJSON(jsonBody, o) },
	} {
		var fresh kinesis.PutRecordsOutput
		if err := decode(&fresh); err != nil {
			t.Fatal(err)
		}
		buf := make([]types.PutRecordsResultEntry, 3, 64)
		buf[2].ErrorCode = aws.String("stale")
		reused := kinesis.PutRecordsOutput{Records: buf[:0]}
		if err := decode(&reused); err != nil {
			t.Fatal(err)
		}
		if &reused.Records[0] != &buf[:1][0] {
			t.Fatalf("%s: the entries were not decoded into the array given", name)
		}
		if !reflect.DeepEqual(reused.Records, fresh.Records) {
			t.Fatalf("%s: entries decoded into the array given differ from a fresh decoding", name)
		}
		small := kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, 0, 10)}
		if err := decode(&small); err != nil || len(small.Records) != 50 {
			t.Fatalf("%s: %d entries into an array too small, %v", name, len(small.Records), err)
		}
	}
}
