package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/clock"
)

// Assigner is the leader's assignment loop, the one place where leases are balanced. Each
// round (RunOnce) it reads the worker-metrics table, and every lease scan interval the
// lease table, computes a Plan over the leases as it last read them and applies the
// moves these rules allow:
//
//   - Only the leader runs rounds, so only the leader scans the lease table, every lease
//     scan interval (WithLeaseScanInterval, twice the failover time) whatever the number
//     of workers. Followers learn their leases from the owner index
//     (Coordinator.Discover) and renew only what they hold.
//   - Expiry is judged on the leader's own clock: a lease is expired when its counter has
//     not changed for the failover time since this Assigner first saw that counter
//     (judged on the rounds that scan). A new leader therefore waits a failover time
//     before it takes any lease over; no other worker's clock is trusted.
//   - A self-fencing worker's row (WithSelfFence) that has not changed for its fence time
//     since this Assigner first saw it proves the worker stopped processing: the leader
//     reads that worker's leases, reads the row again, consistently, and takes them at
//     once, conditional on the counters it read (docs/lease-cost.md, "Self-fencing").
//   - Leases a worker announces in its row (Store.AnnounceLeases: the children of a shard
//     it ended) are read and placed at the next round.
//   - A leader that took the lock on expiry from a worker that fences on its heartbeats
//     (WithLeaderFence, WithLeaderElector) read that worker's row before the takeover;
//     while a consistent read of the row after reading the worker's leases still finds
//     it, it takes them at once, conditional on the counters it read, rather than a
//     failover time after it first saw the row (docs/lease-cost.md, "Self-fencing").
//   - For its first liveness window of rounds a new leader only observes: it places no
//     lease before it had the time to see every live worker show life, so its first plan
//     spreads the leases over the whole fleet rather than over the first workers seen.
//     The warm-up ends sooner once every worker with a current row has shown life since
//     the term began (changes seen on a term's first round, which may be old, do not
//     count), save the workers whose leases it takes as silent.
//   - A worker is alive only while the leader sees it change something: a renewal of a
//     lease it holds, or a new update time in its worker-metrics row, within the liveness
//     window. A row that is merely fresh is no proof of life (a worker that wrote one row
//     and died looks fresh for the metrics max age). Dead workers get no lease.
//   - A Freshet worker the leader gives a lease by Take must renew it within the
//     confirmation window. If it does not, it is presumed dead: it gets nothing more
//     until it shows life again, and the lease is placed again at once rather than after
//     a failover time. This is safe: a Freshet worker processes a lease only after a
//     renewal of its own, and the re-take is conditional on the counter the leader's
//     Take wrote, which that renewal would have changed. A lease whose holder another
//     worker changed (a handoff its old owner completed) has no such counter: the one
//     the leader first sees may already include the new owner's renewal, so it moves
//     only on expiry.
//   - A Java KCL worker (its metrics row carries no report interval) starts processing
//     a lease as soon as its discovery finds it, and renews it only at its next
//     renewal: up to Java's discovery interval (the failover time by default) plus its
//     renewal interval after the lease became its own. Such a new holder is never
//     presumed dead on the confirmation window, and its lease expires only after its
//     pickup window, not one failover time after it became its own: two failover times
//     and until the holder shows no life or lets another of its leases expire, six at
//     most. Moving it sooner would start a second worker on a shard the Java worker
//     already processes (in the mixed fleet test, a Java worker that had just joined
//     first found a lease handed to it 14 s after the handoff completed, at a 5 s
//     failover time). A new leader gives every lease of a Java holder that window from
//     its own first sight of the lease, until the holder renews it: the lease may have
//     become the holder's just before the leader changed.
//   - A worker that has an expired lease gets nothing (it stopped renewing, or is in
//     trouble), even while its metrics row is fresh.
//   - A lease that has an owner and has not expired moves only by graceful handoff, and
//     only from an owner that is alive: handing off from a dead owner would wait for a
//     release that never comes. Such a lease waits for its expiry instead.
//   - On an idle stream (mean lease throughput below 1 KB/s, with hysteresis) the plan
//     balances lease counts: rates of a few bytes per second are noise, not load.
//   - A graceful handoff still pending a handoff timeout plus a failover time after the
//     leader first saw it (an old owner that renews but never releases nor transfers
//     the lease) is finished by the leader, as Java KCL's leader does: at its next round
//     that scans, it takes the lease for its new owner, which ends the old owner's hold
//     (its renewal fails).
//   - Rebalancing runs on the rounds that scan (every few rounds when each round scans)
//     and does not move a lease again within the failover time of its last move, so
//     noisy rates cannot swing leases back and forth.
//   - A worker that begins to show life (it joined, or came back from silence) makes the
//     next round scan and rebalance rather than wait for the scan interval, and so does
//     each such rebalance that started handoffs, until one starts none; such extra scans
//     run at most once a failover time, later joins waiting for the next one.
//   - Worker-metrics rows older than the stale cleanup age (or without an update time)
//     are deleted, if unchanged since the leader read them, as Java KCL does.
//
// It is safe for concurrent use; RunOnce must be called only while the caller leads.
type Assigner struct {
	store         *Store
	clock         clock.Clock
	log           *zap.Logger
	failover      time.Duration
	handoff       time.Duration
	live          time.Duration
	confirm       time.Duration
	metricsMaxAge time.Duration
	staleMetrics  time.Duration
	cfg           PlanConfig
	every         int

	mu sync.Mutex
	// term is when the current run of rounds began: the first round, or the first that
	// started more than the failover time (and the liveness window) after the previous one
	// ended, a new leadership (another worker can only have led meanwhile if this one's
	// lock lapsed, which takes the lock's duration, shorter than the failover time). Slow
	// rounds of a continuing leader start no new term. last is when the last round ended.
	term, last time.Time
	round      int
	idle       bool
	seen       map[string]seenLease
	rows       map[string]time.Time     // worker -> update time of its row when last read
	reports    map[string]time.Duration // worker -> its row's report interval (Java's for Java rows)
	life       map[string]time.Time     // worker -> last evidence of life, on the leader's clock
	suspect    map[string]time.Time     // worker -> when it failed to confirm an assignment
	moved      map[string]time.Time     // lease -> last rebalancing move
	lastMean   float64
	// cache is the lease table as the leader last read it (its scan every scan interval,
	// its own writes, and the leases it read between scans); lastScan is when the last
	// scan started; scanNow asks the next round to scan.
	cache     map[string]Lease
	lastScan  time.Time
	scanNow   bool
	scanEvery time.Duration
	// joined asks for a scan and rebalance for a worker that began to show life (a new
	// row, or one back from silence), and again after each such rebalance that started
	// handoffs (rebalancing is set until one starts none: a plan reaches its balance over
	// a few rounds). Such scans run at most once a failover time (joinScan is when the
	// last one started), so a flapping worker cannot make every round scan.
	joined, rebalancing bool
	joinScan            time.Time
	fenced              map[string]fenceSeen // self-fencing worker -> its row as last seen
	// warmed is set once the current term's warm-up ended.
	warmed bool
	// elector is the leader elector whose takeovers on expiry this Assigner follows
	// (WithLeaderElector); lockTaken holds, for each worker it took the lock from that
	// fences on it, that worker's row as read before the takeover, until its leases are
	// taken or the row is found changed.
	elector   *LeaderElector
	lockTaken map[string]WorkerMetrics
	// hints are the workers whose rows still need the hint that they were given leases
	// (a write that failed is tried again the next round); hintAll asks the first round
	// of a term that applies moves to hint every live Freshet worker, since the last
	// leader may have died between its moves and its hints.
	hints   map[string]bool
	hintAll bool
}

