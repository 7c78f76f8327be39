// Command quickstart is Freshet's demo: seed 001's product launch, where a celebrity
// repost turns a baseline of posts into a viral spike, streamed through Kinesis and
// scored for sentiment by a fleet of consumer workers, shown live in the terminal.
//
// It runs on the bundled engine in process, with no AWS account:
//
//	go run ./examples/quickstart
//	go run ./examples/quickstart --short          # a few seconds, for CI
//	go run ./examples/quickstart --warm-throughput 16
//
// With --aws it runs the same code against real Kinesis and DynamoDB through the
// default credentials chain (or against any endpoint with --endpoint).
//
// The exit status is non-zero when any post was lost.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, isTerminal(os.Stdout))
	stop()
	os.Exit(code)
}

// options are the demo's flags.
type options struct {
	Duration       time.Duration
	Short          bool
	Seed           uint64
	Baseline       float64
	Peak           float64
	CurveSpec      string
	Shards         int
	PostSize       int
	Workers        int
	WarmThroughput int
	Stream         string
	App            string
	AWS            bool
	Endpoint       string
	Region         string
	Keep           bool
	Plain          bool
	Refresh        time.Duration
	Every          time.Duration
}

// errUsage marks bad flags.
var errUsage = errors.New("quickstart: usage")

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "length of the launch curve")
	fs.BoolVar(&o.Short, "short", false, "a few-second run with a smaller peak (CI)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the synthetic posts")
	fs.Float64Var(&o.Baseline, "baseline", 100, "baseline posts/s before the repost and after the hype")
	fs.Float64Var(&o.Peak, "peak", 20000, "posts/s at the viral peak")
	fs.StringVar(&o.CurveSpec, "curve", "", `custom launch curve: "fraction:rate[:label],..." from 0 to 1 (overrides --baseline/--peak)`)
	fs.IntVar(&o.PostSize, "post-size", 600, "bytes per post record (text plus metadata)")
	fs.IntVar(&o.Workers, "workers", 3, "consumer workers at the start (one is killed midway, another joins)")
	fs.IntVar(&o.WarmThroughput, "warm-throughput", 0, "start the stream pre-scaled to this many MiB/s (On-Demand Advantage)")
	fs.StringVar(&o.Stream, "stream", "freshet-quickstart", "stream name")
	fs.StringVar(&o.App, "app", "freshet-quickstart", "consumer application name (lease table)")
	fs.BoolVar(&o.AWS, "aws", false, "use real AWS through the default credentials chain instead of the bundled engine")
	fs.StringVar(&o.Endpoint, "endpoint", "", "Kinesis and DynamoDB endpoint, e.g. a standalone freshet-engine (implies not starting one)")
	fs.StringVar(&o.Region, "region", "", "AWS region (default: from the environment or shared config)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the stream and tables after the run (AWS or --endpoint)")
	fs.BoolVar(&o.Plain, "plain", false, "plain periodic lines even on a terminal")
	fs.DurationVar(&o.Refresh, "refresh", 250*time.Millisecond, "live view refresh period")
	fs.DurationVar(&o.Every, "every", time.Second, "period of plain lines when not on a terminal")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.AWS || o.Endpoint != "" {
		// A real service keeps streams and tables between runs: unless named, each run
		// gets its own, so no run reads another's posts or checkpoints.
		suffix := "-" + strconv.FormatInt(time.Now().Unix(), 36)
		if !set["stream"] {
			o.Stream += suffix
		}
		if !set["app"] {
			o.App += suffix
		}
	}
	if o.Short {
		if !set["duration"] {
			o.Duration = 10 * time.Second
		}
		// Fewer, bigger posts: the spike still outgrows four shards when the machine
		// (a CI runner, the race detector) cannot move tens of thousands of posts/s.
		if !set["peak"] {
			o.Peak = 2500
		}
		if !set["post-size"] {
			o.PostSize = 4096
		}
		if !set["every"] {
			o.Every = 500 * time.Millisecond
		}
	}
	switch {
	case o.Duration <= 0:
		return o, fmt.Errorf("%w: --duration must be positive", errUsage)
	case o.PostSize < 0 || o.PostSize > maxPostMeta:
		return o, fmt.Errorf("%w: --post-size must be within [0, %d]", errUsage, maxPostMeta)
	case o.Workers < 2:
		return o, fmt.Errorf("%w: --workers must be at least 2 (one is killed midway)", errUsage)
	case o.WarmThroughput < 0:
		return o, fmt.Errorf("%w: --warm-throughput must be >= 0", errUsage)
	case o.Refresh <= 0 || o.Every <= 0:
		return o, fmt.Errorf("%w: --refresh and --every must be positive", errUsage)
	case o.Baseline < 0 || o.Peak < o.Baseline:
		return o, fmt.Errorf("%w: need 0 <= --baseline <= --peak", errUsage)
	}
	return o, nil
}

// launchCurve builds the run's curve from the options.
func (o options) launchCurve() (*curve, error) {
	points := defaultCurvePoints(o.Baseline, o.Peak)
	if o.CurveSpec != "" {
		var err error
		if points, err = parseCurve(o.CurveSpec); err != nil {
			return nil, err
		}
	}
	return newCurve(points, o.Duration)
}

// run is the whole demo; it returns the process's exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, terminal bool) int {
	_, code := runSummary(ctx, args, stdout, stderr, terminal)
	return code
}

// runSummary is run that also returns the summary (zero when the demo did not finish):
// 0 when nothing was lost, 1 when something was lost or the demo failed, 2 for bad
// flags.
func runSummary(ctx context.Context, args []string, stdout, stderr io.Writer, terminal bool) (summary, int) {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return summary{}, 0
		}
		fmt.Fprintln(stderr, err)
		return summary{}, 2
	}
	c, err := o.launchCurve()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return summary{}, 2
	}
	env, err := openTarget(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return summary{}, 1
	}
	defer env.Close()
	s, err := runDemo(ctx, o, c, env, stdout, terminal && !o.Plain)
	if err != nil {
		fmt.Fprintln(stderr, "quickstart:", err)
		return summary{}, 1
	}
	s.Write(stdout)
	if !s.OK() {
		return s, 1
	}
	return s, 0
}
