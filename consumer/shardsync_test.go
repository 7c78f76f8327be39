package consumer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/lease"
)

// shard builds a ListShards entry: "id" open, "id!" closed, with up to two parents.
func shard(spec string, parents ...string) types.Shard {
	id, closed := strings.CutSuffix(spec, "!")
	sh := types.Shard{ShardId: aws.String(id), SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
		HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("9")}}
	if closed {
		sh.SequenceNumberRange.EndingSequenceNumber = aws.String("2")
	}
	if len(parents) > 0 {
		sh.ParentShardId = aws.String(parents[0])
	}
	if len(parents) > 1 {
		sh.AdjacentParentShardId = aws.String(parents[1])
	}
	return sh
}

func TestPlanLeasesInitialPositions(t *testing.T) {
	at := checkpoint.AtTimestamp(time.Unix(1700000000, 0))
	// s0 was split into s2 and s3; s1 and s2 were merged into s4. s3 and s4 are open.
	lineage := []types.Shard{shard("s4", "s1", "s2"), shard("s0!"), shard("s1!"), shard("s2!", "s0"), shard("s3", "s0")}
	tests := []struct {
		name   string
		shards []types.Shard
		leased []string
		pos    checkpoint.Value
		want   string // id=start, in creation order
	}{
		{"trim horizon leases every shard", lineage, nil, checkpoint.TrimHorizon,
			"s0=TRIM_HORIZON s1=TRIM_HORIZON s2=TRIM_HORIZON s3=TRIM_HORIZON s4=TRIM_HORIZON"},
		{"latest skips closed shards and starts open ones at LATEST", lineage, nil, checkpoint.Latest,
			"s3=LATEST s4=LATEST"},
		{"latest continues a leased lineage from TRIM_HORIZON", lineage, []string{"s0"}, checkpoint.Latest,
			"s2=TRIM_HORIZON s3=TRIM_HORIZON s4=TRIM_HORIZON"},
		{"latest: child of one leased parent of a merge", lineage, []string{"s1"}, checkpoint.Latest,
			"s3=LATEST s4=TRIM_HORIZON"},
		{"at timestamp leases closed shards too, all at the timestamp", lineage, nil, at,
			"s0=AT_TIMESTAMP s1=AT_TIMESTAMP s2=AT_TIMESTAMP s3=AT_TIMESTAMP s4=AT_TIMESTAMP"},
		{"existing leases are left alone", lineage, []string{"s0", "s1", "s2"}, checkpoint.TrimHorizon,
			"s3=TRIM_HORIZON s4=TRIM_HORIZON"},
		{"nothing new", []types.Shard{shard("s0")}, []string{"s0"}, checkpoint.Latest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leased := map[string]bool{}
			for _, id := range tt.leased {
				leased[id] = true
			}
			var got []string
			for _, p := range planLeases(tt.shards, leased, tt.pos, "") {
				got = append(got, fmt.Sprintf("%s=%s", p.shard.ID, p.start.SequenceNumber))
				if p.start.SequenceNumber == checkpoint.SentinelAtTimestamp && !p.start.Timestamp.Equal(at.Timestamp) {
					t.Errorf("%s starts at %v, want the configured timestamp", p.shard.ID, p.start.Timestamp)
				}
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Fatalf("planned %q, want %q", g, tt.want)
			}
		})
	}
}

func TestPlanLeasesRecordsLineage(t *testing.T) {
	plan := planLeases([]types.Shard{shard("s0!"), shard("s1", "s0"), shard("s2", "s0", "s9")}, nil, checkpoint.TrimHorizon, "acct:orders:1")
	if len(plan) != 3 {
		t.Fatalf("plan %+v", plan)
	}
	if p := plan[2].shard; len(p.ParentShardIDs) != 2 || p.ParentShardIDs[0] != "s0" || p.ParentShardIDs[1] != "s9" ||
		p.StreamIdentifier != "acct:orders:1" || p.StartingHashKey != "0" || p.EndingHashKey != "9" {
		t.Fatalf("lineage not recorded: %+v", p)
	}
}

func TestChildStart(t *testing.T) {
	at := checkpoint.AtTimestamp(time.Unix(1700000000, 0))
	for _, tt := range []struct{ pos, want checkpoint.Value }{
		{checkpoint.TrimHorizon, checkpoint.TrimHorizon},
		{checkpoint.Latest, checkpoint.TrimHorizon},
		{at, at},
	} {
		if got := childStart(tt.pos); got.SequenceNumber != tt.want.SequenceNumber || !got.Timestamp.Equal(tt.want.Timestamp) {
			t.Errorf("childStart(%v) = %v, want %v", tt.pos, got, tt.want)
		}
	}
}

// scanCountingDB counts the Scan calls and whether each was consistent.
type scanCountingDB struct {
	DynamoDBAPI
	mu                  sync.Mutex
	scans, consistentNo int
}

func (d *scanCountingDB) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	d.mu.Lock()
	d.scans++
	if !aws.ToBool(in.ConsistentRead) {
		d.consistentNo++
	}
	d.mu.Unlock()
	return d.DynamoDBAPI.Scan(ctx, in, opts...)
}

func (d *scanCountingDB) counts() (scans, eventual int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.scans, d.consistentNo
}

// TestShardSyncReadsLeasesOnlyWhenShardsChange: the leader's shard sync reads the lease
// table (eventually consistent, once) on its first sync, when the shards changed (a split:
// the children get leases), when forced (a shard end) and every tenth sync; a sync that
// finds the shards of the last full sync reads nothing but ListShards.
func TestShardSyncReadsLeasesOnlyWhenShardsChange(t *testing.T) {
	ctx := context.Background()
	s := newMemStream("orders", 4)
	kin := &memKinesis{streams: map[string]*memStream{"orders": s}}
	db := &scanCountingDB{DynamoDBAPI: leaseDB(t)}
	w, err := New("app", kin, db, newCollector().factory(), append(testOptions("w1"), WithLeaseTables(lease.Tables{
		Lease: "app", CoordinatorState: "app-CoordinatorState", WorkerMetrics: "app-WorkerMetricStats"}))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.setup(ctx); err != nil {
		t.Fatal(err)
	}
	var st shardSyncState
	syncOnce := func(full bool, wantScans int) {
		t.Helper()
		before, ecBefore := db.counts()
		if err := w.syncShards(ctx, &st, full); err != nil {
			t.Fatal(err)
		}
		after, ecAfter := db.counts()
		if after-before != wantScans {
			t.Fatalf("sync (full %v) scanned the lease table %d times, want %d", full, after-before, wantScans)
		}
		if ecAfter-ecBefore != after-before {
			t.Fatalf("%d of the sync's %d scans consistent, want none", (after-before)-(ecAfter-ecBefore), after-before)
		}
	}
	syncOnce(false, 1)
	if n := len(leases(t, db)); n != 4 {
		t.Fatalf("%d leases after the first sync, want 4", n)
	}
	for i := 0; i < fullShardSyncEvery-1; i++ {
		syncOnce(false, 0)
	}
	syncOnce(false, 1) // the tenth reads the table anyway
	syncOnce(false, 0)
	s.split("shardId-000000000000")
	syncOnce(false, 1)
	if n := len(leases(t, db)); n != 6 {
		t.Fatalf("%d leases after the split, want 6", n)
	}
	syncOnce(false, 0)
	syncOnce(true, 1)
}
