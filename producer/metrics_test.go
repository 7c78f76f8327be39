package producer

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/metrics"
)

// Where each metric is kept at most: shard-level metrics concern Kinesis records of one
// shard; the others concern Put calls or whole PutRecords requests.
var streamLevelMetrics = map[string]bool{
	MetricUserRecordsReceived: true, MetricUserRecordsPending: true,
	MetricRequestTime: true, MetricKinesisRecordsPerPutRecordsRequest: true,
}

var allMetricNames = []string{
	MetricUserRecordsReceived, MetricUserRecordsPending, MetricUserRecordsPut, MetricUserRecordsDataPut,
	MetricKinesisRecordsPut, MetricKinesisRecordsDataPut, MetricErrorsByCode, MetricAllErrors,
	MetricRetriesPerRecord, MetricUserRecordExpired, MetricBufferingTime, MetricRequestTime,
	MetricUserRecordsPerKinesisRecord, MetricKinesisRecordsPerPutRecordsRequest,
}

// produceForMetrics puts n records over two shards of a fake, then the user record
// "doomed", which the fake throttles until it expires: every metric gets observations
// (errors, retries, one expiry). The n records are flushed first: in ordered mode an
// aggregating shard sends one Kinesis record a call, so the others of the doomed
// record's shard would otherwise wait behind it until a loaded machine let them expire
// too.
func produceForMetrics(t *testing.T, n int, opts ...Option) (*Producer, *fakeKinesis) {
	t.Helper()
	f := newFake(2)
	f.throttleIf = func(data []byte) bool { return bytes.Contains(data, []byte("never written")) }
	p := newTestProducer(t, f, append([]Option{WithRecordTTL(time.Second)}, opts...)...)
	ctx := context.Background()
	o := newOutcomes(n + 1)
	for i := 0; i < n; i++ {
		if err := p.Put(ctx, Record{PartitionKey: keyOf(i, 50), Data: recordData(i)}, o.cb(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Put(ctx, Record{PartitionKey: "doomed", Data: []byte("never written")}, o.cb(n)); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	failed := o.check(t, n+1)
	if len(failed) != 1 || o.res[n].Err == nil {
		t.Fatalf("%d failed, want only the doomed record", len(failed))
	}
	return p, f
}

// metricShape names a metric and the finest dimension it carries: "global", "stream"
// or "shard".
type metricShape struct{ name, level string }

func shapesOf(ms []Metric) map[metricShape]bool {
	out := map[metricShape]bool{}
	for _, m := range ms {
		level := "global"
		switch {
		case m.ShardID != "":
			level = "shard"
		case m.Stream != "":
			level = "stream"
		}
		out[metricShape{m.Name, level}] = true
	}
	return out
}

func expectedShapes(level MetricsLevel, gran MetricsGranularity) map[metricShape]bool {
	out := map[metricShape]bool{}
	for _, name := range allMetricNames {
		if level == MetricsNone || (level == MetricsSummary && !isSummaryMetric(name)) {
			continue
		}
		out[metricShape{name, "global"}] = true
		if gran >= GranularityStream {
			out[metricShape{name, "stream"}] = true
		}
		if gran >= GranularityShard && !streamLevelMetrics[name] {
			out[metricShape{name, "shard"}] = true
		}
	}
	return out
}

func sortedShapes(m map[metricShape]bool) []string {
	var out []string
	for s := range m {
		out = append(out, s.name+"@"+s.level)
	}
	sort.Strings(out)
	return out
}

// TestMetricsLevelsAndGranularity: at every level and granularity, exactly the metrics
// of the level appear, at the global level and at every finer level up to the
// granularity; the values agree across levels.
func TestMetricsLevelsAndGranularity(t *testing.T) {
	levels := map[MetricsLevel]string{MetricsNone: "none", MetricsSummary: "summary", MetricsDetailed: "detailed"}
	grans := map[MetricsGranularity]string{GranularityGlobal: "global", GranularityStream: "stream", GranularityShard: "shard"}
	for level := MetricsNone; level <= MetricsDetailed; level++ {
		for gran := GranularityGlobal; gran <= GranularityShard; gran++ {
			t.Run(levels[level]+"-"+grans[gran], func(t *testing.T) {
				const n = 400
				p, _ := produceForMetrics(t, n, WithMetrics(level, gran))
				ms := p.Metrics()
				got, want := shapesOf(ms), expectedShapes(level, gran)
				if fmt.Sprint(sortedShapes(got)) != fmt.Sprint(sortedShapes(want)) {
					t.Fatalf("metrics\n got %v\nwant %v", sortedShapes(got), sortedShapes(want))
				}
				if level == MetricsNone {
					return
				}
				sums := map[string]float64{}
				for _, m := range ms {
					if m.Name == MetricErrorsByCode && m.ErrorCode != "ProvisionedThroughputExceededException" {
						t.Fatalf("ErrorsByCode with code %q", m.ErrorCode)
					}
					if m.Stream != "" && m.Stream != testStream {
						t.Fatalf("metric %s has stream %q", m.Name, m.Stream)
					}
					level := "global"
					if m.ShardID != "" {
						level = "shard"
					} else if m.Stream != "" {
						level = "stream"
					}
					sums[m.Name+"@"+level] += m.Sum
				}
				// The global values are the sums of the finer ones.
				for _, name := range []string{MetricUserRecordsPut, MetricKinesisRecordsPut, MetricUserRecordExpired, MetricAllErrors} {
					g := sums[name+"@global"]
					if gran >= GranularityStream && sums[name+"@stream"] != g {
						t.Fatalf("%s: global %v, stream %v", name, g, sums[name+"@stream"])
					}
					if gran >= GranularityShard && sums[name+"@shard"] != g {
						t.Fatalf("%s: global %v, shards %v", name, g, sums[name+"@shard"])
					}
				}
				if got := sums[MetricUserRecordsPut+"@global"]; got != n {
					t.Fatalf("UserRecordsPut %v, want %d", got, n)
				}
				if got := sums[MetricUserRecordExpired+"@global"]; got != 1 {
					t.Fatalf("UserRecordExpired %v, want 1", got)
				}
				if got := sums[MetricUserRecordsReceived+"@global"]; got != n+1 {
					t.Fatalf("UserRecordsReceived %v, want %d", got, n+1)
				}
			})
		}
	}
}

// fakeCloudWatch records PutMetricData calls.
type fakeCloudWatch struct {
	mu    sync.Mutex
	calls []*cloudwatch.PutMetricDataInput
}

func (c *fakeCloudWatch) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, in)
	return &cloudwatch.PutMetricDataOutput{}, nil
}

// TestCloudWatchPublisherBatches: with shard granularity over 300 shards there are far
// more than 1,000 datums; the publisher sends them in calls of at most 1,000, in the
// namespace, with KPL names and the dimensions of their level.
func TestCloudWatchPublisherBatches(t *testing.T) {
	cw := &fakeCloudWatch{}
	f := newFake(300)
	p := newTestProducer(t, f, WithCloudWatch(cw, "FreshetTest", time.Hour), WithMetrics(MetricsDetailed, GranularityShard))
	n := 6000
	putAll(t, p, n, 3000)
	want := map[string]bool{}
	for _, m := range p.Metrics() {
		want[datumKey(m.Name, m.Stream, m.ShardID, m.ErrorCode)] = true
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if len(cw.calls) < 2 {
		t.Fatalf("%d PutMetricData calls for %d metrics", len(cw.calls), len(want))
	}
	got := map[string]bool{}
	var put float64
	for _, in := range cw.calls {
		if aws.ToString(in.Namespace) != "FreshetTest" {
			t.Fatalf("namespace %q", aws.ToString(in.Namespace))
		}
		if len(in.MetricData) == 0 || len(in.MetricData) > metrics.MaxDatumsPerCall {
			t.Fatalf("call with %d datums", len(in.MetricData))
		}
		for _, d := range in.MetricData {
			dims := map[string]string{}
			for _, dim := range d.Dimensions {
				dims[aws.ToString(dim.Name)] = aws.ToString(dim.Value)
			}
			for name := range dims {
				if name != "StreamName" && name != "ShardId" && name != "ErrorCode" {
					t.Fatalf("dimension %q", name)
				}
			}
			if dims["ShardId"] != "" && dims["StreamName"] != testStream {
				t.Fatalf("shard dimension without the stream: %v", dims)
			}
			if d.StatisticValues == nil || d.Timestamp == nil || d.Unit == "" {
				t.Fatalf("datum %s without statistics, timestamp or unit", aws.ToString(d.MetricName))
			}
			k := datumKey(aws.ToString(d.MetricName), dims["StreamName"], dims["ShardId"], dims["ErrorCode"])
			if got[k] {
				t.Fatalf("datum %s sent twice", k)
			}
			got[k] = true
			if aws.ToString(d.MetricName) == MetricUserRecordsPut && len(dims) == 0 {
				put += aws.ToFloat64(d.StatisticValues.Sum)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("published %d datums, the snapshot has %d metrics", len(got), len(want))
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("metric %s not published", k)
		}
	}
	if put != float64(n) {
		t.Fatalf("published UserRecordsPut %v, want %d", put, n)
	}
	t.Logf("%d datums in %d calls", len(got), len(cw.calls))
}

func datumKey(name, stream, shard, code string) string {
	return name + "|" + stream + "|" + shard + "|" + code
}

// TestCloudWatchPublisherOnEngine publishes to the engine's CloudWatch, which checks
// every call as the service does, and reads the datums back: names, dimensions per
// granularity, and the values.
func TestCloudWatchPublisherOnEngine(t *testing.T) {
	for _, gran := range []MetricsGranularity{GranularityGlobal, GranularityStream, GranularityShard} {
		t.Run(fmt.Sprint(gran), func(t *testing.T) {
			e := startEngine(t, streams.Config{}, 3)
			ns := fmt.Sprintf("Freshet/Test%d", gran)
			p := newEngineProducer(t, e, WithCloudWatch(enginetest.CloudWatch(e), ns, time.Hour), WithMetrics(MetricsDetailed, gran))
			n := 2000
			o := putAll(t, p, n, 100)
			if failed := o.check(t, n); len(failed) > 0 {
				t.Fatal(failed[0].Err)
			}
			if err := p.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			ds := e.Metrics.Datums(ns, MetricUserRecordsPut)
			sums := map[string]float64{}
			for _, d := range ds {
				var names []string
				for _, dim := range d.Dimensions {
					names = append(names, dim.Name)
					if dim.Name == "StreamName" && dim.Value != testStream {
						t.Fatalf("StreamName %q", dim.Value)
					}
				}
				sums[strings.Join(names, ",")] += d.Stats().Sum
			}
			want := map[string]float64{"": float64(n)}
			if gran >= GranularityStream {
				want["StreamName"] = float64(n)
			}
			if gran >= GranularityShard {
				want["StreamName,ShardId"] = float64(n)
			}
			if fmt.Sprint(sums) != fmt.Sprint(want) {
				t.Fatalf("UserRecordsPut by dimensions %v, want %v", sums, want)
			}
			for _, name := range allMetricNames {
				if name == MetricUserRecordExpired || name == MetricErrorsByCode || name == MetricAllErrors {
					continue // nothing failed
				}
				if len(e.Metrics.Datums(ns, name)) == 0 {
					t.Fatalf("no %s datum", name)
				}
			}
		})
	}
}

// recordOnly hides a Memory's RecordStat: a recorder that takes observations one by one.
type recordOnly struct{ m *metrics.Memory }

func (r recordOnly) Record(name string, unit metrics.Unit, v float64, dims ...metrics.Dimension) {
	r.m.Record(name, unit, v, dims...)
}

// TestMetricsRecorderGetsEveryObservation: a recorder given with WithMetricsRecorder
// sees exactly the series and statistics the producer keeps for Metrics, whether it
// takes a call's observations summarized (a StatRecorder) or one by one.
func TestMetricsRecorderGetsEveryObservation(t *testing.T) {
	for _, summarized := range []bool{true, false} {
		t.Run(fmt.Sprint("summarized=", summarized), func(t *testing.T) {
			mem := metrics.NewMemory()
			var rec metrics.Recorder = mem
			if !summarized {
				rec = recordOnly{mem}
			}
			p, _ := produceForMetrics(t, 300, WithMetrics(MetricsDetailed, GranularityShard), WithMetricsRecorder(rec))
			own := p.Metrics()
			theirs := mem.Series()
			if len(own) == 0 || len(own) != len(theirs) {
				t.Fatalf("producer keeps %d series, the recorder got %d", len(own), len(theirs))
			}
			for i, s := range theirs {
				m := own[i]
				if m.Name != s.Name || m.Stream != s.Dimension(metrics.DimStreamName) || m.ShardID != s.Dimension(metrics.DimShardID) ||
					m.ErrorCode != s.Dimension(metrics.DimErrorCode) || m.SampleCount != s.Stat.Count || m.Sum != s.Stat.Sum ||
					m.Min != s.Stat.Min || m.Max != s.Stat.Max {
					t.Fatalf("series %d: producer %+v, recorder %+v", i, m, s)
				}
			}
			for _, m := range own {
				if m.Name == MetricUserRecordsPut && m.Stream == "" && m.Sum != 300 {
					t.Fatalf("UserRecordsPut %+v, want a sum of 300", m)
				}
			}
		})
	}
}
