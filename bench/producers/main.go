// Command producers runs Freshet's producer and the existing Go Kinesis producers
// (github.com/a8m/kinesis-producer v0.2.0 on aws-sdk-go v1 and its SDK-v2 fork
// github.com/kinesis-producer-go/kinesis-producer v0.0.2) side by side against one
// bundled engine, in one process, and prints one JSON line per producer.
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
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	a8m "github.com/a8m/kinesis-producer"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	awsv1 "github.com/aws/aws-sdk-go/aws"
	credsv1 "github.com/aws/aws-sdk-go/aws/credentials"
	sessv1 "github.com/aws/aws-sdk-go/aws/session"
	kinesisv1 "github.com/aws/aws-sdk-go/service/kinesis"
	kpgo "github.com/kinesis-producer-go/kinesis-producer"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/producer"
)

type result struct {
	Producer        string  `json:"producer"`
	Round           int     `json:"round,omitempty"`
	Best            bool    `json:"best,omitempty"`
	Records         int     `json:"records"`
	UserRecordsPerS float64 `json:"user_records_per_s"`
	MBPerS          float64 `json:"mb_per_s"`
	WallS           float64 `json:"wall_s"`
	CPUS            float64 `json:"cpu_s"`
	CPUSPerMillion  float64 `json:"cpu_s_per_million"`
	RecordsPerCPUS  float64 `json:"user_records_per_cpu_s"`
	HeapPeakMB      float64 `json:"heap_peak_mb"`
	Failed          int64   `json:"failed"`
	Stored          int     `json:"stored_user_records"`
	WrongKeys       int     `json:"wrong_partition_keys"`
	KinesisRecords  int     `json:"kinesis_records"`
}

func main() {
	records := flag.Int("records", 1000000, "user records per producer")
	size := flag.Int("size", 100, "bytes of data per record")
	keys := flag.Int("keys", 1000, "distinct partition keys")
	shards := flag.Int("shards", 8, "shards per stream")
	which := flag.String("producers", "freshet,freshet-json,a8m,kinesis-producer-go", "producers to run, in order")
	limits := flag.Bool("limits", false, "engine per-shard limits on")
	rounds := flag.Int("rounds", 1, "run every producer this many times, rotating the order each round, and print each producer's best round last (\"best\": true)")
	flag.Parse()

	e, err := engine.Start(engine.Config{Streams: streams.Config{Limits: *limits}})
	if err != nil {
		fatal(err)
	}
	defer e.Close()
	pks := make([]string, *keys)
	for i := range pks {
		pks[i] = "key-" + strconv.Itoa(i)
	}
	data := make([]byte, *size)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	names := strings.Split(*which, ",")
	best := map[string]result{}
	for round := 1; round <= *rounds; round++ {
		for j := range names {
			name := names[(j+round-1)%len(names)]
			r := runOne(e, name, round, *records, *shards, *size, pks, data)
			if *rounds > 1 {
				r.Round = round
			}
			_ = json.NewEncoder(os.Stdout).Encode(r)
			if b, ok := best[name]; !ok || r.RecordsPerCPUS > b.RecordsPerCPUS {
				best[name] = r
			}
		}
	}
	if *rounds > 1 {
		for _, name := range names {
			r := best[name]
			r.Best = true
			_ = json.NewEncoder(os.Stdout).Encode(r)
		}
	}
}

// runOne runs one producer on a stream of its own, reads the stream back, and deletes
// it so later runs do not pay for its memory.
func runOne(e *engine.Engine, name string, round, records, shards, size int, pks []string, data []byte) result {
	stream := fmt.Sprintf("bench-%s-%d", name, round)
	if err := e.Streams.CreateStream(stream, shards); err != nil {
		fatal(err)
	}
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	go samplePeak(&peak, stop)
	cpu0 := cpuSeconds()
	start := time.Now()
	var failed int64
	switch name {
	case "freshet", "freshet-json":
		failed = runFreshet(e, stream, records, pks, data, name == "freshet")
	case "a8m":
		failed = runA8m(e, stream, records, pks, data)
	case "kinesis-producer-go":
		failed = runKPGo(e, stream, records, pks, data)
	default:
		fatal(fmt.Errorf("unknown producer %q", name))
	}
	wall := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	close(stop)
	stored, wrong, krecs := count(e, stream, pks)
	if err := e.Streams.DeleteStream(stream); err != nil {
		fatal(err)
	}
	debug.FreeOSMemory()
	return result{Producer: name, Records: records, WallS: wall, CPUS: cpu, Failed: failed,
		UserRecordsPerS: float64(records) / wall, MBPerS: float64(records) * float64(size) / wall / (1 << 20),
		CPUSPerMillion: cpu / float64(records) * 1e6, RecordsPerCPUS: float64(records) / cpu,
		HeapPeakMB: float64(peak.Load()) / (1 << 20), Stored: stored, WrongKeys: wrong, KinesisRecords: krecs}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "producers:", err)
	os.Exit(1)
}

func runFreshet(e *engine.Engine, stream string, n int, pks []string, data []byte, cbor bool) int64 {
	opts := []producer.Option{producer.WithStream(stream), producer.WithMetrics(producer.MetricsNone, producer.GranularityGlobal)}
	if !cbor {
		// CBOR is the default; freshet-json asks for the JSON protocol.
		opts = append(opts, producer.WithCBOR(false))
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
		if err := p.Put(ctx, producer.Record{PartitionKey: pks[i%len(pks)], Data: data}, done); err != nil {
			fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		fatal(err)
	}
	return failed.Load()
}

func peerTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
	return t
}

func runA8m(e *engine.Engine, stream string, n int, pks []string, data []byte) int64 {
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
		if err := p.Put(data, pks[i%len(pks)]); err != nil {
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

func runKPGo(e *engine.Engine, stream string, n int, _ []string, data []byte) int64 {
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
		if err := p.Put(data); err != nil {
			fatal(err)
		}
	}
	p.Stop()
	<-fdone
	return failed.Load()
}

// count reads the stream back: user records stored, user records whose partition key
// is not one the benchmark used, and Kinesis records.
func count(e *engine.Engine, stream string, pks []string) (stored, wrong, krecs int) {
	recs, err := e.Streams.Records(stream)
	if err != nil {
		fatal(err)
	}
	valid := make(map[string]bool, len(pks))
	for _, k := range pks {
		valid[k] = true
	}
	for _, r := range recs {
		krecs++
		urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: r.PartitionKey, Data: r.Data})
		if err != nil {
			fatal(err)
		}
		for _, u := range urs {
			stored++
			if !valid[u.PartitionKey] {
				wrong++
			}
		}
	}
	return
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
