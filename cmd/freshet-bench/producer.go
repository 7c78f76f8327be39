package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/trace"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/sinkproc"
	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/producer"
)

func init() {
	register("producer", "put N records through the producer and report throughput and CPU", runProducer)
}

// producerResult is the JSON line the producer benchmark prints.
type producerResult struct {
	Records           int              `json:"records"`
	Size              int              `json:"size"`
	Shards            int              `json:"shards"`
	Aggregate         bool             `json:"aggregate"`
	Compress          string           `json:"compress"`
	Ordered           bool             `json:"ordered"`
	Limits            bool             `json:"limits"`
	CBOR              bool             `json:"cbor"`
	UserRecordsPerS   float64          `json:"user_records_per_s"`
	MBPerS            float64          `json:"mb_per_s"`
	WallS             float64          `json:"wall_s"`
	CPUS              float64          `json:"cpu_s"`
	CPUSPerMillion    float64          `json:"cpu_s_per_million"`
	PeakRSSMB         float64          `json:"peak_rss_mb"`
	PutRecordsCalls   int64            `json:"put_records_calls"`
	KinesisRecords    int64            `json:"kinesis_records"`
	Failed            int64            `json:"failed"`
	PeakBufferedMB    float64          `json:"peak_buffered_mb"`
	ByteLimitUsedPct  float64          `json:"byte_limit_used_pct,omitempty"`
	StoredUserRecords int64            `json:"stored_user_records,omitempty"`
	Sink              string           `json:"sink"`
	ThrottleRate      float64          `json:"throttle_rate,omitempty"`
	EngineCPUS        float64          `json:"engine_cpu_s,omitempty"`
	Check             *sinkproc.Check  `json:"check,omitempty"`
	Errors            map[string]int64 `json:"errors,omitempty"`
}

