package freshettest

import (
	"time"

	"github.com/freshet/freshet/internal/engine/metrics"
)

// Dimension is one name/value pair of a metric's identity.
type Dimension struct {
	// Name is the dimension name, e.g. "ShardId".
	Name string
	// Value is the dimension value.
	Value string
}

// StatisticSet is a pre-aggregated set of samples.
type StatisticSet struct {
	// SampleCount is the number of samples.
	SampleCount float64
	// Sum is the sum of the samples.
	Sum float64
	// Minimum and Maximum are the smallest and largest samples.
	Minimum, Maximum float64
}

// Datum is one metric datum as a client published it with PutMetricData.
type Datum struct {
	// Namespace and MetricName identify the metric, with Dimensions in the order sent.
	Namespace, MetricName string
	Dimensions            []Dimension
	// Timestamp is the datum's timestamp; the receive time when none was sent.
	Timestamp time.Time
	// Unit is the unit, "None" when none was sent.
	Unit string
	// Stats folds the datum's value, values and counts, or statistic set into one set.
	Stats StatisticSet
	// Received is when the engine accepted the datum.
	Received time.Time
}

// MetricData returns the datums published for one metric (all dimensions), oldest
// first.
func (e *Engine) MetricData(namespace, metricName string) []Datum {
	return datums(e.e.Metrics.Datums(namespace, metricName))
}

// AllMetricData returns every published datum, oldest first.
func (e *Engine) AllMetricData() []Datum { return datums(e.e.Metrics.Snapshot()) }

// MetricStats folds every datum of one metric (all dimensions) into one statistic set.
func (e *Engine) MetricStats(namespace, metricName string) StatisticSet {
	return statisticSet(e.e.Metrics.Stats(namespace, metricName))
}

func statisticSet(s metrics.StatisticSet) StatisticSet {
	return StatisticSet{SampleCount: s.SampleCount, Sum: s.Sum, Minimum: s.Minimum, Maximum: s.Maximum}
}

func datums(in []metrics.Datum) []Datum {
	out := make([]Datum, len(in))
	for i, d := range in {
		dims := make([]Dimension, len(d.Dimensions))
		for j, x := range d.Dimensions {
			dims[j] = Dimension{Name: x.Name, Value: x.Value}
		}
		out[i] = Datum{Namespace: d.Namespace, MetricName: d.MetricName, Dimensions: dims, Timestamp: d.Timestamp,
			Unit: d.Unit, Stats: statisticSet(d.Stats()), Received: d.Received}
	}
	return out
}
