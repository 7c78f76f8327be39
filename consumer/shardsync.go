package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/lease"
)

// plannedLease is a lease shard sync creates: the shard and where it starts.
type plannedLease struct {
	shard lease.Shard
	start checkpoint.Value
}

// planLeases decides which shards of one stream get a new lease and where each starts,
// given the shards that already have one (by shard ID) and the stream's initial position:
//
//   - TRIM_HORIZON: every shard, at TRIM_HORIZON.
//   - AT_TIMESTAMP: every shard, open or closed, at the timestamp: a closed shard may hold
//     records after it, and a child read at the timestamp skips nothing its parents did
//     not already cover (parents are processed first).
//   - LATEST: a shard with a leased parent (or one planned in this round) starts at
//     TRIM_HORIZON, since it continues a lineage already being read; other open shards
//     start at LATEST; other closed shards get no lease, since they hold only records
//     from before the application started.
//
// Parents are planned before their children (shards are taken in shard-ID order, which
// Kinesis assigns in creation order).
func planLeases(shards []types.Shard, leased map[string]bool, pos checkpoint.Value, streamIdentifier string) []plannedLease {
	sorted := append([]types.Shard(nil), shards...)
	sort.Slice(sorted, func(i, j int) bool { return aws.ToString(sorted[i].ShardId) < aws.ToString(sorted[j].ShardId) })
	has := make(map[string]bool, len(leased)+len(sorted))
	for id, ok := range leased {
		has[id] = ok
	}
	var out []plannedLease
	for _, sh := range sorted {
		id := aws.ToString(sh.ShardId)
		if id == "" || has[id] {
			continue
		}
		parents := shardParents(sh)
		start := pos
		if pos.SequenceNumber == checkpoint.SentinelLatest {
			leasedParent := false
			for _, p := range parents {
				leasedParent = leasedParent || has[p]
			}
			closed := sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil
			switch {
			case leasedParent:
				start = checkpoint.TrimHorizon
			case closed:
				continue
			}
		}
		ls := lease.Shard{ID: id, ParentShardIDs: parents, StreamIdentifier: streamIdentifier}
		if r := sh.HashKeyRange; r != nil {
			ls.StartingHashKey, ls.EndingHashKey = aws.ToString(r.StartingHashKey), aws.ToString(r.EndingHashKey)
		}
		out = append(out, plannedLease{shard: ls, start: start})
		has[id] = true
	}
	return out
}

// childStart is where the lease of a child found at a parent's shard end starts: its
// parent is leased, so TRIM_HORIZON, except that AT_TIMESTAMP applications keep their
// timestamp.
func childStart(pos checkpoint.Value) checkpoint.Value {
	if pos.SequenceNumber == checkpoint.SentinelAtTimestamp {
		return pos
	}
	return checkpoint.TrimHorizon
}

func shardParents(sh types.Shard) []string {
	var ps []string
	if p := aws.ToString(sh.ParentShardId); p != "" {
		ps = append(ps, p)
	}
	if p := aws.ToString(sh.AdjacentParentShardId); p != "" {
		ps = append(ps, p)
	}
	return ps
}

// listShards returns every shard of s.
func (w *Worker) listShards(ctx context.Context, s *streamInfo) ([]types.Shard, error) {
	var shards []types.Shard
	var next *string
	for {
		in := &kinesis.ListShardsInput{NextToken: next}
		if next == nil {
			in.StreamName = aws.String(s.Name)
		}
		out, err := w.kin.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil || len(out.Shards) == 0 {
			return shards, nil
		}
		next = out.NextToken
	}
}

// fullShardSyncEvery is how many shard syncs may in a row find the same shards as the
// last full sync and skip reading the lease table: every tenth sync reads it anyway, for
// leases deleted by hand or parents whose children started since.
const fullShardSyncEvery = 10

// shardSyncState is what the leader's shard sync remembers between syncs (only the sync
// loop touches it).
type shardSyncState struct {
	// shards is the set of shard IDs, per stream, at the last full sync that succeeded;
	// skipped counts the syncs since then that found the same set.
	shards  map[string]map[string]bool
	skipped int
}

