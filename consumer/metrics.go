package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/internal/clock"
)

// Metric names, as the Kinesis Client Library names them.
const (
	MetricMillisBehindLatest = "MillisBehindLatest"
	MetricRecordsProcessed   = "RecordsProcessed"
	MetricDataBytesProcessed = "DataBytesProcessed"
	MetricProcessTime        = "RecordProcessor.processRecords.Time"
	MetricLeasesHeld         = "CurrentLeases"
	MetricLeaseTaken         = "TakenLeases"
	MetricLeaseLost          = "LostLeases"
	MetricLeaseRenewFailure  = "RenewLease.Failure"
	MetricGetRecordsTime     = "GetRecords.Time"
	MetricShardEnd           = "ShardEnd"
)

// Unit is a CloudWatch unit.
type Unit string

// Units used by the consumer.
const (
	UnitCount        Unit = "Count"
	UnitMilliseconds Unit = "Milliseconds"
	UnitBytes        Unit = "Bytes"
)

// Dimension qualifies a metric (for example ShardId or WorkerIdentifier).
type Dimension struct {
	Name  string
	Value string
}

// Metrics receives the consumer's measurements. Implementations must be safe for
// concurrent use and must not block; the consumer calls Record once per batch or lease
// event, never per record.
type Metrics interface {
	// Record adds one observation of metric name.
	Record(name string, unit Unit, value float64, dims ...Dimension)
}

// Stat summarizes the observations of one metric and dimension set.
type Stat struct {
	Unit  Unit
	Count int64
	Sum   float64
	Min   float64
	Max   float64
	Last  float64
}

func (s *Stat) add(unit Unit, v float64) {
	if s.Count == 0 || v < s.Min {
		s.Min = v
	}
	if s.Count == 0 || v > s.Max {
		s.Max = v
	}
	s.Unit = unit
	s.Count++
	s.Sum += v
	s.Last = v
}

func metricKey(name string, dims []Dimension) string {
	if len(dims) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	for _, d := range dims {
		b.WriteByte('|')
		b.WriteString(d.Name)
		b.WriteByte('=')
		b.WriteString(d.Value)
	}
	return b.String()
}

// MemoryMetrics keeps every metric in process, for tests, benchmarks and status pages.
type MemoryMetrics struct {
	mu    sync.Mutex
	stats map[string]*Stat
}

// NewMemoryMetrics returns an empty in-process metrics store.
func NewMemoryMetrics() *MemoryMetrics { return &MemoryMetrics{stats: make(map[string]*Stat)} }

// Record adds one observation.
func (m *MemoryMetrics) Record(name string, unit Unit, value float64, dims ...Dimension) {
	k := metricKey(name, dims)
	m.mu.Lock()
	s := m.stats[k]
	if s == nil {
		s = &Stat{}
		m.stats[k] = s
	}
	s.add(unit, value)
	m.mu.Unlock()
}

// Snapshot returns a copy of every metric, keyed by name followed by |Dim=value for each
// dimension.
func (m *MemoryMetrics) Snapshot() map[string]Stat {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Stat, len(m.stats))
	for k, s := range m.stats {
		out[k] = *s
	}
	return out
}

// Total returns the sum and count of metric name over all dimension sets.
func (m *MemoryMetrics) Total(name string) (sum float64, count int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.stats {
		if k == name || strings.HasPrefix(k, name+"|") {
			sum += s.Sum
			count += s.Count
		}
	}
	return sum, count
}

// PutMetricDataAPI is the part of *cloudwatch.Client the CloudWatch sink uses.
type PutMetricDataAPI interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// CloudWatchOption configures a CloudWatchMetrics.
type CloudWatchOption func(*cloudWatchConfig) error

type cloudWatchConfig struct {
	interval  time.Duration
	maxSeries int
	clock     clock.Clock
	logger    *zap.Logger
}

// WithFlushInterval sets how often statistics are sent (10 s by default).
func WithFlushInterval(d time.Duration) CloudWatchOption {
	return func(c *cloudWatchConfig) error {
		if d <= 0 {
			return fmt.Errorf("%w: flush interval %v", ErrInvalidOption, d)
		}
		c.interval = d
		return nil
	}
}

// WithMaxSeries bounds how many metric and dimension combinations are kept between
// flushes (10,000 by default); observations of further ones are dropped and counted.
func WithMaxSeries(n int) CloudWatchOption {
	return func(c *cloudWatchConfig) error {
		if n < 1 {
			return fmt.Errorf("%w: max series %d", ErrInvalidOption, n)
		}
		c.maxSeries = n
		return nil
	}
}

