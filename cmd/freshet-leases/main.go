// Command freshet-leases inspects the lease tables of a Kinesis consumer application
// (Freshet or Java KCL 3.x, in the three-table layout of KCL 3.0-3.4 or the single table
// of KCL 3.5) and resets the checkpoints of a stopped application to replay its stream.
//
//	freshet-leases --app orders-app --stream orders list
//	freshet-leases --app orders-app --stream orders list --json
//	freshet-leases --app orders-app replay --to trim-horizon
//	freshet-leases --app orders-app replay --to at-timestamp=2025-01-02T15:04:05Z --yes
//	freshet-leases --app orders-app replay --to sequence=4959...8898 --shard shardId-000000000002
//
// It sits beside the consumer's data flow: it reads the same tables the workers'
// coordinators, leader and metrics reporters write (through package lease, so the
// attribute names and types are exactly those Java KCL writes) and, for lag, reads one
// record per shard from Kinesis. replay writes checkpoints through lease.Replay, which
// clears owners and pending checkpoints so the restarted fleet reads from the new position.
//
// It uses the default AWS credentials chain and region; --endpoint points both the
// DynamoDB and Kinesis clients at another endpoint (such as freshet-engine). A loopback
// endpoint gets placeholder credentials when the chain finds none.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/awsconfig"
	"github.com/freshet/freshet/internal/cli"
	"github.com/freshet/freshet/lease"
)

const usageText = `usage: freshet-leases [global flags] <command> [command flags]

Commands:
  list     print the leases, workers, leader and client version of an application
  replay   reset the checkpoints of a stopped application (TRIM_HORIZON, LATEST,
           AT_TIMESTAMP or a sequence number)

Global flags (also accepted after the command):
`

// globalFlags are the flags every command accepts.
type globalFlags struct {
	awsconfig.Settings
	app         string
	stream      string
	layout      string
	singleTable bool
	timeout     time.Duration
}

func (g *globalFlags) register(fs *flag.FlagSet) {
	g.Settings.Register(fs, "DynamoDB and Kinesis")
	fs.StringVar(&g.app, "app", g.app, "application name: the lease table (required)")
	fs.StringVar(&g.stream, "stream", g.stream, "stream the application consumes, for lag (multi-stream lease keys name their own)")
	fs.StringVar(&g.layout, "layout", g.layout, "table layout: auto, three-table (KCL 3.0-3.4) or single-table (KCL 3.5)")
	fs.BoolVar(&g.singleTable, "single-table", g.singleTable, "shorthand for --layout single-table")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "bound on the whole command")
}

func (g *globalFlags) validate() error {
	if g.app == "" {
		return cli.Usagef("--app is required")
	}
	if len(g.app) < 3 || len(g.app) > 255 {
		return cli.Usagef("--app %q: a DynamoDB table name has 3 to 255 characters", g.app)
	}
	for _, r := range g.app {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return cli.Usagef("--app %q: a DynamoDB table name has only letters, digits, '_', '-' and '.'", g.app)
		}
	}
	switch g.layout {
	case "auto", "three-table", "single-table":
	default:
		return cli.Usagef("--layout %q: want auto, three-table or single-table", g.layout)
	}
	if g.singleTable {
		if g.layout == "three-table" {
			return cli.Usagef("--single-table contradicts --layout three-table")
		}
		g.layout = "single-table"
	}
	return cli.CheckConnection(g.Endpoint, g.timeout)
}

// env is what a run of the command talks to.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// now is the wall clock (for ages of metrics rows and lag).
	now func() time.Time
	// sleep waits d or until ctx ends.
	sleep func(ctx context.Context, d time.Duration) error
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, now: time.Now, sleep: func(ctx context.Context, d time.Duration) error { return clock.Sleep(ctx, nil, d) }}
	err := run(ctx, os.Args[1:], e)
	stop()
	os.Exit(cli.ExitCode("freshet-leases", err, os.Stderr))
}

// run executes one command line. Command-line errors wrap cli.ErrUsage.
func run(ctx context.Context, args []string, e env) error {
	g := globalFlags{layout: "auto", timeout: 2 * time.Minute}
	const want = "list or replay"
	name, rest, err := cli.Command("freshet-leases", usageText, want, args, e.stderr, g.register)
	if err != nil || name == "" {
		return err
	}
	switch name {
	case "list":
		return runList(ctx, &g, rest, e)
	case "replay":
		return runReplay(ctx, &g, rest, e)
	default:
		return cli.UnknownCommand(name, want)
	}
}

// clients are the service clients and table layout of one run.
type clients struct {
	db      *dynamodb.Client
	kinesis *kinesis.Client
	region  string
}

func newClients(ctx context.Context, g *globalFlags) (*clients, error) {
	cfg, err := awsconfig.Load(ctx, g.Settings)
	if errors.Is(err, awsconfig.ErrNoRegion) {
		return nil, cli.Usagef("%v", err)
	}
	if err != nil {
		return nil, err
	}
	return &clients{db: dynamodb.NewFromConfig(cfg), kinesis: kinesis.NewFromConfig(cfg), region: cfg.Region}, nil
}

// openStore resolves the layout and returns a store over the application's tables,
// after checking that its lease table exists.
func openStore(ctx context.Context, g *globalFlags, c *clients) (*lease.Store, error) {
	var tables lease.Tables
	switch g.layout {
	case "three-table":
		tables = lease.DefaultTables(g.app)
	case "single-table":
		tables = lease.SingleTableLayout(g.app)
	default:
		t, err := lease.DetectTables(ctx, c.db, g.app)
		if err != nil {
			return nil, fmt.Errorf("detect the table layout of %q: %w", g.app, err)
		}
		tables = t
	}
	if err := checkTable(ctx, c.db, tables.Lease); err != nil {
		return nil, err
	}
	return lease.NewStore(c.db, tables)
}
