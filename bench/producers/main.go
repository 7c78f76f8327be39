// Command producers runs Freshet's producer, the existing Go Kinesis producers
// (github.com/a8m/kinesis-producer v0.2.0 on aws-sdk-go v1 and its SDK-v2 fork
// github.com/kinesis-producer-go/kinesis-producer v0.0.2) and a naive aws-sdk-go-v2
// PutRecords loop side by side against one bundled engine running in a child process
// (so each producer's CPU time is the client's alone), and prints one JSON line per
// producer.
//
// It lives in its own module so the peers never enter Freshet's go.mod. See README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	a8m "github.com/a8m/kinesis-producer"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	awsv1 "github.com/aws/aws-sdk-go/aws"
	credsv1 "github.com/aws/aws-sdk-go/aws/credentials"
	sessv1 "github.com/aws/aws-sdk-go/aws/session"
	kinesisv1 "github.com/aws/aws-sdk-go/service/kinesis"
	kpgo "github.com/kinesis-producer-go/kinesis-producer"

	"github.com/freshet/freshet/internal/engine/sinkproc"
	"github.com/freshet/freshet/producer"
)

type result struct {
	Producer        string  `json:"producer"`
	Round           int     `json:"round,omitempty"`
	Median          bool    `json:"median,omitempty"`
	Records         int     `json:"records"`
	UserRecordsPerS float64 `json:"user_records_per_s"`
	MBPerS          float64 `json:"mb_per_s"`
	WallS           float64 `json:"wall_s"`
	CPUS            float64 `json:"cpu_s"`
	CPUSPerMillion  float64 `json:"cpu_s_per_million"`
	RecordsPerCPUS  float64 `json:"user_records_per_cpu_s"`
	HeapPeakMB      float64 `json:"heap_peak_mb"`
	EngineCPUS      float64 `json:"engine_cpu_s"`
	// PutRecordsCalls is how many PutRecords calls the engine answered for the run.
	PutRecordsCalls uint64 `json:"putrecords_calls"`
	Failed          int64  `json:"failed"`
	sinkproc.Check
}

func main() {
	sinkproc.MaybeServe()
	records := flag.Int("records", 1000000, "user records per producer")
	size := flag.Int("size", 100, "bytes of data per record (at least 16: each record is stamped with its key and rank)")
	keys := flag.Int("keys", 1000, "distinct partition keys")
	shards := flag.Int("shards", 8, "shards per stream")
	which := flag.String("producers", "freshet,freshet-json,freshet-plain,naive,a8m,kinesis-producer-go", "producers to run, in order: freshet[-json][-plain][-ordered|-unordered], naive, a8m, kinesis-producer-go")
	limits := flag.Bool("limits", false, "engine per-shard limits on")
	throttle := flag.Float64("throttle-rate", 0, "fraction of PutRecords entries the engine throttles at random")
	rounds := flag.Int("rounds", 1, "run every producer this many times, rotating the order each round, and print each producer's median round last (\"median\": true)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the client (every run) to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *size < sinkproc.StampSize {
		fatal(fmt.Errorf("-size %d below %d", *size, sinkproc.StampSize))
	}

	e, err := sinkproc.Start(sinkproc.Config{Limits: *limits, ThrottleRate: *throttle})
	if err != nil {
		fatal(err)
	}
	defer e.Close()
	pks := make([]string, *keys)
	for i := range pks {
		pks[i] = sinkproc.Key(i)
	}
	data := make([]byte, *size)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	names := strings.Split(*which, ",")
	all := map[string][]result{}
	for round := 1; round <= *rounds; round++ {
		for j := range names {
			name := names[(j+round-1)%len(names)]
			r := runOne(e, name, round, *records, *shards, *size, pks, data)
			if *rounds > 1 {
				r.Round = round
			}
			_ = json.NewEncoder(os.Stdout).Encode(r)
			all[name] = append(all[name], r)
		}
	}
	if *rounds > 1 {
		for _, name := range names {
			rs := all[name]
			sort.Slice(rs, func(a, b int) bool { return rs[a].RecordsPerCPUS < rs[b].RecordsPerCPUS })
			r := rs[len(rs)/2]
			r.Median = true
			_ = json.NewEncoder(os.Stdout).Encode(r)
		}
	}
}