// seenLease is what the leader last saw of a lease.
type seenLease struct {
	counter int64
	owner   string
	cpOwner string
	// since is when this counter was first seen.
	since time.Time
	// await is set while the owner has not yet renewed the lease this leader's Take gave
	// it; awaitSince is when the Take was written.
	await      bool
	awaitSince time.Time
	// pickup is set while the holder the lease changed to at since (by this leader's Take
	// or another worker's write) has not renewed it yet.
	pickup bool
	// handoffSince is when this leader first saw the lease's current handoff (owner and
	// checkpoint owner as now); zero when no handoff is pending.
	handoffSince time.Time
}

// The pickup window of a new holder that may process a lease before renewing it (a
// Java KCL worker), in failover times: the lease does not expire before javaPickupMin of
// them (Java's discovery runs every failover time and its renewal every third of one by
// default, and a Java leader assigns only every two failover times), then once the holder
// shows no life or let another lease it had renewed expire (a Java worker that has just
// started can take longer still to discover its first leases), and at the latest after
// javaPickupMax of them (a live holder that never picks the lease up, whatever the
// reason, does not keep the shard unprocessed).
const javaPickupMin, javaPickupMax = 2, 6

// DefaultStaleWorkerMetricsCleanup is the age of a worker's metrics row after which the
// leader deletes it.
const DefaultStaleWorkerMetricsCleanup = 24 * time.Hour

// idleLeaseKBps is the mean lease throughput below which a stream counts as idle, and the
// plan balances lease counts rather than throughput.
const idleLeaseKBps = 1.0

// NewAssigner returns the leader's assigner over store.
func NewAssigner(store *Store, opts ...Option) (*Assigner, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: assigner needs a store", ErrInvalidOption)
	}
	o, err := newOptions("NewAssigner", forAssigner, opts)
	if err != nil {
		return nil, err
	}
	a := &Assigner{store: store, clock: o.clock, log: o.log, failover: o.failover, handoff: o.handoff,
		live: o.live, confirm: o.confirm, metricsMaxAge: o.metricsMaxAge, staleMetrics: o.staleMetrics,
		cfg: o.plan, every: o.every,
		seen: map[string]seenLease{}, rows: map[string]time.Time{}, life: map[string]time.Time{},
		suspect: map[string]time.Time{}, moved: map[string]time.Time{}, fenced: map[string]fenceSeen{},
		hints: map[string]bool{}, scanEvery: o.scanEvery, elector: o.elector, lockTaken: map[string]WorkerMetrics{}}
	if a.live == 0 {
		a.live = a.failover/3 + time.Second
	}
	if a.confirm == 0 {
		a.confirm = 3*a.interval() + 100*time.Millisecond
	}
	a.staleMetrics = max(a.staleMetrics, a.metricsMaxAge)
	if a.scanEvery == 0 {
		a.scanEvery = 2 * a.failover
	}
	return a, nil
}

// interval is the pace of Run: a twentieth of the failover time, at least 20 ms.
func (a *Assigner) interval() time.Duration { return max(20*time.Millisecond, a.failover/20) }

