package hashkey

import (
	"crypto/md5"
	"math/big"
	"math/rand"
	"testing"
)

func TestParseAndFormatRoundTrip(t *testing.T) {
	cases := []string{
		"0", "1", "9", "10", "18446744073709551615", "18446744073709551616",
		"10000000000000000000", "99999999999999999999999999999999999999",
		"100000000000000000000000000000000000000",
		"340282366920938463463374607431768211455",
	}
	for _, s := range cases {
		k, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if got := k.String(); got != s {
			t.Fatalf("String(Parse(%q)) = %q", s, got)
		}
		want, _ := new(big.Int).SetString(s, 10)
		if k.Big().Cmp(want) != 0 {
			t.Fatalf("Parse(%q) = %v", s, k.Big())
		}
	}
	if Max.String() != "340282366920938463463374607431768211455" {
		t.Fatalf("Max = %s", Max)
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "-1", "+1", "01", "00", "1a", " 1", "1.0",
		"340282366920938463463374607431768211456", "1000000000000000000000000000000000000000",
		"999999999999999999999999999999999999999"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

func TestFormatMatchesBig(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 10000; i++ {
		k := Key{Hi: r.Uint64() >> uint(r.Intn(64)), Lo: r.Uint64() >> uint(r.Intn(64))}
		if i%3 == 0 {
			k.Hi = 0
		}
		if got, want := k.String(), k.Big().String(); got != want {
			t.Fatalf("String(%#v) = %s, want %s", k, got, want)
		}
		back, err := Parse(k.String())
		if err != nil || back != k {
			t.Fatalf("round trip of %s: %v %v", k, back, err)
		}
	}
}

func TestFromPartitionKeyIsBigEndianMD5(t *testing.T) {
	sum := md5.Sum([]byte("a"))
	want := new(big.Int).SetBytes(sum[:])
	if got := FromPartitionKey("a").Big(); got.Cmp(want) != 0 {
		t.Fatalf("FromPartitionKey(a) = %s, want %s", got, want)
	}
}

func TestUniformCoversKeySpace(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, 8, 100} {
		rs := Uniform(n)
		if len(rs) != n || rs[0].Start != (Key{}) || rs[n-1].End != Max {
			t.Fatalf("Uniform(%d) does not cover the key space: %v", n, rs)
		}
		for i := 1; i < n; i++ {
			if rs[i].Start != rs[i-1].End.Add1() {
				t.Fatalf("Uniform(%d): gap between %d and %d", n, i-1, i)
			}
		}
	}
	if got := Uniform(2)[0].End.String(); got != "170141183460469231731687303715884105727" {
		t.Fatalf("Uniform(2)[0].End = %s", got)
	}
}

func TestRangeContainsAndMidpoint(t *testing.T) {
	r := Range{Start: MustParse("10"), End: MustParse("20")}
	for s, want := range map[string]bool{"9": false, "10": true, "15": true, "20": true, "21": false} {
		if got := r.Contains(MustParse(s)); got != want {
			t.Errorf("Contains(%s) = %v", s, got)
		}
	}
	if m := r.Midpoint().String(); m != "15" {
		t.Fatalf("Midpoint = %s", m)
	}
	if FullRange.Midpoint().Add1().String() != "170141183460469231731687303715884105728" {
		t.Fatalf("FullRange midpoint = %s", FullRange.Midpoint())
	}
	if _, err := ParseRange("20", "10"); err == nil {
		t.Fatal("ParseRange accepted an inverted range")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "1", "340282366920938463463374607431768211455", "-1", "01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("Parse(%q).String() = %q", s, k.String())
		}
	})
}

func BenchmarkFromPartitionKey(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = FromPartitionKey("user-123456")
	}
}

func BenchmarkAppendDecimal(b *testing.B) {
	b.ReportAllocs()
	k := Max
	buf := make([]byte, 0, 40)
	for i := 0; i < b.N; i++ {
		buf = k.AppendDecimal(buf[:0])
	}
}
