package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/internal/cli"
	"github.com/freshet/freshet/lease"
)

// stringsFlag collects a repeatable flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part == "" {
			return errors.New("empty shard ID")
		}
		*s = append(*s, part)
	}
	return nil
}

// recentMetrics is how recent a worker's metrics row must be for replay to warn that the
// application may still run (Java KCL reports every 30 s).
const recentMetrics = time.Minute

func runReplay(ctx context.Context, g *globalFlags, args []string, e env) error {
	fs := flag.NewFlagSet("freshet-leases replay", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	g.register(fs)
	to := fs.String("to", "", "new position: trim-horizon, latest, at-timestamp=RFC3339 or sequence=NUM[/SUB] (required)")
	var shards stringsFlag
	fs.Var(&shards, "shard", "lease key or shard ID to reset (repeatable, or comma-separated; default: every lease)")
	force := fs.Bool("force", false, "reset even leases whose owners still renew them (the application runs)")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	dryRun := fs.Bool("dry-run", false, "print what would change and change nothing")
	failover := fs.Duration("failover", lease.DefaultFailoverTime, "the application's failover time: owned leases are sampled twice this far apart to see whether they are renewed")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: freshet-leases --app NAME replay --to trim-horizon|latest|at-timestamp=RFC3339|sequence=NUM[/SUB] [--shard ID ...] [--force] [--yes] [--dry-run]")
		fs.PrintDefaults()
	}
	if err := cli.ParseCommand(fs, "replay", args); err != nil {
		return err
	}
	if err := g.validate(); err != nil {
		return err
	}
	if *to == "" {
		return cli.Usagef("replay: --to is required (trim-horizon, latest, at-timestamp=RFC3339 or sequence=NUM[/SUB])")
	}
	pos, err := parsePosition(*to)
	if err != nil {
		return err
	}
	if !pos.IsSentinel() && len(shards) != 1 {
		return cli.Usagef("replay: --to sequence=... names a position in one shard: give exactly one --shard")
	}
	if *failover <= 0 {
		return cli.Usagef("replay: --failover %v: must be positive", *failover)
	}
	if *failover >= g.timeout {
		return cli.Usagef("replay: --failover %v must be shorter than --timeout %v", *failover, g.timeout)
	}

	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	c, err := newClients(ctx, g)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, g, c)
	if err != nil {
		return err
	}
	before, err := listByKey(ctx, store)
	if err != nil {
		return err
	}
	keys, err := selectLeases(before, shards)
	if err != nil {
		return err
	}
	if !pos.IsSentinel() && len(keys) != 1 {
		return cli.Usagef("replay: --shard %s matches %d leases (%s); name one lease key", shards[0], len(keys), strings.Join(keys, ", "))
	}
	warnRecentWorkers(ctx, store, e)

	// Liveness: a lease whose counter moves across the failover time is held by a running
	// worker. Sampling every lease (not only those replayed) refuses a running application.
	if !*force && anyOwned(before) {
		fmt.Fprintf(e.stderr, "Leases have owners; checking for %v whether they are still renewed...\n", *failover)
		if err := e.sleep(ctx, *failover); err != nil {
			return err
		}
		after, err := listByKey(ctx, store)
		if err != nil {
			return err
		}
		if live := liveLeases(before, after); len(live) > 0 {
			return fmt.Errorf("the application is running: %s changed within %v; stop its workers first, or use --force",
				strings.Join(live, ", "), *failover)
		}
		fmt.Fprintln(e.stderr, "No lease was renewed: their owners are stopped.")
		before = after
		if keys, err = selectLeases(before, shards); err != nil {
			return err
		}
	}

	printPlan(e.stdout, before, keys, pos, *dryRun)
	if *dryRun {
		return nil
	}
	if !*yes {
		ok, err := confirm(e, len(keys))
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("not confirmed: nothing changed (use --yes to skip the question)")
		}
	}

	// Leases without an owner are replayed only while still unowned; owned ones (stale
	// owners, or --force) unconditionally.
	var free, owned []string
	for _, k := range keys {
		if l := before[k]; l.Owner != "" || l.CheckpointOwner != "" {
			owned = append(owned, k)
		} else {
			free = append(free, k)
		}
	}
	errFree := lease.Replay(ctx, store, free, pos, lease.ReplayOptions{})
	errOwned := lease.Replay(ctx, store, owned, pos, lease.ReplayOptions{Force: true})
	replayErr := errors.Join(errFree, errOwned)

	after, err := listByKey(ctx, store)
	if err != nil {
		return errors.Join(replayErr, err)
	}
	fmt.Fprintln(e.stdout)
	changed := printResult(e.stdout, before, after, keys, pos)
	if replayErr != nil {
		return fmt.Errorf("replay: %d of %d leases reset: %w", changed, len(keys), replayErr)
	}
	if changed != len(keys) {
		return fmt.Errorf("replay: only %d of %d leases show the new checkpoint", changed, len(keys))
	}
	return nil
}

