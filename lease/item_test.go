package lease

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/checkpoint"
)

func S(v string) types.AttributeValue     { return &types.AttributeValueMemberS{Value: v} }
func N(v string) types.AttributeValue     { return &types.AttributeValueMemberN{Value: v} }
func SS(v ...string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }
func B(v []byte) types.AttributeValue     { return &types.AttributeValueMemberB{Value: v} }

const seq56 = "49590338271490256608559692538361571095921575989136588898"

func fullLease() Lease {
	return Lease{
		Key:                          "shardId-000000000002",
		Owner:                        "worker-a",
		Counter:                      42,
		OwnerSwitchesSinceCheckpoint: 3,
		Checkpoint:                   checkpoint.Value{SequenceNumber: seq56, SubSequenceNumber: 7},
		PendingCheckpoint:            checkpoint.Value{SequenceNumber: seq56[:55] + "9"},
		PendingCheckpointState:       []byte("app state"),
		ParentShardIDs:               []string{"shardId-000000000000", "shardId-000000000001"},
		ChildShardIDs:                []string{"shardId-000000000005"},
		StartingHashKey:              "0",
		EndingHashKey:                "170141183460469231731687303715884105727",
		ThroughputKBps:               12.5,
		CheckpointOwner:              "worker-b",
	}
}

func TestMarshalItemTypes(t *testing.T) {
	l := fullLease()
	item := marshalItem(&l)
	want := map[string]string{
		"leaseKey": "S", "leaseOwner": "S", "leaseCounter": "N", "ownerSwitchesSinceCheckpoint": "N",
		"checkpoint": "S", "checkpointSubSequenceNumber": "N", "pendingCheckpoint": "S",
		"pendingCheckpointSubSequenceNumber": "N", "pendingCheckpointState": "B", "parentShardId": "SS",
		"childShardIds": "SS", "startingHashKey": "S", "endingHashKey": "S", "throughputKBps": "N",
		"checkpointOwner": "S", "entityType": "S",
	}
	if len(item) != len(want) {
		t.Errorf("item has %d attributes, want %d: %v", len(item), len(want), item)
	}
	for name, typ := range want {
		if got := describe(item[name]); got != typ && !(typ == "S" && len(got) > 0 && got[0] == '"') {
			t.Errorf("attribute %s has type %s, want %s", name, got, typ)
		}
	}
	if item["entityType"].(*types.AttributeValueMemberS).Value != "LEASE" {
		t.Errorf("entityType = %v", item["entityType"])
	}
	if item["leaseCounter"].(*types.AttributeValueMemberN).Value != "42" {
		t.Errorf("leaseCounter = %v", item["leaseCounter"])
	}
	if item["throughputKBps"].(*types.AttributeValueMemberN).Value != "12.5" {
		t.Errorf("throughputKBps = %v", item["throughputKBps"])
	}
}

func TestItemRoundTrip(t *testing.T) {
	minimal := Lease{Key: "shardId-0", Checkpoint: checkpoint.TrimHorizon}
	multi := fullLease()
	multi.Key = MultiStreamKey("123456789012:orders:1700000000", "shardId-000000000002")
	multi.StreamIdentifier = "123456789012:orders:1700000000"
	multi.ShardID = "shardId-000000000002"
	ts := Lease{Key: "k", Checkpoint: checkpoint.AtTimestamp(time.UnixMilli(1700000000123).UTC())}
	ended := Lease{Key: "k", Owner: "w", Counter: 1, Checkpoint: checkpoint.ShardEnd, PendingCheckpointState: []byte{}}
	for name, l := range map[string]Lease{"full": fullLease(), "minimal": minimal, "multi-stream": multi, "at-timestamp": ts, "shard-end": ended} {
		t.Run(name, func(t *testing.T) {
			got, err := unmarshalItem(marshalItem(&l))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, l) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, l)
			}
		})
	}
}

