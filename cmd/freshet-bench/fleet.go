package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/internal/engine/sinkproc"
	"github.com/freshet/freshet/internal/fleet"
)

func init() {
	register("fleet", "run a consumer fleet (many workers, one process) through join, kill, split and leader failover", runFleet)
}

// fleetResult is the JSON line of a fleet run: fleet.Result, the process's peak RSS and
// what each phase cost.
type fleetResult struct {
	Bench string `json:"bench"`
	fleet.Result
	Phases []phaseCost `json:"phases"`
}

// phaseCost is what the run did between two progress lines: the engine's calls per
// second by operation and the CPU the process (engine and workers, or the workers alone
// with -engine process) used per second.
type phaseCost struct {
	// Phase is the progress line that ended the phase.
	Phase   string  `json:"phase"`
	Seconds float64 `json:"s"`
	CPUPerS float64 `json:"cpu_s_per_s"`
	// EngineCPUPerS is the CPU the engine's child process used per second (-engine
	// process only).
	EngineCPUPerS float64            `json:"engine_cpu_s_per_s,omitempty"`
	CallsPerS     map[string]float64 `json:"calls_per_s"`
	LoadAverage   string             `json:"load_average,omitempty"`
}

// phaseMeter turns successive readings of the engine's call counters into phaseCosts.
type phaseMeter struct {
	mu sync.Mutex
	e  fleet.Backend
	// child is the engine's child process (-engine process), whose CPU is counted apart.
	child     *sinkproc.Sink
	at        time.Time
	cpu       float64
	engineCPU float64
	calls     map[string]uint64
	phases    []phaseCost
}

func (m *phaseMeter) start(e fleet.Backend) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.e = e
	m.at, m.cpu, m.engineCPU, m.calls = time.Now(), cpuSeconds(), m.childCPU(), m.readCalls()
}

// readCalls returns the engine's calls so far (none if it cannot be read).
func (m *phaseMeter) readCalls() map[string]uint64 {
	u, err := m.e.Usage()
	if err != nil {
		return nil
	}
	return u.Calls
}

// childCPU returns the CPU time the engine's child process used so far (0 in process).
func (m *phaseMeter) childCPU() float64 {
	if m.child == nil {
		return 0
	}
	s, _ := m.child.CPUSeconds()
	return s
}

// end closes the phase that the progress line s ends and returns its summary.
func (m *phaseMeter) end(s string) phaseCost {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e == nil {
		return phaseCost{Phase: s}
	}
	now, cpu, engineCPU, calls := time.Now(), cpuSeconds(), m.childCPU(), m.readCalls()
	secs := now.Sub(m.at).Seconds()
	p := phaseCost{Phase: s, Seconds: secs, CPUPerS: (cpu - m.cpu) / secs, EngineCPUPerS: (engineCPU - m.engineCPU) / secs,
		CallsPerS: map[string]float64{}, LoadAverage: loadAverage()}
	for op, n := range calls {
		if d := n - m.calls[op]; d > 0 {
			p.CallsPerS[op] = float64(d) / secs
		}
	}
	m.phases = append(m.phases, p)
	m.at, m.cpu, m.engineCPU, m.calls = now, cpu, engineCPU, calls
	return p
}

// String is the phase's cost in one line: CPU and the busiest operations.
func (p phaseCost) String() string {
	ops := make([]string, 0, len(p.CallsPerS))
	for op := range p.CallsPerS {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return p.CallsPerS[ops[i]] > p.CallsPerS[ops[j]] })
	var b strings.Builder
	fmt.Fprintf(&b, "cpu %.2f s/s", p.CPUPerS)
	if p.EngineCPUPerS > 0 {
		fmt.Fprintf(&b, " (engine %.2f s/s)", p.EngineCPUPerS)
	}
	fmt.Fprintf(&b, ", load %s, calls/s:", p.LoadAverage)
	for _, op := range ops {
		fmt.Fprintf(&b, " %s %.0f", op, p.CallsPerS[op])
	}
	return b.String()
}

func runFleet(args []string) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	leases := fs.Int("leases", 1000, "shards of the stream (one lease each)")
	workers := fs.Int("workers", 10, "workers the fleet starts with (10% more join, then 10% are killed)")
	duration := fs.Duration("duration", 30*time.Second, "how long steady-state DynamoDB consumption is measured")
	failover := fs.Duration("failover", 10*time.Second, "the workers' lease failover time")
	rate := fs.Float64("rate", 0, "records per second put on the stream (0: one per lease per 10 s)")
	idle := fs.Duration("idle", 0, "pause of a shard's poller at the tip of its shard (0: 2 s)")
	timeout := fs.Duration("timeout", 0, "bound of each phase (0: 30 failover times)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	engineMode := fs.String("engine", "inproc", "bundled engine: inproc (in this process) or process (a child process, so cpu_s_per_s is the workers' alone and engine_cpu_s_per_s the engine's)")
	stopProfile, err := parseProfiled(fs, args)
	if err != nil {
		return err
	}
	defer stopProfile()
	meter := &phaseMeter{}
	cfg := fleet.Config{Leases: *leases, Workers: *workers, Steady: *duration, FailoverTime: *failover,
		RecordsPerSecond: *rate, IdleTime: *idle, Timeout: *timeout, Engine: meter.start}
	if os.Getenv("FRESHET_BENCH_DEBUG") != "" {
		// The workers' logs at info level on stderr (debug would log every round).
		zc := zap.NewDevelopmentConfig()
		zc.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
		if l, err := zc.Build(); err == nil {
			cfg.Logger = l
		}
	}
	switch *engineMode {
	case "inproc":
	case "process":
		if meter.child, err = sinkproc.Start(sinkproc.Config{ShardLimit: fleet.ShardLimit(*leases)}); err != nil {
			return err
		}
		defer func() { _ = meter.child.Close() }()
		cfg.Backend = meter.child
	default:
		return fmt.Errorf("unknown -engine %q (inproc or process)", *engineMode)
	}
	start := time.Now()
	cfg.Progress = func(s string) {
		p := meter.end(s)
		if !*quiet {
			fmt.Fprintf(os.Stderr, "%7.1fs %s\n         %s\n", time.Since(start).Seconds(), s, p)
		}
	}
	res, err := fleet.Run(context.Background(), cfg)
	end := "end"
	if err != nil {
		end = "end: " + err.Error()
	}
	if p := meter.end(end); !*quiet {
		fmt.Fprintf(os.Stderr, "%7.1fs end\n         %s\n", time.Since(start).Seconds(), p)
	}
	res.PeakRSSMB = peakRSSMB()
	if encErr := json.NewEncoder(os.Stdout).Encode(fleetResult{Bench: "fleet", Result: res, Phases: meter.phases}); encErr != nil && err == nil {
		err = encErr
	}
	return err
}
