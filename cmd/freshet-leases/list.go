package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/internal/cli"
	"github.com/freshet/freshet/lease"
)

// report is what list prints: the JSON document of --json, and the source of the text
// tables.
type report struct {
	Application    string         `json:"application"`
	Layout         layoutInfo     `json:"layout"`
	Leases         []leaseInfo    `json:"leases"`
	Workers        []workerInfo   `json:"workers"`
	Leader         *leaderInfo    `json:"leader"`
	ClientVersion  *migrationInfo `json:"clientVersion"`
	TableMigration *migrationInfo `json:"tableMigration,omitempty"`
	Warnings       []string       `json:"warnings,omitempty"`
	GeneratedAt    time.Time      `json:"generatedAt"`
	Lag            lagExplanation `json:"lag"`
}

type lagExplanation struct {
	Stream  string `json:"stream,omitempty"`
	Meaning string `json:"meaning"`
}

type layoutInfo struct {
	SingleTable           bool   `json:"singleTable"`
	LeaseTable            string `json:"leaseTable"`
	CoordinatorStateTable string `json:"coordinatorStateTable,omitempty"`
	WorkerMetricsTable    string `json:"workerMetricsTable,omitempty"`
}

type leaseInfo struct {
	Key                          string   `json:"leaseKey"`
	ShardID                      string   `json:"shardId"`
	StreamIdentifier             string   `json:"streamIdentifier,omitempty"`
	Owner                        string   `json:"leaseOwner,omitempty"`
	CheckpointOwner              string   `json:"checkpointOwner,omitempty"`
	Counter                      int64    `json:"leaseCounter"`
	OwnerSwitchesSinceCheckpoint int64    `json:"ownerSwitchesSinceCheckpoint"`
	Checkpoint                   string   `json:"checkpoint,omitempty"`
	CheckpointSubSequenceNumber  int64    `json:"checkpointSubSequenceNumber"`
	CheckpointTimestamp          string   `json:"checkpointTimestamp,omitempty"`
	PendingCheckpoint            string   `json:"pendingCheckpoint,omitempty"`
	PendingCheckpointSubSequence int64    `json:"pendingCheckpointSubSequenceNumber,omitempty"`
	PendingCheckpointStateBytes  int      `json:"pendingCheckpointStateBytes,omitempty"`
	ParentShardIDs               []string `json:"parentShardIds,omitempty"`
	ChildShardIDs                []string `json:"childShardIds,omitempty"`
	StartingHashKey              string   `json:"startingHashKey,omitempty"`
	EndingHashKey                string   `json:"endingHashKey,omitempty"`
	ThroughputKBps               float64  `json:"throughputKBps"`
	// LagMillis is the age of the first record after the checkpoint, 0 when the checkpoint
	// is at the tip; null when unknown (LagNote says why).
	LagMillis *int64 `json:"lagMillis"`
	LagNote   string `json:"lagNote,omitempty"`
}

type workerInfo struct {
	WorkerID string `json:"workerId"`
	// HasMetrics is false for lease owners without a metrics row (KCL 2.x workers, or
	// rows the leader cleaned up).
	HasMetrics        bool                 `json:"hasMetrics"`
	LastUpdate        *time.Time           `json:"lastUpdate,omitempty"`
	LastUpdateAgeSecs *float64             `json:"lastUpdateAgeSeconds,omitempty"`
	CPUPercent        *float64             `json:"cpuPercent"`
	Stats             map[string][]float64 `json:"stats,omitempty"`
	OperatingRange    map[string][]int64   `json:"operatingRange,omitempty"`
	Leases            int                  `json:"leases"`
	ThroughputKBps    float64              `json:"throughputKBps"`
	IsLeader          bool                 `json:"isLeader"`
}

type leaderInfo struct {
	Owner               string `json:"ownerName,omitempty"`
	Released            bool   `json:"released"`
	LeaseDurationMillis int64  `json:"leaseDurationMillis,omitempty"`
	RecordVersionNumber string `json:"recordVersionNumber,omitempty"`
}

type migrationInfo struct {
	Value      string    `json:"value"`
	ModifiedBy string    `json:"modifiedBy,omitempty"`
	ModifiedAt time.Time `json:"modifiedAt"`
}