// parsePosition reads --to.
func parsePosition(s string) (checkpoint.Value, error) {
	name, arg, hasArg := strings.Cut(s, "=")
	switch strings.ReplaceAll(strings.ToLower(name), "_", "-") {
	case "trim-horizon":
		if hasArg {
			return checkpoint.Value{}, cli.Usagef("--to %s takes no value", name)
		}
		return checkpoint.TrimHorizon, nil
	case "latest":
		if hasArg {
			return checkpoint.Value{}, cli.Usagef("--to %s takes no value", name)
		}
		return checkpoint.Latest, nil
	case "at-timestamp":
		t, err := time.Parse(time.RFC3339Nano, arg)
		if err != nil {
			return checkpoint.Value{}, cli.Usagef("--to at-timestamp=%q: want an RFC 3339 time such as 2025-01-02T15:04:05Z", arg)
		}
		if t.Before(time.Unix(0, 0)) {
			return checkpoint.Value{}, cli.Usagef("--to at-timestamp=%s: before 1970", arg)
		}
		return checkpoint.AtTimestamp(t.UTC().Truncate(time.Millisecond)), nil
	case "sequence":
		seq, subText, hasSub := strings.Cut(arg, "/")
		var sub int64
		if hasSub {
			n, err := strconv.ParseInt(subText, 10, 64)
			if err != nil || n < 0 {
				return checkpoint.Value{}, cli.Usagef("--to sequence=%s: the sub-sequence number after '/' must be a non-negative integer", arg)
			}
			sub = n
		}
		if seq == "" || checkpoint.IsSentinel(seq) {
			return checkpoint.Value{}, cli.Usagef("--to sequence=%q: want a decimal sequence number", arg)
		}
		v, err := checkpoint.At(seq, sub)
		if err != nil {
			return checkpoint.Value{}, cli.Usagef("--to sequence=%s: %v", arg, err)
		}
		return v, nil
	}
	return checkpoint.Value{}, cli.Usagef("--to %q: want trim-horizon, latest, at-timestamp=RFC3339 or sequence=NUM[/SUB]", s)
}

func listByKey(ctx context.Context, store *lease.Store) (map[string]lease.Lease, error) {
	leases, err := store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	m := make(map[string]lease.Lease, len(leases))
	for _, l := range leases {
		m[l.Key] = l
	}
	return m, nil
}

