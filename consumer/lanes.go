package consumer

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/checkpoint"
)

// laneSet runs the handler of one shard in parallel lanes. The fetch loop dispatches
// each batch: every record gets an ordinal (its place in the shard) and goes to the lane
// of its partition key. Each lane hands its queued records to the handler through the
// failure policy, in order, and reports which records are finished (handled, or stored
// in the destination). The low watermark is the position of the last record before the
// first unfinished one: the checkpoint, written by a single writer goroutine.
type laneSet struct {
	sc      *shardConsumer
	fn      func(ctx context.Context, shard ShardInfo, records []Record) error
	runner  *policyRunner
	lanes   []*lane
	maxCall int // records per handler call (more only when one chunk holds more)
	// limit bounds the records from the first unfinished one to the last dispatched
	// (one batch more when there is none): the lanes' memory, and what a crash
	// delivers again. Two calls per lane: each lane's next call is queued while one
	// runs (with one, lanes start half-full calls as the window refills).
	limit int

	mu       sync.Mutex
	room     *sync.Cond // signaled when records finish or the set halts
	entries  []entry    // unfinished records and finished ones behind the first unfinished
	head     int        // index in entries of ordinal base
	base     uint64
	next     uint64
	inflight int
	mark     checkpoint.Value // low watermark; zero until a record finished
	halted   bool

	lanesWG  sync.WaitGroup
	wake     chan struct{}
	quit     chan struct{}
	writerWG sync.WaitGroup
	stopHalt func() bool
	closed   sync.Once
}

// entry is one dispatched record.
type entry struct {
	pos     checkpoint.Value
	arrival time.Time
	done    bool
}

// lane is one lane's queue of chunks (guarded by laneSet.mu).
type lane struct {
	work   *sync.Cond
	chunks []*chunk
}

// chunk is the records of one batch routed to one lane, with their ordinals.
type chunk struct {
	recs []Record
	ords []uint64
}

func newLaneSet(sc *shardConsumer, fn func(context.Context, ShardInfo, []Record) error, p processing) *laneSet {
	maxCall := int(sc.env.cfg.maxRecords)
	if maxCall < 1 {
		maxCall = 10000
	}
	ls := &laneSet{sc: sc, fn: fn, maxCall: maxCall, limit: maxCall * 2 * p.lanes,
		runner: &policyRunner{sc: sc, pol: p.policy, stop: sc.loopCtx.Done()},
		wake:   make(chan struct{}, 1), quit: make(chan struct{})}
	ls.room = sync.NewCond(&ls.mu)
	ls.lanes = make([]*lane, p.lanes)
	for i := range ls.lanes {
		l := &lane{work: sync.NewCond(&ls.mu)}
		ls.lanes[i] = l
		ls.lanesWG.Add(1)
		go ls.runLane(l)
	}
	ls.writerWG.Add(1)
	go ls.writer()
	ls.stopHalt = context.AfterFunc(sc.loopCtx, ls.halt)
	return ls
}

// laneOf routes a record: FNV-1a of its partition key, or of its sequence number when it
// has none (AUTO streams), so every user record of an aggregate shares a lane.
func laneOf(r *Record, n int) int {
	if n == 1 {
		return 0
	}
	k := r.PartitionKey
	if k == "" {
		k = r.SequenceNumber
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(k); i++ {
		h ^= uint64(k[i])
		h *= 1099511628211
	}
	return int(h % uint64(n))
}

// halt stops the lanes from taking more work; calls in progress finish.
func (ls *laneSet) halt() {
	ls.mu.Lock()
	ls.halted = true
	for _, l := range ls.lanes {
		l.work.Broadcast()
	}
	ls.room.Broadcast()
	ls.mu.Unlock()
}

// dispatch queues a batch in the lanes, waiting while the lanes hold their limit. It
// returns errStopped when the set halted first.
func (ls *laneSet) dispatch(recs []Record) error {
	if len(recs) == 0 {
		ls.observe()
		return nil
	}
	n := len(ls.lanes)
	per := make([]*chunk, n)
	ls.mu.Lock()
	for !ls.halted && len(ls.entries) > ls.head && len(ls.entries)-ls.head+len(recs) > ls.limit {
		ls.room.Wait()
	}
	if ls.halted {
		ls.mu.Unlock()
		return errStopped
	}
	for i := range recs {
		r := &recs[i]
		ls.entries = append(ls.entries, entry{pos: checkpoint.Value{SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber},
			arrival: r.ApproximateArrivalTimestamp})
		li := laneOf(r, n)
		c := per[li]
		if c == nil {
			// Room for a lane's fair share and some skew: fewer regrowths.
			est := len(recs)
			if n > 1 {
				est = len(recs)/n + len(recs)/(4*n) + 1
			}
			c = &chunk{recs: make([]Record, 0, est), ords: make([]uint64, 0, est)}
			per[li] = c
		}
		c.recs = append(c.recs, *r)
		c.ords = append(c.ords, ls.next)
		ls.next++
	}
	ls.inflight += len(recs)
	for i, c := range per {
		if c != nil {
			ls.lanes[i].chunks = append(ls.lanes[i].chunks, c)
			ls.lanes[i].work.Signal()
		}
	}
	ls.mu.Unlock()
	ls.observe()
	return nil
}

// take waits for work in l and returns the chunks of its next call: the first queued
// chunk and the ones after it while they fit in maxCall; nil when the set halted.
func (ls *laneSet) take(l *lane) ([]Record, []uint64) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for !ls.halted && len(l.chunks) == 0 {
		l.work.Wait()
	}
	if ls.halted {
		return nil, nil
	}
	first := l.chunks[0]
	k, total := 1, len(first.recs)
	for k < len(l.chunks) && total+len(l.chunks[k].recs) <= ls.maxCall {
		total += len(l.chunks[k].recs)
		k++
	}
	taken := l.chunks[:k]
	l.chunks = append(l.chunks[:0:0], l.chunks[k:]...)
	if k == 1 {
		return first.recs, first.ords
	}
	recs := make([]Record, 0, total)
	ords := make([]uint64, 0, total)
	for _, c := range taken {
		recs = append(recs, c.recs...)
		ords = append(ords, c.ords...)
	}
	return recs, ords
}

