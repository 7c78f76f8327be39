package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/engine/sinkproc"
	"github.com/freshet/freshet/queue"
)

func init() {
	register("queue", "drain a queue of N records with the queue consumer; client CPU apart from the engine's", runQueue)
}

// queueResult is the JSON line of one queue consumer run. CPUS is this process's CPU
// during the drain (the consumer alone: the engine runs in a child process, its CPU is
// EngineCPUS).
type queueResult struct {
	Bench             string  `json:"bench"`
	Records           int     `json:"records"`
	Size              int     `json:"size"`
	Shards            int     `json:"shards"`
	Receivers         int     `json:"receivers"`
	Handlers          int     `json:"handlers"`
	Batch             bool    `json:"batch"`
	RecordsPerS       float64 `json:"records_per_s"`
	WallS             float64 `json:"wall_s"`
	CPUS              float64 `json:"cpu_s"`
	CPUMicrosPerRec   float64 `json:"cpu_us_per_record"`
	EngineCPUS        float64 `json:"engine_cpu_s"`
	EngineMicrosPerRe float64 `json:"engine_cpu_us_per_record"`
	Receives          int64   `json:"receives"`
	Acknowledged      int64   `json:"acknowledged"`
	Duplicates        int64   `json:"duplicates"`
	PeakRSSMB         float64 `json:"peak_rss_mb"`
}

// queueBench is one run's settings.
type queueBench struct {
	records, size, shards, receivers, handlers int
	batch                                      bool
	timeout                                    time.Duration
}