// Round is what one assignment round did.
type Round struct {
	// Plan is the plan computed; Moves lists only the moves applied.
	Plan Plan
	// Applied is the moves applied (takes and handoffs the lease table accepted).
	Applied []Move
	// MeanKBps is the mean lease throughput the plan saw (before idle streams were
	// balanced by count).
	MeanKBps float64
	// Live is the number of workers the plan placed leases on.
	Live int
	// WarmingUp is set during a new leader's first liveness window, when nothing is
	// applied.
	WarmingUp bool
}

// observe updates what the leader knows of each lease from a scan: counters for expiry,
// renewals as evidence of their holders' life (unless fresh: the first scan of a term,
// whose changes may have happened any time since the last term), and assignments
// awaiting confirmation. Leases no longer listed are forgotten. It must be called with
// a.mu held.
func (a *Assigner) observe(leases []Lease, now time.Time, fresh bool) {
	keep := make(map[string]seenLease, len(leases))
	for i := range leases {
		l := &leases[i]
		s, ok := a.seen[l.Key]
		handoffSince := a.handoffSeen(s, l, now)
		switch {
		case !ok:
			// A new leader's first sight: it waits a failover time from now, or, since it
			// cannot know when the lease became its holder's (the previous leader may have
			// given it just before it stopped and released its lock), a Java holder's
			// pickup window, until the holder renews it.
			s = seenLease{counter: l.Counter, owner: l.Owner, cpOwner: l.CheckpointOwner, since: now, pickup: true}
		case s.counter != l.Counter:
			if s.owner == l.Owner && s.cpOwner == l.CheckpointOwner && !fresh {
				if holder := holderOf(l); holder != "" {
					a.life[holder] = now
				}
			}
			// Otherwise someone else changed the owners: a handoff completed by the old
			// owner's release, or a take. The counter seen may already include the new
			// owner's first renewal, after which it processes: only expiry may move the
			// lease now, never the confirmation window; a new holder may not have renewed
			// yet (pickup).
			s.await = false
			s.pickup = holderOf(l) != holderOf(&Lease{Owner: s.owner, CheckpointOwner: s.cpOwner})
			s.counter, s.owner, s.cpOwner, s.since = l.Counter, l.Owner, l.CheckpointOwner, now
		default:
			s.owner, s.cpOwner = l.Owner, l.CheckpointOwner
		}
		s.handoffSince = handoffSince
		keep[l.Key] = s
	}
	a.seen = keep
}

// wrote records a lease as the leader itself just wrote it.
func (a *Assigner) wrote(l Lease, now time.Time, await bool) {
	s := a.seen[l.Key]
	if s.counter != l.Counter || s.since.IsZero() {
		s.since = now
	}
	if holderOf(&l) != holderOf(&Lease{Owner: s.owner, CheckpointOwner: s.cpOwner}) {
		s.pickup = true
	}
	s.handoffSince = a.handoffSeen(s, &l, now)
	s.counter, s.owner, s.cpOwner = l.Counter, l.Owner, l.CheckpointOwner
	s.await, s.awaitSince = await, now
	a.seen[l.Key] = s
	if a.cache != nil {
		a.cache[l.Key] = l
	}
}

// fenceSeen is what the leader last saw of a self-fencing worker's row.
type fenceSeen struct {
	// version is the row's report time; since is when this leader first saw it.
	version, since time.Time
	// done is set once the worker's leases were taken (none of them named it any more)
	// while this version lasted.
	done bool
	// expected is set once the live workers were told to expect its leases.
	expected bool
}

// rowVersion is what changes with every write of a worker-metrics row: the start of the
// write to the millisecond (Freshet rows), or the update time in seconds (Java rows).
func rowVersion(m *WorkerMetrics) time.Time {
	if !m.Reported.IsZero() {
		return m.Reported
	}
	return m.LastUpdate
}

// readEach reads the item of each key with get (concurrently) and returns those found,
// in the order of keys, and the errors of the reads that failed for another reason than
// ErrNotFound.
func readEach[T any](ctx context.Context, keys []string, get func(ctx context.Context, key string) (T, error)) ([]T, []error) {
	out := make([]T, len(keys))
	found := make([]bool, len(keys))
	failed := make([]error, len(keys))
	_ = concurrently(ctx, len(keys), storeConcurrency, func(ctx context.Context, i int) error {
		v, err := get(ctx, keys[i])
		switch {
		case err == nil:
			out[i], found[i] = v, true
		case !errors.Is(err, ErrNotFound):
			failed[i] = err
		}
		return nil
	})
	kept := out[:0]
	var errs []error
	for i := range out {
		if found[i] {
			kept = append(kept, out[i])
		}
		if failed[i] != nil {
			errs = append(errs, failed[i])
		}
	}
	return kept, errs
}

