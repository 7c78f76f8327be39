package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/consumer/internal/fetch"
)

// shardScript is a scripted shard: Kinesis records (plain and KPL aggregates) whose user
// records carry "key#n", n counting from 1 per key in shard order.
type shardScript struct {
	kin      []types.Record
	payloads []string // every user record, in shard order
	pos      []checkpoint.Value
	arrival  []time.Time
}

// newShardScript writes n user records over keys; with aggEvery > 0 every aggEvery-th
// Kinesis record is an aggregate of up to 8 user records (of different keys).
func newShardScript(t testing.TB, n, keys, aggEvery int, arrival func(i int) time.Time) *shardScript {
	t.Helper()
	s := &shardScript{}
	next := map[string]int{}
	rng := rand.New(rand.NewPCG(1, 2))
	payload := func() (string, string) {
		k := "key" + strconv.Itoa(rng.IntN(keys))
		next[k]++
		return k, k + "#" + strconv.Itoa(next[k])
	}
	for i := 0; len(s.payloads) < n; i++ {
		seq := sq(i)
		at := time.Now()
		if arrival != nil {
			at = arrival(len(s.payloads))
		}
		if aggEvery > 0 && i%aggEvery == aggEvery-1 {
			a, err := aggregation.NewAggregator()
			if err != nil {
				t.Fatal(err)
			}
			m := min(1+rng.IntN(8), n-len(s.payloads))
			for j := 0; j < m; j++ {
				k, p := payload()
				if err := a.Add(aggregation.Record{PartitionKey: k, Data: []byte(p)}); err != nil {
					t.Fatal(err)
				}
				s.payloads = append(s.payloads, p)
				s.pos = append(s.pos, checkpoint.Value{SequenceNumber: seq, SubSequenceNumber: int64(j)})
				s.arrival = append(s.arrival, at)
			}
			r, err := a.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			s.kin = append(s.kin, types.Record{SequenceNumber: aws.String(seq), PartitionKey: aws.String(r.PartitionKey), Data: r.Data, ApproximateArrivalTimestamp: aws.Time(at)})
			continue
		}
		k, p := payload()
		s.payloads = append(s.payloads, p)
		s.pos = append(s.pos, checkpoint.Value{SequenceNumber: seq})
		s.arrival = append(s.arrival, at)
		s.kin = append(s.kin, types.Record{SequenceNumber: aws.String(seq), PartitionKey: aws.String(k), Data: []byte(p), ApproximateArrivalTimestamp: aws.Time(at)})
	}
	return s
}

// batches cuts the Kinesis records from the one at sequence number from (all when
// empty) into batches of per records; the last one ends the shard when end is set.
func (s *shardScript) batches(from string, per int, end bool) []fetch.Batch {
	recs := s.kin
	if from != "" {
		for i := range recs {
			if aws.ToString(recs[i].SequenceNumber) == from {
				recs = recs[i:]
				break
			}
		}
	}
	var out []fetch.Batch
	for len(recs) > 0 {
		n := min(per, len(recs))
		out = append(out, fetch.Batch{Records: recs[:n]})
		recs = recs[n:]
	}
	if end {
		if len(out) == 0 {
			out = append(out, fetch.Batch{})
		}
		out[len(out)-1].ShardEnd = true
	}
	return out
}

// orderSink checks that each key's records arrive once and in order.
type orderSink struct {
	mu         sync.Mutex
	last       map[string]int
	seen       map[string]int
	violations []string
	exact      bool // every record exactly once: n must follow the key's last n
}

func newOrderSink(exact bool) *orderSink {
	return &orderSink{last: map[string]int{}, seen: map[string]int{}, exact: exact}
}

func (o *orderSink) add(recs []Record) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range recs {
		k, n := splitData(r.Data)
		p := o.last[k]
		if (o.exact && n != p+1) || (!o.exact && n <= p && len(o.violations) < 10) {
			o.violations = append(o.violations, fmt.Sprintf("%s: %d after %d", k, n, p))
		}
		o.last[k] = n
		o.seen[string(r.Data)]++
	}
}

func (o *orderSink) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.seen)
}

func withLanes(n int, maxRecords int32, pol FailurePolicy) func(*config, *ShardInfo) {
	return func(c *config, _ *ShardInfo) {
		c.lanes, c.maxRecords, c.policy = n, maxRecords, pol
	}
}