func runProducer(args []string) error {
	fs := flag.NewFlagSet("producer", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "Kinesis endpoint URL; empty starts the bundled engine (see -sink)")
	sink := fs.String("sink", "inproc", "bundled engine: inproc (in this process) or process (a child process, so cpu_s is the client's alone; -verify then also counts duplicates, reordered records and wrong keys)")
	throttleRate := fs.Float64("throttle-rate", 0, "bundled engine: fraction of PutRecords entries throttled at random, on shards far below their limits")
	stream := fs.String("stream", "freshet-bench", "stream name (created if missing)")
	shards := fs.Int("shards", 8, "shards of the stream when it is created")
	records := fs.Int("records", 1000000, "user records to put")
	size := fs.Int("size", 100, "bytes of data per record")
	keys := fs.Int("keys", 1000, "distinct partition keys")
	aggregate := fs.Bool("aggregate", true, "KPL aggregation")
	compress := fs.String("compress", "none", "aggregate compression: none, zstd, snappy or gzip")
	ordered := fs.Bool("ordered", true, "keep per-key order (the producer's default; false trades it away)")
	limits := fs.Bool("limits", false, "bundled engine only: per-shard limits on (1 MiB/s, 1,000 records/s)")
	keyOrder := fs.Bool("order-check", true, "stamp each record's data with its key and rank (needs -size >= 16), so -verify can count reordered records")
	linger := fs.Duration("linger", 100*time.Millisecond, "linger")
	inFlight := fs.Int("in-flight", 16, "PutRecords calls in flight")
	aggBytes := fs.Int("agg-bytes", aggregation.DefaultMaxBytes, "maximum aggregate size")
	maxBufMB := fs.Int("max-buffered-mb", 64, "producer memory bound (bytes of buffered records)")
	useCBOR := fs.Bool("cbor", true, "send PutRecords in the CBOR protocol (raw blobs, no base64)")
	direct := fs.Bool("direct", true, "send PutRecords through the producer's direct signed path (WithDirectPutRecords, the producer's default); false sends them through the SDK's operation stack")
	verify := fs.Bool("verify", false, "bundled engine only: read the stream back and count user records")
	traceFile := fs.String("trace", "", "write an execution trace to this file")
	stopProfile, err := parseProfiled(fs, args)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	codec := map[string]aggregation.Codec{"none": aggregation.CodecNone, "zstd": aggregation.CodecZstd, "snappy": aggregation.CodecSnappy, "gzip": aggregation.CodecGzip}
	c, ok := codec[*compress]
	if !ok {
		return fmt.Errorf("unknown --compress %q", *compress)
	}

	ctx := context.Background()
	var client *kinesis.Client
	var eng *engine.Engine
	var child *sinkproc.Sink
	switch {
	case *endpoint == "" && *sink == "process":
		var err error
		if child, err = sinkproc.Start(sinkproc.Config{Limits: *limits, ThrottleRate: *throttleRate}); err != nil {
			return err
		}
		defer child.Close()
		if err := child.CreateStream(*stream, *shards); err != nil {
			return err
		}
		client = kinesis.NewFromConfig(child.AWSConfig())
	case *endpoint == "" && *sink == "inproc":
		cfg := engine.Config{Streams: streams.Config{Limits: *limits}}
		var err error
		if eng, err = engine.Start(cfg); err != nil {
			return err
		}
		defer eng.Close()
		if *throttleRate > 0 {
			if err := eng.Streams.SetEntryFaults(streams.EntryFaults{ThrottleRate: *throttleRate}); err != nil {
				return err
			}
		}
		if err := eng.Streams.CreateStream(*stream, *shards); err != nil {
			return err
		}
		client = kinesis.NewFromConfig(eng.AWSConfig())
	case *endpoint == "":
		return fmt.Errorf("unknown -sink %q (inproc or process)", *sink)
	default:
		client = kinesis.NewFromConfig(aws.Config{
			Region:       "us-east-1",
			Credentials:  credentials.NewStaticCredentialsProvider("freshet", "freshet", ""),
			BaseEndpoint: aws.String(*endpoint),
		})
		_, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: stream, ShardCount: aws.Int32(int32(*shards))})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create stream: %w", err)
		}
		for i := 0; i < 100; i++ {
			out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: stream})
			if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if *keyOrder && *size < sinkproc.StampSize {
		return fmt.Errorf("-order-check needs -size >= %d", sinkproc.StampSize)
	}

	opts := []producer.Option{
		producer.WithStream(*stream),
		producer.WithAggregation(*aggregate),
		producer.WithCompression(c),
		producer.WithOrdering(*ordered),
		producer.WithLinger(*linger),
		producer.WithMaxInFlight(*inFlight),
		producer.WithAggregationMaxBytes(*aggBytes),
		producer.WithMaxBuffered(1<<30, int64(*maxBufMB)<<20),
		producer.WithMetrics(producer.MetricsDetailed, producer.GranularityGlobal),
		producer.WithCBOR(*useCBOR),
		producer.WithDirectPutRecords(*direct),
		producer.WithRecordTTL(10 * time.Minute),
	}
	p, err := producer.New(client, opts...)
	if err != nil {
		return err
	}
	partitionKeys := make([]string, *keys)
	for i := range partitionKeys {
		partitionKeys[i] = sinkproc.Key(i)
	}
	data := make([]byte, *size)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	var failed atomic.Int64
	var firstErr atomic.Value
	done := func(r producer.Result) {
		if r.Err != nil {
			if failed.Add(1) == 1 {
				firstErr.Store(r.Err)
			}
		}
	}
	var peakBuf atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if b := p.BufferedBytes(); b > peakBuf.Load() {
				peakBuf.Store(b)
			}
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()

	var engineCPU0 float64
	if child != nil {
		if engineCPU0, err = child.CPUSeconds(); err != nil {
			return err
		}
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	for i := 0; i < *records; i++ {
		d := data
		if *keyOrder {
			// Each record its own data, as a user's records are, stamped for -verify.
			d = make([]byte, *size)
			copy(d[sinkproc.StampSize:], data)
			sinkproc.Stamp(d, i%len(partitionKeys), i/len(partitionKeys))
		}
		if err := p.Put(ctx, producer.Record{PartitionKey: partitionKeys[i%len(partitionKeys)], Data: d}, done); err != nil {
			return fmt.Errorf("put %d: %w", i, err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	wall := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	var engineCPU float64
	if child != nil {
		c1, err := child.CPUSeconds()
		if err != nil {
			return err
		}
		engineCPU = c1 - engineCPU0
	}
	close(stop)
	<-sampled
	var calls, krecs int64
	errs := map[string]int64{}
	for _, m := range p.Metrics() {
		if m.Stream != "" || m.ShardID != "" {
			continue
		}
		switch m.Name {
		case producer.MetricErrorsByCode:
			errs[m.ErrorCode] += int64(m.Sum)
		case producer.MetricKinesisRecordsPut:
			krecs = int64(m.Sum)
		case producer.MetricRequestTime:
			calls = m.SampleCount
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		return err
	}
	res := producerResult{
		Records: *records, Size: *size, Shards: *shards, Aggregate: *aggregate, Compress: *compress, Ordered: *ordered, Limits: *limits, CBOR: *useCBOR,
		UserRecordsPerS: float64(*records) / wall,
		MBPerS:          float64(*records) * float64(*size) / wall / (1 << 20),
		WallS:           wall, CPUS: cpu, CPUSPerMillion: cpu / float64(*records) * 1e6,
		PeakRSSMB: peakRSSMB(), PutRecordsCalls: calls, KinesisRecords: krecs, Failed: failed.Load(),
		PeakBufferedMB: float64(peakBuf.Load()) / (1 << 20), Errors: errs,
		Sink: *sink, ThrottleRate: *throttleRate, EngineCPUS: engineCPU,
	}
	if *endpoint != "" {
		res.Sink = "endpoint"
	}
	if *limits {
		total := float64(*records) * float64(*size+len(partitionKeys[0]))
		res.ByteLimitUsedPct = 100 * total / wall / (float64(*shards) * (1 << 20))
	}
	if *verify && child != nil {
		c, err := child.Check(*stream)
		if err != nil {
			return err
		}
		res.Check, res.StoredUserRecords = &c, c.Stored
	}
	if *verify && eng != nil {
		recs, err := eng.Streams.Records(*stream)
		if err != nil {
			return err
		}
		for _, r := range recs {
			urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: r.PartitionKey, Data: r.Data})
			if err != nil {
				return err
			}
			res.StoredUserRecords += int64(len(urs))
		}
	}
	if e, ok := firstErr.Load().(error); ok {
		fmt.Fprintf(os.Stderr, "first failure: %v\n", e)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
