package otelfreshet

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelmetric "go.opentelemetry.io/otel/metric"

	"github.com/freshet/freshet/metrics"
)

// MeterOption configures a Meter.
type MeterOption func(*meterConfig) error

type meterConfig struct {
	provider otelmetric.MeterProvider
	gauges   map[string]bool
}

// WithMeterProvider sets the meter provider (otel.GetMeterProvider() by default).
func WithMeterProvider(mp otelmetric.MeterProvider) MeterOption {
	return func(c *meterConfig) error {
		if mp == nil {
			return fmt.Errorf("%w: nil meter provider", ErrInvalidOption)
		}
		c.provider = mp
		return nil
	}
}

// WithGauges records the named metrics as gauges (their last value) instead of
// histograms, in addition to the default gauges (DefaultGauges).
func WithGauges(names ...string) MeterOption {
	return func(c *meterConfig) error {
		for _, n := range names {
			if n == "" {
				return fmt.Errorf("%w: empty gauge name", ErrInvalidOption)
			}
			c.gauges[n] = true
		}
		return nil
	}
}

// DefaultGauges are the metrics whose observations are levels rather than amounts: how
// far a shard's reader is behind, the records a producer has pending, the leases a
// worker holds.
var DefaultGauges = []string{"MillisBehindLatest", "UserRecordsPending", "CurrentLeases"}

// Meter is a metrics.Recorder that records to an OpenTelemetry meter: each metric is a
// float64 histogram named as the KPL or KCL names it (a gauge for DefaultGauges and
// WithGauges), its unit the metric's ("1", "ms", "By"), its dimensions attributes.
// Instruments and attribute sets are created once per metric and dimension set.
type Meter struct {
	meter  otelmetric.Meter
	gauges map[string]bool

	mu     sync.RWMutex
	series map[string]*series
}

type series struct {
	hist  otelmetric.Float64Histogram
	gauge otelmetric.Float64Gauge
	attrs otelmetric.MeasurementOption
}

var _ metrics.Recorder = (*Meter)(nil)

// NewMeter returns a Meter. Bad options fail with an error wrapping ErrInvalidOption.
func NewMeter(opts ...MeterOption) (*Meter, error) {
	cfg := meterConfig{gauges: map[string]bool{}}
	for _, g := range DefaultGauges {
		cfg.gauges[g] = true
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.provider == nil {
		cfg.provider = otel.GetMeterProvider()
	}
	return &Meter{meter: cfg.provider.Meter(ScopeName), gauges: cfg.gauges, series: map[string]*series{}}, nil
}

func otelUnit(u metrics.Unit) string {
	switch u {
	case metrics.UnitMilliseconds:
		return "ms"
	case metrics.UnitBytes:
		return "By"
	}
	return "1"
}

// Record records one observation. An instrument the SDK refuses (an invalid name) is
// skipped, as OTel does for its own errors, reported through otel.Handle.
func (m *Meter) Record(name string, unit metrics.Unit, value float64, dims ...metrics.Dimension) {
	var buf [256]byte
	k := append(append(buf[:0], unit...), '/')
	k = metrics.AppendKey(k, name, dims...)
	m.mu.RLock()
	s := m.series[string(k)]
	m.mu.RUnlock()
	if s == nil {
		s = m.newSeries(string(k), name, unit, dims)
		if s == nil {
			return
		}
	}
	if s.gauge != nil {
		s.gauge.Record(context.Background(), value, s.attrs)
		return
	}
	s.hist.Record(context.Background(), value, s.attrs)
}

func (m *Meter) newSeries(key, name string, unit metrics.Unit, dims []metrics.Dimension) *series {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.series[key]; s != nil {
		return s
	}
	kvs := make([]attribute.KeyValue, len(dims))
	for i, d := range dims {
		kvs[i] = attribute.String(d.Name, d.Value)
	}
	s := &series{attrs: otelmetric.WithAttributeSet(attribute.NewSet(kvs...))}
	var err error
	if m.gauges[name] {
		s.gauge, err = m.meter.Float64Gauge(name, otelmetric.WithUnit(otelUnit(unit)))
	} else {
		s.hist, err = m.meter.Float64Histogram(name, otelmetric.WithUnit(otelUnit(unit)))
	}
	if err != nil {
		otel.Handle(err)
		return nil
	}
	m.series[key] = s
	return s
}