func runQueue(args []string) error {
	fs := flag.NewFlagSet("queue", flag.ContinueOnError)
	var q queueBench
	fs.IntVar(&q.records, "records", 200_000, "records put into the stream before the drain")
	fs.IntVar(&q.size, "size", 100, "bytes of data per record")
	fs.IntVar(&q.shards, "shards", 4, "shards of the on-demand stream the queue reads")
	fs.IntVar(&q.receivers, "receivers", 0, "queue.WithReceivers (0: the default)")
	fs.IntVar(&q.handlers, "handlers", 0, "queue.WithHandlers (0: the default)")
	fs.BoolVar(&q.batch, "batch", false, "RunBatch (a handler per receive) instead of Run")
	fs.DurationVar(&q.timeout, "timeout", 10*time.Minute, "give up when the drain takes longer")
	stopProfile, err := parseProfiled(fs, args)
	if err != nil {
		return err
	}
	defer stopProfile()
	if q.records < 1 || q.size < 8 || q.shards < 1 || q.receivers < 0 || q.handlers < 0 {
		return errors.New("queue: -records and -shards must be positive, -size at least 8, -receivers and -handlers not negative")
	}
	sink, err := sinkproc.Start(sinkproc.Config{OnDemandShards: q.shards})
	if err != nil {
		return err
	}
	defer func() { _ = sink.Close() }()
	r, err := q.run(context.Background(), sink)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// run fills an on-demand stream (queues read only those) in the child engine, whose
// Config.OnDemandShards must be q.shards, creates a queue on it and drains the queue,
// counting every record's deliveries by the index written in its data, and deletes
// the queue and the stream again.
func (q queueBench) run(ctx context.Context, sink *sinkproc.Sink) (_ queueResult, err error) {
	const stream = "freshet-bench-queue"
	if err := sink.CreateOnDemandStream(stream); err != nil {
		return queueResult{}, err
	}
	var queueARN *string
	defer func() {
		if queueARN != nil {
			_, derr := kinesis.NewFromConfig(sink.AWSConfig()).DeleteQueue(ctx, &kinesis.DeleteQueueInput{QueueARN: queueARN})
			err = errors.Join(err, derr)
		}
		err = errors.Join(err, sink.DeleteStream(stream))
	}()
	kin := kinesis.NewFromConfig(sink.AWSConfig())
	desc, err := kin.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		return queueResult{}, err
	}
	sarn := desc.StreamDescriptionSummary.StreamARN
	if err := fillStream(ctx, kin, sarn, q.records, q.size); err != nil {
		return queueResult{}, err
	}
	out, err := kin.CreateQueue(ctx, &kinesis.CreateQueueInput{QueueName: aws.String("freshet-bench"),
		StreamConfigurationList: []types.QueueStreamConfiguration{{StreamARN: sarn,
			StartingPosition: &types.QueueStartingPosition{Type: types.QueueStartingPositionTypeTrimHorizon}}}})
	if err != nil {
		return queueResult{}, fmt.Errorf("create queue: %w", err)
	}
	queueARN = out.QueueDescription.QueueARN
	var opts []queue.Option
	if q.receivers > 0 {
		opts = append(opts, queue.WithReceivers(q.receivers))
	}
	if q.handlers > 0 {
		opts = append(opts, queue.WithHandlers(q.handlers))
	}
	c, err := queue.New(kin, *queueARN, opts...)
	if err != nil {
		return queueResult{}, err
	}

	var mu sync.Mutex
	seen := make([]uint8, q.records)
	var dups int64
	note := func(rec *queue.Record) error {
		i, err := strconv.Atoi(string(trimPad(rec.Data)))
		if err != nil || i < 0 || i >= q.records {
			return fmt.Errorf("record %q is not one the benchmark wrote", rec.Data)
		}
		mu.Lock()
		if seen[i] > 0 {
			dups++
		}
		seen[i]++
		mu.Unlock()
		return nil
	}

	engine0, err := sink.CPUSeconds()
	if err != nil {
		return queueResult{}, err
	}
	cpu0, start := cpuSeconds(), time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		if q.batch {
			done <- c.RunBatch(runCtx, func(_ context.Context, recs []*queue.Record) []error {
				errs := make([]error, len(recs))
				for i, rec := range recs {
					errs[i] = note(rec)
				}
				return errs
			})
			return
		}
		done <- c.Run(runCtx, func(_ context.Context, rec *queue.Record) error { return note(rec) })
	}()
	deadline := time.Now().Add(q.timeout)
	for c.Stats().Acknowledged < int64(q.records) {
		if time.Now().After(deadline) {
			cancel()
			<-done
			return queueResult{}, fmt.Errorf("queue: %d of %d records acknowledged after %v", c.Stats().Acknowledged, q.records, q.timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	wall, cpu := time.Since(start), cpuSeconds()-cpu0
	engine1, err := sink.CPUSeconds()
	cancel()
	if runErr := <-done; runErr != nil {
		return queueResult{}, runErr
	}
	if err != nil {
		return queueResult{}, err
	}
	st := c.Stats()
	if st.Failed > 0 {
		return queueResult{}, fmt.Errorf("queue: %d records failed in the handler", st.Failed)
	}
	for i, n := range seen {
		if n == 0 {
			return queueResult{}, fmt.Errorf("queue: record %d was acknowledged but never handled", i)
		}
	}
	n := float64(q.records)
	return queueResult{
		Bench: "queue", Records: q.records, Size: q.size, Shards: q.shards,
		Receivers: q.receivers, Handlers: q.handlers, Batch: q.batch,
		RecordsPerS: n / wall.Seconds(), WallS: wall.Seconds(),
		CPUS: cpu, CPUMicrosPerRec: cpu / n * 1e6,
		EngineCPUS: engine1 - engine0, EngineMicrosPerRe: (engine1 - engine0) / n * 1e6,
		Receives: st.Receives, Acknowledged: st.Acknowledged, Duplicates: dups,
		PeakRSSMB: peakRSSMB(),
	}, nil
}

// fillStream puts records 0..n-1, each its decimal index padded with spaces to size
// bytes, over 100 partition keys.
func fillStream(ctx context.Context, kin *kinesis.Client, streamARN *string, n, size int) error {
	entries := make([]types.PutRecordsRequestEntry, 0, 500)
	for i := 0; i < n; i++ {
		data := make([]byte, size)
		for j := range data {
			data[j] = ' '
		}
		copy(data, strconv.Itoa(i))
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("k" + strconv.Itoa(i%100)), Data: data})
		if len(entries) < 500 && i < n-1 {
			continue
		}
		for len(entries) > 0 {
			out, err := kin.PutRecords(ctx, &kinesis.PutRecordsInput{StreamARN: streamARN, Records: entries})
			if err != nil {
				return fmt.Errorf("fill: %w", err)
			}
			var again []types.PutRecordsRequestEntry
			for k, e := range out.Records {
				if e.ErrorCode != nil {
					again = append(again, entries[k])
				}
			}
			entries = append(entries[:0], again...)
		}
	}
	return nil
}

// trimPad drops the spaces fillStream padded a record's index with.
func trimPad(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}
