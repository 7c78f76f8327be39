package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/producer"
)

func init() {
	register("consumer", "drain a pre-filled stream with 1 and 2 workers; time fair share and failover", runConsumer)
}

// consumerResult is the JSON line of one consumer benchmark run.
type consumerResult struct {
	Bench    string `json:"bench"`
	Scenario string `json:"scenario"`
	Workers  int    `json:"workers"`
	Records  int64  `json:"records,omitempty"`
	Size     int    `json:"size,omitempty"`
	Shards   int    `json:"shards"`
	// Drain runs.
	UserRecordsPerS float64 `json:"user_records_per_s,omitempty"`
	// SteadyRecordsPerS counts from the first delivered record, leaving out startup
	// (tables, leader election, first assignment); FirstRecordS is that startup.
	SteadyRecordsPerS float64 `json:"steady_user_records_per_s,omitempty"`
	FirstRecordS      float64 `json:"first_record_s,omitempty"`
	MBPerS            float64 `json:"mb_per_s,omitempty"`
	WallS             float64 `json:"wall_s,omitempty"`
	CPUS              float64 `json:"cpu_s,omitempty"`
	CPUSPerMillion    float64 `json:"cpu_s_per_million,omitempty"`
	EngineCPUS        float64 `json:"engine_cpu_s,omitempty"`
	Duplicates        int64   `json:"duplicates,omitempty"`
	// Join and failover runs.
	FailoverTimeS float64 `json:"failover_time_s,omitempty"`
	FairShareS    float64 `json:"fair_share_s,omitempty"`
	ResumeS       float64 `json:"resume_s,omitempty"`
	PeakRSSMB     float64 `json:"peak_rss_mb"`
}

// engineInfo is what the engine child process reports once its stream is filled.
type engineInfo struct {
	URL     string `json:"url"`
	Stream  string `json:"stream"`
	Records int64  `json:"records"`
	Shards  int    `json:"shards"`
	FillS   float64
}

func runConsumer(args []string) error {
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	records := fs.Int("records", 1_000_000, "user records pre-filled into the stream")
	size := fs.Int("size", 100, "bytes of data per user record")
	shards := fs.Int("shards", 8, "shards of the stream")
	keys := fs.Int("keys", 1000, "partition keys")
	workersList := fs.String("workers", "1,2", "worker counts of the drain runs")
	scenarios := fs.String("scenarios", "drain,join,failover", "runs: drain, join (time for a new worker to get its fair share), failover (time for a killed worker's shards to resume)")
	failover := fs.Duration("failover", 10*time.Second, "lease failover time of the join and failover runs")
	endpoint := fs.String("endpoint", "", "engine endpoint with the stream already filled (see -serve); empty starts an engine child process")
	stream := fs.String("stream", "freshet-bench-consumer", "stream name")
	serve := fs.Bool("serve", false, "run the engine and fill the stream, print its endpoint as JSON, serve until stdin closes (used by the benchmark itself and by bench/consumers)")
	warmup := fs.Bool("warmup", true, "drain the stream once, unreported, before the drain runs (the engine's first read of a stream is slower)")
	fs.IntVar(&benchMaxRecords, "maxrecords", 10000, "GetRecords limit of the workers")
	stopProfile, err := parseProfiled(fs, args)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *serve {
		return serveEngine(*stream, *records, *size, *shards, *keys)
	}
	info := engineInfo{URL: *endpoint, Stream: *stream, Records: int64(*records), Shards: *shards}
	enginePID = 0
	if info.URL == "" {
		child, in, err := startEngineChild(*stream, *records, *size, *shards, *keys)
		if err != nil {
			return err
		}
		defer func() { _ = child.Wait() }()
		defer func() { _ = in.Close() }()
		info = child.info
		enginePID = child.Process.Pid
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", ""),
		BaseEndpoint: aws.String(info.URL)}
	kin, ddb := kinesis.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg)
	enc := json.NewEncoder(os.Stdout)
	run := 0
	for _, sc := range strings.Split(*scenarios, ",") {
		switch strings.TrimSpace(sc) {
		case "drain":
			if *warmup {
				run++
				if _, err := benchDrain(kin, ddb, info, 1, *size, fmt.Sprintf("bench-warmup-%d", run)); err != nil {
					return err
				}
			}
			for _, ws := range strings.Split(*workersList, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(ws))
				if err != nil || n < 1 {
					return fmt.Errorf("bad worker count %q", ws)
				}
				run++
				r, err := benchDrain(kin, ddb, info, n, *size, fmt.Sprintf("bench-drain-%d-%d", n, run))
				if err != nil {
					return err
				}
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
		case "join", "failover":
			run++
			r, err := benchMove(kin, ddb, info, strings.TrimSpace(sc), *failover, fmt.Sprintf("bench-%s-%d", sc, run))
			if err != nil {
				return err
			}
			if err := enc.Encode(r); err != nil {
				return err
			}
		case "":
		default:
			return fmt.Errorf("unknown scenario %q", sc)
		}
	}
	return nil
}

