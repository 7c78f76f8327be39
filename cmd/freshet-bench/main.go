// Command freshet-bench measures Freshet against the bundled engine or a real endpoint.
//
// Each subcommand (producer, consumer, engine, ...) lives in its own file and registers
// itself in init. Every run prints one JSON line of results so runs can be compared and
// recorded.
//
// Usage:
//
//	freshet-bench <subcommand> [flags]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"

	"github.com/freshet/freshet/internal/cputime"
	"github.com/freshet/freshet/internal/engine/sinkproc"
)

// subcommand is one benchmark.
type subcommand struct {
	summary string
	run     func(args []string) error
}

var subcommands = map[string]subcommand{}

func register(name, summary string, run func(args []string) error) {
	subcommands[name] = subcommand{summary: summary, run: run}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: freshet-bench <subcommand> [flags]")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, subcommands[n].summary)
	}
}

func main() {
	// A child started for -sink process serves the engine here and never returns.
	sinkproc.MaybeServe()
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	sc, ok := subcommands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "freshet-bench: unknown subcommand %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := sc.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "freshet-bench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// parseProfiled adds the -cpuprofile and -memprofile flags to fs, parses args and starts
// the CPU profile the flag asks for; the returned function stops it and writes the
// allocation profile (every allocation of the run, sampled as the runtime does).
func parseProfiled(fs *flag.FlagSet, args []string) (stop func(), err error) {
	path := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memPath := fs.String("memprofile", "", "write an allocation profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	stopCPU := func() {}
	if *path != "" {
		f, err := os.Create(*path)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return nil, err
		}
		stopCPU = func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}
	}
	return func() {
		stopCPU()
		if *memPath == "" {
			return
		}
		f, err := os.Create(*memPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "memprofile: %v\n", err)
			return
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			fmt.Fprintf(os.Stderr, "memprofile: %v\n", err)
		}
	}, nil
}

// cpuSeconds returns the user+system CPU time this process has used (0 where unknown).
func cpuSeconds() float64 { return cputime.Process().Seconds() }
