package producer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/hashkey"
)

// stream is the producer's state for one Kinesis stream: its limits and its shard map.
type stream struct {
	p             *Producer
	name          string
	maxRecordSize int
	ready         chan struct{}
	err           error

	shards atomic.Pointer[shardMap]

	refreshMu   sync.Mutex
	refreshing  bool
	refreshDone chan struct{}
	lastRefresh atomic.Int64
	stale       atomic.Bool
	// retiredBusy counts retired shards that still have a request in flight; in ordered
	// mode no shard of the stream sends while it is not zero.
	retiredBusy atomic.Int32
	// moving is set from a map swap until the records of the retired shards are queued
	// in the new ones; in ordered mode no shard of the stream sends meanwhile, so a
	// record put into a new shard does not overtake an older one of its key in transit.
	moving atomic.Bool
	// auto is set while DescribeStreamSummary reports the AUTO record distribution: the
	// service places records, so the producer neither aggregates nor predicts shards,
	// and records without a partition key are accepted.
	auto atomic.Bool

	streamCounters
}

// shardMap is an immutable snapshot of a stream's open shards, sorted by hash key.
type shardMap struct {
	shards []*shard
	byID   map[string]*shard
	// ranges holds the hash key range of every listed shard, closed ones included.
	ranges map[string]hashkey.Range
	// open is the number of open shards of an AUTO stream, whose map holds one buffer.
	open int
}

// find returns the shard owning key k.
func (m *shardMap) find(k hashkey.Key) *shard {
	s := m.shards
	i := sort.Search(len(s), func(i int) bool { return k.Cmp(s[i].rng.End) <= 0 })
	if i == len(s) || !s[i].rng.Contains(k) {
		return nil
	}
	return s[i]
}

func newStream(p *Producer, name string) *stream {
	return &stream{p: p, name: name, ready: make(chan struct{})}
}

// discover reads the stream's maximum record size and distribution, and lists its
// shards.
func (st *stream) discover(ctx context.Context) error {
	if err := st.describe(ctx, true); err != nil {
		return err
	}
	m, err := st.list(ctx)
	if err != nil {
		return err
	}
	st.shards.Store(m)
	st.lastRefresh.Store(st.p.now())
	return nil
}

// describe reads DescribeStreamSummary: the record distribution strategy always, the
// maximum record size at first (unless configured).
func (st *stream) describe(ctx context.Context, first bool) error {
	out, err := st.p.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(st.name)})
	if err != nil {
		return &ServiceError{Op: "DescribeStreamSummary", Stream: st.name, Code: errorCodeOf(err), Err: err}
	}
	sum := out.StreamDescriptionSummary
	if first {
		st.maxRecordSize = st.p.cfg.maxRecordSize
		if st.maxRecordSize == 0 {
			st.maxRecordSize = DefaultMaxRecordSize
			if sum != nil && sum.MaxRecordSizeInKiB != nil {
				if n := int(*sum.MaxRecordSizeInKiB) << 10; n > 0 {
					st.maxRecordSize = n
				}
			}
		}
	}
	st.auto.Store(sum != nil && sum.RecordDistributionStrategy == types.RecordDistributionStrategyAuto)
	return nil
}

func errorCodeOf(err error) string {
	c := errorCode(err)
	if c == "Exception" {
		return ""
	}
	return c
}

