package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/freshet/freshet/internal/fleet"
)

func init() {
	register("fleet", "run a consumer fleet (many workers, one process) through join, kill, split and leader failover", runFleet)
}

// fleetResult is the JSON line of a fleet run: fleet.Result and the process's peak RSS.
type fleetResult struct {
	Bench string `json:"bench"`
	fleet.Result
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
	stopProfile, err := parseProfiled(fs, args)
	if err != nil {
		return err
	}
	defer stopProfile()
	cfg := fleet.Config{Leases: *leases, Workers: *workers, Steady: *duration, FailoverTime: *failover,
		RecordsPerSecond: *rate, IdleTime: *idle, Timeout: *timeout}
	if !*quiet {
		start := time.Now()
		cfg.Progress = func(s string) { fmt.Fprintf(os.Stderr, "%7.1fs %s\n", time.Since(start).Seconds(), s) }
	}
	res, err := fleet.Run(context.Background(), cfg)
	res.PeakRSSMB = peakRSSMB()
	if encErr := json.NewEncoder(os.Stdout).Encode(fleetResult{Bench: "fleet", Result: res}); encErr != nil && err == nil {
		err = encErr
	}
	return err
}
