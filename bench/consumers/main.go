// Command consumers drains one pre-filled stream of the bundled engine with Freshet's
// consumer and with github.com/vmware/vmware-go-kcl-v2, side by side, and prints one JSON
// line per consumer. It is a separate module so the peer never enters Freshet's go.mod.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	vmcfg "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	vmkcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	vmworker "github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
	vmlog "github.com/vmware/vmware-go-kcl-v2/logger"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/producer"
)

// result is the JSON line of one consumer's drain.
type result struct {
	Consumer        string  `json:"consumer"`
	Records         int64   `json:"records"`
	Delivered       int64   `json:"delivered"`
	Size            int     `json:"size"`
	Shards          int     `json:"shards"`
	UserRecordsPerS float64 `json:"user_records_per_s"`
	WallS           float64 `json:"wall_s"`
	FirstRecordS    float64 `json:"first_record_s"`
	CPUS            float64 `json:"cpu_s"`
	Finished        bool    `json:"finished"`
}

// counter counts deliveries and closes done once every record was delivered.
type counter struct {
	n     atomic.Int64
	first atomic.Int64
	want  int64
	done  chan struct{}
	once  sync.Once
}

func newCounter(want int64) *counter { return &counter{want: want, done: make(chan struct{})} }

func (c *counter) add(n int) {
	if c.first.Load() == 0 {
		c.first.CompareAndSwap(0, time.Now().UnixNano())
	}
	if c.n.Add(int64(n)) >= c.want {
		c.once.Do(func() { close(c.done) })
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func main() {
	records := flag.Int("records", 1_000_000, "user records pre-filled into the stream")
	size := flag.Int("size", 100, "bytes of data per user record")
	keys := flag.Int("keys", 1000, "partition keys")
	shards := flag.Int("shards", 8, "shards of the stream")
	which := flag.String("consumers", "freshet,vmware", "consumers to run, in order")
	timeout := flag.Duration("timeout", 5*time.Minute, "longest drain of one consumer")
	warmup := flag.Bool("warmup", true, "drain the stream once with Freshet, unreported, before the measured runs (the engine's first read of a stream is slower)")
	flag.Parse()
	if err := run(*records, *size, *keys, *shards, strings.Split(*which, ","), *timeout, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "consumers:", err)
		os.Exit(1)
	}
}

func run(records, size, keys, shards int, which []string, timeout time.Duration, warmup bool) error {
	e, err := engine.Start(engine.Config{})
	if err != nil {
		return err
	}
	defer func() { _ = e.Close() }()
	const stream = "consumers-bench"
	if err := e.Streams.CreateStream(stream, shards); err != nil {
		return err
	}
	if err := fill(e, stream, records, size, keys); err != nil {
		return err
	}
	cfg := e.AWSConfig()
	if warmup {
		if _, err := drainFreshet(cfg, "freshet-warmup", stream, int64(records), timeout); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(os.Stdout)
	for _, name := range which {
		var r result
		var err error
		switch strings.TrimSpace(name) {
		case "freshet":
			r, err = drainFreshet(cfg, "freshet-drain", stream, int64(records), timeout)
		case "vmware":
			r, err = drainVMware(e.URL(), stream, int64(records), timeout)
		default:
			err = fmt.Errorf("unknown consumer %q", name)
		}
		if err != nil {
			return err
		}
		r.Size, r.Shards = size, shards
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// fill writes aggregated user records with Freshet's producer.
func fill(e *engine.Engine, stream string, records, size, keys int) error {
	p, err := producer.New(kinesis.NewFromConfig(e.AWSConfig()), producer.WithStream(stream), producer.WithAggregation(true),
		producer.WithRecordTTL(10*time.Minute))
	if err != nil {
		return err
	}
	ctx := context.Background()
	var failed atomic.Int64
	data := make([]byte, size)
	for i := 0; i < records; i++ {
		k := "key-" + strconv.Itoa(i%keys)
		if err := p.Put(ctx, producer.Record{PartitionKey: k, Data: data}, func(r producer.Result) {
			if r.Err != nil {
				failed.Add(1)
			}
		}); err != nil {
			return err
		}
	}
	if err := p.Close(ctx); err != nil {
		return err
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("fill: %d records failed", n)
	}
	return nil
}

func finish(name string, c *counter, start time.Time, cpu0 float64, timeout time.Duration) result {
	finished := true
	select {
	case <-c.done:
	case <-time.After(timeout):
		finished = false
	}
	end := time.Now()
	r := result{Consumer: name, Records: c.want, Delivered: c.n.Load(), WallS: end.Sub(start).Seconds(), CPUS: cpuSeconds() - cpu0, Finished: finished}
	r.UserRecordsPerS = float64(r.Delivered) / r.WallS
	if f := c.first.Load(); f != 0 {
		r.FirstRecordS = time.Unix(0, f).Sub(start).Seconds()
	}
	return r
}

// drainFreshet drains the stream with one Freshet worker (CBOR polling, 10,000 records
// per call, checkpoint after each batch).
func drainFreshet(cfg aws.Config, app, stream string, want int64, timeout time.Duration) (result, error) {
	c := newCounter(want)
	w, err := consumer.New(app, kinesis.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg),
		consumer.HandlerFunc(func(_ context.Context, _ consumer.ShardInfo, recs []consumer.Record) error {
			c.add(len(recs))
			return nil
		}),
		consumer.WithStream(stream, consumer.TrimHorizon()), consumer.WithCBOR(true), consumer.WithCPUMetrics(false),
		consumer.WithPolling(10000, 3, time.Second), consumer.WithShardSyncInterval(time.Second),
		consumer.WithAssignmentInterval(100*time.Millisecond))
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cpu0, start := cpuSeconds(), time.Now()
	go func() { done <- w.Run(ctx) }()
	r := finish("freshet", c, start, cpu0, timeout)
	cancel()
	return r, <-done
}

// vmProcessor counts records and checkpoints after each batch, as the Freshet handler does.
type vmProcessor struct{ c *counter }

func (p *vmProcessor) Initialize(*vmkcl.InitializationInput) {}

func (p *vmProcessor) ProcessRecords(in *vmkcl.ProcessRecordsInput) {
	if len(in.Records) == 0 {
		return
	}
	p.c.add(len(in.Records))
	_ = in.Checkpointer.Checkpoint(in.Records[len(in.Records)-1].SequenceNumber)
}

func (p *vmProcessor) Shutdown(in *vmkcl.ShutdownInput) {
	if in.ShutdownReason == vmkcl.TERMINATE {
		_ = in.Checkpointer.Checkpoint(nil)
	}
}

type vmFactory struct{ c *counter }

func (f vmFactory) CreateProcessor() vmkcl.IRecordProcessor { return &vmProcessor{c: f.c} }

// drainVMware drains the stream with one vmware-go-kcl-v2 worker: TRIM_HORIZON, 10,000
// records per call, shard sync every second (its default of 60 s would leave shards
// unclaimed for a minute).
func drainVMware(url, stream string, want int64, timeout time.Duration) (result, error) {
	c := newCounter(want)
	creds := credentials.NewStaticCredentialsProvider("bench", "bench", "")
	kc := vmcfg.NewKinesisClientLibConfigWithCredential("vmware-drain", stream, "us-east-1", "vmware-worker", creds).
		WithKinesisEndpoint(url).WithDynamoDBEndpoint(url).
		WithInitialPositionInStream(vmcfg.TRIM_HORIZON).
		WithShardSyncIntervalMillis(1000).WithMaxRecords(10000).
		WithIdleTimeBetweenReadsInMillis(1000).
		WithLogger(vmlog.GetDefaultLogger())
	w := vmworker.NewWorker(vmFactory{c: c}, kc)
	cpu0, start := cpuSeconds(), time.Now()
	if err := w.Start(); err != nil {
		return result{}, fmt.Errorf("vmware worker: %w", err)
	}
	r := finish("vmware-go-kcl-v2", c, start, cpu0, timeout)
	w.Shutdown()
	return r, nil
}
