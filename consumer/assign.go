package consumer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/freshet/freshet/internal/clock"
	"github.com/freshet/freshet/lease"
)

// assigner is the leader's assignment round: lease.ComputePlan over the lease table and
// the worker-metrics table, applied with Store.Take and Store.Handoff. It adapts
// lease.Assigner with these rules, which the consumer's promises need:
//
//   - Every worker observes the lease table each round (expiry is judged on the
//     observer's clock), so a newly elected leader can reassign a dead worker's leases
//     without first watching them for a whole failover time.
//   - A worker is alive while its metrics row is fresh or while it renews its leases;
//     a worker with an expired lease is left out even while its metrics row is still
//     fresh, so expired leases are not given back to a worker that stopped renewing
//     (its leases expire one by one, at the pace of its last renewals).
//   - On an idle stream (mean lease throughput below idleLeaseKBps, with hysteresis) the
//     plan balances lease counts: rates of a few bytes per second are noise, not load.
//   - Rebalancing does not move a lease again within the failover time of its last
//     move, so noisy rates cannot swing leases back and forth.
//   - A lease that has an owner and has not expired moves only by graceful handoff.
//     Taking it outright (as a plan may decide for a lease whose handoff target looks
//     gone) would let a second worker start from a checkpoint the first is still
//     advancing, which re-delivers records without any crash.
//
// idleLeaseKBps is the mean lease throughput below which a stream counts as idle, and
// the plan balances lease counts rather than throughput.
const idleLeaseKBps = 1.0

type assigner struct {
	store   *lease.Store
	clock   clock.Clock
	plan    lease.PlanConfig
	every   int
	maxAge  time.Duration
	tracker *lease.ExpiryTracker

	// cooldown is how long a lease that moved stays where it is before rebalancing may
	// move it again (the failover time: a few renewals' worth of rate measurements).
	cooldown time.Duration

	mu    sync.Mutex
	round int
	idle  bool
	moved map[string]time.Time
	// lastMean is the mean lease throughput of the last round, for logs.
	lastMean float64
}

func newAssigner(store *lease.Store, cfg *config) *assigner {
	return &assigner{store: store, clock: cfg.clock, plan: cfg.plan, maxAge: cfg.metricsMaxAge(),
		every:   max(1, int(cfg.rebalanceInterval/cfg.assignInterval)),
		tracker: lease.NewExpiryTracker(cfg.failoverTime), cooldown: cfg.failoverTime, moved: map[string]time.Time{}}
}

// observe lists the leases and records their counters for expiry.
func (a *assigner) observe(ctx context.Context) ([]lease.Lease, time.Time, error) {
	leases, err := a.store.List(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	now := a.clock.Now()
	a.mu.Lock()
	a.tracker.Observe(leases, now)
	a.mu.Unlock()
	return leases, now, nil
}

// assignRound observes the lease table and, when lead is set, computes a plan (with
// rebalancing every few rounds) and applies the moves the rules above allow. It returns
// the moves applied.
func (a *assigner) assignRound(ctx context.Context, lead bool) ([]lease.Move, lease.LoadBasis, error) {
	leases, now, err := a.observe(ctx)
	if err != nil || !lead {
		return nil, 0, err
	}
	metrics, err := a.store.ListWorkerMetrics(ctx)
	if err != nil {
		return nil, 0, err
	}
	a.mu.Lock()
	for k, t := range a.moved {
		if now.Sub(t) >= a.cooldown {
			delete(a.moved, k)
		}
	}
	a.round++
	rebalance := a.round%a.every == 0
	expired := make(map[string]bool, len(leases))
	for i := range leases {
		l := &leases[i]
		expired[l.Key] = l.Owner != "" && a.tracker.Expired(l, now)
	}
	a.mu.Unlock()

	type evidence struct{ live, dead int }
	owners := map[string]*evidence{}
	note := func(w string, live bool) {
		if w == "" {
			return
		}
		e := owners[w]
		if e == nil {
			e = &evidence{}
			owners[w] = e
		}
		if live {
			e.live++
		} else {
			e.dead++
		}
	}
	loads := make([]lease.LeaseLoad, 0, len(leases))
	byKey := make(map[string]lease.Lease, len(leases))
	for i := range leases {
		l := &leases[i]
		if l.Checkpoint.IsShardEnd() {
			continue
		}
		byKey[l.Key] = *l
		note(l.Owner, !expired[l.Key])
		if l.CheckpointOwner != "" && l.CheckpointOwner != l.Owner {
			note(l.CheckpointOwner, !expired[l.Key])
		}
		loads = append(loads, lease.LeaseLoad{Key: l.Key, Owner: l.Owner, ThroughputKBps: l.ThroughputKBps,
			Expired: expired[l.Key], HandoffPending: l.HandoffPending()})
	}
	// On an idle stream the measured rates are noise: balance lease counts instead. The
	// switch has hysteresis so that rates near the threshold do not alternate the basis
	// (each basis has its own optimum, and alternating them moves leases back and forth).
	var sum float64
	for _, l := range loads {
		sum += max(l.ThroughputKBps, 0)
	}
	if len(loads) > 0 {
		mean := sum / float64(len(loads))
		a.lastMean = mean
		a.mu.Lock()
		switch {
		case a.idle && mean > 2*idleLeaseKBps:
			a.idle = false
		case !a.idle && mean < idleLeaseKBps/2:
			a.idle = true
		}
		idle := a.idle
		a.mu.Unlock()
		if idle {
			for i := range loads {
				loads[i].ThroughputKBps = 0
			}
		}
	}
	var workers []lease.WorkerLoad
	alive := map[string]bool{}
	for i := range metrics {
		m := &metrics[i]
		if !m.Valid() || now.Sub(m.LastUpdate) > a.maxAge {
			continue
		}
		if e := owners[m.WorkerID]; e != nil && e.dead > 0 {
			continue // stopped renewing (dead, or in trouble): give it nothing
		}
		cpu, ok := m.CPU()
		if !ok {
			cpu = -1
		}
		workers = append(workers, lease.WorkerLoad{ID: m.WorkerID, CPU: cpu})
		alive[m.WorkerID] = true
	}
	for w, e := range owners {
		if e.live > 0 && e.dead == 0 && !alive[w] {
			workers = append(workers, lease.WorkerLoad{ID: w, CPU: -1})
		}
	}
	cfg := a.plan
	cfg.Rebalance = rebalance
	plan := lease.ComputePlan(loads, workers, cfg)
	var applied []lease.Move
	var errs []error
	for _, m := range plan.Moves {
		l := byKey[m.Key]
		var err error
		switch {
		case m.Handoff && l.Owner != "" && !l.HandoffPending() && !expired[l.Key]:
			if !alive[l.Owner] || now.Sub(a.moved[l.Key]) >= a.cooldown {
				_, err = a.store.Handoff(ctx, l, m.To)
			} else {
				continue // moved recently: its rate is not yet measured where it is now
			}
		case l.Owner == "" || expired[l.Key]:
			_, err = a.store.Take(ctx, l, m.To)
		default:
			continue // a live lease never moves outright
		}
		switch {
		case err == nil:
			applied = append(applied, m)
			if m.Handoff {
				a.mu.Lock()
				a.moved[m.Key] = now
				a.mu.Unlock()
			}
		case !errors.Is(err, lease.ErrConflict):
			errs = append(errs, err)
		}
	}
	return applied, plan.Basis, errors.Join(errs...)
}

// mean returns the mean lease throughput of the last round.
func (a *assigner) mean() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastMean
}
