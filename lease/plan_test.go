package lease

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// sim is a fleet the tests drive through assignment rounds, applying each plan.
type sim struct {
	leases  []LeaseLoad
	workers []WorkerLoad
	moves   int
}

func (s *sim) round(cfg PlanConfig) Plan {
	p := ComputePlan(s.leases, s.workers, cfg)
	idx := map[string]int{}
	for i, l := range s.leases {
		idx[l.Key] = i
	}
	for _, m := range p.Moves {
		l := &s.leases[idx[m.Key]]
		if l.Owner != m.From {
			panic("move from a worker that does not own the lease")
		}
		l.Owner = m.To
		l.Expired = false
		s.moves++
	}
	return p
}

// loads returns each live worker's load by the plan's basis, from the current owners.
func (s *sim) loads(basis LoadBasis) map[string]float64 {
	out := map[string]float64{}
	for _, w := range s.workers {
		out[w.ID] = 0
	}
	for _, l := range s.leases {
		if _, ok := out[l.Owner]; !ok {
			continue
		}
		if basis == BasisCount {
			out[l.Owner]++
		} else {
			out[l.Owner] += l.ThroughputKBps
		}
	}
	return out
}

func (s *sim) allOwnedByLiveWorkers(t *testing.T) {
	t.Helper()
	live := map[string]bool{}
	for _, w := range s.workers {
		live[w.ID] = true
	}
	for _, l := range s.leases {
		if !live[l.Owner] || l.Expired {
			t.Fatalf("lease %s owned by %q (expired %v), not a live worker", l.Key, l.Owner, l.Expired)
		}
	}
}

func workers(n int, offset int) []WorkerLoad {
	ws := make([]WorkerLoad, n)
	for i := range ws {
		ws[i] = WorkerLoad{ID: fmt.Sprintf("w%03d", i+offset), CPU: -1}
	}
	return ws
}

func TestPlanAssignsAllUnassignedEvenly(t *testing.T) {
	s := &sim{workers: workers(7, 0)}
	for i := 0; i < 100; i++ {
		s.leases = append(s.leases, LeaseLoad{Key: fmt.Sprintf("shardId-%03d", i)})
	}
	p := s.round(PlanConfig{})
	if p.Basis != BasisCount {
		t.Fatalf("basis %v, want count", p.Basis)
	}
	s.allOwnedByLiveWorkers(t)
	for id, n := range s.loads(BasisCount) {
		if n < 14 || n > 15 {
			t.Errorf("worker %s got %v leases, want 14 or 15", id, n)
		}
	}
	for _, m := range p.Moves {
		if m.Handoff || m.From != "" {
			t.Fatalf("placing an unassigned lease must be a take from nobody: %+v", m)
		}
	}
}

func TestPlanNoWorkers(t *testing.T) {
	p := ComputePlan([]LeaseLoad{{Key: "a"}}, nil, PlanConfig{Rebalance: true})
	if len(p.Moves) != 0 {
		t.Fatalf("moves without workers: %+v", p.Moves)
	}
}

// TestPlanConvergence is a property test: random fleets of N workers and M leases with
// heavy-tailed throughput, random initial owners (some unassigned, expired or dead),
// converge within k rounds to every lease owned, every worker's load within the threshold
// plus one lease of the average, a bounded number of moves, and then stay put.
func TestPlanConvergence(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for trial := 0; trial < 60; trial++ {
		n := 2 + r.IntN(19)
		m := n + r.IntN(400)
		s := &sim{workers: workers(n, 0)}
		var maxW float64
		for i := 0; i < m; i++ {
			l := LeaseLoad{Key: fmt.Sprintf("shardId-%04d", i)}
			if trial%3 != 0 { // a third of the trials have no throughput: count basis
				l.ThroughputKBps = math.Round(math.Exp(r.NormFloat64()*1.2)*100) / 100
			}
			maxW = math.Max(maxW, l.ThroughputKBps)
			switch x := r.IntN(10); {
			case x == 0:
			case x == 1:
				l.Owner = "dead-worker"
			default:
				l.Owner = s.workers[r.IntN(n)].ID
				l.Expired = x == 2
			}
			s.leases = append(s.leases, l)
		}
		cfg := PlanConfig{Rebalance: true}
		var p Plan
		const k = 30
		for i := 0; i < k; i++ {
			p = s.round(cfg)
		}
		s.allOwnedByLiveWorkers(t)
		if p2 := ComputePlan(s.leases, s.workers, cfg); len(p2.Moves) != 0 {
			t.Fatalf("trial %d (N=%d M=%d): not converged after %d rounds: %d more moves", trial, n, m, k, len(p2.Moves))
		}
		if p.Basis == BasisCount {
			maxW = 1
		}
		loads := s.loads(p.Basis)
		var total float64
		for _, x := range loads {
			total += x
		}
		avg := total / float64(n)
		for id, x := range loads {
			if x > avg*1.1+maxW+1e-9 {
				t.Errorf("trial %d (N=%d M=%d %v): worker %s load %.2f > avg %.2f + 10%% + max lease %.2f",
					trial, n, m, p.Basis, id, x, avg, maxW)
			}
		}
		if s.moves > 2*m {
			t.Errorf("trial %d (N=%d M=%d): %d moves for %d leases", trial, n, m, s.moves, m)
		}
	}
}

