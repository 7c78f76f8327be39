package consumer

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/consumer/internal/fetch"
)

// TestHashKeyRangeFilter: with the filter on, an aggregate whose user records
// all lie in the shard's hash key range is delivered whole, and an aggregate
// holding any user record outside it is not delivered at all, its records in
// range neither, as the Java KCL does (so a mixed fleet delivers the same
// records); with the filter off (the default), for a lease without a range, or
// on an AUTO stream, every user record is delivered.
func TestHashKeyRangeFilter(t *testing.T) {
	lower := aggregation.HashKeyRange{End: mustHashKey(t, "170141183460469231731687303715884105727")} // [0, 2^127-1]
	const n = 40
	var keys, inKeys []string
	for i := 0; i < n; i++ {
		pk := "pk" + strconv.Itoa(i)
		keys = append(keys, pk)
		if lower.Contains(aggregation.PartitionKeyHash(pk)) {
			inKeys = append(inKeys, pk)
		}
	}
	if len(inKeys) == 0 || len(inKeys) == n {
		t.Fatalf("test keys do not straddle the range: %d of %d inside", len(inKeys), n)
	}
	ids := func(seq string, n int) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, seq+"/"+strconv.Itoa(i))
		}
		return out
	}
	inside := ids(sq(8), len(inKeys))
	all := append(ids(sq(7), n), inside...)
	for _, tc := range []struct {
		name       string
		filter     bool
		start, end string
		auto       bool
		want       []string
	}{
		{"on", true, lower.Start.String(), lower.End.String(), false, inside},
		{"off", false, lower.Start.String(), lower.End.String(), false, all},
		{"on, lease without range", true, "", "", false, all},
		{"on, AUTO stream", true, lower.Start.String(), lower.End.String(), true, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A straddling aggregate, then one wholly in the lower half.
			batches := []fetch.Batch{{Records: []types.Record{aggregateOf(t, sq(7), keys), aggregateOf(t, sq(8), inKeys)}}}
			proc := &recProc{}
			h := newHarness(t, checkpoint.TrimHorizon, batches, proc, func(c *config, s *ShardInfo) {
				c.hashRangeFilter = tc.filter
				s.StartingHashKey, s.EndingHashKey = tc.start, tc.end
				s.AutoDistribution = tc.auto
			})
			h.start()
			deadline := time.Now().Add(60 * time.Second)
			for {
				if calls, _ := proc.snapshot(); slices.Contains(calls, "ProcessRecords") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no ProcessRecords call")
				}
				time.Sleep(time.Millisecond)
			}
			h.sc.requestShutdown()
			h.wait(t)
			_, recs := proc.snapshot()
			if fmt.Sprint(recs) != fmt.Sprint(tc.want) {
				t.Fatalf("delivered %v\nwant      %v", recs, tc.want)
			}
		})
	}
}

// aggregateOf is a Kinesis record at sequence number seq holding one user
// record per partition key, in order, the i-th with data "user record i".
func aggregateOf(t testing.TB, seq string, keys []string) types.Record {
	t.Helper()
	a, err := aggregation.NewAggregator()
	if err != nil {
		t.Fatal(err)
	}
	for i, pk := range keys {
		if err := a.Add(aggregation.Record{PartitionKey: pk, Data: []byte("user record " + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := a.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	return types.Record{SequenceNumber: aws.String(seq), PartitionKey: aws.String(r.PartitionKey), Data: r.Data}
}

func mustHashKey(t *testing.T, s string) aggregation.HashKey {
	t.Helper()
	k, err := aggregation.ParseHashKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRecordHasPartitionKey: an empty key means none (Kinesis keys are never empty).
func TestRecordHasPartitionKey(t *testing.T) {
	if (&Record{}).HasPartitionKey() || !(&Record{PartitionKey: "k"}).HasPartitionKey() {
		t.Fatal("HasPartitionKey disagrees with PartitionKey")
	}
}