// list reads the open shards with ListShards, reusing the shard states that still exist.
func (st *stream) list(ctx context.Context) (*shardMap, error) {
	old := st.shards.Load()
	var token *string
	m := &shardMap{byID: make(map[string]*shard), ranges: make(map[string]hashkey.Range)}
	for {
		in := &kinesis.ListShardsInput{}
		if token != nil {
			in.NextToken = token
		} else {
			in.StreamName = aws.String(st.name)
		}
		out, err := st.p.client.ListShards(ctx, in)
		if err != nil {
			return nil, &ServiceError{Op: "ListShards", Stream: st.name, Code: errorCodeOf(err), Err: err}
		}
		for _, s := range out.Shards {
			if s.ShardId == nil || s.HashKeyRange == nil || s.HashKeyRange.StartingHashKey == nil || s.HashKeyRange.EndingHashKey == nil {
				continue
			}
			r, err := hashkey.ParseRange(*s.HashKeyRange.StartingHashKey, *s.HashKeyRange.EndingHashKey)
			if err != nil {
				return nil, &ServiceError{Op: "ListShards", Stream: st.name, ShardID: *s.ShardId, Message: "bad hash key range", Err: err}
			}
			m.ranges[*s.ShardId] = r
			if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
				continue // closed
			}
			var sh *shard
			if old != nil {
				if o := old.byID[*s.ShardId]; o != nil && o.rng == r {
					sh = o
				}
			}
			if sh == nil {
				sh = newShard(st, *s.ShardId, r)
			}
			m.byID[sh.id] = sh
			m.shards = append(m.shards, sh)
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		token = out.NextToken
	}
	if len(m.shards) == 0 {
		return nil, &ServiceError{Op: "ListShards", Stream: st.name, Message: "no open shards"}
	}
	if st.auto.Load() {
		// One buffer for the whole stream; it stays across refreshes while the number
		// of open shards, and so its rate, does not change.
		open := len(m.shards)
		var sh *shard
		if old != nil && len(old.shards) == 1 && old.shards[0].auto && old.open == open {
			sh = old.shards[0]
		} else {
			sh = newAutoShard(st, open)
		}
		m.shards, m.byID, m.open = []*shard{sh}, map[string]*shard{"": sh}, open
		return m, nil
	}
	sort.Slice(m.shards, func(i, j int) bool { return m.shards[i].rng.Start.Less(m.shards[j].rng.Start) })
	return m, nil
}

// requestRefresh starts a shard map refresh unless one is running, and returns a channel
// closed when the refresh in progress (or the one started) ends.
func (st *stream) requestRefresh() <-chan struct{} {
	st.refreshMu.Lock()
	defer st.refreshMu.Unlock()
	if st.refreshing {
		return st.refreshDone
	}
	if st.p.ctx.Err() != nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	st.refreshing = true
	st.refreshDone = make(chan struct{})
	done := st.refreshDone
	st.p.workers.Add(1)
	go func() {
		defer st.p.workers.Done()
		st.refresh()
		st.refreshMu.Lock()
		st.refreshing = false
		close(done)
		st.refreshMu.Unlock()
	}()
	return done
}

// refresh lists the shards again (retrying with backoff until the producer stops), swaps
// the map in and moves the records of shards that closed to the shards that replaced them.
func (st *stream) refresh() {
	p := st.p
	var m *shardMap
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.requestTimeout)
		err := st.describe(ctx, false)
		if err == nil {
			m, err = st.list(ctx)
		}
		cancel()
		if err == nil {
			break
		}
		p.log.Warn("producer: listing shards failed", zap.String("stream", st.name), zap.Error(err))
		p.metrics.listFailed(st, err, true)
		if clock.Sleep(p.ctx, nil, p.retry.Delay(errorClass(err), attempt)) != nil {
			return
		}
	}
	st.stale.Store(false)
	st.lastRefresh.Store(p.now())
	st.moving.Store(true)
	old := st.shards.Swap(m)
	var moved []*krec
	for _, sh := range old.shards {
		if m.byID[sh.id] == sh {
			continue
		}
		moved = append(moved, sh.retire()...)
	}
	p.log.Debug("producer: shard map refreshed", zap.String("stream", st.name), zap.Int("shards", len(m.shards)), zap.Int("moved", len(moved)))
	if len(moved) > 0 {
		st.repredict(moved)
	}
	st.moving.Store(false)
	p.signal()
}

// enqueue adds one validated, reserved user record to its shard's buffer.
func (st *stream) enqueue(rec *Record, hk hashkey.Key, u userRec, urgent bool) {
	for {
		sh := st.shards.Load().find(hk)
		if sh == nil {
			// A map with a gap: list again and retry.
			<-st.requestRefresh()
			continue
		}
		if sh.add(rec, hk, u, urgent) {
			return
		}
	}
}

