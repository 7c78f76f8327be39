// Command freshet-queue works with the dead-letter records of a Kinesis Data Streams
// queue: the records its consumers received MaxReceiveCount times without acknowledging
// them, which the queue no longer delivers.
//
//	freshet-queue --queue arn:aws:kinesis:us-east-1:123456789012:queue/orders describe
//	freshet-queue --queue ARN peek --max 20 --data text
//	freshet-queue --queue ARN peek --json
//	freshet-queue --queue ARN restore --id 4959...0001 --id 4959...0002
//	freshet-queue --queue ARN restore --all
//	freshet-queue --queue ARN acknowledge --all --yes
//	freshet-queue --queue ARN visibility --for 10m --all
//
// peek receives dead-letter records and makes them visible again; restore returns them
// to the queue's normal delivery with their receive counts reset; acknowledge discards
// them (it asks first unless --yes); visibility hides them from other dead-letter
// receivers for a while (--for 0 makes them visible at once). The acting commands pick
// records by --id (the record ID peek prints, stable across deliveries) or take every
// dead-letter record with --all, up to --max; records received while looking for the
// chosen IDs are made visible again.
//
// It sits beside the queue's data flow, after package queue's Consumer: it works
// through queue.DeadLetters, the same type an application uses. It uses the default AWS
// credentials chain and region; --endpoint points the Kinesis client at another
// endpoint (such as freshet-engine). A loopback endpoint gets placeholder credentials
// when the chain finds none.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/internal/awsconfig"
	"github.com/freshet/freshet/internal/cli"
)

const usageText = `usage: freshet-queue --queue ARN [global flags] <command> [command flags]

Commands:
  describe      print the queue: stream, status, visibility timeout, dead-letter settings
  peek          print dead-letter records, then make them visible again
  restore       return dead-letter records to the queue's delivery (receive counts reset)
  acknowledge   discard dead-letter records
  visibility    hide dead-letter records from other receivers for a while (--for)

Global flags (also accepted after the command):
`

// globalFlags are the flags every command accepts.
type globalFlags struct {
	awsconfig.Settings
	queue   string
	timeout time.Duration
}

func (g *globalFlags) register(fs *flag.FlagSet) {
	g.Settings.Register(fs, "Kinesis")
	fs.StringVar(&g.queue, "queue", g.queue, "queue ARN, arn:aws:kinesis:<region>:<account>:queue/<name> (required)")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "bound on the whole command")
}

func (g *globalFlags) validate() error {
	if g.queue == "" {
		return cli.Usagef("--queue is required")
	}
	if !strings.HasPrefix(g.queue, "arn:") || !strings.Contains(g.queue, ":queue/") {
		return cli.Usagef("--queue %q: want a queue ARN, arn:aws:kinesis:<region>:<account>:queue/<name>", g.queue)
	}
	return cli.CheckConnection(g.Endpoint, g.timeout)
}

// env is what a run of the command talks to.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(cli.ExitCode("freshet-queue", err, os.Stderr))
}

// run executes one command line. Command-line errors wrap cli.ErrUsage.
func run(ctx context.Context, args []string, e env) error {
	g := globalFlags{timeout: 2 * time.Minute}
	const want = "describe, peek, restore, acknowledge or visibility"
	name, rest, err := cli.Command("freshet-queue", usageText, want, args, e.stderr, g.register)
	if err != nil || name == "" {
		return err
	}
	cmd, ok := commands[name]
	if !ok {
		return cli.UnknownCommand(name, want)
	}
	return cmd(ctx, &g, rest, e)
}

// commands maps each command name to its implementation.
var commands map[string]func(ctx context.Context, g *globalFlags, args []string, e env) error

func init() {
	commands = map[string]func(context.Context, *globalFlags, []string, env) error{
		"describe":    runDescribe,
		"peek":        runPeek,
		"restore":     runAct(actRestore),
		"acknowledge": runAct(actAcknowledge),
		"visibility":  runAct(actVisibility),
	}
}

// parseCommand parses a command's flags after the global ones (which it also accepts)
// and checks them; it returns cli.ErrUsage errors.
func parseCommand(name string, g *globalFlags, args []string, e env, register func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet("freshet-queue "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	g.register(fs)
	register(fs)
	if err := cli.ParseCommand(fs, name, args); err != nil {
		return err
	}
	return g.validate()
}

// client returns the Kinesis client of the run.
func client(ctx context.Context, g *globalFlags) (*kinesis.Client, error) {
	cfg, err := awsconfig.Load(ctx, g.Settings)
	if errors.Is(err, awsconfig.ErrNoRegion) {
		return nil, cli.Usagef("%v", err)
	}
	if err != nil {
		return nil, err
	}
	return kinesis.NewFromConfig(cfg), nil
}
