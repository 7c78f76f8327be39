package fault

import "testing"

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
