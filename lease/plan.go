package lease

import (
	"cmp"
	"fmt"
	"slices"
)

// LeaseLoad is what the assignment needs to know about one lease.
type LeaseLoad struct {
	// Key is the lease key.
	Key string
	// Owner is the current owner, empty when unassigned.
	Owner string
	// ThroughputKBps is the lease's last reported throughput.
	ThroughputKBps float64
	// Expired is set when the lease's counter has not moved for the failover time.
	Expired bool
	// HandoffPending is set while a graceful handoff is under way; such a lease is not
	// moved again.
	HandoffPending bool
}

// WorkerLoad is a live worker with valid metrics, as the leader sees it.
type WorkerLoad struct {
	// ID is the worker identifier (the lease owner name).
	ID string
	// CPU is the worker's CPU utilization in percent of its capacity; negative when the
	// worker reports none.
	CPU float64
}

// PlanConfig tunes the assignment.
type PlanConfig struct {
	// ThresholdPercent is how far above the fleet's average load, in percent of that
	// average, a worker may be before leases are moved off it. Default 10.
	ThresholdPercent float64
	// DampeningPercent is the share of a worker's excess load moved in one round. Default
	// 60.
	DampeningPercent float64
	// MaxMovesPerRound caps the graceful handoffs of one rebalancing round. Default:
	// a tenth of the leases, at least 1.
	MaxMovesPerRound int
	// Rebalance enables the variance-reduction step; without it only unassigned,
	// expired and orphaned leases are placed.
	Rebalance bool
}

func (c *PlanConfig) withDefaults(leases int) PlanConfig {
	out := *c
	if out.ThresholdPercent == 0 {
		out.ThresholdPercent = 10
	}
	if out.DampeningPercent == 0 {
		out.DampeningPercent = 60
	}
	if out.MaxMovesPerRound == 0 {
		out.MaxMovesPerRound = max(1, leases/10)
	}
	return out
}

// Validate checks the configuration.
func (c *PlanConfig) Validate() error {
	switch {
	case c.ThresholdPercent < 0:
		return fmt.Errorf("%w: ThresholdPercent %v < 0", ErrInvalidOption, c.ThresholdPercent)
	case c.DampeningPercent < 0 || c.DampeningPercent > 100:
		return fmt.Errorf("%w: DampeningPercent %v outside [0, 100]", ErrInvalidOption, c.DampeningPercent)
	case c.MaxMovesPerRound < 0:
		return fmt.Errorf("%w: MaxMovesPerRound %d < 0", ErrInvalidOption, c.MaxMovesPerRound)
	}
	return nil
}

// LoadBasis says which quantity the plan balanced.
type LoadBasis int

// Load bases, from the richest metrics to the fallback.
const (
	// BasisCPU balances worker CPU utilization, attributing each worker's CPU to its
	// leases in proportion to their throughput.
	BasisCPU LoadBasis = iota
	// BasisThroughput balances the sum of lease throughput per worker.
	BasisThroughput
	// BasisCount balances the number of leases per worker.
	BasisCount
)

func (b LoadBasis) String() string {
	switch b {
	case BasisCPU:
		return "cpu"
	case BasisThroughput:
		return "throughput"
	}
	return "count"
}

// Move is one decision of a plan.
type Move struct {
	// Key is the lease to move.
	Key string
	// From is its current owner, empty when unassigned.
	From string
	// To is the worker that gets it.
	To string
	// Handoff is true when From is alive and should hand the lease over gracefully
	// (checkpoint, then release); false when the lease is taken outright (unassigned or
	// expired).
	Handoff bool
}

// Plan is the result of an assignment round.
type Plan struct {
	// Moves are the ownership changes, takes before handoffs.
	Moves []Move
	// Basis is the load measure used.
	Basis LoadBasis
	// Load is each worker's projected load after the moves, in units of Basis.
	Load map[string]float64
	// Average is the fleet's average load after the moves.
	Average float64
}

type planLease struct {
	idx    int
	weight float64
}

