package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"go.uber.org/zap"
)

// PutMetricDataAPI is the part of *cloudwatch.Client the CloudWatch sink uses.
type PutMetricDataAPI interface {
	// PutMetricData publishes a batch of metric data.
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// MaxDatumsPerCall is CloudWatch's limit of metric data per PutMetricData call.
const MaxDatumsPerCall = 1000

// Defaults of the CloudWatch sink.
const (
	DefaultFlushInterval = 10 * time.Second
	DefaultMaxSeries     = 10000
)

// CloudWatchOption configures a CloudWatch sink.
type CloudWatchOption func(*cloudWatchConfig) error

type cloudWatchConfig struct {
	interval  time.Duration
	manual    bool
	maxSeries int
	logger    *zap.Logger
}

// WithFlushInterval sets how often the statistics are sent (10 s by default).
func WithFlushInterval(d time.Duration) CloudWatchOption {
	return func(c *cloudWatchConfig) error {
		if d <= 0 {
			return fmt.Errorf("%w: flush interval %v", ErrInvalidOption, d)
		}
		c.interval = d
		return nil
	}
}

// WithManualFlush starts no flush loop: the statistics are sent only by Flush and Close,
// for an owner that sends on its own schedule (the producer does, so that it can add its
// sampled gauges first).
func WithManualFlush() CloudWatchOption {
	return func(c *cloudWatchConfig) error { c.manual = true; return nil }
}

// WithMaxSeries bounds how many metric and dimension combinations are kept between
// flushes (10,000 by default); observations of further ones are dropped and counted
// (Dropped).
func WithMaxSeries(n int) CloudWatchOption {
	return func(c *cloudWatchConfig) error {
		if n < 1 {
			return fmt.Errorf("%w: max series %d", ErrInvalidOption, n)
		}
		c.maxSeries = n
		return nil
	}
}

// WithLogger sets the logger for failed sends of the flush loop (a no-op logger by
// default).
func WithLogger(l *zap.Logger) CloudWatchOption {
	return func(c *cloudWatchConfig) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		c.logger = l
		return nil
	}
}

// CloudWatch sends metrics to CloudWatch as statistic sets, batched: observations are
// summed per metric and dimension set and sent every flush interval in PutMetricData
// calls of at most MaxDatumsPerCall data. Record never blocks on the network.
type CloudWatch struct {
	api       PutMetricDataAPI
	namespace string
	cfg       cloudWatchConfig

	mu sync.Mutex
	t  table

	// sendMu keeps flushes in order, so one interval's data never overtakes another's.
	sendMu sync.Mutex

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewCloudWatch returns a sink that sends to namespace through api and, unless
// WithManualFlush is given, starts its flush loop; Close stops it. Bad arguments fail
// with an error wrapping ErrInvalidOption.
func NewCloudWatch(api PutMetricDataAPI, namespace string, opts ...CloudWatchOption) (*CloudWatch, error) {
	if api == nil {
		return nil, fmt.Errorf("%w: nil CloudWatch client", ErrInvalidOption)
	}
	if namespace == "" {
		return nil, fmt.Errorf("%w: empty namespace", ErrInvalidOption)
	}
	cfg := cloudWatchConfig{interval: DefaultFlushInterval, maxSeries: DefaultMaxSeries, logger: zap.NewNop()}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	c := &CloudWatch{api: api, namespace: namespace, cfg: cfg, t: newTable(cfg.maxSeries),
		stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.manual {
		close(c.done)
	} else {
		go c.loop()
	}
	return c, nil
}

// Record adds one observation.
func (c *CloudWatch) Record(name string, unit Unit, value float64, dims ...Dimension) {
	c.mu.Lock()
	c.t.add(name, unit, value, dims)
	c.mu.Unlock()
}

// RecordStat adds the observations s summarizes to the current interval.
func (c *CloudWatch) RecordStat(name string, s Stat, dims ...Dimension) {
	c.mu.Lock()
	c.t.addStat(name, s, dims)
	c.mu.Unlock()
}

// Dropped returns how many observations were dropped because of WithMaxSeries.
func (c *CloudWatch) Dropped() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t.dropped
}

func (c *CloudWatch) loop() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.interval)
			if err := c.Flush(ctx); err != nil {
				c.cfg.logger.Warn("metrics: sending to CloudWatch failed", zap.String("namespace", c.namespace), zap.Error(err))
			}
			cancel()
		}
	}
}

// Flush sends everything recorded since the last flush, timestamped now. Statistics
// whose send failed are dropped (metrics are best effort), and the errors are returned.
func (c *CloudWatch) Flush(ctx context.Context) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.mu.Lock()
	old := c.t
	c.t = newTable(c.cfg.maxSeries)
	c.t.dropped = old.dropped
	c.mu.Unlock()
	series := old.sorted()
	if len(series) == 0 {
		return nil
	}
	now := time.Now()
	var errs []error
	for len(series) > 0 {
		n := min(len(series), MaxDatumsPerCall)
		data := make([]cwtypes.MetricDatum, n)
		for i, s := range series[:n] {
			data[i] = datum(s, now)
		}
		if _, err := c.api.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(c.namespace), MetricData: data}); err != nil {
			errs = append(errs, err)
		}
		series = series[n:]
	}
	return errors.Join(errs...)
}

func datum(s Series, ts time.Time) cwtypes.MetricDatum {
	d := cwtypes.MetricDatum{
		MetricName: aws.String(s.Name),
		Timestamp:  aws.Time(ts),
		Unit:       cwtypes.StandardUnit(s.Stat.Unit),
		StatisticValues: &cwtypes.StatisticSet{
			SampleCount: aws.Float64(float64(s.Stat.Count)),
			Sum:         aws.Float64(s.Stat.Sum),
			Minimum:     aws.Float64(s.Stat.Min),
			Maximum:     aws.Float64(s.Stat.Max),
		},
	}
	if d.Unit == "" {
		d.Unit = cwtypes.StandardUnitNone
	}
	for _, dim := range s.Dimensions {
		d.Dimensions = append(d.Dimensions, cwtypes.Dimension{Name: aws.String(dim.Name), Value: aws.String(dim.Value)})
	}
	return d
}

// Close stops the flush loop and sends what is left, bounded by ctx. Calling it again
// sends whatever was recorded since.
func (c *CloudWatch) Close(ctx context.Context) error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.Flush(ctx)
}
