package integration

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/integration/peers"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/sinkproc"
)

// The test binary runs as a Freshet worker process when envWorker is set (see
// workerProcess): tests start such processes beside Java KCL workers and kill them.
const (
	envWorker   = "FRESHET_WORKER_PROCESS"
	envEndpoint = "FRESHET_WORKER_ENDPOINT"
	envApp      = "FRESHET_WORKER_APP"
	envStream   = "FRESHET_WORKER_STREAM"
	envFailover = "FRESHET_WORKER_FAILOVER_MS"
)

// TestMain also lets the test binary serve as the child engine process of benchmarks
// that measure a client's CPU apart from the engine's (sinkproc).
func TestMain(m *testing.M) {
	sinkproc.MaybeServe()
	if id := os.Getenv(envWorker); id != "" {
		os.Exit(workerProcess(id))
	}
	os.Exit(m.Run())
}

// startFreshetProcess starts a Freshet worker process (this test binary) named id of app
// on stream, with the failover time failover, against the engine at endpoint.
func startFreshetProcess(t *testing.T, id, endpoint, app, stream string, failover time.Duration) *peers.KCLWorker {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envWorker+"="+id, envEndpoint+"="+endpoint, envApp+"="+app, envStream+"="+stream,
		envFailover+"="+strconv.FormatInt(failover.Milliseconds(), 10))
	return peers.StartWorkerProcess(t, id, cmd)
}

// lineWriter writes the output lines of a worker process, as KclApp does: one REC line
// per delivered user record (worker, shard, sequence and sub-sequence number, partition
// key, data in base64) and EVT lines for lifecycle events.
type lineWriter struct {
	mu  sync.Mutex
	out *bufio.Writer
	id  string
}

func (w *lineWriter) event(event, shard, detail string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.out, "EVT\t%s\t%s\t%s\t%d", w.id, event, shard, time.Now().UnixMilli())
	if detail != "" {
		fmt.Fprintf(w.out, "\t%s", detail)
	}
	w.out.WriteString("\n")
	w.out.Flush()
}

func (w *lineWriter) records(shard string, recs []consumer.Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range recs {
		fmt.Fprintf(w.out, "REC\t%s\t%s\t%s\t%d\t%s\t%s\n", w.id, shard, r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey,
			base64.StdEncoding.EncodeToString(r.Data))
	}
	w.out.Flush()
}

// lineProcessor writes every batch before checkpointing it, and the lifecycle events
// KclApp writes (init, checkpoint-failed, lease-lost, shard-ended, shutdown-requested).
type lineProcessor struct {
	w     *lineWriter
	shard string
}

func (p *lineProcessor) Initialize(_ context.Context, in consumer.InitializeInput) error {
	p.w.event("init", p.shard, in.Checkpoint.String())
	return nil
}

func (p *lineProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	p.w.records(p.shard, in.Records)
	if len(in.Records) > 0 {
		if err := in.Checkpointer.Checkpoint(ctx); err != nil {
			p.w.event("checkpoint-failed", p.shard, err.Error())
		}
	}
	return nil
}

func (p *lineProcessor) LeaseLost(context.Context, consumer.LeaseLostInput) {
	p.w.event("lease-lost", p.shard, "")
}

func (p *lineProcessor) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		return err
	}
	p.w.event("shard-ended", p.shard, "")
	return nil
}

func (p *lineProcessor) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	err := in.Checkpointer.Checkpoint(ctx)
	if err != nil {
		p.w.event("shutdown-requested-failed", p.shard, err.Error())
	} else {
		p.w.event("shutdown-requested", p.shard, "")
	}
	return err
}

// reportLeadership writes a "leader" event when w becomes the leader and "leader-end"
// when it stops being it, checking every 50 ms, or when ctx ends (the worker then shuts
// down and releases the leader lock).
func reportLeadership(ctx context.Context, w *consumer.Worker, out *lineWriter) {
	leading := false
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if leading {
				out.event("leader-end", "-", "")
			}
			return
		case <-tick.C:
		}
		if l := w.IsLeader(); l != leading {
			leading = l
			if l {
				out.event("leader", "-", "")
			} else {
				out.event("leader-end", "-", "")
			}
		}
	}
}

// workerProcess runs one Freshet worker until SIGTERM (graceful) or the end of stdin,
// writing KclApp's output lines. It is a default worker but for the hash key range
// filter, on as the migration guide says for a mixed fleet whose producers are the KPL
// or Freshet's: it then drops what Java KCL drops.
func workerProcess(id string) int {
	out := &lineWriter{out: bufio.NewWriter(os.Stdout), id: id}
	failover, err := strconv.Atoi(os.Getenv(envFailover))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := engine.ClientConfig(os.Getenv(envEndpoint))
	factory := func(shard consumer.ShardInfo) (consumer.Processor, error) {
		return &lineProcessor{w: out, shard: shard.ShardID}, nil
	}
	w, err := consumer.New(os.Getenv(envApp), kinesis.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg), factory,
		consumer.WithStream(os.Getenv(envStream), consumer.TrimHorizon()), consumer.WithWorkerID(id),
		consumer.WithFailoverTime(time.Duration(failover)*time.Millisecond), consumer.WithHashKeyRangeFilter(true))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	out.event("ready", "-", "freshet")
	go reportLeadership(ctx, w, out)
	err = w.Run(ctx)
	out.event("stopped", "-", "")
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