// repredict puts the user records of ks (taken from a retired shard, or written to a
// shard other than their own) back ahead of the records buffered for their current shards.
func (st *stream) repredict(ks []*krec) {
	type item struct {
		rec aggregation.Record
		hk  hashkey.Key
		u   userRec
		k   *krec
	}
	var items []item
	var consumed []*krec
	auto := st.auto.Load()
	for _, k := range ks {
		if !k.aggregated && k.pk == "" && !auto {
			st.p.finish(k, &RecordError{Stream: st.name, ShardID: k.sh.id, Err: fmt.Errorf("%w: stream %s no longer uses AUTO record distribution, and the record has no partition key", ErrInvalidRecord, st.name)}, true)
			continue
		}
		if !k.aggregated {
			hk, err := (aggregation.Record{PartitionKey: k.pk, ExplicitHashKey: k.ehk}).HashKey()
			if err != nil {
				st.p.finish(k, &RecordError{Stream: st.name, ShardID: k.sh.id, Err: err}, true)
				continue
			}
			data, err := k.plainData()
			if err != nil {
				st.p.finish(k, &RecordError{Stream: st.name, ShardID: k.sh.id, Err: fmt.Errorf("producer: re-predicting a record: %w", err)}, true)
				continue
			}
			items = append(items, item{rec: aggregation.Record{PartitionKey: k.pk, ExplicitHashKey: k.ehk, Data: data}, hk: hk, u: k.users[0], k: k})
			consumed = append(consumed, k)
			continue
		}
		k.sealNow()
		urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: k.pk, ExplicitHashKey: k.ehk, Data: k.data})
		if err != nil || len(urs) != len(k.users) {
			if err == nil {
				err = errors.New("aggregate does not hold its records")
			}
			st.p.finish(k, &RecordError{Stream: st.name, ShardID: k.sh.id, Err: fmt.Errorf("producer: re-predicting an aggregate: %w", err)}, true)
			continue
		}
		for i, ur := range urs {
			r := aggregation.Record{PartitionKey: ur.PartitionKey, ExplicitHashKey: ur.ExplicitHashKey, Data: ur.Data, Tags: ur.Tags()}
			hk, _ := r.HashKey()
			items = append(items, item{rec: r, hk: hk, u: k.users[i], k: k})
		}
		consumed = append(consumed, k)
	}
	// Group by new shard, keeping order, and rebuild Kinesis records for each.
	for len(items) > 0 {
		m := st.shards.Load()
		groups := make(map[*shard][]int)
		var order []*shard
		for i, it := range items {
			sh := m.find(it.hk)
			if sh == nil {
				continue
			}
			if _, ok := groups[sh]; !ok {
				order = append(order, sh)
			}
			groups[sh] = append(groups[sh], i)
		}
		if len(order) == 0 {
			<-st.requestRefresh()
			if st.p.ctx.Err() != nil {
				for _, it := range items {
					st.p.failUser(st, it.k, it.u, &RecordError{Stream: st.name, ShardID: it.k.sh.id, Err: ErrClosed})
				}
				return
			}
			continue
		}
		var rest []item
		for _, sh := range order {
			idx := groups[sh]
			built := st.p.rebuild(sh, len(idx), func(i int) (aggregation.Record, hashkey.Key, userRec, *krec) {
				it := items[idx[i]]
				return it.rec, it.hk, it.u, it.k
			})
			if !sh.prepend(built) {
				for _, i := range idx {
					rest = append(rest, items[i])
				}
				for _, k := range built {
					st.p.putKrec(k)
				}
			}
		}
		// Records of the source krecs were copied; the sources are done.
		items = rest
	}
	for _, k := range consumed {
		k.users = k.users[:0]
		k.owned = false // rebuilt records may still point into its data
		st.p.putKrec(k)
	}
}

// failAll fails every record buffered in the stream's shards with err.
func (st *stream) failAll(err error) {
	m := st.shards.Load()
	if m == nil {
		return
	}
	for _, sh := range m.shards {
		for _, k := range sh.retire() {
			st.p.finish(k, &RecordError{Stream: st.name, ShardID: sh.id, Err: err, Last: k.lastErr}, true)
		}
	}
}