// TestPlanAddRemoveWorkersNoStorm adds and removes workers and counts lease moves: each
// change moves about the fair share, never a storm.
func TestPlanAddRemoveWorkersNoStorm(t *testing.T) {
	for _, basis := range []string{"count", "throughput"} {
		t.Run(basis, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			s := &sim{workers: workers(4, 0)}
			const m = 200
			for i := 0; i < m; i++ {
				l := LeaseLoad{Key: fmt.Sprintf("shardId-%04d", i)}
				if basis == "throughput" {
					l.ThroughputKBps = 50 + r.Float64()*100
				}
				s.leases = append(s.leases, l)
			}
			cfg := PlanConfig{Rebalance: true}
			settle := func() int {
				before := s.moves
				for i := 0; i < 40; i++ {
					if len(s.round(cfg).Moves) == 0 {
						return s.moves - before
					}
				}
				t.Fatal("did not settle in 40 rounds")
				return 0
			}
			settle()

			// Add a fifth worker: it should receive about a fifth of the leases, and only
			// those should move.
			s.workers = append(s.workers, workers(1, 100)...)
			moved := settle()
			fair := m / 5
			if moved == 0 || moved > fair*13/10 {
				t.Errorf("adding a worker moved %d leases, want at most about %d", moved, fair)
			}
			b := BasisCount
			if basis == "throughput" {
				b = BasisThroughput
			}
			loads := s.loads(b)
			var total float64
			for _, x := range loads {
				total += x
			}
			avg := total / float64(len(loads))
			maxW := 1.0
			if b == BasisThroughput {
				maxW = 150
			}
			if got := loads["w100"]; got < avg*0.9-maxW {
				t.Errorf("new worker's load %.1f, want at least %.1f (average %.1f)", got, avg*0.9-maxW, avg)
			}

			// A round never moves more than MaxMovesPerRound handoffs.
			s.workers = append(s.workers, workers(1, 200)...)
			p := s.round(cfg)
			handoffs := 0
			for _, mv := range p.Moves {
				if mv.Handoff {
					handoffs++
				}
			}
			if handoffs > m/10 {
				t.Errorf("one round made %d handoffs, cap %d", handoffs, m/10)
			}
			settle()

			// Remove a worker: only its leases (plus a few for balance) move.
			gone := s.workers[1].ID
			orphans := int(s.loads(BasisCount)[gone])
			s.workers = append(s.workers[:1], s.workers[2:]...)
			for i := range s.leases {
				if s.leases[i].Owner == gone {
					s.leases[i].Expired = true
				}
			}
			moved = settle()
			if moved < orphans || moved > orphans+orphans/2+2 {
				t.Errorf("removing a worker with %d leases moved %d", orphans, moved)
			}
			s.allOwnedByLiveWorkers(t)
		})
	}
}