func runList(ctx context.Context, g *globalFlags, args []string, e env) error {
	fs := flag.NewFlagSet("freshet-leases list", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	g.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON document instead of tables")
	withLag := fs.Bool("lag", true, "read one record per shard from Kinesis to compute lag (needs --stream or multi-stream keys)")
	concurrency := fs.Int("lag-concurrency", 4, "shards read at once for lag")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: freshet-leases --app NAME [--stream S] list [--json] [--lag=false]")
		fs.PrintDefaults()
	}
	if err := cli.ParseCommand(fs, "list", args); err != nil {
		return err
	}
	if err := g.validate(); err != nil {
		return err
	}
	if *concurrency < 1 || *concurrency > 64 {
		return cli.Usagef("--lag-concurrency %d: want 1 to 64", *concurrency)
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
	rep, err := gather(ctx, store, c.db, e.now())
	if err != nil {
		return err
	}
	rep.Application = g.app
	rep.Lag = lagExplanation{Stream: g.stream, Meaning: lagMeaning}
	if *withLag {
		lagOf(ctx, c.kinesis, g.stream, rep.Leases, *concurrency, e.now)
	} else {
		for i := range rep.Leases {
			rep.Leases[i].LagNote = "not computed (--lag=false)"
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printReport(e.stdout, rep)
}

// gather reads everything list shows except lag.
func gather(ctx context.Context, store *lease.Store, db lease.DynamoDBAPI, now time.Time) (*report, error) {
	t := store.Tables()
	rep := &report{GeneratedAt: now.UTC(), Layout: layoutInfo{SingleTable: t.SingleTable, LeaseTable: t.Lease}}
	if !t.SingleTable {
		rep.Layout.CoordinatorStateTable = t.CoordinatorState
		rep.Layout.WorkerMetricsTable = t.WorkerMetrics
	}
	leases, err := store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	sort.Slice(leases, func(i, j int) bool { return leases[i].Key < leases[j].Key })
	rep.Leases = make([]leaseInfo, 0, len(leases))
	for i := range leases {
		rep.Leases = append(rep.Leases, toLeaseInfo(&leases[i]))
	}

	leader, err := readLeader(ctx, store)
	if err != nil {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("leader lock: %v", err))
	}
	rep.Leader = leader

	metrics, err := store.ListWorkerMetrics(ctx)
	if err != nil {
		if !isTableMissing(err) {
			return nil, fmt.Errorf("list worker metrics: %w", err)
		}
		rep.Warnings = append(rep.Warnings, "no worker metrics table (a KCL 2.x application?)")
	}
	rep.Workers = workersOf(metrics, leases, leader, now)

	if cv, err := store.ClientVersionState(ctx); err == nil {
		rep.ClientVersion = &migrationInfo{Value: cv.Value, ModifiedBy: cv.ModifiedBy, ModifiedAt: cv.ModifiedAt.UTC()}
	} else if !errors.Is(err, lease.ErrNotFound) && !isTableMissing(err) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("client version: %v", err))
	}
	if tm, err := store.TableMigrationState(ctx); err == nil {
		rep.TableMigration = &migrationInfo{Value: tm.Value, ModifiedBy: tm.ModifiedBy, ModifiedAt: tm.ModifiedAt.UTC()}
	} else if !errors.Is(err, lease.ErrNotFound) && !isTableMissing(err) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("table migration: %v", err))
	}
	return rep, nil
}