// selectLeases returns the sorted keys of the leases named by shards (lease keys or shard
// IDs), or of every lease when shards is empty.
func selectLeases(leases map[string]lease.Lease, shards []string) ([]string, error) {
	if len(leases) == 0 {
		return nil, errors.New("the lease table holds no leases")
	}
	set := map[string]bool{}
	if len(shards) == 0 {
		for k := range leases {
			set[k] = true
		}
	}
	var unknown []string
	for _, s := range shards {
		found := false
		for k, l := range leases {
			if k == s || l.Shard() == s {
				set[k], found = true, true
			}
		}
		if !found {
			unknown = append(unknown, s)
		}
	}
	if len(unknown) > 0 {
		return nil, cli.Usagef("replay: no lease for --shard %s", strings.Join(unknown, ", "))
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

func anyOwned(leases map[string]lease.Lease) bool {
	for _, l := range leases {
		if l.Owner != "" || l.CheckpointOwner != "" {
			return true
		}
	}
	return false
}

// liveLeases describes the leases whose counter or owner changed between two listings,
// and leases that appeared or disappeared.
func liveLeases(before, after map[string]lease.Lease) []string {
	var live []string
	for k, a := range after {
		b, ok := before[k]
		switch {
		case !ok:
			live = append(live, fmt.Sprintf("%s (created)", k))
		case a.Counter != b.Counter || a.Owner != b.Owner || a.CheckpointOwner != b.CheckpointOwner:
			live = append(live, fmt.Sprintf("%s (owner %s, counter %d -> %d)", k, orDash(a.Owner), b.Counter, a.Counter))
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			live = append(live, fmt.Sprintf("%s (deleted)", k))
		}
	}
	sort.Strings(live)
	return live
}

// warnRecentWorkers warns about workers that reported metrics recently: a hint that the
// application may still run even if it holds no lease.
func warnRecentWorkers(ctx context.Context, store *lease.Store, e env) {
	metrics, err := store.ListWorkerMetrics(ctx)
	if err != nil {
		return
	}
	now := e.now()
	for _, m := range metrics {
		if !m.LastUpdate.IsZero() && now.Sub(m.LastUpdate) < recentMetrics {
			fmt.Fprintf(e.stderr, "Warning: worker %s reported metrics %s ago; make sure the application is stopped\n",
				m.WorkerID, formatAge(now.Sub(m.LastUpdate)))
		}
	}
}

func printPlan(w io.Writer, leases map[string]lease.Lease, keys []string, pos checkpoint.Value, dryRun bool) {
	verb := "Resetting"
	if dryRun {
		verb = "Would reset (dry run)"
	}
	fmt.Fprintf(w, "%s %d lease(s) to %s:\n", verb, len(keys), pos)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tOWNER\tCOUNTER\tCHECKPOINT\tPENDING")
	for _, k := range keys {
		l := leases[k]
		pending := "-"
		if !l.PendingCheckpoint.IsZero() {
			pending = l.PendingCheckpoint.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", k, orDash(l.Owner), l.Counter, cpString(l.Checkpoint), pending)
	}
	tw.Flush()
}

func confirm(e env, n int) (bool, error) {
	fmt.Fprintf(e.stdout, "Reset %d lease(s)? The application must stay stopped until this finishes. [y/N] ", n)
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read confirmation: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// printResult prints each replayed lease as it was and as it is now, and returns how many
// now hold the requested position.
func printResult(w io.Writer, before, after map[string]lease.Lease, keys []string, pos checkpoint.Value) int {
	changed := 0
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tCHECKPOINT BEFORE\tCHECKPOINT NOW\tOWNER BEFORE\tCOUNTER\tRESULT")
	for _, k := range keys {
		b, a := before[k], after[k]
		result := "reset"
		if !samePosition(a.Checkpoint, pos) || a.Owner != "" {
			result = "NOT reset"
		} else {
			changed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d -> %d\t%s\n", k, cpString(b.Checkpoint), cpString(a.Checkpoint), orDash(b.Owner), b.Counter, a.Counter, result)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d lease(s) reset to %s; start the application to process from there.\n", changed, len(keys), pos)
	return changed
}

func cpString(v checkpoint.Value) string {
	if v.IsZero() {
		return "-"
	}
	return v.String()
}

func samePosition(a, b checkpoint.Value) bool {
	return a.SequenceNumber == b.SequenceNumber && a.SubSequenceNumber == b.SubSequenceNumber && a.Timestamp.Equal(b.Timestamp)
}