// readRows reads the worker-metrics rows of workers (eventually consistent reads,
// concurrently), sorted by worker ID; rows that no longer exist are left out.
func (a *Assigner) readRows(ctx context.Context, workers []string) ([]WorkerMetrics, error) {
	rows, errs := readEach(ctx, workers, func(ctx context.Context, w string) (WorkerMetrics, error) {
		return a.store.getWorkerMetrics(ctx, w, false)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(x, y WorkerMetrics) int { return strings.Compare(x.WorkerID, y.WorkerID) })
	return rows, nil
}

// readLeases returns the leases keys as stored now (consistent reads, concurrently);
// leases that no longer exist are left out and other failures go to *errs.
func (a *Assigner) readLeases(ctx context.Context, keys []string, errs *[]error) []Lease {
	ls, failed := readEach(ctx, keys, a.store.Get)
	*errs = append(*errs, failed...)
	return ls
}

// reclaim returns the leases the silent self-fencing worker m still holds, read now, for
// the leader to take at once; none when its row changed since it was seen. The leases
// are those the owner index lists for it and those the leader knows it holds (known),
// read consistently; the row is then read again, consistently: only if it is still the
// one seen for the fence time are the leases returned. The takes are conditional on the
// counters read here, before the row was read again, which is what makes them safe
// against a worker that wakes up (docs/lease-cost.md, "Self-fencing"). byLock is set when
// m was read before this leader took the lock from the worker on expiry, rather than
// seen unchanged for its fence time.
func (a *Assigner) reclaim(ctx context.Context, m WorkerMetrics, known []string, byLock bool) ([]Lease, error) {
	keys, err := a.store.ListKeysOwnedBy(ctx, m.WorkerID)
	if err != nil {
		return nil, err
	}
	keys = append(keys, known...)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var errs []error
	ls := a.readLeases(ctx, keys, &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	mine := ls[:0]
	for i := range ls {
		if holderOf(&ls[i]) == m.WorkerID && !ls[i].Checkpoint.IsShardEnd() {
			mine = append(mine, ls[i])
		}
	}
	if len(mine) == 0 {
		return nil, nil
	}
	now, err := a.store.GetWorkerMetrics(ctx, m.WorkerID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil // deleted: the next round decides again
	case err != nil:
		return nil, err
	case !rowVersion(&now).Equal(rowVersion(&m)):
		return nil, nil // it wrote again: alive after all
	}
	if byLock {
		a.log.Info("leader lock taken on expiry from a worker that fences on it; taking its leases",
			zap.String("worker", m.WorkerID), zap.Int("leases", len(mine)))
	} else {
		a.log.Info("worker silent for its self-fence time; taking its leases",
			zap.String("worker", m.WorkerID), zap.Int("leases", len(mine)), zap.Duration("fence", m.SelfFence))
	}
	return mine, nil
}

// handoffSeen returns when the handoff pending on l was first seen, given what was seen
// of it before (s, whose owners may be older than l's): zero without a handoff, now for a
// handoff between other owners than the one seen.
func (a *Assigner) handoffSeen(s seenLease, l *Lease, now time.Time) time.Time {
	switch {
	case !l.HandoffPending():
		return time.Time{}
	case s.handoffSince.IsZero() || s.owner != l.Owner || s.cpOwner != l.CheckpointOwner:
		return now
	}
	return s.handoffSince
}

// overdueHandoffs returns the keys of the leases (not expired, not ended) whose handoff
// has been pending since this leader first saw it for the handoff timeout plus a failover
// time (Java KCL's leader waits gracefulLeaseHandoffTimeoutMillis plus the lease
// duration): their old owner renews but neither releases nor transfers them.
func (a *Assigner) overdueHandoffs(leases []Lease, expired map[string]bool, now time.Time) map[string]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out map[string]bool
	for i := range leases {
		l := &leases[i]
		since := a.seen[l.Key].handoffSince
		if !l.HandoffPending() || expired[l.Key] || l.Checkpoint.IsShardEnd() || since.IsZero() || now.Sub(since) < a.handoff+a.failover {
			continue
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[l.Key] = true
	}
	return out
}

// expired reports whether the lease seen as s, held by holder, has gone unrenewed too
// long: a failover time; or, while a new holder that may process before renewing (java)
// has not renewed it yet, its pickup window.
func (a *Assigner) expired(s seenLease, holder string, java bool, now time.Time) bool {
	age := now.Sub(s.since)
	if s.pickup && java {
		return age >= javaPickupMin*a.failover && !a.alive(holder, now) || age >= javaPickupMax*a.failover
	}
	return age >= a.failover
}

// alive reports whether w showed life within the liveness window (at least its report
// interval and two seconds, so an idle Java worker, which reports every 30 s, stays
// eligible between reports) and since it last failed to confirm an assignment. It must be called with a.mu held.
func (a *Assigner) alive(w string, now time.Time) bool {
	t, ok := a.life[w]
	if !ok || now.Sub(t) > max(a.live, a.reports[w]+2*time.Second) {
		return false
	}
	s, sus := a.suspect[w]
	return !sus || t.After(s)
}

// warmingUp reports whether the current term's warm-up goes on. It ends a liveness window
// after the term began, or sooner, once every worker whose row is current (within its
// max age) has shown life since the term began, save those taken for silent (silent):
// the first plan then already sees every live worker. It must be called with a.mu held.
func (a *Assigner) warmingUp(metrics []WorkerMetrics, silent []WorkerMetrics, now time.Time) bool {
	if a.warmed {
		return false
	}
	dead := make(map[string]bool, len(silent))
	for i := range silent {
		dead[silent[i].WorkerID] = true
	}
	current, all := 0, true
	for i := range metrics {
		m := &metrics[i]
		if dead[m.WorkerID] || !m.Valid() || now.Sub(m.LastUpdate) > m.maxAge(a.metricsMaxAge) {
			continue
		}
		current++
		all = all && a.alive(m.WorkerID, now)
	}
	a.warmed = now.Sub(a.term) >= a.live || current > 0 && all
	return !a.warmed
}

// RequestScan makes the next round scan the lease table, as after a shard sync that
// created leases.
func (a *Assigner) RequestScan() {
	a.mu.Lock()
	a.scanNow = true
	a.mu.Unlock()
}

// RunOnce performs one assignment round. Moves refused because the lease changed
// meanwhile (ErrConflict) are skipped; the next round sees the new state.
//
// A round runs in phases, each a method: begin decides whether it scans the lease table,
// read reads the worker-metrics rows (and the lease table when it scans), observeRows
// learns from the rows who lives, who is silent and what was announced, readNew reads the
// announced leases and those of silent self-fencing workers, judge decides which leases
// expired and which workers may be given leases, deleteStale removes stale rows, plan
// computes the moves, and, once the warm-up is over, apply writes them and hintMoves
// tells the workers concerned.
func (a *Assigner) RunOnce(ctx context.Context) (Round, error) {
	r := &roundState{started: a.clock.Now()}
	// However long its reads and writes take, a round is no gap in the leader's watch: the
	// next round's gap is measured from the end of this one.
	defer func() {
		a.mu.Lock()
		a.last = a.clock.Now()
		a.mu.Unlock()
	}()
	a.begin(r)
	scanned, err := a.read(ctx, r)
	if err != nil {
		return Round{}, err
	}
	r.now = a.clock.Now()
	a.observeRows(r, scanned)
	a.readNew(ctx, r)
	a.judge(r)
	a.deleteStale(ctx, r)
	a.plan(r)
	round := Round{Plan: r.plan, MeanKBps: r.mean, Live: len(r.workers), WarmingUp: r.warming}
	if r.expect > 0 {
		a.hintExpect(ctx, r)
	}
	if r.warming {
		return round, errors.Join(r.errs...)
	}
	a.apply(ctx, r)
	a.hintMoves(ctx, r)
	for i, m := range r.plan.Moves {
		if r.applied[i] {
			round.Applied = append(round.Applied, m)
		}
		if r.failed[i] != nil {
			r.errs = append(r.errs, r.failed[i])
		}
	}
	return round, errors.Join(r.errs...)
}

// roundState is what one round's phases learn and hand on to the next.
type roundState struct {
	started, now time.Time
	// begin: whether this round starts a new term and scans the lease table, and the
	// workers whose rows the leader knows.
	newTerm, scan bool
	known         []string
	// read.
	metrics []WorkerMetrics
	// observeRows: rows to delete, silent workers whose leases to take (byLock: by the
	// lock takeover), announced lease keys, how soon a silent worker's leases will be
	// taken (the longest, if several), each worker's row, Java workers, whether the
	// term's warm-up goes on, and the keys each holder holds as the leader knows.
	stale, silent []WorkerMetrics
	byLock        map[string]bool
	announced     []string
	expect        time.Duration
	rowOf         map[string]*WorkerMetrics
	javaRow       map[string]bool
	warming       bool
	held          map[string][]string
	// readNew: the leases read (announced and reclaimed), those reclaimed, and the silent
	// workers with nothing left to take.
	fresh           []Lease
	reclaimed, done map[string]bool
	// judge: the leases as the plan sees them, expired ones, the loads and workers of the
	// plan, the live workers, the mean lease throughput and whether this round rebalances.
	leases    []Lease
	byKey     map[string]Lease
	expired   map[string]bool
	loads     []LeaseLoad
	workers   []WorkerLoad
	alive     map[string]bool
	mean      float64
	rebalance bool
	// plan and apply.
	plan     Plan
	overdue  map[string]bool
	applied  []bool
	failed   []error
	handoffs int
	errs     []error
}

// begin starts round r: whether it begins a new term (see term), takes the predecessor
// the elector took the lock from, decides whether the round scans the lease table, and
// lists the workers whose rows the leader knows.
func (a *Assigner) begin(r *roundState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// A new term (see term) starts from a fresh scan: another leader may have moved
	// leases meanwhile. Its warm-up scans every round, so that its first plan sees every
	// worker's row.
	r.newTerm = a.last.IsZero() || r.started.Sub(a.last) > max(a.live, a.failover)
	if r.newTerm {
		a.warmed = false
	}
	if a.elector != nil {
		if m, ok := a.elector.takePredecessor(); ok {
			a.lockTaken[m.WorkerID] = m
		}
	}
	scheduled := r.newTerm || a.cache == nil || a.scanNow || a.scanEvery <= a.interval() ||
		r.started.Sub(a.lastScan) >= a.scanEvery || !a.warmed
	join := a.joined && r.started.Sub(a.joinScan) >= a.failover
	r.scan = scheduled || join
	if r.scan {
		a.scanNow, a.joined = false, false
	}
	if join && !scheduled {
		a.joinScan = r.started
	}
	r.known = make([]string, 0, len(a.rows))
	for w := range a.rows {
		r.known = append(r.known, w)
	}
}

// read reads the worker-metrics rows, and the lease table when r scans. The rows are read
// every round, eventually consistent (a row that looks unchanged is read again,
// consistently, before anything is taken on it). In the single-table layout they live in
// the lease table: a scan of it returns them, and between scans the rows of the workers
// known are read one by one, so a round does not read the whole table; a new worker's row
// is then found at the next scan.
func (a *Assigner) read(ctx context.Context, r *roundState) (scanned []Lease, err error) {
	switch {
	case a.store.tables.SingleTable && r.scan:
		scanned, r.metrics, err = a.store.listWith(ctx, false, true)
	case a.store.tables.SingleTable:
		r.metrics, err = a.readRows(ctx, r.known)
	default:
		if r.metrics, err = a.store.listWorkerMetrics(ctx, false); err == nil && r.scan {
			scanned, err = a.store.list(ctx, false)
		}
	}
	return scanned, err
}

// observeRows takes in what read returned: the scanned leases (observe), and the
// worker-metrics rows: a new report is evidence of life; stale rows are to be deleted; a
// self-fencing worker's row unchanged for its fence is a candidate for takeover, and so
// is the worker this leader took the lock from; announced leases the leader does not know
// yet are to be read.
func (a *Assigner) observeRows(r *roundState, scanned []Lease) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := r.now
	if r.newTerm {
		a.term = now
		a.hintAll = true
	}
	if r.scan {
		a.lastScan = r.started
		a.observe(scanned, now, r.newTerm)
		a.cache = make(map[string]Lease, len(scanned))
		for i := range scanned {
			a.cache[scanned[i].Key] = scanned[i]
		}
	}
	a.round++
	for k, t := range a.moved {
		if now.Sub(t) >= a.failover {
			delete(a.moved, k)
		}
	}
	r.rowOf = make(map[string]*WorkerMetrics, len(r.metrics))
	rows := make(map[string]time.Time, len(r.metrics))
	reports := make(map[string]time.Duration, len(r.metrics))
	fenced := make(map[string]fenceSeen, len(r.metrics))
	// Java KCL workers (rows without a report interval) may process a lease before they
	// renew it; Freshet workers, and workers without a row, renew first.
	r.javaRow = make(map[string]bool, len(r.metrics))
	for i := range r.metrics {
		m := &r.metrics[i]
		if m.LastUpdate.IsZero() || now.Sub(m.LastUpdate) > a.staleMetrics {
			r.stale = append(r.stale, *m)
			continue
		}
		reports[m.WorkerID] = m.ReportInterval
		if m.ReportInterval == 0 {
			reports[m.WorkerID] = javaReportInterval
			r.javaRow[m.WorkerID] = true
		}
		version := rowVersion(m)
		if prev, ok := a.rows[m.WorkerID]; ok && !prev.Equal(version) && !r.newTerm {
			if !a.alive(m.WorkerID, now) {
				a.rebalancing = true
				a.joined = a.joined || !r.scan // a round that scanned already plans with it
			}
			a.life[m.WorkerID] = now
		}
		rows[m.WorkerID] = version
		r.rowOf[m.WorkerID] = m
		if m.SelfFence > 0 {
			f, ok := a.fenced[m.WorkerID]
			if !ok || !f.version.Equal(version) {
				f = fenceSeen{version: version, since: now}
			}
			if still := now.Sub(f.since); still >= m.SelfFence/2 && !f.done && !f.expected {
				f.expected = true
				r.expect = max(r.expect, m.SelfFence-still+a.interval())
			}
			fenced[m.WorkerID] = f
			if _, taken := a.lockTaken[m.WorkerID]; now.Sub(f.since) >= m.SelfFence && !f.done && !taken {
				r.silent = append(r.silent, *m)
			}
		}
		for _, k := range m.NewLeases {
			if _, known := a.cache[k]; !known {
				r.announced = append(r.announced, k)
			}
		}
	}
	a.rows, a.reports, a.fenced = rows, reports, fenced
	// The workers this leader took the lock from, on expiry, that fence on it: their
	// rows as read before the takeover (docs/lease-cost.md, "Self-fencing").
	r.byLock = make(map[string]bool, len(a.lockTaken))
	for w, m := range a.lockTaken {
		r.silent = append(r.silent, m)
		r.byLock[w] = true
	}
	r.warming = a.warmingUp(r.metrics, r.silent, now)
	for w, t := range a.life {
		if now.Sub(t) > a.staleMetrics {
			delete(a.life, w)
			delete(a.suspect, w)
		}
	}
	r.held = map[string][]string{} // holder -> keys the leader knows it holds
	if len(r.silent) > 0 {
		for k, l := range a.cache {
			if h := holderOf(&l); h != "" {
				r.held[h] = append(r.held[h], k)
			}
		}
	}
}

// readNew reads the leases the leader did not know, announced by the workers that
// created them, and the leases of silent self-fencing workers, to be taken at once on the
// counters read now.
func (a *Assigner) readNew(ctx context.Context, r *roundState) {
	r.fresh = a.readLeases(ctx, r.announced, &r.errs)
	r.reclaimed, r.done = map[string]bool{}, map[string]bool{}
	for _, m := range r.silent {
		ls, err := a.reclaim(ctx, m, r.held[m.WorkerID], r.byLock[m.WorkerID])
		switch {
		case err != nil:
			r.errs = append(r.errs, err)
		case len(ls) == 0:
			r.done[m.WorkerID] = true // nothing left to take until the row changes
		}
		for _, l := range ls {
			r.reclaimed[l.Key] = true
		}
		r.fresh = append(r.fresh, ls...)
	}
}

// judge adds the leases readNew read to the leader's view and decides what the plan
// works on: which leases expired (counters judged only on rounds that read them, leases
// given to a worker that never renewed them, and the leases of silent self-fencing
// workers), the loads of the leases that can move, and the workers that may be given
// leases.
func (a *Assigner) judge(r *roundState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := r.now
	for _, l := range r.fresh {
		a.cache[l.Key] = l
		s := a.seen[l.Key]
		if s.since.IsZero() || s.counter != l.Counter || s.owner != l.Owner || s.cpOwner != l.CheckpointOwner {
			s = seenLease{counter: l.Counter, owner: l.Owner, cpOwner: l.CheckpointOwner, since: now}
		}
		a.seen[l.Key] = s
	}
	for w := range r.done {
		if f, ok := a.fenced[w]; ok {
			f.done = true
			a.fenced[w] = f
		}
		delete(a.lockTaken, w)
	}
	leases := make([]Lease, 0, len(a.cache))
	for _, l := range a.cache {
		leases = append(leases, l)
	}
	slices.SortFunc(leases, func(x, y Lease) int { return strings.Compare(x.Key, y.Key) })
	r.leases = leases
	// Rebalancing runs only on rounds that scanned, when owners and rates are current:
	// every n-th round while every round scans, else on every scan.
	r.rebalance = r.scan && (a.round%a.every == 0 || a.scanEvery > a.interval())
	expired := make(map[string]bool, len(leases))
	for i := range leases {
		l := &leases[i]
		if l.Owner == "" {
			continue
		}
		s := a.seen[l.Key]
		h := holderOf(l)
		switch {
		case r.reclaimed[l.Key]:
			expired[l.Key] = true
		case !r.scan:
		case a.expired(s, h, r.javaRow[h], now):
			expired[l.Key] = true
			if r.javaRow[h] && !s.pickup {
				// A Java worker that stopped renewing a lease it had: it shows no life
				// until it shows some again, so the leases it was just given and has not
				// picked up yet expire too, and it gets no more.
				a.suspect[h] = now
			}
		case s.await && !r.javaRow[l.Owner] && now.Sub(s.awaitSince) >= a.confirm:
			expired[l.Key] = true
			if _, already := a.suspect[l.Owner]; !already || !a.life[l.Owner].Before(a.suspect[l.Owner]) {
				a.log.Info("worker did not renew a lease it was given; presumed dead",
					zap.String("worker", l.Owner), zap.String("lease", l.Key))
			}
			a.suspect[l.Owner] = now
		}
	}
	r.expired = expired
	troubled := map[string]bool{}
	owners := map[string]bool{}
	loads := make([]LeaseLoad, 0, len(leases))
	r.byKey = make(map[string]Lease, len(leases))
	var sum float64
	for i := range leases {
		l := &leases[i]
		if l.Checkpoint.IsShardEnd() {
			continue // finished: nothing to process
		}
		r.byKey[l.Key] = *l
		if expired[l.Key] {
			// During a handoff the old owner (checkpoint owner) is the one that stopped renewing.
			troubled[holderOf(l)] = true
		} else if l.Owner != "" {
			owners[l.Owner] = true
		}
		loads = append(loads, LeaseLoad{Key: l.Key, Owner: l.Owner, ThroughputKBps: l.ThroughputKBps,
			Expired: expired[l.Key], HandoffPending: l.HandoffPending()})
		sum += max(l.ThroughputKBps, 0)
	}
	// On an idle stream the measured rates are noise: balance lease counts instead. The
	// switch has hysteresis so that rates near the threshold do not alternate the basis
	// (each basis has its own optimum, and alternating them moves leases back and forth).
	if len(loads) > 0 {
		r.mean = sum / float64(len(loads))
		a.lastMean = r.mean
		switch {
		case a.idle && r.mean > 2*idleLeaseKBps:
			a.idle = false
		case !a.idle && r.mean < idleLeaseKBps/2:
			a.idle = true
		}
		if a.idle {
			for i := range loads {
				loads[i].ThroughputKBps = 0
			}
		}
	}
	r.alive = map[string]bool{}
	consider := func(w string) {
		if r.alive[w] || troubled[w] || !a.alive(w, now) {
			return
		}
		cpu := -1.0
		if m := r.rowOf[w]; m != nil {
			if !m.Valid() || now.Sub(m.LastUpdate) > m.maxAge(a.metricsMaxAge) {
				return
			}
			if c, ok := m.CPU(); ok {
				cpu = c
			}
		}
		r.workers = append(r.workers, WorkerLoad{ID: w, CPU: cpu})
		r.alive[w] = true
	}
	for i := range r.metrics {
		consider(r.metrics[i].WorkerID)
	}
	for w := range owners {
		consider(w) // renewing, but without a metrics row (yet)
	}
	// A lease of an owner that gets nothing (troubled, or showing no life) and that has
	// not expired cannot move: not outright, and not by handoff, which needs a live owner.
	// It stays out of the plan, so that the plan balances what can move instead of
	// counting such leases as placed elsewhere and leaving the other workers unbalanced.
	movable := loads[:0]
	for _, ll := range loads {
		if ll.Owner == "" || ll.Expired || r.alive[ll.Owner] {
			movable = append(movable, ll)
		}
	}
	r.loads = movable
}

// deleteStale deletes the stale worker-metrics rows, each only if unchanged since read.
func (a *Assigner) deleteStale(ctx context.Context, r *roundState) {
	for i := range r.stale {
		deleted, err := a.store.DeleteWorkerMetricsIfUnchanged(ctx, r.stale[i])
		if err != nil {
			r.errs = append(r.errs, err)
		} else if deleted {
			a.log.Info("deleted stale worker metrics", zap.String("worker", r.stale[i].WorkerID), zap.Time("lastUpdate", r.stale[i].LastUpdate))
		}
	}
}

// plan computes the round's plan, and replaces its moves of overdue handoffs with takes
// for their new owners. Overdue handoffs are judged, like expiry, only on rounds that
// scan: between scans the leader's copy of a lease its old owner renews is stale, and a
// take conditional on that counter would fail round after round.
func (a *Assigner) plan(r *roundState) {
	cfg := a.cfg
	cfg.Rebalance = r.rebalance
	r.plan = ComputePlan(r.loads, r.workers, cfg)
	if r.scan {
		r.overdue = a.overdueHandoffs(r.leases, r.expired, r.now)
	}
	if len(r.overdue) > 0 {
		moves := make([]Move, 0, len(r.plan.Moves)+len(r.overdue))
		for _, m := range r.plan.Moves {
			if !r.overdue[m.Key] {
				moves = append(moves, m)
			}
		}
		for k := range r.overdue {
			l := r.byKey[k]
			moves = append(moves, Move{Key: k, From: l.CheckpointOwner, To: l.Owner})
		}
		r.plan.Moves = moves
	}
}

// hintExpect tells the live Freshet workers that have not themselves stood still for
// half their fence to expect a silent worker's leases within r.expect.
func (a *Assigner) hintExpect(ctx context.Context, r *roundState) {
	var to []string
	a.mu.Lock()
	for _, wl := range r.workers {
		if m := r.rowOf[wl.ID]; m != nil && m.SelfFence > 0 && r.now.Sub(a.fenced[wl.ID].since) < m.SelfFence/2 {
			to = append(to, wl.ID)
		}
	}
	a.mu.Unlock()
	r.errs = append(r.errs, a.hint(ctx, to, r.expect)...)
}

// apply writes the plan's moves. They touch distinct leases and every write is
// conditional, so they are applied concurrently; a round placing thousands of leases then
// takes seconds, not minutes.
func (a *Assigner) apply(ctx context.Context, r *roundState) {
	r.applied = make([]bool, len(r.plan.Moves))
	r.failed = make([]error, len(r.plan.Moves))
	var handoffs int
	_ = concurrently(ctx, len(r.plan.Moves), storeConcurrency, func(ctx context.Context, i int) error {
		m := r.plan.Moves[i]
		l := r.byKey[m.Key]
		var (
			nl     Lease
			err    error
			handed bool
		)
		a.mu.Lock()
		ownerAlive := l.Owner != "" && r.alive[l.Owner]
		cooled := r.now.Sub(a.moved[l.Key]) >= a.failover
		a.mu.Unlock()
		switch {
		case l.Owner == "" || r.expired[l.Key]:
			nl, err = a.store.Take(ctx, l, m.To)
		case r.overdue[l.Key]:
			a.log.Warn("handoff pending past the handoff timeout and a failover time; taking the lease for its new owner",
				zap.String("lease", l.Key), zap.String("from", l.CheckpointOwner), zap.String("to", l.Owner))
			nl, err = a.store.Take(ctx, l, l.Owner)
		case m.Handoff && !l.HandoffPending() && ownerAlive && cooled:
			nl, err = a.store.Handoff(ctx, l, m.To)
			handed = true
		default:
			// A live lease never moves outright; one whose owner shows no life waits for
			// its expiry; one moved recently stays until its rate is measured where it is.
			return nil
		}
		switch {
		case err == nil:
			r.applied[i] = true
			a.mu.Lock()
			a.wrote(nl, r.now, !handed)
			if handed {
				a.moved[m.Key] = r.now
				handoffs++
			}
			a.mu.Unlock()
		case !errors.Is(err, ErrConflict):
			r.failed[i] = err
		}
		return nil // one failed write does not stop the others
	})
	r.handoffs = handoffs
}

// hintMoves leaves the hint that they were given leases in the rows of the workers the
// applied moves concern (and, on a term's first round that applies moves, of every live
// Freshet worker), and ends a rebalancing run once a rebalance started no handoff.
func (a *Assigner) hintMoves(ctx context.Context, r *roundState) {
	a.mu.Lock()
	for i, m := range r.plan.Moves {
		if r.applied[i] {
			a.hints[m.To] = true
			if m.Handoff && m.From != "" {
				a.hints[m.From] = true // its renewal then tells it to hand the lease off
			}
		}
	}
	if a.hintAll {
		a.hintAll = false
		for _, wl := range r.workers {
			if m := r.rowOf[wl.ID]; m != nil && m.SelfFence > 0 {
				a.hints[wl.ID] = true
			}
		}
	}
	hinted := make([]string, 0, len(a.hints))
	for w := range a.hints {
		hinted = append(hinted, w)
	}
	a.mu.Unlock()
	r.errs = append(r.errs, a.hint(ctx, hinted, 0)...)
	if r.rebalance {
		a.mu.Lock()
		if a.rebalancing {
			a.joined, a.rebalancing = r.handoffs > 0, r.handoffs > 0
		}
		a.mu.Unlock()
	}
}

// hint leaves a hint in the rows of workers (concurrently): that they were given leases
// (expect zero; a failed write stays pending for the next round), or that they may be
// given a silent worker's leases within expect. It returns the failures other than rows
// that are missing or not a Freshet worker's.
func (a *Assigner) hint(ctx context.Context, workers []string, expect time.Duration) []error {
	failed := make([]error, len(workers))
	_ = concurrently(ctx, len(workers), storeConcurrency, func(ctx context.Context, i int) error {
		err := a.store.hintWorker(ctx, workers[i], expect)
		if err != nil && !errors.Is(err, ErrNotFound) {
			failed[i] = err
		}
		return nil
	})
	var errs []error
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, w := range workers {
		if failed[i] != nil {
			errs = append(errs, failed[i])
		} else if expect == 0 {
			delete(a.hints, w)
		}
	}
	return errs
}

// Run performs a round every assignment interval (a twentieth of the failover time)
// while isLeader reports true, until ctx ends.
func (a *Assigner) Run(ctx context.Context, isLeader func() bool) error {
	for {
		if isLeader() {
			if _, err := a.RunOnce(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("lease assignment", zap.Error(err))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.clock.After(a.interval()):
		}
	}
}