func (ls *laneSet) runLane(l *lane) {
	defer ls.lanesWG.Done()
	sc := ls.sc
	for {
		recs, ords := ls.take(l)
		if recs == nil {
			return
		}
		reported := 0
		err := ls.runner.run(sc.leaseCtx, recs, ls.call, func(n int) {
			ls.finished(ords[reported:n])
			reported = n
		})
		if err != nil {
			if errors.Is(err, checkpoint.ErrLeaseLost) {
				sc.leaseLost()
			}
			// An unfinished call keeps its records (and every later one of this lane)
			// from being passed: the lane takes nothing more.
			ls.halt()
			return
		}
	}
}

// call hands records to the handler after checking the lease.
func (ls *laneSet) call(ctx context.Context, recs []Record, attempt int) error {
	sc := ls.sc
	if !sc.checkHeld() {
		return checkpoint.ErrLeaseLost
	}
	return sc.timedCall(recs, 0, attempt, func() error { return ls.fn(ctx, sc.shard, recs) })
}

// finished marks records done and moves the low watermark over every leading finished
// record.
func (ls *laneSet) finished(ords []uint64) {
	if len(ords) == 0 {
		return
	}
	ls.mu.Lock()
	for _, o := range ords {
		ls.entries[ls.head+int(o-ls.base)].done = true
	}
	ls.inflight -= len(ords)
	moved := false
	for ls.head < len(ls.entries) && ls.entries[ls.head].done {
		ls.mark = ls.entries[ls.head].pos
		ls.head++
		ls.base++
		moved = true
	}
	if ls.head == len(ls.entries) {
		ls.entries, ls.head = ls.entries[:0], 0
	} else if ls.head > 4096 && ls.head > len(ls.entries)/2 {
		n := copy(ls.entries, ls.entries[ls.head:])
		clear(ls.entries[n:])
		ls.entries, ls.head = ls.entries[:n], 0
	}
	mark := ls.mark
	ls.room.Broadcast()
	ls.mu.Unlock()
	if moved {
		ls.sc.cp.Delivered(mark)
		select {
		case ls.wake <- struct{}{}:
		default:
		}
	}
	ls.observe()
}

// observe records the lane queue depth and the age of the oldest unfinished record.
func (ls *laneSet) observe() {
	sc := ls.sc
	ls.mu.Lock()
	depth := ls.inflight
	var oldest time.Time
	if ls.head < len(ls.entries) {
		oldest = ls.entries[ls.head].arrival
	}
	ls.mu.Unlock()
	age := 0.0
	if !oldest.IsZero() {
		age = max(0, float64(sc.env.cfg.clock.Since(oldest).Milliseconds()))
	}
	sc.env.metrics.Record(MetricLaneQueueDepth, UnitCount, float64(depth), sc.dims...)
	sc.env.metrics.Record(MetricOldestUnfinishedAge, UnitMilliseconds, age, sc.dims...)
}

// drain waits until every dispatched record is finished; false when the set halted
// first.
func (ls *laneSet) drain() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for !ls.halted && ls.inflight > 0 {
		ls.room.Wait()
	}
	return ls.inflight == 0
}

// writer checkpoints the low watermark whenever it moves, one write at a time.
func (ls *laneSet) writer() {
	defer ls.writerWG.Done()
	sc := ls.sc
	var written checkpoint.Value
	failures := 0
	for {
		select {
		case <-ls.quit:
			return
		case <-ls.wake:
		}
		ls.mu.Lock()
		mark := ls.mark
		ls.mu.Unlock()
		if mark.IsZero() || mark.Compare(written) <= 0 {
			continue
		}
		err := sc.cp.CheckpointAt(sc.leaseCtx, mark.SequenceNumber, mark.SubSequenceNumber)
		switch {
		case err == nil || errors.Is(err, checkpoint.ErrBackwards):
			written, failures = mark, 0
		case errors.Is(err, checkpoint.ErrLeaseLost):
			sc.leaseLost()
			return
		default:
			sc.env.log.Debug("consumer: checkpoint failed; retrying", zap.String("shard", sc.shard.LeaseKey), zap.Error(err))
			failures++
			select {
			case <-ls.quit:
				return
			case <-sc.env.cfg.clock.After(ls.runner.pol.Backoff << min(failures, 6)):
			}
			select {
			case ls.wake <- struct{}{}:
			default:
			}
		}
	}
}

// close halts the lanes, waits for calls in progress (until they return, the worker
// aborts or the shutdown timeout passes) and stops the writer. The processor's
// ShutdownRequested or ShardEnded then checkpoints the low watermark.
func (ls *laneSet) close() { ls.closed.Do(ls.shut) }

func (ls *laneSet) shut() {
	ls.stopHalt()
	ls.halt()
	done := make(chan struct{})
	go func() { ls.lanesWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ls.sc.parent.Done():
	case <-ls.sc.env.cfg.clock.After(ls.sc.env.cfg.shutdownTimeout):
		ls.sc.env.log.Warn("consumer: lanes still handling records after the shutdown timeout; left running", zap.String("shard", ls.sc.shard.LeaseKey))
	}
	close(ls.quit)
	ls.writerWG.Wait()
}