// records yields the benchmark's user records: record i has key i%len(pks) and is that
// key's record number i/len(pks), stamped into its own copy of data.
func record(i int, pks []string, data []byte) (string, []byte) {
	d := make([]byte, len(data))
	copy(d[sinkproc.StampSize:], data[sinkproc.StampSize:])
	sinkproc.Stamp(d, i%len(pks), i/len(pks))
	return pks[i%len(pks)], d
}

// runOne runs one producer on a stream of its own, reads the stream back, and deletes
// it so later runs do not pay for its memory.
func runOne(e *sinkproc.Sink, name string, round, records, shards, size int, pks []string, data []byte) result {
	stream := fmt.Sprintf("bench-%s-%d", name, round)
	if err := e.CreateStream(stream, shards); err != nil {
		fatal(err)
	}
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	go samplePeak(&peak, stop)
	ecpu0, err := e.CPUSeconds()
	if err != nil {
		fatal(err)
	}
	calls0 := putRecordsCalls(e)
	cpu0 := cpuSeconds()
	start := time.Now()
	var failed int64
	switch {
	case strings.HasPrefix(name, "freshet"):
		failed = runFreshet(e, name, stream, records, pks, data)
	case name == "naive":
		failed = runNaive(e, stream, records, pks, data)
	case name == "a8m":
		failed = runA8m(e, stream, records, pks, data)
	case name == "kinesis-producer-go":
		failed = runKPGo(e, stream, records, pks, data)
	default:
		fatal(fmt.Errorf("unknown producer %q", name))
	}
	wall := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	close(stop)
	ecpu, err := e.CPUSeconds()
	if err != nil {
		fatal(err)
	}
	calls := putRecordsCalls(e) - calls0
	c, err := e.Check(stream)
	if err != nil {
		fatal(err)
	}
	if err := e.DeleteStream(stream); err != nil {
		fatal(err)
	}
	debug.FreeOSMemory()
	return result{Producer: name, Records: records, WallS: wall, CPUS: cpu, Failed: failed,
		UserRecordsPerS: float64(records) / wall, MBPerS: float64(records) * float64(size) / wall / (1 << 20),
		CPUSPerMillion: cpu / float64(records) * 1e6, RecordsPerCPUS: float64(records) / cpu,
		HeapPeakMB: float64(peak.Load()) / (1 << 20), EngineCPUS: ecpu - ecpu0, PutRecordsCalls: calls, Check: c}
}

// putRecordsCalls is how many PutRecords calls the engine has answered.
func putRecordsCalls(e *sinkproc.Sink) uint64 {
	u, err := e.Usage()
	if err != nil {
		fatal(err)
	}
	return u.Calls["Kinesis.PutRecords"]
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "producers:", err)
	os.Exit(1)
}

