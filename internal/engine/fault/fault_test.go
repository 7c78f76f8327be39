package fault

import (
	"errors"
	"testing"
	"time"
)

func TestMostSpecificRuleWins(t *testing.T) {
	in := New(1)
	in.Set("*", Rule{ErrorRate: 1, ErrorCode: "A"})
	in.Set("Kinesis.*", Rule{ErrorRate: 1, ErrorCode: "B"})
	in.Set("Kinesis.PutRecords", Rule{ErrorRate: 1, ErrorCode: "C"})
	for _, tc := range []struct{ svc, op, want string }{
		{"Kinesis", "PutRecords", "C"},
		{"Kinesis", "GetRecords", "B"},
		{"DynamoDB", "GetItem", "A"},
	} {
		if got := in.Decide(tc.svc, tc.op).ErrorCode; got != tc.want {
			t.Errorf("%s.%s: got %q, want %q", tc.svc, tc.op, got, tc.want)
		}
	}
	in.Reset()
	if a := in.Decide("Kinesis", "PutRecords"); a.Failing() || a.Drop || a.DropAfter {
		t.Fatalf("after Reset: %+v", a)
	}
}

func TestErrorRateIsApproximatelyHonoured(t *testing.T) {
	in := New(7)
	in.Set("DynamoDB.UpdateItem", Rule{ErrorRate: 0.05})
	fails := 0
	const n = 20000
	for i := 0; i < n; i++ {
		a := in.Decide("DynamoDB", "UpdateItem")
		if a.Failing() {
			fails++
			if a.StatusCode != 500 || a.ErrorCode != "InternalFailure" {
				t.Fatalf("default internal fault: %+v", a)
			}
		}
	}
	if fails < n*4/100 || fails > n*6/100 {
		t.Fatalf("%d of %d calls failed at a 5%% rate", fails, n)
	}
}

func TestDropAfterAndDrop(t *testing.T) {
	in := New(3)
	in.Set("*", Rule{DropRate: 1})
	if !in.Decide("X", "Y").Drop {
		t.Fatal("DropRate 1 did not drop")
	}
	in.Set("*", Rule{DropAfterRate: 1, ErrorCode: "T", StatusCode: 503})
	a := in.Decide("X", "Y")
	if !a.DropAfter || a.Failing() {
		t.Fatalf("DropAfterRate 1: %+v", a)
	}
}

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		key  string
		rule Rule
		bad  bool
	}{
		{spec: "Kinesis.PutRecords:error=0.1,code=ProvisionedThroughputExceededException", key: "Kinesis.PutRecords",
			rule: Rule{ErrorRate: 0.1, ErrorCode: "ProvisionedThroughputExceededException"}},
		{spec: "DynamoDB.*:latency=20ms", key: "DynamoDB.*", rule: Rule{Latency: 20 * time.Millisecond}},
		{spec: "*:drop=0.01,drop-after=0.02", key: "*", rule: Rule{DropRate: 0.01, DropAfterRate: 0.02}},
		{spec: "*:error=1,status=503,message=slow, down: now", key: "*", rule: Rule{ErrorRate: 1, StatusCode: 503, ErrorMessage: "slow, down: now"}},
		{spec: "Kinesis.PutRecords", bad: true},
		{spec: ":error=1", bad: true},
		{spec: "*:error=2", bad: true},
		{spec: "*:error=NaN", bad: true},
		{spec: "*:drop=-0.1", bad: true},
		{spec: "*:latency=-1s", bad: true},
		{spec: "*:status=200,error=1", bad: true},
		{spec: "*:code=X", bad: true},
		{spec: "*:error=1,code=a\"b c", bad: true},
		{spec: "*:speed=1", bad: true},
		{spec: "*:error", bad: true},
	} {
		key, rule, err := ParseSpec(tc.spec)
		if tc.bad {
			if !errors.Is(err, ErrInvalidRule) {
				t.Errorf("%q: err %v, want ErrInvalidRule", tc.spec, err)
			}
			continue
		}
		if err != nil || key != tc.key || rule != tc.rule {
			t.Errorf("%q: got %q %+v %v, want %q %+v", tc.spec, key, rule, err, tc.key, tc.rule)
		}
	}
}

// FuzzParseSpec checks that the -fault flag parser never panics and that every rule it
// accepts is valid.
func FuzzParseSpec(f *testing.F) {
	f.Add("Kinesis.PutRecords:error=0.1,code=ProvisionedThroughputExceededException")
	f.Add("*:drop=0.01,drop-after=0.01,latency=5ms")
	f.Add("*:error=1,status=500,message=a,b")
	f.Fuzz(func(t *testing.T, spec string) {
		_, rule, err := ParseSpec(spec)
		if err == nil {
			if verr := rule.Validate(); verr != nil {
				t.Fatalf("%q accepted with an invalid rule: %v", spec, verr)
			}
		}
	})
}
