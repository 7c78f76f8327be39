package streams

import (
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// TestEpochTimeCBOR: the Kinesis CBOR protocol carries timestamps as epoch
// milliseconds under tag 1 (what the AWS SDKs write and read); RFC 8949 seconds
// (kinesalite) are read too.
func TestEpochTimeCBOR(t *testing.T) {
	at := time.UnixMilli(1603152823565)
	out, err := cbor.Marshal(epochTime{at})
	if err != nil {
		t.Fatal(err)
	}
	var tag cbor.Tag
	if err := cbor.Unmarshal(out, &tag); err != nil {
		t.Fatal(err)
	}
	if ms, ok := tag.Content.(uint64); tag.Number != 1 || !ok || ms != 1603152823565 {
		t.Fatalf("written as tag %d content %#v, want tag 1 with epoch milliseconds", tag.Number, tag.Content)
	}
	for _, tc := range []struct {
		name string
		in   any
		want time.Time
	}{
		{"milliseconds under tag 1", cbor.Tag{Number: 1, Content: uint64(1603152823565)}, at},
		{"fractional seconds under tag 1", cbor.Tag{Number: 1, Content: 1603152823.565}, at},
		{"whole seconds under tag 1", cbor.Tag{Number: 1, Content: uint64(1603152823)}, time.Unix(1603152823, 0)},
		{"bare milliseconds", uint64(1603152823565), at},
		{"bare seconds", 1603152823.565, at},
	} {
		b, err := cbor.Marshal(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		var e epochTime
		if err := cbor.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !e.Equal(tc.want) {
			t.Errorf("%s: read %v, want %v", tc.name, e.Time, tc.want)
		}
	}
	for _, bad := range []any{"x", cbor.Tag{Number: 1, Content: "x"}, 1e16} {
		b, _ := cbor.Marshal(bad)
		var e epochTime
		if err := cbor.Unmarshal(b, &e); err == nil {
			t.Errorf("%#v read as %v, want an error", bad, e.Time)
		}
	}
}