// syncShards lists every stream's shards and, unless they are the shards of the last
// full sync (and full is not set, and fewer than fullShardSyncEvery syncs were skipped),
// reads the lease table (eventually consistent: every create and delete is
// conditional), creates the leases of shards that have none (planLeases decides where
// they start) and deletes finished leases of shards past the stream's retention. The
// leader runs it; a shard set unchanged since a full sync needs neither.
func (w *Worker) syncShards(ctx context.Context, st *shardSyncState, full bool) error {
	w.mu.Lock()
	streams := append([]*streamInfo(nil), w.streams...)
	w.mu.Unlock()
	listed := make([][]types.Shard, len(streams))
	ids := make(map[string]map[string]bool, len(streams))
	for i, s := range streams {
		shards, err := w.listShards(ctx, s)
		if err != nil {
			st.shards = nil
			return fmt.Errorf("list shards of %s: %w", s.Name, err)
		}
		listed[i] = shards
		set := make(map[string]bool, len(shards))
		for _, sh := range shards {
			set[aws.ToString(sh.ShardId)] = true
		}
		ids[s.Name] = set
	}
	if !full && st.skipped < fullShardSyncEvery-1 && sameShards(st.shards, ids) {
		st.skipped++
		return nil
	}
	st.shards, st.skipped = nil, 0
	leases, err := w.store.ListEventuallyConsistent(ctx)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	var errs []error
	for i, s := range streams {
		shards := listed[i]
		leased := map[string]bool{}
		for i := range leases {
			if id, ok := w.shardOfKey(s, leases[i].Key); ok {
				leased[id] = true
			}
		}
		for id := range ids[s.Name] {
			live[id] = true
		}
		ident := ""
		if w.cfg.multiStream {
			ident = s.identifier
		}
		plan := planLeases(shards, leased, s.InitialPosition.v, ident)
		if len(plan) == 0 {
			continue
		}
		create := make([]lease.Shard, len(plan))
		for i, p := range plan {
			create[i] = p.shard
			create[i].Start = p.start
		}
		created, err := lease.CreateLeases(ctx, w.store, create, s.InitialPosition.v)
		if err != nil {
			errs = append(errs, err)
		}
		if len(created) > 0 {
			w.assigner.RequestScan() // place them at the next round, not the next scan
		}
	}
	if len(errs) == 0 {
		if _, err := lease.DeleteCompleted(ctx, w.store, leases, live); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		st.shards = ids
	}
	return errors.Join(errs...)
}

// sameShards reports whether two sets of shard IDs per stream are equal (false when a is
// nil: no full sync succeeded yet).
func sameShards(a, b map[string]map[string]bool) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	for name, x := range a {
		y, ok := b[name]
		if !ok || len(x) != len(y) {
			return false
		}
		for id := range x {
			if !y[id] {
				return false
			}
		}
	}
	return true
}

// childrenFound creates the leases of an ended shard's children (from ChildShards) with
// their parents recorded, records them as the parent's children, and asks for a shard
// sync, which finds the children itself where Kinesis reports none.
func (w *Worker) childrenFound(ctx context.Context, s *streamInfo, parentKey string, children []types.ChildShard) error {
	ident := ""
	if w.cfg.multiStream {
		ident = s.identifier
	}
	var ids, announce []string
	for _, c := range children {
		id := aws.ToString(c.ShardId)
		if id == "" {
			continue
		}
		ids = append(ids, id)
		sh := lease.Shard{ID: id, ParentShardIDs: append([]string(nil), c.ParentShards...), StreamIdentifier: ident}
		if r := c.HashKeyRange; r != nil {
			sh.StartingHashKey, sh.EndingHashKey = aws.ToString(r.StartingHashKey), aws.ToString(r.EndingHashKey)
		}
		created, err := lease.CreateLeases(ctx, w.store, []lease.Shard{sh}, childStart(s.InitialPosition.v))
		if err != nil {
			return err
		}
		announce = append(announce, created...)
	}
	// The leader scans the lease table only every lease scan interval: the children are
	// announced in this worker's metrics row, which it reads every round.
	if err := w.reporter.Announce(ctx, announce); err != nil {
		w.log.Debug("consumer: announcing child leases failed; the leader's next scan finds them", zap.Error(err))
	}
	if len(ids) > 0 {
		if err := w.store.UpdateChildShards(ctx, parentKey, ids); err != nil && !errors.Is(err, lease.ErrNotFound) {
			return err
		}
	}
	w.requestSync()
	return nil
}