// benchMaxRecords is the workers' GetRecords limit (-maxrecords).
var benchMaxRecords = 10000

// enginePID is the engine child process, 0 when the engine runs elsewhere.
var enginePID int

// processCPUSeconds returns the user+system CPU time of process pid from /proc (0 when
// pid is 0 or unreadable).
func processCPUSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks; USER_HZ is 100 on Linux
}

// engineChild is the engine process.
type engineChild struct {
	*exec.Cmd
	info engineInfo
}

// startEngineChild runs this program with -serve, so the engine's CPU is not counted as
// the consumer's, and waits for its endpoint.
func startEngineChild(stream string, records, size, shards, keys int) (*engineChild, io.WriteCloser, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(exe, "consumer", "-serve", "-stream", stream, "-records", strconv.Itoa(records),
		"-size", strconv.Itoa(size), "-shards", strconv.Itoa(shards), "-keys", strconv.Itoa(keys))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		_ = in.Close()
		_ = cmd.Wait()
		return nil, nil, fmt.Errorf("engine child: %w", err)
	}
	c := &engineChild{Cmd: cmd}
	if err := json.Unmarshal(line, &c.info); err != nil {
		_ = in.Close()
		_ = cmd.Wait()
		return nil, nil, fmt.Errorf("engine child said %q: %w", line, err)
	}
	return c, in, nil
}