// TestLanesKeepPerKeyOrder handles 200,000 user records (plain and aggregated) in 8
// lanes with random handler delays: every record is handled exactly once, each key's in
// order, and the shard ends checkpointed at SHARD_END.
func TestLanesKeepPerKeyOrder(t *testing.T) {
	s := newShardScript(t, 200000, 1000, 5, nil)
	sink := newOrderSink(true)
	var calls atomic.Int64
	var inFlight, maxInFlight atomic.Int32
	fn := func(ctx context.Context, _ ShardInfo, recs []Record) error {
		calls.Add(1)
		n := inFlight.Add(1)
		for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
		}
		time.Sleep(time.Duration(rand.IntN(400)) * time.Microsecond)
		sink.add(recs)
		inFlight.Add(-1)
		return nil
	}
	proc, _ := HandlerFunc(fn)(ShardInfo{})
	h := newHarnessFor(t, context.Background(), newMemStore("w1"), checkpoint.TrimHorizon, s.batches("", 500, true), proc, withLanes(8, 1000, FailurePolicy{}))
	h.start()
	if r := h.wait(t); r != reasonShardEnd {
		t.Fatalf("stopped with %v", r)
	}
	if len(sink.violations) > 0 {
		t.Fatalf("%d order violations, first %v", len(sink.violations), sink.violations[:min(5, len(sink.violations))])
	}
	if got := sink.count(); got != len(s.payloads) {
		t.Fatalf("handled %d of %d records", got, len(s.payloads))
	}
	if cp := h.store.get("shardId-000000000001"); !cp.IsShardEnd() {
		t.Fatalf("checkpoint %v, want SHARD_END", cp)
	}
	if maxInFlight.Load() < 2 {
		t.Fatalf("at most %d handler calls at once: the lanes did not run in parallel", maxInFlight.Load())
	}
	t.Logf("%d handler calls, up to %d at once", calls.Load(), maxInFlight.Load())
}

// TestLanesKillNeverSkips stops a worker abruptly (no shutdown, no final checkpoint) at
// random points while 8 lanes handle plain and aggregated records: after a random number
// of handled records (inside a handler call) or after a random time (wherever the
// consumer is: dispatching, in calls, writing a checkpoint). A fresh consumer then
// resumes from the stored checkpoint: every record at or before the checkpoint was
// handled by the first run (the low watermark passes nothing unfinished, sub-sequence
// numbers included) and is not delivered again, and every record after it is delivered
// again, so together the runs handle every record. The seed of each round is logged.
func TestLanesKillNeverSkips(t *testing.T) {
	s := newShardScript(t, 20000, 200, 3, nil)
	for round := 0; round < 6; round++ {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			rng := rand.New(rand.NewPCG(seed, uint64(round)))
			store := newMemStore("w1")
			first := newOrderSink(false)
			killAt, killAfter := 2000+rng.IntN(16000), time.Duration(0)
			if round%2 == 1 {
				killAt, killAfter = 0, time.Duration(5+rng.IntN(60))*time.Millisecond
			}
			t.Logf("seed %d: kill after %d records or %v", seed, killAt, killAfter)
			delays := make([]time.Duration, 4096)
			for i := range delays {
				delays[i] = time.Duration(rng.IntN(300)) * time.Microsecond
			}
			parent, kill := context.WithCancel(context.Background())
			var handled, calls atomic.Int64
			fn := func(ctx context.Context, _ ShardInfo, recs []Record) error {
				time.Sleep(delays[int(calls.Add(1))%len(delays)])
				if ctx.Err() != nil {
					return ctx.Err()
				}
				first.add(recs)
				if handled.Add(int64(len(recs))) >= int64(killAt) && killAt > 0 {
					kill()
				}
				return nil
			}
			proc, _ := HandlerFunc(fn)(ShardInfo{})
			h := newHarnessFor(t, parent, store, checkpoint.TrimHorizon, s.batches("", 100, false), proc, withLanes(8, 400, FailurePolicy{}))
			h.start()
			if killAfter > 0 {
				time.AfterFunc(killAfter, kill)
			}
			if r := h.wait(t); r != reasonAborted {
				t.Fatalf("first run stopped with %v", r)
			}
			kill()
			cp := store.get("shardId-000000000001")
			first.mu.Lock()
			below := 0
			for i, p := range s.payloads {
				if cp.IsZero() || cp.IsStart() || s.pos[i].Compare(cp) > 0 {
					break
				}
				below++
				if first.seen[p] == 0 {
					first.mu.Unlock()
					t.Fatalf("checkpoint %v passes %s (record %d), which was never handled", cp, p, i)
				}
			}
			first.mu.Unlock()

			second := newOrderSink(false)
			proc2, _ := HandlerFunc(func(ctx context.Context, _ ShardInfo, recs []Record) error {
				second.add(recs)
				return nil
			})(ShardInfo{})
			start, from := cp, ""
			if cp.IsZero() {
				start = checkpoint.TrimHorizon
			} else if !cp.IsStart() {
				from = cp.SequenceNumber
			}
			h2 := newHarnessFor(t, context.Background(), store, start, s.batches(from, 100, true), proc2, withLanes(8, 400, FailurePolicy{}))
			h2.start()
			if r := h2.wait(t); r != reasonShardEnd {
				t.Fatalf("second run stopped with %v", r)
			}
			if len(second.violations) > 0 {
				t.Fatalf("second run out of order: %v", second.violations)
			}
			again := 0
			// A lane call of the aborted first run may still be finishing.
			first.mu.Lock()
			defer first.mu.Unlock()
			for i, p := range s.payloads {
				switch {
				case i < below && second.seen[p] > 0:
					t.Fatalf("record %d (%s) at or before the checkpoint %v delivered again", i, p, cp)
				case i >= below && second.seen[p] == 0:
					t.Fatalf("record %d (%s at %v) after the checkpoint %v not delivered again (handled by the first run: %v)", i, p, s.pos[i], cp, first.seen[p] > 0)
				case i >= below && first.seen[p] > 0:
					again++
				}
			}
			t.Logf("killed after %d handled records; checkpoint %v covered %d; handled again %d", handled.Load(), cp, below, again)
		})
	}
}

