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

// Add adds one observation of v.
func (s *Stat) Add(unit Unit, v float64) {
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

// Merge adds the observations o summarizes; o's unit and last value become s's.
func (s *Stat) Merge(o Stat) {
	if o.Count == 0 {
		return
	}
	if s.Count == 0 || o.Min < s.Min {
		s.Min = o.Min
	}
	if s.Count == 0 || o.Max > s.Max {
		s.Max = o.Max
	}
	s.Unit = o.Unit
	s.Count += o.Count
	s.Sum += o.Sum
	s.Last = o.Last
}

// StatRecorder is a Recorder that also takes observations already summarized, the way
// CloudWatch takes a statistic set. The producer gathers the per-record metrics of a
// PutRecords call in a Stat per metric and shard and hands each over once when every
// Recorder it was given is a StatRecorder; otherwise it records them one by one.
type StatRecorder interface {
	Recorder
	// RecordStat adds the observations s summarizes to metric name at dims; a Stat with
	// Count 0 adds nothing.
	RecordStat(name string, s Stat, dims ...Dimension)
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
	if s := t.get(name, dims); s != nil {
		s.Stat.Add(unit, v)
	}
}

// addStat records the observations st summarizes, as add does one.
func (t *table) addStat(name string, st Stat, dims []Dimension) {
	if st.Count == 0 {
		return
	}
	if s := t.get(name, dims); s != nil {
		s.Stat.Merge(st)
	}
}

// get returns the series of name at dims, created if there is room, nil if not.
func (t *table) get(name string, dims []Dimension) *Series {
	var buf [256]byte
	k := AppendKey(buf[:0], name, dims...)
	s := t.series[string(k)]
	if s == nil {
		if t.maxSeries > 0 && len(t.series) >= t.maxSeries {
			t.dropped++
			return nil
		}
		s = &Series{Name: name, Dimensions: append([]Dimension(nil), dims...)}
		t.series[string(k)] = s
	}
	return s
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

// RecordStat adds the observations s summarizes.
func (m *Memory) RecordStat(name string, s Stat, dims ...Dimension) {
	m.mu.Lock()
	m.t.addStat(name, s, dims)
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
// entries are skipped); it is a StatRecorder when each of them is. With no recorder left
// it returns nil.
func Multi(rs ...Recorder) Recorder {
	var out multi
	stats := true
	for _, r := range rs {
		if r != nil {
			out = append(out, r)
			_, ok := r.(StatRecorder)
			stats = stats && ok
		}
	}
	switch {
	case len(out) == 0:
		return nil
	case len(out) == 1:
		return out[0]
	case stats:
		return multiStat{out}
	}
	return out
}

type multi []Recorder

func (m multi) Record(name string, unit Unit, value float64, dims ...Dimension) {
	for _, r := range m {
		r.Record(name, unit, value, dims...)
	}
}

// multiStat is a multi of StatRecorders.
type multiStat struct{ multi }

func (m multiStat) RecordStat(name string, s Stat, dims ...Dimension) {
	for _, r := range m.multi {
		r.(StatRecorder).RecordStat(name, s, dims...)
	}
}