// runFreshet runs Freshet's producer with the options its name asks for: -json (the
// JSON protocol instead of CBOR), -plain (no aggregation), -ordered or -unordered.
func runFreshet(e *sinkproc.Sink, name, stream string, n int, pks []string, data []byte) int64 {
	opts := []producer.Option{producer.WithStream(stream), producer.WithMetrics(producer.MetricsNone, producer.GranularityGlobal)}
	for _, part := range strings.Split(name, "-")[1:] {
		switch part {
		case "json":
			opts = append(opts, producer.WithCBOR(false))
		case "plain":
			opts = append(opts, producer.WithAggregation(false))
		case "ordered":
			opts = append(opts, producer.WithOrdering(true))
		case "unordered":
			opts = append(opts, producer.WithOrdering(false))
		default:
			fatal(fmt.Errorf("unknown freshet variant %q in %q", part, name))
		}
	}
	p, err := producer.New(kinesis.NewFromConfig(e.AWSConfig()), opts...)
	if err != nil {
		fatal(err)
	}
	var failed atomic.Int64
	done := func(r producer.Result) {
		if r.Err != nil {
			failed.Add(1)
		}
	}
	ctx := context.Background()
	for i := 0; i < n; i++ {
		pk, d := record(i, pks, data)
		if err := p.Put(ctx, producer.Record{PartitionKey: pk, Data: d}, done); err != nil {
			fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		fatal(err)
	}
	return failed.Load()
}

// naiveCallers is how many goroutines the naive loop runs.
const naiveCallers = 8

// runNaive is what a user writes without a producer library: naiveCallers goroutines,
// each owning the keys k with k%naiveCallers equal to its number (so a key's records
// stay in order), each building PutRecords calls of 500 records and sending them with
// one shared aws-sdk-go-v2 client, synchronously, putting failed entries first in its
// next call.
func runNaive(e *sinkproc.Sink, stream string, n int, pks []string, data []byte) int64 {
	client := kinesis.NewFromConfig(e.AWSConfig())
	var failed atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < naiveCallers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			ctx := context.Background()
			batch := make([]types.PutRecordsRequestEntry, 0, 500)
			send := func() {
				for tries := 0; len(batch) > 0; tries++ {
					out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: batch})
					if err != nil {
						if tries >= 100 {
							failed.Add(int64(len(batch)))
							batch = batch[:0]
							return
						}
						time.Sleep(50 * time.Millisecond)
						continue
					}
					if aws.ToInt32(out.FailedRecordCount) == 0 {
						batch = batch[:0]
						return
					}
					again := batch[:0]
					for i, r := range out.Records {
						if r.ErrorCode != nil {
							again = append(again, batch[i])
						}
					}
					batch = again
					if tries >= 100 {
						failed.Add(int64(len(batch)))
						batch = batch[:0]
						return
					}
				}
			}
			for i := 0; i < n; i++ {
				if (i%len(pks))%naiveCallers != c {
					continue
				}
				pk, d := record(i, pks, data)
				batch = append(batch, types.PutRecordsRequestEntry{PartitionKey: &pk, Data: d})
				if len(batch) == cap(batch) {
					send()
				}
			}
			send()
		}(c)
	}
	wg.Wait()
	return failed.Load()
}

func peerTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
	return t
}

func runA8m(e *sinkproc.Sink, stream string, n int, pks []string, data []byte) int64 {
	sess, err := sessv1.NewSession(&awsv1.Config{
		Region:      awsv1.String("us-east-1"),
		Endpoint:    awsv1.String(e.URL()),
		DisableSSL:  awsv1.Bool(true),
		Credentials: credsv1.NewStaticCredentials("freshet", "freshet", ""),
		HTTPClient:  &http.Client{Transport: peerTransport()},
	})
	if err != nil {
		fatal(err)
	}
	p := a8m.New(&a8m.Config{StreamName: stream, Client: kinesisv1.New(sess), Logger: quiet{}})
	p.Start()
	var failed atomic.Int64
	fdone := make(chan struct{})
	go func() {
		defer close(fdone)
		for range p.NotifyFailures() {
			failed.Add(1)
		}
	}()
	for i := 0; i < n; i++ {
		pk, d := record(i, pks, data)
		if err := p.Put(d, pk); err != nil {
			fatal(err)
		}
	}
	p.Stop()
	<-fdone
	return failed.Load()
}

type quiet struct{}

func (quiet) Info(string, ...a8m.LogValue)         {}
func (quiet) Error(string, error, ...a8m.LogValue) {}

func runKPGo(e *sinkproc.Sink, stream string, n int, pks []string, data []byte) int64 {
	cfg := e.AWSConfig()
	p := kpgo.New(&kpgo.Config{StreamName: aws.String(stream), Client: kinesis.NewFromConfig(cfg), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	p.Start()
	var failed atomic.Int64
	fdone := make(chan struct{})
	go func() {
		defer close(fdone)
		for range p.NotifyFailures() {
			failed.Add(1)
		}
	}()
	for i := 0; i < n; i++ {
		_, d := record(i, pks, data)
		if err := p.Put(d); err != nil {
			fatal(err)
		}
	}
	p.Stop()
	<-fdone
	return failed.Load()
}

func samplePeak(peak *atomic.Uint64, stop <-chan struct{}) {
	var ms runtime.MemStats
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > peak.Load() {
			peak.Store(ms.HeapAlloc)
		}
		select {
		case <-t.C:
		case <-stop:
			return
		}
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