// collectDest is a Destination in memory.
type collectDest struct {
	mu   sync.Mutex
	recs []FailedRecord
	fail int // Send calls that fail first
}

func (d *collectDest) Send(_ context.Context, recs []FailedRecord) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail > 0 {
		d.fail--
		return errors.New("destination unavailable")
	}
	d.recs = append(d.recs, recs...)
	return nil
}

func (d *collectDest) snapshot() []FailedRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]FailedRecord(nil), d.recs...)
}

// TestPoisonRecordIsolatedByBisect puts one record that always fails among 10,000, with
// 3 attempts, bisect and a destination (whose first send fails): only that record
// reaches the destination, with its metadata; every other record is handled exactly
// once, in per-key order; the checkpoint reaches the shard's end and the oldest
// unfinished record's age returns to zero. With one lane and with four.
func TestPoisonRecordIsolatedByBisect(t *testing.T) {
	for _, lanes := range []int{1, 4} {
		t.Run("lanes="+strconv.Itoa(lanes), func(t *testing.T) {
			s := newShardScript(t, 10000, 50, 4, nil)
			poisonAt := 6543
			poison := s.payloads[poisonAt]
			sink := newOrderSink(false)
			var once sync.Map
			fn := func(ctx context.Context, _ ShardInfo, recs []Record) error {
				for _, r := range recs {
					if string(r.Data) == poison {
						return errors.New("cannot parse " + poison)
					}
				}
				for _, r := range recs {
					if _, dup := once.LoadOrStore(string(r.Data), true); dup {
						return fmt.Errorf("record %s handled twice", r.Data)
					}
				}
				sink.add(recs)
				return nil
			}
			dest := &collectDest{fail: 1}
			pol := FailurePolicy{MaxAttempts: 3, BisectOnError: true, Destination: dest, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
			proc, _ := HandlerFunc(fn)(ShardInfo{})
			h := newHarnessFor(t, context.Background(), newMemStore("w1"), checkpoint.TrimHorizon, s.batches("", 250, false), proc, withLanes(lanes, 1000, pol))
			h.start()
			waitUntil(t, func() bool { return h.store.get("shardId-000000000001").Compare(s.pos[len(s.pos)-1]) == 0 })
			h.sc.requestShutdown()
			if r := h.wait(t); r != reasonShutdown {
				t.Fatalf("stopped with %v", r)
			}
			got := dest.snapshot()
			if len(got) != 1 {
				t.Fatalf("destination got %d records, want 1: %+v", len(got), got)
			}
			f := got[0]
			want := s.pos[poisonAt]
			if string(f.Data) != poison || f.SequenceNumber != want.SequenceNumber || f.SubSequenceNumber != want.SubSequenceNumber ||
				f.ShardID != "shardId-000000000001" || f.Stream != "s" || f.Reason != ReasonMaxAttempts || f.Attempts < 3 ||
				!strings.Contains(f.Error, "cannot parse") || f.ApproximateArrivalTimestamp.IsZero() || f.FailedAt.IsZero() {
				t.Fatalf("destination record %+v, want %s at %v", f, poison, want)
			}
			if n := sink.count(); n != len(s.payloads)-1 {
				t.Fatalf("handled %d records, want %d", n, len(s.payloads)-1)
			}
			if len(sink.violations) > 0 {
				t.Fatalf("order violations: %v", sink.violations)
			}
			if sum, _ := h.metrics.Total(MetricRecordsToDestination); sum != 1 {
				t.Fatalf("%s = %v, want 1", MetricRecordsToDestination, sum)
			}
			if _, n := h.metrics.Total(MetricBatchesBisected); n == 0 {
				t.Fatalf("no bisection recorded")
			}
			if sum, _ := h.metrics.Total(MetricDestinationFailures); sum != 1 {
				t.Fatalf("%s = %v, want 1", MetricDestinationFailures, sum)
			}
			if st := h.metrics.Snapshot()[MetricOldestUnfinishedAge+"|ShardId=shardId-000000000001"]; st.Last != 0 || st.Max == 0 && lanes > 1 {
				t.Fatalf("oldest unfinished age %+v: want a last value of 0", st)
			}
		})
	}
}

// TestMaxRecordAge sends records older than the limit to the destination without
// handling them, and a record that fails for ever there once it is too old; every other
// record is handled; none is lost.
func TestMaxRecordAge(t *testing.T) {
	t.Run("old records", func(t *testing.T) {
		old := time.Now().Add(-time.Hour)
		s := newShardScript(t, 2000, 20, 3, func(i int) time.Time {
			if i < 1000 {
				return old
			}
			return time.Now().Add(time.Hour) // never too old during the test
		})
		sink := newOrderSink(true)
		proc, _ := HandlerFunc(func(ctx context.Context, _ ShardInfo, recs []Record) error { sink.add(recs); return nil })(ShardInfo{})
		dest := &collectDest{}
		pol := FailurePolicy{MaxRecordAge: time.Minute, Destination: dest}
		h := newHarnessFor(t, context.Background(), newMemStore("w1"), checkpoint.TrimHorizon, s.batches("", 100, true), proc, withLanes(4, 500, pol))
		h.start()
		if r := h.wait(t); r != reasonShardEnd {
			t.Fatalf("stopped with %v", r)
		}
		got := dest.snapshot()
		inDest := map[string]bool{}
		for _, f := range got {
			if f.Reason != ReasonMaxRecordAge || f.Attempts != 0 || !f.ApproximateArrivalTimestamp.Equal(old) {
				t.Fatalf("destination record %+v", f)
			}
			inDest[string(f.Data)] = true
		}
		// Aggregates share their arrival time: the cut is at a Kinesis record.
		tooOldCount := 0
		for i, p := range s.payloads {
			tooOld := s.arrival[i].Equal(old)
			if tooOld {
				tooOldCount++
			}
			switch {
			case inDest[p] && sink.seen[p] > 0:
				t.Fatalf("%s both handled and sent to the destination", p)
			case !inDest[p] && sink.seen[p] == 0:
				t.Fatalf("%s lost", p)
			case tooOld && !inDest[p]:
				t.Fatalf("%s is too old but was handled", p)
			}
		}
		if len(got) != tooOldCount || tooOldCount < 1000 {
			t.Fatalf("%d records in the destination, want the %d too old", len(got), tooOldCount)
		}
	})
	t.Run("failing record ages out", func(t *testing.T) {
		// Records behind the poison arrive "later" so that only it grows too old.
		now := time.Now()
		s := newShardScript(t, 300, 5, 0, func(i int) time.Time {
			if i <= 100 {
				return now
			}
			return now.Add(time.Hour)
		})
		poison := s.payloads[100]
		sink := newOrderSink(false)
		proc, _ := HandlerFunc(func(ctx context.Context, _ ShardInfo, recs []Record) error {
			for i, r := range recs {
				if string(r.Data) == poison {
					sink.add(recs[:i])
					return FailedAt(i, errors.New("poison"))
				}
			}
			sink.add(recs)
			return nil
		})(ShardInfo{})
		dest := &collectDest{}
		pol := FailurePolicy{MaxRecordAge: 150 * time.Millisecond, Destination: dest, Backoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond}
		h := newHarnessFor(t, context.Background(), newMemStore("w1"), checkpoint.TrimHorizon, s.batches("", 50, true), proc, withLanes(1, 500, pol))
		h.start()
		if r := h.wait(t); r != reasonShardEnd {
			t.Fatalf("stopped with %v", r)
		}
		got := dest.snapshot()
		if len(got) != 1 || string(got[0].Data) != poison || got[0].Reason != ReasonMaxRecordAge || got[0].Attempts < 1 || got[0].Error == "" {
			t.Fatalf("destination has %d records (first %+v), want only %s aged out after attempts", len(got), got[:min(1, len(got))], poison)
		}
		if sink.count() != len(s.payloads)-1 {
			t.Fatalf("handled %d of %d", sink.count(), len(s.payloads)-1)
		}
	})
}

// TestPartialFailureKeepsSuccesses has the handler report that a batch failed at its
// fourth record: the three before it are not delivered again, the retry starts at it.
func TestPartialFailureKeepsSuccesses(t *testing.T) {
	var mu sync.Mutex
	var calls [][]string
	failed := false
	proc, _ := HandlerFunc(func(ctx context.Context, _ ShardInfo, recs []Record) error {
		mu.Lock()
		defer mu.Unlock()
		var c []string
		for _, r := range recs {
			c = append(c, r.SequenceNumber)
		}
		calls = append(calls, c)
		if !failed {
			failed = true
			return FailedAt(3, errors.New("record 3 failed"))
		}
		return nil
	})(ShardInfo{})
	h := newHarnessFor(t, context.Background(), newMemStore("w1"), checkpoint.TrimHorizon, []fetch.Batch{{Records: plainRecs(0, 10), ShardEnd: true}}, proc,
		func(c *config, _ *ShardInfo) {
			c.processorRetry, c.processorRetryMax = time.Millisecond, time.Millisecond
		})
	h.start()
	if r := h.wait(t); r != reasonShardEnd {
		t.Fatalf("stopped with %v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || len(calls[0]) != 10 || len(calls[1]) != 7 || calls[1][0] != sq(3) {
		t.Fatalf("calls %v: want the whole batch, then the batch from record 3", calls)
	}
	if sum, _ := h.metrics.Total(MetricRecordsRetried); sum != 7 {
		t.Fatalf("%s = %v, want 7", MetricRecordsRetried, sum)
	}
}

// TestCustomProcessorFailurePolicy applies the failure policy to a Processor that is not
// a HandlerFunc: its poison record reaches the destination, its checkpoints never pass a
// record it was not given, and everything else is processed once.
func TestCustomProcessorFailurePolicy(t *testing.T) {
	p := &poisonProc{poison: sq(7)}
	dest := &collectDest{}
	pol := FailurePolicy{MaxAttempts: 2, BisectOnError: true, Destination: dest, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}
	h := newHarnessFor(t, context.Background(), newMemStore("w1"), checkpoint.TrimHorizon,
		[]fetch.Batch{{Records: plainRecs(0, 10)}, {Records: plainRecs(10, 20), ShardEnd: true}}, p, withLanes(4, 100, pol))
	h.start()
	if r := h.wait(t); r != reasonShardEnd {
		t.Fatalf("stopped with %v", r)
	}
	got := dest.snapshot()
	if len(got) != 1 || got[0].SequenceNumber != sq(7) || got[0].Attempts < 2 {
		t.Fatalf("destination %+v", got)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.done) != 19 {
		t.Fatalf("processed %d records, want 19: %v", len(p.done), p.done)
	}
	if p.badCheckpoint != "" {
		t.Fatal(p.badCheckpoint)
	}
}

// poisonProc is a custom Processor failing on one sequence number, checkpointing each
// batch it processed.
type poisonProc struct {
	mu            sync.Mutex
	poison        string
	done          map[string]int
	badCheckpoint string
}

func (p *poisonProc) Initialize(context.Context, InitializeInput) error { return nil }
func (p *poisonProc) ProcessRecords(ctx context.Context, in ProcessRecordsInput) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range in.Records {
		if r.SequenceNumber == p.poison {
			return errors.New("poison")
		}
	}
	if p.done == nil {
		p.done = map[string]int{}
	}
	for _, r := range in.Records {
		p.done[r.SequenceNumber]++
	}
	last := in.Records[len(in.Records)-1]
	if d := in.Checkpointer.LastDelivered(); d.SequenceNumber != last.SequenceNumber {
		p.badCheckpoint = fmt.Sprintf("delivered %v while handling up to %s", d, last.SequenceNumber)
	}
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *poisonProc) LeaseLost(context.Context, LeaseLostInput) {}
func (p *poisonProc) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *poisonProc) ShutdownRequested(ctx context.Context, in ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

// TestShutdownWaitsForLanes requests a shutdown while a lane is in a handler call: the
// consumer stops only after the call returns, and its records are checkpointed.
func TestShutdownWaitsForLanes(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 16)
	proc, _ := HandlerFunc(func(ctx context.Context, _ ShardInfo, recs []Record) error {
		entered <- struct{}{}
		<-release
		return nil
	})(ShardInfo{})
	h := newHarnessFor(t, context.Background(), newMemStore("w1"), checkpoint.TrimHorizon, []fetch.Batch{{Records: plainRecs(0, 5)}}, proc, withLanes(2, 100, FailurePolicy{}))
	h.start()
	<-entered
	h.sc.requestShutdown()
	select {
	case r := <-h.result:
		t.Fatalf("stopped (%v) while a lane was handling records", r)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := h.wait(t); r != reasonShutdown {
		t.Fatalf("stopped with %v", r)
	}
	if cp := h.store.get("shardId-000000000001"); cp.SequenceNumber != sq(4) {
		t.Fatalf("checkpoint %v after shutdown, want %s", cp, sq(4))
	}
}

// TestLeaseLostWaitsForLanes loses the lease while a lane is in a handler call that
// ignores its (canceled) context: the consumer stops only after the call returns, its
// records are not checkpointed (the lease is gone), and a call that never returns holds
// the stop only until the shutdown timeout.
func TestLeaseLostWaitsForLanes(t *testing.T) {
	for _, returns := range []bool{true, false} {
		t.Run(fmt.Sprintf("call returns=%v", returns), func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			entered := make(chan struct{}, 16)
			var canceled atomic.Bool
			proc, _ := HandlerFunc(func(ctx context.Context, _ ShardInfo, recs []Record) error {
				entered <- struct{}{}
				<-release
				canceled.Store(ctx.Err() != nil)
				return nil
			})(ShardInfo{})
			h := newHarnessFor(t, context.Background(), newMemStore("w1"), checkpoint.TrimHorizon, []fetch.Batch{{Records: plainRecs(0, 5)}}, proc,
				withLanes(2, 100, FailurePolicy{}), func(c *config, _ *ShardInfo) { c.shutdownTimeout = 300 * time.Millisecond })
			h.start()
			<-entered
			lost := time.Now()
			h.held.Store(false)
			h.sc.leaseLost()
			select {
			case r := <-h.result:
				t.Fatalf("stopped (%v) while a lane was handling records", r)
			case <-time.After(100 * time.Millisecond):
			}
			if returns {
				release <- struct{}{}
			}
			if r := h.wait(t); r != reasonLeaseLost {
				t.Fatalf("stopped with %v", r)
			}
			waited := time.Since(lost)
			if returns && !canceled.Load() {
				t.Fatal("the handler's context was not canceled when the lease was lost")
			}
			if !returns && waited < 300*time.Millisecond {
				t.Fatalf("stopped after %v, before the shutdown timeout, with a call in progress", waited)
			}
			if cp := h.store.get("shardId-000000000001"); !cp.IsZero() && !cp.IsStart() {
				t.Fatalf("checkpoint %v written after the lease was lost", cp)
			}
		})
	}
}

// TestLaneRouting keeps a key on one lane and routes records without a partition key by
// sequence number, so an aggregate's user records stay together.
func TestLaneRouting(t *testing.T) {
	a := Record{PartitionKey: "k1", SequenceNumber: "1"}
	b := Record{PartitionKey: "k1", SequenceNumber: "2"}
	if laneOf(&a, 8) != laneOf(&b, 8) {
		t.Fatal("one key on two lanes")
	}
	lanes := map[int]bool{}
	for i := 0; i < 64; i++ {
		r := Record{SequenceNumber: sq(i)}
		l := laneOf(&r, 8)
		if r2 := (Record{SequenceNumber: sq(i), SubSequenceNumber: 3}); laneOf(&r2, 8) != l {
			t.Fatal("user records of one aggregate on two lanes")
		}
		lanes[l] = true
	}
	if len(lanes) < 4 {
		t.Fatalf("records without partition keys used only %d of 8 lanes", len(lanes))
	}
}
