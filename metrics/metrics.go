package metrics

import (
	"errors"
	"sort"
	"strings"
	"sync"
)

// ErrInvalidOption is wrapped by every error a constructor of this package returns for a
// bad argument or option.
var ErrInvalidOption = errors.New("metrics: invalid option")

// Unit is a CloudWatch unit.
type Unit string

// Units the producer and the consumer use.
const (
	UnitCount        Unit = "Count"
	UnitMilliseconds Unit = "Milliseconds"
	UnitBytes        Unit = "Bytes"
)

// Dimension names the producer and the consumer use.
const (
	DimStreamName       = "StreamName"
	DimShardID          = "ShardId"
	DimErrorCode        = "ErrorCode"
	DimStreamID         = "StreamId"
	DimWorkerIdentifier = "WorkerIdentifier"
)

// Dimension qualifies a metric (for example ShardId or WorkerIdentifier).
type Dimension struct {
	// Name is the dimension's name, for example "ShardId".
	Name string
	// Value is the dimension's value, for example "shardId-000000000000".
	Value string
}

// Recorder receives measurements. Implementations must be safe for concurrent use and
// must not block: the producer and the consumer call Record on their own goroutines,
// once per PutRecords call, Kinesis record, batch or lease event, never per user record.
// The dims slice belongs to the caller; an implementation that keeps it must copy it.
type Recorder interface {
	// Record adds one observation of value to metric name at the dimensions dims.
	Record(name string, unit Unit, value float64, dims ...Dimension)
}

// Stat summarizes the observations of one metric at one dimension set.
type Stat struct {
	// Unit is the unit of the last observation.
	Unit Unit
	// Count is the number of observations (CloudWatch's SampleCount).
	Count int64
	// Sum, Min and Max summarize the observed values.
	Sum, Min, Max float64
	// Last is the most recent value.
	Last float64
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

// Series is one metric at one dimension set with its statistics.
type Series struct {
	// Name is the metric's name.
	Name string
	// Dimensions are the series' dimensions, in the order they were recorded with.
	Dimensions []Dimension
	// Stat summarizes the observations.
	Stat Stat
}

// Dimension returns the value of the dimension called name, or "" when the series has
// none of that name.
func (s Series) Dimension(name string) string {
	for _, d := range s.Dimensions {
		if d.Name == name {
			return d.Value
		}
	}
	return ""
}

// Key returns the series' key: its name followed by |Name=Value for each dimension,
// the key of Memory.Snapshot.
func Key(name string, dims ...Dimension) string {
	return string(AppendKey(nil, name, dims...))
}

// AppendKey appends Key(name, dims...) to b, for a Recorder that looks its series up
// without allocating.
func AppendKey(b []byte, name string, dims ...Dimension) []byte {
	b = append(b, name...)
	for _, d := range dims {
		b = append(b, '|')
		b = append(b, d.Name...)
		b = append(b, '=')
		b = append(b, d.Value...)
	}
	return b
}

// table is a bounded map of series, the state both Memory and CloudWatch keep. Its
// methods are not locked: the owner holds its own lock.
type table struct {
	series    map[string]*Series
	maxSeries int // 0: unbounded
	dropped   int64
}

func newTable(maxSeries int) table {
	return table{series: make(map[string]*Series), maxSeries: maxSeries}
}

// add records one observation; a new series beyond maxSeries is dropped and counted.
// Looking a series up does not allocate; only a new series does.
func (t *table) add(name string, unit Unit, v float64, dims []Dimension) {
	var buf [256]byte
	k := AppendKey(buf[:0], name, dims...)
	s := t.series[string(k)]
	if s == nil {
		if t.maxSeries > 0 && len(t.series) >= t.maxSeries {
			t.dropped++
			return
		}
		s = &Series{Name: name, Dimensions: append([]Dimension(nil), dims...)}
		t.series[string(k)] = s
	}
	s.Stat.add(unit, v)
}

// sorted returns copies of the series in key order.
func (t *table) sorted() []Series {
	keys := make([]string, 0, len(t.series))
	for k := range t.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Series, len(keys))
	for i, k := range keys {
		out[i] = *t.series[k]
	}
	return out
}

// Memory keeps every series in process, for tests, benchmarks, tools and status pages.
// It is unbounded: use it where the set of shards and dimensions is known to be small.
type Memory struct {
	mu sync.Mutex
	t  table
}

// NewMemory returns an empty in-process Recorder.
func NewMemory() *Memory { return &Memory{t: newTable(0)} }

// Record adds one observation.
func (m *Memory) Record(name string, unit Unit, value float64, dims ...Dimension) {
	m.mu.Lock()
	m.t.add(name, unit, value, dims)
	m.mu.Unlock()
}

// Snapshot returns a copy of every series' statistics, keyed by Key(name, dims...).
func (m *Memory) Snapshot() map[string]Stat {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Stat, len(m.t.series))
	for k, s := range m.t.series {
		out[k] = s.Stat
	}
	return out
}

// Series returns a copy of every series, sorted by key.
func (m *Memory) Series() []Series {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t.sorted()
}

// Total returns the sum and the observation count of metric name over all its
// dimension sets.
func (m *Memory) Total(name string) (sum float64, count int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.t.series {
		if k == name || strings.HasPrefix(k, name+"|") {
			sum += s.Stat.Sum
			count += s.Stat.Count
		}
	}
	return sum, count
}

// Multi returns a Recorder that records every observation to each of rs in turn (nil
// entries are skipped). With no recorder left it returns nil.
func Multi(rs ...Recorder) Recorder {
	var out multi
	for _, r := range rs {
		if r != nil {
			out = append(out, r)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

type multi []Recorder

func (m multi) Record(name string, unit Unit, value float64, dims ...Dimension) {
	for _, r := range m {
		r.Record(name, unit, value, dims...)
	}
}