func TestPlanCPUBasis(t *testing.T) {
	// Two workers with the same throughput; w000 burns three times the CPU, so the leader
	// moves load off it.
	ws := []WorkerLoad{{ID: "w000", CPU: 90}, {ID: "w001", CPU: 30}}
	var leases []LeaseLoad
	for i := 0; i < 10; i++ {
		leases = append(leases, LeaseLoad{Key: fmt.Sprintf("a%d", i), Owner: "w000", ThroughputKBps: 100})
		leases = append(leases, LeaseLoad{Key: fmt.Sprintf("b%d", i), Owner: "w001", ThroughputKBps: 100})
	}
	p := ComputePlan(leases, ws, PlanConfig{Rebalance: true})
	if p.Basis != BasisCPU {
		t.Fatalf("basis %v, want cpu", p.Basis)
	}
	if len(p.Moves) == 0 {
		t.Fatal("no lease moved off the hot worker")
	}
	for _, m := range p.Moves {
		if m.From != "w000" || m.To != "w001" || !m.Handoff {
			t.Fatalf("unexpected move %+v", m)
		}
	}
	// Dampening: at most 60% of the 30-point excess moves in one round.
	if p.Load["w000"] < 60-1e-9 {
		t.Errorf("hot worker projected at %.1f%%, moved more than the dampened share", p.Load["w000"])
	}
	// A worker without CPU metrics switches the basis to throughput.
	ws[1].CPU = -1
	if p := ComputePlan(leases, ws, PlanConfig{Rebalance: true}); p.Basis != BasisThroughput || len(p.Moves) != 0 {
		t.Fatalf("throughput basis: %v with %d moves, want no moves", p.Basis, len(p.Moves))
	}
}

func TestPlanSkipsHandoffsAndOrphansGracefully(t *testing.T) {
	ws := workers(2, 0)
	leases := []LeaseLoad{
		{Key: "a", Owner: "w000", HandoffPending: true},
		{Key: "b", Owner: "w000"},
		{Key: "c", Owner: "w000"},
		{Key: "d", Owner: "w000"},
		{Key: "e", Owner: "retired-worker"},
	}
	p := ComputePlan(leases, ws, PlanConfig{Rebalance: true, MaxMovesPerRound: 10})
	for _, m := range p.Moves {
		if m.Key == "a" {
			t.Fatalf("moved a lease under handoff: %+v", m)
		}
		if m.Key == "e" && (!m.Handoff || m.From != "retired-worker") {
			t.Fatalf("lease of a live-but-metricless owner must be handed off: %+v", m)
		}
	}
}

func TestPlanConfigValidate(t *testing.T) {
	for _, c := range []PlanConfig{{ThresholdPercent: -1}, {DampeningPercent: 101}, {MaxMovesPerRound: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", c)
		}
	}
	if err := (&PlanConfig{}).Validate(); err != nil {
		t.Error(err)
	}
}

func BenchmarkComputePlan10kLeases100Workers(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	ws := workers(100, 0)
	for i := range ws {
		ws[i].CPU = 20 + r.Float64()*60
	}
	leases := make([]LeaseLoad, 10000)
	for i := range leases {
		leases[i] = LeaseLoad{Key: fmt.Sprintf("shardId-%06d", i), ThroughputKBps: r.ExpFloat64() * 100}
		if i%20 != 0 {
			leases[i].Owner = ws[r.IntN(len(ws))].ID
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := ComputePlan(leases, ws, PlanConfig{Rebalance: true})
		if len(p.Moves) == 0 {
			b.Fatal("no moves")
		}
	}
}

// TestComputePlanCountsWithinOneLease checks that balancing counts brings a worker that
// joined a fleet of evenly loaded workers to within one lease of the fair share, although
// no loaded worker has a whole lease above the average.
func TestComputePlanCountsWithinOneLease(t *testing.T) {
	var leases []LeaseLoad
	var workers []WorkerLoad
	for w := 0; w < 20; w++ {
		id := fmt.Sprintf("w%02d", w)
		workers = append(workers, WorkerLoad{ID: id, CPU: -1})
		for i := 0; i < 25; i++ {
			leases = append(leases, LeaseLoad{Key: fmt.Sprintf("%s-%02d", id, i), Owner: id})
		}
	}
	workers = append(workers, WorkerLoad{ID: "new1", CPU: -1}, WorkerLoad{ID: "new2", CPU: -1})
	p := ComputePlan(leases, workers, PlanConfig{Rebalance: true, DampeningPercent: 100})
	share := float64(len(leases)) / float64(len(workers))
	for id, load := range p.Load {
		if math.Abs(load-share) > 1 {
			t.Fatalf("%s at %v after the plan, fair share %v (plan %+v)", id, load, share, p.Load)
		}
	}
}
