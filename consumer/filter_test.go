package consumer

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/consumer/internal/fetch"
)

// TestHashKeyRangeFilter: with the filter on, the user records of an aggregate
// whose hash keys lie outside the shard's range are not delivered, and those
// delivered keep their sub-sequence numbers; with it off (the default), or for
// a lease without a range, every user record is delivered.
func TestHashKeyRangeFilter(t *testing.T) {
	lower := aggregation.HashKeyRange{End: mustHashKey(t, "170141183460469231731687303715884105727")} // [0, 2^127-1]
	const n = 40
	var inRange []string
	for i := 0; i < n; i++ {
		if lower.Contains(aggregation.PartitionKeyHash("pk" + strconv.Itoa(i))) {
			inRange = append(inRange, sq(7)+"/"+strconv.Itoa(i))
		}
	}
	if len(inRange) == 0 || len(inRange) == n {
		t.Fatalf("test keys do not straddle the range: %d of %d inside", len(inRange), n)
	}
	var all []string
	for i := 0; i < n; i++ {
		all = append(all, sq(7)+"/"+strconv.Itoa(i))
	}
	for _, tc := range []struct {
		name       string
		filter     bool
		start, end string
		auto       bool
		want       []string
	}{
		{"on", true, lower.Start.String(), lower.End.String(), false, inRange},
		{"off", false, lower.Start.String(), lower.End.String(), false, all},
		{"on, lease without range", true, "", "", false, all},
		{"on, AUTO stream", true, lower.Start.String(), lower.End.String(), true, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batches := []fetch.Batch{{Records: []types.Record{aggregate(t, sq(7), n)}}}
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
