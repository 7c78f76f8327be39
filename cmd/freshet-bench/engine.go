package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/freshet/freshet/internal/sdkhttp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/freshet/freshet/internal/engine"
)

func init() {
	register("engine", "PutRecords then GetRecords through one SDK client (engine or --endpoint)", runEngine)
}

type engineResult struct {
	Bench           string  `json:"bench"`
	Endpoint        string  `json:"endpoint"`
	Records         int64   `json:"records"`
	RecordBytes     int     `json:"record_bytes"`
	Batch           int     `json:"batch"`
	Concurrency     int     `json:"concurrency"`
	Shards          int     `json:"shards"`
	PutRecordsPerS  float64 `json:"put_records_per_s"`
	GetRecordsPerS  float64 `json:"get_records_per_s"`
	PutSeconds      float64 `json:"put_s"`
	GetSeconds      float64 `json:"get_s"`
	FailedEntries   int64   `json:"failed_entries"`
	RecordsRead     int64   `json:"records_read"`
	SDKRetries      int64   `json:"sdk_retries"`
	StoredByEngine  int64   `json:"stored_by_engine,omitempty"`
	CPUSeconds      float64 `json:"cpu_s"`
	PeakRSSMB       float64 `json:"peak_rss_mb"`
	UnsignedPayload bool    `json:"unsigned_payload"`
	SDKBody         bool    `json:"sdk_body"`
}

func runEngine(args []string) error {
	fs := flag.NewFlagSet("engine", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "Kinesis endpoint (e.g. a kinesalite URL); empty starts an in-process engine with limits off")
	records := fs.Int64("records", 500000, "records to put")
	size := fs.Int("size", 100, "record data bytes")
	batch := fs.Int("batch", 500, "records per PutRecords call")
	conc := fs.Int("concurrency", 8, "concurrent PutRecords calls sharing the one client")
	shards := fs.Int("shards", 8, "shards of the benchmark stream")
	stream := fs.String("stream", "", "stream name (default: a fresh name)")
	unsigned := fs.Bool("unsigned-payload", true, "sign requests with UNSIGNED-PAYLOAD instead of hashing each body")
	sdkBody := fs.Bool("sdk-body", false, "send request bodies as the SDK builds them; by default they offer only Read, which avoids the SDK's closed-body race (net/http closes the connection after the SDK closes a body it still checks for extra bytes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *batch < 1 || *batch > 500 || *size < 1 || *records < 1 || *conc < 1 || *shards < 1 {
		return errors.New("invalid flags")
	}
	ctx := context.Background()
	res := engineResult{Bench: "engine", Records: *records, RecordBytes: *size, Batch: *batch, Concurrency: *conc, Shards: *shards, UnsignedPayload: *unsigned, SDKBody: *sdkBody}
	var eng *engine.Engine
	if *endpoint == "" {
		e, err := engine.Start(engine.Config{})
		if err != nil {
			return err
		}
		defer e.Close()
		eng = e
		*endpoint = e.URL()
		res.Endpoint = "in-process"
	} else {
		res.Endpoint = *endpoint
	}
	var retries atomic.Int64
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("freshet", "freshet", ""),
		BaseEndpoint: aws.String(*endpoint),
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 256
			t.MaxIdleConnsPerHost = 256
		}),
	}
	if !*sdkBody {
		cfg.HTTPClient = sdkhttp.ReadOnlyBodies(cfg.HTTPClient)
	}
	k := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if *unsigned {
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		}
	})
	name := *stream
	if name == "" {
		name = "freshet-bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(*shards))}); err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	if err := waitActive(ctx, k, name); err != nil {
		return err
	}

	data := make([]byte, *size)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, *conc)
	start := time.Now()
	for g := 0; g < *conc; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			entries := make([]types.PutRecordsRequestEntry, 0, *batch)
			for {
				first := next.Add(int64(*batch)) - int64(*batch)
				if first >= *records {
					return
				}
				n := min(int64(*batch), *records-first)
				entries = entries[:0]
				for i := int64(0); i < n; i++ {
					entries = append(entries, types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String("pk-" + strconv.FormatInt(first+i, 10))})
				}
				for len(entries) > 0 {
					out, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(name), Records: entries})
					if err != nil {
						errc <- err
						return
					}
					retries.Add(int64(attempts(out.ResultMetadata) - 1))
					if out.FailedRecordCount == nil || *out.FailedRecordCount == 0 {
						break
					}
					failed.Add(int64(*out.FailedRecordCount))
					var again []types.PutRecordsRequestEntry
					for i, r := range out.Records {
						if r.ErrorCode != nil {
							again = append(again, entries[i])
						}
					}
					entries = again
				}
			}
		}(g)
	}
	wg.Wait()
	res.PutSeconds = time.Since(start).Seconds()
	select {
	case err := <-errc:
		return fmt.Errorf("put: %w", err)
	default:
	}
	res.PutRecordsPerS = float64(*records) / res.PutSeconds
	res.FailedEntries = failed.Load()

	start = time.Now()
	read, err := drain(ctx, k, name)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	res.GetSeconds = time.Since(start).Seconds()
	res.RecordsRead = read
	res.GetRecordsPerS = float64(read) / res.GetSeconds
	res.SDKRetries = retries.Load()
	if eng != nil {
		res.StoredByEngine = eng.Streams.Counters().RecordsIn
	}
	res.CPUSeconds = cpuSeconds()
	res.PeakRSSMB = peakRSSMB()
	_, _ = k.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	return json.NewEncoder(os.Stdout).Encode(res)
}

// attempts returns how many HTTP attempts the SDK made for one call.
func attempts(md middleware.Metadata) int {
	if r, ok := retry.GetAttemptResults(md); ok && len(r.Results) > 0 {
		return len(r.Results)
	}
	return 1
}

func waitActive(ctx context.Context, k *kinesis.Client, name string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		out, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("stream %s not ACTIVE after a minute", name)
}

// drain reads every shard from TRIM_HORIZON to its end, shards in parallel, and returns
// the records read.
func drain(ctx context.Context, k *kinesis.Client, name string) (int64, error) {
	ls, err := k.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		return 0, err
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, len(ls.Shards))
	for _, sh := range ls.Shards {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: aws.String(id), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				errc <- err
				return
			}
			iter := it.ShardIterator
			for iter != nil {
				out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
				if err != nil {
					errc <- err
					return
				}
				total.Add(int64(len(out.Records)))
				if len(out.Records) == 0 && out.MillisBehindLatest != nil && *out.MillisBehindLatest == 0 {
					return
				}
				iter = out.NextShardIterator
			}
		}(*sh.ShardId)
	}
	wg.Wait()
	select {
	case err := <-errc:
		return total.Load(), err
	default:
	}
	return total.Load(), nil
}