// ComputePlan decides which leases change owner: every unassigned or expired lease, and
// every lease whose owner is not among workers, goes to the least-loaded worker; then, if
// cfg.Rebalance is set, while some worker is loaded more than the threshold above the
// average or some worker less than the threshold below it (at most one lease when
// balancing counts), leases move from the most
// loaded worker to the least loaded one, only when the move strictly reduces the variance of
// load (so rounds converge and never oscillate), at most DampeningPercent of a worker's excess per round and at most
// MaxMovesPerRound moves in all. It is a pure function: the same input gives the same plan.
func ComputePlan(leases []LeaseLoad, workers []WorkerLoad, cfg PlanConfig) Plan {
	c := cfg.withDefaults(len(leases))
	plan := Plan{Load: make(map[string]float64, len(workers))}
	if len(workers) == 0 {
		plan.Basis = BasisCount
		return plan
	}
	ws := slices.Clone(workers)
	slices.SortFunc(ws, func(a, b WorkerLoad) int { return cmp.Compare(a.ID, b.ID) })
	ws = slices.CompactFunc(ws, func(a, b WorkerLoad) bool { return a.ID == b.ID })
	widx := make(map[string]int, len(ws))
	for i, w := range ws {
		widx[w.ID] = i
	}

	// Choose the basis.
	var totalT float64
	for i := range leases {
		if leases[i].ThroughputKBps > 0 {
			totalT += leases[i].ThroughputKBps
		}
	}
	plan.Basis = BasisCount
	if totalT > 0 {
		plan.Basis = BasisThroughput
		allCPU := true
		for _, w := range ws {
			if w.CPU < 0 {
				allCPU = false
				break
			}
		}
		if allCPU {
			plan.Basis = BasisCPU
		}
	}

	// Per-worker throughput and lease counts of held leases, for CPU attribution.
	held := make([]float64, len(ws))
	heldN := make([]int, len(ws))
	for i := range leases {
		if w, ok := widx[leases[i].Owner]; ok && !leases[i].Expired {
			held[w] += max(leases[i].ThroughputKBps, 0)
			heldN[w]++
		}
	}
	load := make([]float64, len(ws))
	if plan.Basis == BasisCPU {
		for i, w := range ws {
			load[i] = w.CPU
		}
	}
	weight := func(l *LeaseLoad, w int) float64 {
		t := max(l.ThroughputKBps, 0)
		switch plan.Basis {
		case BasisCount:
			return 1
		case BasisThroughput:
			return t
		}
		if w < 0 {
			return -1
		}
		if held[w] > 0 {
			return ws[w].CPU * t / held[w]
		}
		return ws[w].CPU / float64(max(heldN[w], 1))
	}

	// Weights of held leases and the estimate for leases to place.
	owned := make([][]planLease, len(ws))
	var toPlace []planLease
	var known float64
	var knownN int
	for i := range leases {
		l := &leases[i]
		w, alive := widx[l.Owner]
		if !alive || l.Expired {
			toPlace = append(toPlace, planLease{idx: i, weight: weight(l, -1)})
			continue
		}
		wt := weight(l, w)
		if plan.Basis != BasisCPU {
			load[w] += wt
		}
		owned[w] = append(owned[w], planLease{idx: i, weight: wt})
		known += wt
		knownN++
	}
	estimate := 1.0
	if knownN > 0 && known > 0 {
		estimate = known / float64(knownN)
	}
	var knownT float64
	for w := range ws {
		knownT += held[w]
	}
	for i := range toPlace {
		t := max(leases[toPlace[i].idx].ThroughputKBps, 0)
		switch {
		case plan.Basis == BasisThroughput && t > 0:
			toPlace[i].weight = t
		case plan.Basis == BasisCPU && t > 0 && knownT > 0 && known > 0:
			toPlace[i].weight = t * known / knownT
		default:
			toPlace[i].weight = estimate
		}
	}

	// Place: heaviest first, each on the least-loaded worker (then fewest leases, then ID).
	slices.SortStableFunc(toPlace, func(a, b planLease) int {
		if c := cmp.Compare(b.weight, a.weight); c != 0 {
			return c
		}
		return cmp.Compare(leases[a.idx].Key, leases[b.idx].Key)
	})
	counts := make([]int, len(ws))
	for w := range ws {
		counts[w] = len(owned[w])
	}
	least := func(exclude int) int {
		best := -1
		for w := range ws {
			if w == exclude {
				continue
			}
			if best < 0 || load[w] < load[best] || (load[w] == load[best] && counts[w] < counts[best]) {
				best = w
			}
		}
		return best
	}
	for _, p := range toPlace {
		l := &leases[p.idx]
		w := least(-1)
		_, ownerAlive := widx[l.Owner]
		plan.Moves = append(plan.Moves, Move{Key: l.Key, From: l.Owner, To: ws[w].ID,
			Handoff: l.Owner != "" && !l.Expired && !ownerAlive && !l.HandoffPending})
		load[w] += p.weight
		counts[w]++
	}

	var total float64
	for _, x := range load {
		total += x
	}
	avg := total / float64(len(ws))
	plan.Average = avg

	if c.Rebalance && len(ws) > 1 {
		rebalance(&plan, leases, ws, owned, load, counts, avg, c)
	}
	for i, w := range ws {
		plan.Load[w.ID] = load[i]
	}
	return plan
}