// WithCloudWatchLogger sets the logger for failed sends.
func WithCloudWatchLogger(l *zap.Logger) CloudWatchOption {
	return func(c *cloudWatchConfig) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		c.logger = l
		return nil
	}
}

// CloudWatchMetrics sends metrics to CloudWatch as statistic sets, batched: observations
// are summed per metric and dimensions and sent every flush interval with PutMetricData
// calls of at most 1,000 data points.
type CloudWatchMetrics struct {
	api       PutMetricDataAPI
	namespace string
	cfg       cloudWatchConfig

	mu      sync.Mutex
	series  map[string]*cwSeries
	dropped int64

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type cwSeries struct {
	name string
	dims []Dimension
	stat Stat
}

// maxDatumsPerCall is PutMetricData's limit of data points per call.
const maxDatumsPerCall = 1000

// NewCloudWatchMetrics returns a sink that sends to namespace through api and starts its
// flush loop; Close stops it.
func NewCloudWatchMetrics(api PutMetricDataAPI, namespace string, opts ...CloudWatchOption) (*CloudWatchMetrics, error) {
	if api == nil {
		return nil, fmt.Errorf("%w: nil CloudWatch client", ErrInvalidOption)
	}
	if namespace == "" {
		return nil, fmt.Errorf("%w: empty namespace", ErrInvalidOption)
	}
	cfg := cloudWatchConfig{interval: 10 * time.Second, maxSeries: 10000, clock: clock.Real, logger: zap.NewNop()}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	c := &CloudWatchMetrics{api: api, namespace: namespace, cfg: cfg, series: make(map[string]*cwSeries),
		stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c, nil
}

// Record adds one observation; it never blocks on the network.
func (c *CloudWatchMetrics) Record(name string, unit Unit, value float64, dims ...Dimension) {
	k := metricKey(name, dims)
	c.mu.Lock()
	s := c.series[k]
	if s == nil {
		if len(c.series) >= c.cfg.maxSeries {
			c.dropped++
			c.mu.Unlock()
			return
		}
		s = &cwSeries{name: name, dims: append([]Dimension(nil), dims...)}
		c.series[k] = s
	}
	s.stat.add(unit, value)
	c.mu.Unlock()
}

// Dropped returns how many observations were dropped because of WithMaxSeries.
func (c *CloudWatchMetrics) Dropped() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

func (c *CloudWatchMetrics) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.cfg.clock.After(c.cfg.interval):
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.interval)
			if err := c.Flush(ctx); err != nil {
				c.cfg.logger.Warn("consumer: sending metrics failed", zap.Error(err))
			}
			cancel()
		}
	}
}

// Flush sends everything recorded since the last flush. Statistics whose send failed are
// dropped (metrics are best effort), and the first error is returned.
func (c *CloudWatchMetrics) Flush(ctx context.Context) error {
	c.mu.Lock()
	series := c.series
	c.series = make(map[string]*cwSeries, len(series))
	c.mu.Unlock()
	if len(series) == 0 {
		return nil
	}
	keys := make([]string, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	now := c.cfg.clock.Now()
	var errs []error
	data := make([]cwtypes.MetricDatum, 0, min(len(keys), maxDatumsPerCall))
	send := func() {
		if len(data) == 0 {
			return
		}
		_, err := c.api.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(c.namespace), MetricData: data})
		if err != nil {
			errs = append(errs, err)
		}
		data = make([]cwtypes.MetricDatum, 0, cap(data))
	}
	for _, k := range keys {
		s := series[k]
		d := cwtypes.MetricDatum{
			MetricName: aws.String(s.name),
			Timestamp:  aws.Time(now),
			Unit:       cwtypes.StandardUnit(s.stat.Unit),
			StatisticValues: &cwtypes.StatisticSet{
				SampleCount: aws.Float64(float64(s.stat.Count)),
				Sum:         aws.Float64(s.stat.Sum),
				Minimum:     aws.Float64(s.stat.Min),
				Maximum:     aws.Float64(s.stat.Max),
			},
		}
		for _, dim := range s.dims {
			d.Dimensions = append(d.Dimensions, cwtypes.Dimension{Name: aws.String(dim.Name), Value: aws.String(dim.Value)})
		}
		data = append(data, d)
		if len(data) == maxDatumsPerCall {
			send()
		}
	}
	send()
	return errors.Join(errs...)
}

// Close stops the flush loop and sends what is left, bounded by ctx.
func (c *CloudWatchMetrics) Close(ctx context.Context) error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.Flush(ctx)
}

type nopMetrics struct{}

func (nopMetrics) Record(string, Unit, float64, ...Dimension) {}
