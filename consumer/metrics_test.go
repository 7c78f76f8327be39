package consumer

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
)

type fakeCloudWatch struct {
	mu    sync.Mutex
	calls []*cloudwatch.PutMetricDataInput
	err   error
}

func (f *fakeCloudWatch) PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in)
	return &cloudwatch.PutMetricDataOutput{}, f.err
}

func TestMemoryMetrics(t *testing.T) {
	m := NewMemoryMetrics()
	m.Record(MetricRecordsProcessed, UnitCount, 10, Dimension{"ShardId", "a"})
	m.Record(MetricRecordsProcessed, UnitCount, 5, Dimension{"ShardId", "a"})
	m.Record(MetricRecordsProcessed, UnitCount, 7, Dimension{"ShardId", "b"})
	snap := m.Snapshot()
	a := snap["RecordsProcessed|ShardId=a"]
	if a.Count != 2 || a.Sum != 15 || a.Min != 5 || a.Max != 10 || a.Last != 5 {
		t.Fatalf("stat %+v", a)
	}
	if sum, n := m.Total(MetricRecordsProcessed); sum != 22 || n != 3 {
		t.Fatalf("total %v/%d", sum, n)
	}
}

func TestCloudWatchMetricsBatches(t *testing.T) {
	api := &fakeCloudWatch{}
	cw, err := NewCloudWatchMetrics(api, "app", WithFlushInterval(time.Hour), WithMaxSeries(1500))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1200; i++ {
		cw.Record(MetricRecordsProcessed, UnitCount, 1, Dimension{"ShardId", strconv.Itoa(i)})
		cw.Record(MetricRecordsProcessed, UnitCount, 3, Dimension{"ShardId", strconv.Itoa(i)})
	}
	for i := 0; i < 400; i++ {
		cw.Record(MetricDataBytesProcessed, UnitBytes, 1, Dimension{"ShardId", strconv.Itoa(i)})
	}
	if got := cw.Dropped(); got != 100 {
		t.Fatalf("dropped %d, want 100 over the series limit", got)
	}
	if err := cw.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(api.calls) != 2 || len(api.calls[0].MetricData) != 1000 || len(api.calls[1].MetricData) != 500 {
		t.Fatalf("%d calls", len(api.calls))
	}
	for _, d := range api.calls[0].MetricData {
		if aws.ToString(d.MetricName) == MetricRecordsProcessed {
			s := d.StatisticValues
			if *s.SampleCount != 2 || *s.Sum != 4 || *s.Minimum != 1 || *s.Maximum != 3 {
				t.Fatalf("statistics %+v", *s)
			}
			if aws.ToString(api.calls[0].Namespace) != "app" || len(d.Dimensions) != 1 {
				t.Fatalf("datum %+v", d)
			}
			return
		}
	}
	t.Fatal("no RecordsProcessed datum")
}

func TestCloudWatchMetricsErrors(t *testing.T) {
	if _, err := NewCloudWatchMetrics(nil, "x"); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("nil client: %v", err)
	}
	if _, err := NewCloudWatchMetrics(&fakeCloudWatch{}, ""); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("empty namespace: %v", err)
	}
	api := &fakeCloudWatch{err: errors.New("boom")}
	cw, err := NewCloudWatchMetrics(api, "x", WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cw.Record("m", UnitCount, 1)
	if err := cw.Close(context.Background()); err == nil {
		t.Fatal("send error not reported")
	}
}
