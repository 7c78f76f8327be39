package kinesiswire

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// TestJSONString: appendJSONString reads back with encoding/json as the string, with
// each invalid UTF-8 byte replaced by U+FFFD (what encoding/json itself writes).
func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "a", "\"\\/", "\xff\xfe", "ok\xc3", "\u007f\u0080", "日本語", "\x00\x1f"} {
		b := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %s: %v", s, b, err)
		}
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var wantS string
		if err := json.Unmarshal(want, &wantS); err != nil {
			t.Fatal(err)
		}
		if got != wantS {
			t.Fatalf("%q encoded as %s, read back %q, want %q", s, b, got, wantS)
		}
	}
}

// FuzzAppendString: whatever the string, the output is valid JSON that reads back
// to the string (valid UTF-8) or to valid UTF-8 (otherwise), and the same bytes give
// the same output.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00", "\xff", "🦫"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %s: %v", s, b, err)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("%q read back as %q", s, got)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("%q read back as invalid UTF-8 %q", s, got)
		}
		if bb := AppendString(nil, []byte(s)); string(bb) != string(b) {
			t.Fatalf("%q: from bytes %s, from a string %s", s, bb, b)
		}
	})
}