// TestUnmarshalJavaItems reads items shaped exactly as Java KCL writes them.
func TestUnmarshalJavaItems(t *testing.T) {
	tests := []struct {
		name string
		item map[string]types.AttributeValue
		want Lease
	}{
		{
			// KCL 3.x lease after a graceful handoff request, with the N-typed
			// pendingCheckpointState some versions write.
			name: "kcl3 handoff",
			item: map[string]types.AttributeValue{
				"leaseKey": S("shardId-000000000001"), "leaseOwner": S("new-worker"), "leaseCounter": N("1337"),
				"ownerSwitchesSinceCheckpoint": N("0"), "checkpoint": S(seq56), "checkpointSubSequenceNumber": N("0"),
				"pendingCheckpoint": S(seq56), "pendingCheckpointSubSequenceNumber": N("0"), "pendingCheckpointState": N("0"),
				"startingHashKey": S("170141183460469231731687303715884105728"), "endingHashKey": S("340282366920938463463374607431768211455"),
				"throughputKBps": N("0.83984375"), "checkpointOwner": S("old-worker"), "entityType": S("LEASE"),
			},
			want: Lease{Key: "shardId-000000000001", Owner: "new-worker", Counter: 1337,
				Checkpoint: checkpoint.Value{SequenceNumber: seq56}, PendingCheckpoint: checkpoint.Value{SequenceNumber: seq56},
				StartingHashKey: "170141183460469231731687303715884105728", EndingHashKey: "340282366920938463463374607431768211455",
				ThroughputKBps: 0.83984375, CheckpointOwner: "old-worker"},
		},
		{
			// KCL 1.x/2.x lease: no entityType, no hash range, unassigned, SHARD_END with children.
			name: "kcl2 closed shard",
			item: map[string]types.AttributeValue{
				"leaseKey": S("shardId-000000000000"), "leaseCounter": N("12"), "ownerSwitchesSinceCheckpoint": N("1"),
				"checkpoint": S("SHARD_END"), "checkpointSubSequenceNumber": N("0"),
				"childShardIds": SS("shardId-000000000002", "shardId-000000000001"),
			},
			want: Lease{Key: "shardId-000000000000", Counter: 12, OwnerSwitchesSinceCheckpoint: 1,
				Checkpoint: checkpoint.ShardEnd, ChildShardIDs: []string{"shardId-000000000001", "shardId-000000000002"}},
		},
		{
			name: "multi-stream with binary state",
			item: map[string]types.AttributeValue{
				"leaseKey": S("123456789012:orders:1700000000:shardId-000000000003"), "leaseOwner": S("w"), "leaseCounter": N("5"),
				"ownerSwitchesSinceCheckpoint": N("0"), "checkpoint": S("TRIM_HORIZON"), "checkpointSubSequenceNumber": N("0"),
				"parentShardId": SS("shardId-000000000000"), "pendingCheckpoint": S("12345"), "pendingCheckpointSubSequenceNumber": N("2"),
				"pendingCheckpointState": B([]byte{1, 2, 3}), "streamName": S("123456789012:orders:1700000000"),
				"shardId": S("shardId-000000000003"), "entityType": S("LEASE"),
			},
			want: Lease{Key: "123456789012:orders:1700000000:shardId-000000000003", Owner: "w", Counter: 5,
				Checkpoint: checkpoint.TrimHorizon, ParentShardIDs: []string{"shardId-000000000000"},
				PendingCheckpoint: checkpoint.Value{SequenceNumber: "12345", SubSequenceNumber: 2}, PendingCheckpointState: []byte{1, 2, 3},
				StreamIdentifier: "123456789012:orders:1700000000", ShardID: "shardId-000000000003"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := unmarshalItem(tt.item)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	base := func() map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"leaseKey": S("k"), "leaseCounter": N("1"), "checkpoint": S("TRIM_HORIZON")}
	}
	tests := []struct {
		name   string
		mutate func(map[string]types.AttributeValue)
	}{
		{"worker metrics row", func(m map[string]types.AttributeValue) { m["entityType"] = S("WORKER_METRIC_STATS") }},
		{"leader row", func(m map[string]types.AttributeValue) { m["entityType"] = S("LEADER") }},
		{"no key", func(m map[string]types.AttributeValue) { delete(m, "leaseKey") }},
		{"counter as S", func(m map[string]types.AttributeValue) { m["leaseCounter"] = S("1") }},
		{"counter not a number", func(m map[string]types.AttributeValue) { m["leaseCounter"] = N("x") }},
		{"bad checkpoint", func(m map[string]types.AttributeValue) { m["checkpoint"] = S("12ab") }},
		{"parents as S", func(m map[string]types.AttributeValue) { m["parentShardId"] = S("shardId-0") }},
		{"bad hash range", func(m map[string]types.AttributeValue) {
			m["startingHashKey"] = S("10")
			m["endingHashKey"] = S("5")
		}},
		{"state as S", func(m map[string]types.AttributeValue) { m["pendingCheckpointState"] = S("x") }},
		{"throughput NaN", func(m map[string]types.AttributeValue) { m["throughputKBps"] = N("NaN") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.mutate(m)
			if _, err := unmarshalItem(m); !errors.Is(err, ErrMalformedItem) {
				t.Fatalf("unmarshalItem = %v, want ErrMalformedItem", err)
			}
		})
	}
	if !isLeaseItem(base()) {
		t.Fatal("item without entityType is not a lease")
	}
}

func TestMultiStreamKey(t *testing.T) {
	stream, shard, err := ParseMultiStreamKey("123456789012:orders:1700000000:shardId-000000000003")
	if err != nil || stream != "123456789012:orders:1700000000" || shard != "shardId-000000000003" {
		t.Fatalf("ParseMultiStreamKey = %q %q %v", stream, shard, err)
	}
	for _, bad := range []string{"shardId-0", "a:orders:1:shardId-0", "1:orders:x:shardId-0", "1::1:shardId-0", "1:a:b:c:d"} {
		if _, _, err := ParseMultiStreamKey(bad); !errors.Is(err, ErrMalformedItem) {
			t.Errorf("ParseMultiStreamKey(%q) err = %v", bad, err)
		}
	}
}

func FuzzUnmarshalItem(f *testing.F) {
	f.Add("shardId-0", "w", "12", "TRIM_HORIZON", "0", "0", "10", "1.5", []byte{1})
	f.Add("k", "", "-1", seq56, "3", "", "", "", []byte(nil))
	f.Add("k", "o", "1E+1", "SHARD_END", "1", "x", "y", "NaN", []byte{})
	f.Fuzz(func(t *testing.T, key, owner, counter, cp, sub, start, end, tput string, state []byte) {
		item := map[string]types.AttributeValue{
			"leaseKey": S(key), "leaseCounter": N(counter), "checkpoint": S(cp), "checkpointSubSequenceNumber": N(sub),
			"startingHashKey": S(start), "endingHashKey": S(end), "throughputKBps": N(tput), "pendingCheckpointState": B(state),
		}
		if owner != "" {
			item["leaseOwner"] = S(owner)
		}
		l, err := unmarshalItem(item)
		if err != nil {
			if !errors.Is(err, ErrMalformedItem) {
				t.Fatalf("error %v does not wrap ErrMalformedItem", err)
			}
			return
		}
		again, err := unmarshalItem(marshalItem(&l))
		if err != nil {
			t.Fatalf("re-reading a marshalled lease: %v", err)
		}
		if !reflect.DeepEqual(again, l) {
			t.Fatalf("round trip changed the lease:\n got %+v\nwant %+v", again, l)
		}
	})
}

func BenchmarkMarshalItem(b *testing.B) {
	l := fullLease()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = marshalItem(&l)
	}
}

func BenchmarkUnmarshalItem(b *testing.B) {
	l := fullLease()
	item := marshalItem(&l)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := unmarshalItem(item); err != nil {
			b.Fatal(err)
		}
	}
}