// serveEngine starts the engine with limits off, fills the stream with aggregated user
// records through the producer, prints the endpoint and serves until stdin closes.
func serveEngine(stream string, records, size, shards, keys int) error {
	e, err := engine.Start(engine.Config{})
	if err != nil {
		return err
	}
	defer func() { _ = e.Close() }()
	if err := e.Streams.CreateStream(stream, shards); err != nil {
		return err
	}
	start := time.Now()
	p, err := producer.New(kinesis.NewFromConfig(e.AWSConfig()), producer.WithStream(stream), producer.WithAggregation(true),
		producer.WithMaxInFlight(16), producer.WithRecordTTL(10*time.Minute))
	if err != nil {
		return err
	}
	ctx := context.Background()
	var failed atomic.Int64
	data := make([]byte, size)
	for i := 0; i < records; i++ {
		k := "key-" + strconv.Itoa(i%keys)
		copy(data, k)
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
		return fmt.Errorf("filling the stream: %d records failed", n)
	}
	info := engineInfo{URL: e.URL(), Stream: stream, Records: int64(records), Shards: shards, FillS: time.Since(start).Seconds()}
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// benchOptions are the worker options of the benchmark runs: polling with the largest
// batches, no CPU metrics (the workers share this process).
func benchOptions(info engineInfo, id string, failover time.Duration, pos consumer.InitialPosition) []consumer.Option {
	log := zap.NewNop()
	if os.Getenv("FRESHET_BENCH_DEBUG") != "" {
		if l, err := zap.NewDevelopment(); err == nil {
			log = l.With(zap.String("w", id))
		}
	}
	return []consumer.Option{consumer.WithLogger(log),
		consumer.WithStream(info.Stream, pos), consumer.WithWorkerID(id),
		consumer.WithPolling(benchMaxRecords, 3, 200*time.Millisecond), consumer.WithFailoverTime(failover),
		consumer.WithCPUMetrics(false), consumer.WithShardSyncInterval(time.Second),
		consumer.WithParentPollInterval(100 * time.Millisecond), consumer.WithCBOR(true),
		consumer.WithAssignmentInterval(100 * time.Millisecond),
	}
}

// drainCounter counts deliveries and repeats.
type drainCounter struct {
	n     atomic.Int64
	first atomic.Int64 // unix nanoseconds of the first delivery
	done  chan struct{}
	once  sync.Once
	want  int64
}

func (c *drainCounter) handle(_ context.Context, _ consumer.ShardInfo, recs []consumer.Record) error {
	if c.first.Load() == 0 {
		c.first.CompareAndSwap(0, time.Now().UnixNano())
	}
	if c.n.Add(int64(len(recs))) >= c.want {
		c.once.Do(func() { close(c.done) })
	}
	return nil
}

// benchDrain drains the whole stream with n workers of a new application.
func benchDrain(kin *kinesis.Client, ddb *dynamodb.Client, info engineInfo, n, size int, app string) (consumerResult, error) {
	c := &drainCounter{done: make(chan struct{}), want: info.Records}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ws []*consumer.Worker
	for i := 0; i < n; i++ {
		w, err := consumer.New(app, kin, ddb, consumer.HandlerFunc(c.handle), benchOptions(info, fmt.Sprintf("%s-w%d", app, i), 10*time.Second, consumer.TrimHorizon())...)
		if err != nil {
			return consumerResult{}, err
		}
		ws = append(ws, w)
	}
	cpu0, ecpu0, start := cpuSeconds(), processCPUSeconds(enginePID), time.Now()
	errs := make(chan error, n)
	for _, w := range ws {
		go func() { errs <- w.Run(ctx) }()
	}
	select {
	case <-c.done:
	case err := <-errs:
		return consumerResult{}, fmt.Errorf("worker stopped: %v", err)
	case <-time.After(10 * time.Minute):
		return consumerResult{}, errors.New("drain did not finish in 10 minutes")
	}
	end := time.Now()
	wall, cpu, ecpu := end.Sub(start).Seconds(), cpuSeconds()-cpu0, processCPUSeconds(enginePID)-ecpu0
	first := time.Unix(0, c.first.Load())
	cancel()
	for range ws {
		<-errs
	}
	got := c.n.Load()
	return consumerResult{Bench: "consumer", Scenario: "drain", Workers: n, Records: info.Records, Size: size, Shards: info.Shards,
		UserRecordsPerS: float64(info.Records) / wall, SteadyRecordsPerS: float64(info.Records) / end.Sub(first).Seconds(),
		FirstRecordS: first.Sub(start).Seconds(), MBPerS: float64(info.Records) * float64(size) / wall / 1e6,
		WallS: wall, CPUS: cpu, CPUSPerMillion: cpu / float64(info.Records) * 1e6, EngineCPUS: ecpu, Duplicates: got - info.Records,
		PeakRSSMB: peakRSSMB()}, nil
}

// benchMove measures lease movement under a steady load: "join" starts a worker, waits
// until it holds every shard, starts a second and times until the second holds its fair
// share; "failover" starts two workers, waits for the fair share, aborts the one that is
// not the leader and times until the survivor has started processing every shard.
func benchMove(kin *kinesis.Client, ddb *dynamodb.Client, info engineInfo, scenario string, failover time.Duration, app string) (consumerResult, error) {
	var mu sync.Mutex
	started := map[string]map[string]time.Time{} // worker -> shard -> processor created
	factory := func(id string) consumer.ProcessorFactory {
		h := consumer.HandlerFunc(func(context.Context, consumer.ShardInfo, []consumer.Record) error { return nil })
		return func(s consumer.ShardInfo) (consumer.Processor, error) {
			mu.Lock()
			if started[id] == nil {
				started[id] = map[string]time.Time{}
			}
			started[id][s.ShardID] = time.Now()
			mu.Unlock()
			return h(s)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type running struct {
		w    *consumer.Worker
		done chan error
	}
	start := func(id string) (*running, error) {
		w, err := consumer.New(app, kin, ddb, factory(id), benchOptions(info, id, failover, consumer.Latest())...)
		if err != nil {
			return nil, err
		}
		r := &running{w: w, done: make(chan error, 1)}
		go func() { r.done <- w.Run(ctx) }()
		return r, nil
	}
	wait := func(what string, limit time.Duration, cond func() bool) error {
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: not reached in %v", what, limit)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}
	res := consumerResult{Bench: "consumer", Scenario: scenario, Workers: 2, Shards: info.Shards, FailoverTimeS: failover.Seconds()}
	// A steady load over every shard while workers join and die, read from LATEST: the
	// leader balances throughput, which is then spread evenly over the shards.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	go steadyLoad(loadCtx, kin, info.Stream, 2000)
	a, err := start(app + "-a")
	if err != nil {
		return res, err
	}
	if err := wait("first worker holds every shard", time.Minute, func() bool { return len(a.w.HeldLeases()) == info.Shards }); err != nil {
		return res, err
	}
	joined := time.Now()
	b, err := start(app + "-b")
	if err != nil {
		return res, err
	}
	half := info.Shards / 2
	fair := func() bool { return len(a.w.HeldLeases()) == info.Shards-half && len(b.w.HeldLeases()) == half }
	if err := wait("fair share", 5*time.Minute, fair); err != nil {
		return res, err
	}
	res.FairShareS = time.Since(joined).Seconds()
	if scenario == "failover" {
		// Kill only once the fleet is settled: the fair share held for 3 s.
		var since time.Time
		if err := wait("settled fleet", 5*time.Minute, func() bool {
			if !fair() {
				since = time.Time{}
				return false
			}
			if since.IsZero() {
				since = time.Now()
			}
			return time.Since(since) >= 3*time.Second
		}); err != nil {
			return res, err
		}
	}
	if scenario == "failover" {
		victim, survivor := b, a
		if b.w.IsLeader() {
			victim, survivor = a, b
		}
		lost := victim.w.HeldLeases()
		killed := time.Now()
		victim.w.Abort()
		<-victim.done
		sid := survivor.w.ID()
		if err := wait("failover", 5*time.Minute, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, key := range lost {
				if t, ok := started[sid][key]; !ok || t.Before(killed) {
					return false
				}
			}
			return true
		}); err != nil {
			return res, err
		}
		res.ResumeS = time.Since(killed).Seconds()
		res.FairShareS = 0
		cancel()
		<-survivor.done
	} else {
		cancel()
		<-a.done
		<-b.done
	}
	res.PeakRSSMB = peakRSSMB()
	return res, nil
}

// steadyLoad puts perSecond 100-byte records over 1,000 keys until ctx ends.
func steadyLoad(ctx context.Context, kin *kinesis.Client, stream string, perSecond int) {
	p, err := producer.New(kin, producer.WithStream(stream), producer.WithLinger(50*time.Millisecond))
	if err != nil {
		return
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(cctx)
	}()
	data := make([]byte, 100)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for j := 0; j < perSecond/100; j, i = j+1, i+1 {
			if err := p.Put(ctx, producer.Record{PartitionKey: "load-" + strconv.Itoa(i%1000), Data: data}, nil); err != nil {
				return
			}
		}
	}
}