func toLeaseInfo(l *lease.Lease) leaseInfo {
	li := leaseInfo{
		Key:                          l.Key,
		ShardID:                      l.Shard(),
		StreamIdentifier:             l.StreamIdentifier,
		Owner:                        l.Owner,
		CheckpointOwner:              l.CheckpointOwner,
		Counter:                      l.Counter,
		OwnerSwitchesSinceCheckpoint: l.OwnerSwitchesSinceCheckpoint,
		Checkpoint:                   l.Checkpoint.SequenceNumber,
		CheckpointSubSequenceNumber:  l.Checkpoint.SubSequenceNumber,
		PendingCheckpoint:            l.PendingCheckpoint.SequenceNumber,
		PendingCheckpointSubSequence: l.PendingCheckpoint.SubSequenceNumber,
		PendingCheckpointStateBytes:  len(l.PendingCheckpointState),
		ParentShardIDs:               l.ParentShardIDs,
		ChildShardIDs:                l.ChildShardIDs,
		StartingHashKey:              l.StartingHashKey,
		EndingHashKey:                l.EndingHashKey,
		ThroughputKBps:               l.ThroughputKBps,
	}
	if !l.Checkpoint.Timestamp.IsZero() {
		li.CheckpointTimestamp = l.Checkpoint.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return li
}

// workersOf merges the metrics rows with the owners named by leases, so a worker without
// a metrics row (a KCL 2.x worker, or one whose row was cleaned up) is still shown.
func workersOf(metrics []lease.WorkerMetrics, leases []lease.Lease, leader *leaderInfo, now time.Time) []workerInfo {
	byID := map[string]*workerInfo{}
	var order []string
	get := func(id string) *workerInfo {
		w, ok := byID[id]
		if !ok {
			w = &workerInfo{WorkerID: id}
			byID[id] = w
			order = append(order, id)
		}
		return w
	}
	for i := range metrics {
		m := &metrics[i]
		w := get(m.WorkerID)
		w.HasMetrics = true
		w.Stats, w.OperatingRange = m.Stats, m.OperatingRange
		if !m.LastUpdate.IsZero() {
			lu := m.LastUpdate.UTC()
			age := now.Sub(lu).Seconds()
			w.LastUpdate, w.LastUpdateAgeSecs = &lu, &age
		}
		if cpu, ok := m.CPU(); ok {
			w.CPUPercent = &cpu
		}
	}
	for i := range leases {
		if o := leases[i].Owner; o != "" {
			w := get(o)
			w.Leases++
			w.ThroughputKBps += leases[i].ThroughputKBps
		}
	}
	if leader != nil && leader.Owner != "" && !leader.Released {
		get(leader.Owner).IsLeader = true
	}
	sort.Strings(order)
	out := make([]workerInfo, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}

// readLeader reads the leader lock item of the layout (nil when there is none).
func readLeader(ctx context.Context, store *lease.Store) (*leaderInfo, error) {
	l, err := store.LeaderLock(ctx)
	switch {
	case errors.Is(err, lease.ErrNotFound) || isTableMissing(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &leaderInfo{Owner: l.Owner, Released: l.Released, LeaseDurationMillis: l.LeaseDuration.Milliseconds(),
		RecordVersionNumber: l.RecordVersion}, nil
}

func isTableMissing(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// checkTable fails with a clear message when the lease table does not exist.
func checkTable(ctx context.Context, db lease.DynamoDBAPI, table string) error {
	_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if isTableMissing(err) {
		return fmt.Errorf("lease table %q not found (is --app the application name, and --region/--endpoint right?)", table)
	}
	if err != nil {
		return fmt.Errorf("describe lease table %q: %w", table, err)
	}
	return nil
}

func printReport(w io.Writer, rep *report) error {
	bw := &errWriter{w: w}
	layout := "three tables (KCL 3.0-3.4): " + rep.Layout.LeaseTable + ", " + rep.Layout.CoordinatorStateTable + ", " + rep.Layout.WorkerMetricsTable
	if rep.Layout.SingleTable {
		layout = "single table (KCL 3.5): " + rep.Layout.LeaseTable
	}
	fmt.Fprintf(bw, "Application %s, %s\n\n", rep.Application, layout)

	fmt.Fprintf(bw, "Leases (%d)\n", len(rep.Leases))
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tOWNER\tCOUNTER\tCHECKPOINT\tPENDING\tPARENTS\tKB/S\tLAG")
	for _, l := range rep.Leases {
		owner := orDash(l.Owner)
		if l.CheckpointOwner != "" {
			owner += " (from " + l.CheckpointOwner + ")"
		}
		pending := "-"
		if l.PendingCheckpoint != "" {
			pending = formatPosition(l.PendingCheckpoint, l.PendingCheckpointSubSequence, "")
			if l.PendingCheckpointStateBytes > 0 {
				pending += fmt.Sprintf(" +%dB state", l.PendingCheckpointStateBytes)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", l.Key, owner, l.Counter,
			formatPosition(l.Checkpoint, l.CheckpointSubSequenceNumber, l.CheckpointTimestamp), pending,
			orDash(strings.Join(l.ParentShardIDs, ",")), formatFloat(l.ThroughputKBps), formatLag(&l))
	}
	tw.Flush()
	fmt.Fprintf(bw, "LAG: %s\n\n", rep.Lag.Meaning)

	fmt.Fprintf(bw, "Workers (%d)\n", len(rep.Workers))
	tw = tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tLAST UPDATE\tCPU %\tOPERATING RANGE\tLEASES\tKB/S\tLEADER")
	for _, wk := range rep.Workers {
		upd, cpu, opr := "no metrics", "-", "-"
		if wk.HasMetrics {
			upd = "never"
			if wk.LastUpdateAgeSecs != nil {
				upd = formatAge(time.Duration(*wk.LastUpdateAgeSecs*float64(time.Second))) + " ago"
			}
			opr = formatRanges(wk.OperatingRange)
		}
		if wk.CPUPercent != nil {
			cpu = formatFloat(*wk.CPUPercent)
		}
		leader := ""
		if wk.IsLeader {
			leader = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", wk.WorkerID, upd, cpu, opr, wk.Leases, formatFloat(wk.ThroughputKBps), leader)
	}
	tw.Flush()
	fmt.Fprintln(bw)

	switch l := rep.Leader; {
	case l == nil:
		fmt.Fprintln(bw, "Leader: none (no leader lock item)")
	case l.Released:
		fmt.Fprintf(bw, "Leader: none (lock released by %s)\n", orDash(l.Owner))
	default:
		fmt.Fprintf(bw, "Leader: %s (lock lease duration %s, record version %s)\n", orDash(l.Owner),
			time.Duration(l.LeaseDurationMillis)*time.Millisecond, orDash(l.RecordVersionNumber))
	}
	if cv := rep.ClientVersion; cv != nil {
		fmt.Fprintf(bw, "Client version: %s (set by %s at %s)\n", cv.Value, orDash(cv.ModifiedBy), cv.ModifiedAt.Format(time.RFC3339))
	} else {
		fmt.Fprintln(bw, "Client version: none recorded (KCL 1.x/2.x, or no 3.x worker started yet)")
	}
	if tm := rep.TableMigration; tm != nil {
		fmt.Fprintf(bw, "Table migration: %s (set by %s at %s)\n", tm.Value, orDash(tm.ModifiedBy), tm.ModifiedAt.Format(time.RFC3339))
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintln(bw, "Warning:", warn)
	}
	return bw.err
}

// errWriter remembers the first write error so printing code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatPosition(seq string, sub int64, ts string) string {
	switch {
	case seq == "":
		return "-"
	case seq == checkpoint.SentinelAtTimestamp && ts != "":
		return seq + "(" + ts + ")"
	case sub != 0:
		return seq + "/" + strconv.FormatInt(sub, 10)
	}
	return seq
}

func formatFloat(f float64) string {
	if f == math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

func formatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

func formatLag(l *leaseInfo) string {
	if l.LagMillis == nil {
		if l.LagNote != "" {
			return "unknown (" + l.LagNote + ")"
		}
		return "unknown"
	}
	lag := formatAge(time.Duration(*l.LagMillis) * time.Millisecond)
	if l.LagNote != "" {
		lag += " (" + l.LagNote + ")"
	}
	return lag
}

func formatRanges(r map[string][]int64) string {
	if len(r) == 0 {
		return "-"
	}
	names := make([]string, 0, len(r))
	for k := range r {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		vals := make([]string, len(r[k]))
		for i, v := range r[k] {
			vals[i] = strconv.FormatInt(v, 10)
		}
		name := k
		if k == lease.MetricCPU {
			name = "CPU"
		}
		parts = append(parts, name+"<="+strings.Join(vals, ","))
	}
	return strings.Join(parts, " ")
}
