package peers

import (
	"fmt"
	"os/exec"
	"slices"
	"testing"
)

// TestShardUnknownEvents runs a worker process whose log names shards missing from its
// shard cache as Java KCL 3.x's KinesisShardDetector does at debug level, in writes that
// split lines, and checks that each shard yields one shard-unknown event and that the rest
// of the log is left alone.
func TestShardUnknownEvents(t *testing.T) {
	const miss = "[ShardRecordProcessor-0003] DEBUG software.amazon.kinesis.leases.KinesisShardDetector - Cannot find the shard given the shardId %s. Cache misses: %d"
	script := fmt.Sprintf(`printf 'EVT\tw1\tready\t-\t1\n'
printf '%%s\n' '%s' >&2
printf '%%s' '%s' >&2
sleep 0.2
printf '%%s\n%%s\n' '0. Cache misses: 2' '[main] WARN software.amazon.kinesis.lifecycle.ProcessTask - Cannot get the shard for this ProcessTask' >&2
printf '%%s\n' '%s' >&2
printf 'EVT\tw1\tinit\tshardId-000000000001\t2\n'
exec cat >/dev/null`,
		fmt.Sprintf(miss, "shardId-000000000009", 1),
		"[main] DEBUG software.amazon.kinesis.leases.KinesisShardDetector - Cannot find the shard given the shardId shardId-00000000001",
		fmt.Sprintf(miss, "shardId-000000000009", 3))
	w := StartWorkerProcess(t, "w1", exec.Command("sh", "-c", script))
	var got []string
	waitFor(t, func() error {
		got = got[:0]
		for _, ev := range w.Events() {
			got = append(got, ev.Event+" "+ev.Shard)
		}
		if !slices.Contains(got, "init shardId-000000000001") || !slices.Contains(got, "shard-unknown shardId-000000000010") {
			return fmt.Errorf("events %v", got)
		}
		return nil
	})
	want := []string{"ready -", "shard-unknown shardId-000000000009", "shard-unknown shardId-000000000010", "init shardId-000000000001"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if bad := w.Malformed(); len(bad) > 0 {
		t.Fatalf("malformed output %q", bad)
	}
}
