// Command freshet-engine runs Freshet's bundled engine (Kinesis Data Streams, DynamoDB
// and CloudWatch) on a local address, for development with any AWS SDK or the AWS CLI:
//
//	freshet-engine -addr 127.0.0.1:4568 -data ./engine-data
//	aws --endpoint-url http://127.0.0.1:4568 kinesis create-stream --stream-name s --shard-count 2
//
// Per-shard throughput limits are on by default, as in the service; -limits=false turns
// them off. Credentials and signatures are accepted whatever they are.
//
// -tls adds an HTTPS listener (HTTP/1.1 and HTTP/2) on -tls-addr, with a generated
// self-signed certificate or the one given by -tls-cert and -tls-key, for the KPL daemon
// and the Java SDK (see docs/java-migration.md).
//
// -data DIR keeps streams, shards, records, consumers, tables, items and metrics across
// restarts in a write-ahead journal; a call is answered only once the journal is on
// disk, so a crash (even SIGKILL) loses nothing that was acknowledged. -fault injects
// failures into calls, repeatable, in the form KEY:FIELD=VALUE,... (see -h), for
// example -fault 'Kinesis.PutRecords:error=0.1,code=ProvisionedThroughputExceededException'.
// -log-requests logs every call to stderr. GET /health answers 200 once the engine
// serves (after replaying the journal).
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

	"go.uber.org/zap"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/fault"
	"github.com/freshet/freshet/internal/engine/streams"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, nil)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "freshet-engine:", err)
		os.Exit(1)
	}
}

// run serves the engine until ctx ends. ready, if set, gets the engine once it
// listens.
func run(ctx context.Context, args []string, out io.Writer, ready func(*engine.Engine)) error {
	fs := flag.NewFlagSet("freshet-engine", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "127.0.0.1:4568", "listen address (port 0 picks a free port)")
	region := fs.String("region", "us-east-1", "region used in ARNs")
	account := fs.String("account", "000000000000", "account ID used in ARNs and messages")
	shardLimit := fs.Int("shard-limit", 1000, "account open-shard limit")
	limits := fs.Bool("limits", true, "enforce per-shard throughput limits (1 MiB/s and 1,000 records/s in, 2 MiB/s and 5 calls/s out)")
	createDelay := fs.Duration("create-delay", 0, "how long a new stream stays CREATING")
	updateDelay := fs.Duration("update-delay", 0, "how long a stream stays UPDATING after a change")
	deleteDelay := fs.Duration("delete-delay", 0, "how long a stream stays DELETING")
	consumerDelay := fs.Duration("consumer-delay", 0, "how long a stream consumer stays CREATING or DELETING")
	onDemandWindow := fs.Duration("on-demand-window", time.Minute, "observation window of ON_DEMAND scaling")
	maxStored := fs.Int64("max-stored-bytes", 0, "cap on stored record bytes across streams; puts beyond it get LimitExceededException (0: no cap)")
	dataDir := fs.String("data", "", "directory that keeps all state across restarts (a journal fsynced before each answer); empty: memory only")
	logRequests := fs.Bool("log-requests", false, "log every request (service, operation, status, duration, sizes) to stderr")
	faultSeed := fs.Int64("fault-seed", 0, "seed of the random fault decisions")
	var faults []faultFlag
	fs.Func("fault", "inject faults, repeatable: KEY:FIELD=VALUE,... with KEY Service.Operation, Service.* or *, and FIELDs\n"+
		"error=RATE, code=ERROR_TYPE, status=HTTP_STATUS, latency=DURATION, drop=RATE (closed before the call takes effect),\n"+
		"drop-after=RATE (closed after it took effect) and message=TEXT (last). Throttling is\n"+
		"code=ProvisionedThroughputExceededException (Kinesis) or ThrottlingException (DynamoDB). Example:\n"+
		"-fault 'Kinesis.PutRecords:error=0.1,code=ProvisionedThroughputExceededException' -fault '*:latency=5ms'", func(v string) error {
		key, rule, err := fault.ParseSpec(v)
		if err == nil {
			err = engine.CheckFaultKey(key)
		}
		if err != nil {
			return err
		}
		faults = append(faults, faultFlag{key, rule})
		return nil
	})
	tlsCfg := tlsFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags only; -h lists them)", fs.Args())
	}
	tls, err := tlsCfg()
	if err != nil {
		return err
	}
	log := zap.NewNop()
	if *logRequests || *dataDir != "" {
		zc := zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
		zc.DisableCaller = true
		l, err := zc.Build()
		if err != nil {
			return err
		}
		defer func() { _ = l.Sync() }()
		log = l
	}
	e, err := engine.Start(engine.Config{
		Addr:        *addr,
		TLS:         tls,
		Logger:      log,
		FaultSeed:   *faultSeed,
		DataDir:     *dataDir,
		LogRequests: *logRequests,
		Streams: streams.Config{
			Region:         *region,
			AccountID:      *account,
			ShardLimit:     *shardLimit,
			Limits:         *limits,
			CreateDelay:    *createDelay,
			UpdateDelay:    *updateDelay,
			DeleteDelay:    *deleteDelay,
			ConsumerDelay:  *consumerDelay,
			OnDemandWindow: *onDemandWindow,
			MaxStoredBytes: *maxStored,
		},
	})
	if err != nil {
		return err
	}
	for _, f := range faults {
		if err := e.SetFault(f.key, f.rule); err != nil {
			_ = e.Close()
			return err
		}
	}
	persisted := "memory only"
	if *dataDir != "" {
		persisted = "data " + *dataDir
	}
	fmt.Fprintf(out, "freshet-engine listening on %s (limits %v, %s, %d fault rules)\n", e.URL(), *limits, persisted, len(faults))
	if e.TLSURL() != "" {
		fmt.Fprintf(out, "freshet-engine listening on %s (HTTP/1.1 and HTTP/2)\n", e.TLSURL())
	}
	if ready != nil {
		ready(e)
	}
	<-ctx.Done()
	return e.Close()
}

type faultFlag struct {
	key  string
	rule fault.Rule
}
