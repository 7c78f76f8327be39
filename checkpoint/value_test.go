package checkpoint

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestParseSequenceNumber(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"0", "0", true},
		{"000123", "123", true},
		{realSeq, realSeq, true}, // 56 digits, as Kinesis writes them
		{maxSeq, maxSeq, true},
		{maxSeq + "0", "", false},
		{"0000" + maxSeq, maxSeq, true},
		{"", "", false},
		{"12a", "", false},
		{"-1", "", false},
		{" 1", "", false},
		{"TRIM_HORIZON", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSequenceNumber(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseSequenceNumber(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidSequenceNumber) {
				t.Fatalf("error %v does not wrap ErrInvalidSequenceNumber", err)
			}
			if got != tt.want {
				t.Fatalf("ParseSequenceNumber(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

const realSeq = "49590338271490256608559692538361571095921575989136588898"

var maxSeq = strings.Repeat("9", MaxSequenceNumberDigits)

func TestParseSentinels(t *testing.T) {
	for _, s := range []string{SentinelTrimHorizon, SentinelLatest, SentinelAtTimestamp, SentinelShardEnd} {
		v, err := Parse(s, 0)
		if err != nil || v.SequenceNumber != s || !v.IsSentinel() {
			t.Fatalf("Parse(%s) = %v, %v", s, v, err)
		}
		if _, err := Parse(s, 3); !errors.Is(err, ErrInvalidSequenceNumber) {
			t.Fatalf("Parse(%s, 3) err = %v, want ErrInvalidSequenceNumber", s, err)
		}
	}
	if _, err := At("12", -1); !errors.Is(err, ErrInvalidSequenceNumber) {
		t.Fatalf("negative sub-sequence accepted: %v", err)
	}
}

func TestCompareOrder(t *testing.T) {
	at := func(s string, sub int64) Value {
		v, err := At(s, sub)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Strictly increasing.
	order := []Value{
		{},
		TrimHorizon,
		at("9", 0),
		at("9", 1),
		at("10", 0),
		at("99999999999999999999", 0),
		at("100000000000000000000", 0),
		at(realSeq, 0),
		at(realSeq, 7),
		at(maxSeq, 0),
		ShardEnd,
	}
	for i := range order {
		for j := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := order[i].Compare(order[j]); got != want {
				t.Errorf("Compare(%v, %v) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	// Start sentinels are all before records and equal among themselves.
	for _, a := range []Value{TrimHorizon, Latest, AtTimestamp(time.Unix(1, 0))} {
		for _, b := range []Value{TrimHorizon, Latest, AtTimestamp(time.Unix(2, 0))} {
			if a.Compare(b) != 0 {
				t.Errorf("Compare(%v, %v) != 0", a, b)
			}
		}
		if !a.Before(at("0", 0)) {
			t.Errorf("%v not before the first record", a)
		}
	}
	if CompareSequenceNumbers("007", "7") != 0 {
		t.Error("leading zeros are not ignored")
	}
}

// TestCompareMatchesBigInt checks numeric ordering of random sequence numbers of up to
// 400 bits.
func TestCompareMatchesBigInt(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		a := randomNumber(r)
		b := randomNumber(r)
		if r.IntN(10) == 0 {
			b = new(big.Int).Set(a)
		}
		got := CompareSequenceNumbers(a.String(), b.String())
		if want := a.Cmp(b); got != want {
			t.Fatalf("CompareSequenceNumbers(%s, %s) = %d, want %d", a, b, got, want)
		}
	}
}

func randomNumber(r *rand.Rand) *big.Int {
	bits := r.IntN(400)
	n := new(big.Int)
	for i := 0; i < bits; i++ {
		if r.IntN(2) == 1 {
			n.SetBit(n, i, 1)
		}
	}
	return n
}

func TestValueString(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{Value{}, "<none>"},
		{TrimHorizon, "TRIM_HORIZON"},
		{Value{SequenceNumber: "12", SubSequenceNumber: 3}, "12/3"},
		{Value{SequenceNumber: "12"}, "12"},
		{AtTimestamp(time.Unix(0, 0)), "AT_TIMESTAMP(1970-01-01T00:00:00Z)"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func FuzzParseSequenceNumber(f *testing.F) {
	for _, s := range []string{"0", "123", realSeq, maxSeq, maxSeq + "1", "0000", "1a", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSequenceNumber(s)
		n, ok := new(big.Int).SetString(s, 10)
		valid := ok && len(s) > 0 && s[0] != '-' && s[0] != '+' && n.Sign() >= 0 && len(n.String()) <= MaxSequenceNumberDigits
		for i := 0; i < len(s) && valid; i++ {
			valid = s[i] >= '0' && s[i] <= '9'
		}
		if valid != (err == nil) {
			t.Fatalf("ParseSequenceNumber(%q) err = %v, big.Int valid = %v", s, err, valid)
		}
		if err == nil {
			if got != n.String() {
				t.Fatalf("ParseSequenceNumber(%q) = %q, want %q", s, got, n.String())
			}
			if CompareSequenceNumbers(got, s) != 0 {
				t.Fatalf("normalized %q does not compare equal to %q", got, s)
			}
		}
	})
}

func BenchmarkCompareSequenceNumbers(b *testing.B) {
	a := realSeq
	c := realSeq[:len(realSeq)-1] + "9"
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if CompareSequenceNumbers(a, c) > 0 {
			b.Fatal("wrong order")
		}
	}
}