func rebalance(plan *Plan, leases []LeaseLoad, ws []WorkerLoad, owned [][]planLease, load []float64, counts []int,
	avg float64, c PlanConfig) {
	thr := avg * c.ThresholdPercent / 100
	if plan.Basis == BasisCount {
		thr = min(thr, 1) // counts balance to within one lease of the fair share
	}
	high, low := avg+thr, avg-thr
	budget := make([]float64, len(ws))
	excess := make([]float64, len(ws))
	cands := make([][]planLease, len(ws))
	for w := range ws {
		excess[w] = load[w] - avg
		budget[w] = excess[w] * c.DampeningPercent / 100
		cands[w] = slices.Clone(owned[w])
		slices.SortStableFunc(cands[w], func(a, b planLease) int {
			if c := cmp.Compare(b.weight, a.weight); c != 0 {
				return c
			}
			return cmp.Compare(leases[a.idx].Key, leases[b.idx].Key)
		})
	}
	shed := make([]float64, len(ws))
	exhausted := make([]bool, len(ws))
	for moves := 0; moves < c.MaxMovesPerRound; {
		d, r := -1, -1
		for w := range ws {
			if !exhausted[w] && (d < 0 || load[w] > load[d]) {
				d = w
			}
		}
		for w := range ws {
			if w != d && (r < 0 || load[w] < load[r] || (load[w] == load[r] && counts[w] < counts[r])) {
				r = w
			}
		}
		if d < 0 || r < 0 || !(load[d] > high || load[r] < low) {
			return
		}
		pick := -1
		for i, p := range cands[d] {
			if p.idx < 0 || p.weight <= 0 || leases[p.idx].HandoffPending {
				continue
			}
			if p.weight >= load[d]-load[r] {
				continue // would not reduce the variance of load
			}
			// Dampening leaves the rest for later rounds, except for a worker below the band
			// when balancing counts: with many workers each a fraction of a lease above the
			// average, no single one has a whole lease of excess to give.
			if shed[d]+p.weight > budget[d] && !(shed[d] == 0 && p.weight <= excess[d]) && !(plan.Basis == BasisCount && load[r] < low) {
				continue
			}
			pick = i
			break
		}
		if pick < 0 {
			exhausted[d] = true
			continue
		}
		p := cands[d][pick]
		cands[d][pick].idx = -1
		plan.Moves = append(plan.Moves, Move{Key: leases[p.idx].Key, From: ws[d].ID, To: ws[r].ID, Handoff: true})
		load[d] -= p.weight
		load[r] += p.weight
		counts[d]--
		counts[r]++
		shed[d] += p.weight
		moves++
	}
}
