package producer

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"go.uber.org/zap"
)

// MetricsLevel selects how many metrics the producer keeps (KPL MetricsLevel).
type MetricsLevel int

const (
	// MetricsNone keeps no metrics.
	MetricsNone MetricsLevel = iota
	// MetricsSummary keeps the main counts: UserRecordsReceived, UserRecordsPending,
	// UserRecordsPut, KinesisRecordsPut, AllErrors and UserRecordExpired.
	MetricsSummary
	// MetricsDetailed keeps every metric.
	MetricsDetailed
)

// MetricsGranularity selects the dimensions metrics are kept at (KPL MetricsGranularity).
// Each datum is kept at the global level and at every finer level up to the granularity.
type MetricsGranularity int

const (
	// GranularityGlobal keeps metrics without dimensions.
	GranularityGlobal MetricsGranularity = iota
	// GranularityStream adds the StreamName dimension.
	GranularityStream
	// GranularityShard adds the StreamName and ShardId dimensions.
	GranularityShard
)

// Metric names, with KPL's meanings.
const (
	MetricUserRecordsReceived                = "UserRecordsReceived"
	MetricUserRecordsPending                 = "UserRecordsPending"
	MetricUserRecordsPut                     = "UserRecordsPut"
	MetricUserRecordsDataPut                 = "UserRecordsDataPut"
	MetricKinesisRecordsPut                  = "KinesisRecordsPut"
	MetricKinesisRecordsDataPut              = "KinesisRecordsDataPut"
	MetricErrorsByCode                       = "ErrorsByCode"
	MetricAllErrors                          = "AllErrors"
	MetricRetriesPerRecord                   = "RetriesPerRecord"
	MetricUserRecordExpired                  = "UserRecordExpired"
	MetricBufferingTime                      = "BufferingTime"
	MetricRequestTime                        = "RequestTime"
	MetricUserRecordsPerKinesisRecord        = "UserRecordsPerKinesisRecord"
	MetricKinesisRecordsPerPutRecordsRequest = "KinesisRecordsPerPutRecordsRequest"
)

var summaryMetrics = map[string]bool{
	MetricUserRecordsReceived: true, MetricUserRecordsPending: true, MetricUserRecordsPut: true,
	MetricKinesisRecordsPut: true, MetricAllErrors: true, MetricUserRecordExpired: true,
}

var metricUnits = map[string]cwtypes.StandardUnit{
	MetricUserRecordsDataPut: cwtypes.StandardUnitBytes, MetricKinesisRecordsDataPut: cwtypes.StandardUnitBytes,
	MetricBufferingTime: cwtypes.StandardUnitMilliseconds, MetricRequestTime: cwtypes.StandardUnitMilliseconds,
}

// Metric is one metric at one set of dimensions, aggregated over its observations.
type Metric struct {
	// Name is the KPL metric name, for example "UserRecordsPut".
	Name string
	// Stream is the StreamName dimension, empty at the global level.
	Stream string
	// ShardID is the ShardId dimension, empty above the shard level.
	ShardID string
	// ErrorCode is the ErrorCode dimension of ErrorsByCode.
	ErrorCode string
	// Unit is the CloudWatch unit: "Count", "Bytes" or "Milliseconds".
	Unit string
	// SampleCount, Sum, Min and Max summarise the observations.
	SampleCount int64
	Sum         float64
	Min, Max    float64
}

type metricKey struct{ name, stream, shard, code string }

type stat struct {
	n             int64
	sum, min, max float64
}

func (s *stat) observe(v float64, n int64) {
	if s.n == 0 || v < s.min {
		s.min = v
	}
	if s.n == 0 || v > s.max {
		s.max = v
	}
	s.n += n
	s.sum += v * float64(n)
}

// metrics keeps the producer's metrics: cumulative values for Snapshot and, when
// publishing, the values of the current CloudWatch interval.
type metrics struct {
	level MetricsLevel
	gran  MetricsGranularity

	mu       sync.Mutex
	total    map[metricKey]*stat
	interval map[metricKey]*stat // nil unless publishing
}

func newMetrics(level MetricsLevel, gran MetricsGranularity) *metrics {
	return &metrics{level: level, gran: gran, total: make(map[metricKey]*stat)}
}

func (m *metrics) enabled(name string) bool {
	switch m.level {
	case MetricsNone:
		return false
	case MetricsSummary:
		return summaryMetrics[name]
	}
	return true
}

// observe records n observations of value v at every level up to the granularity.
func (m *metrics) observe(name string, st *stream, sh *shard, code string, v float64, n int64) {
	if n == 0 || !m.enabled(name) {
		return
	}
	m.mu.Lock()
	m.observeLocked(metricKey{name: name, code: code}, v, n)
	if st != nil && m.gran >= GranularityStream {
		m.observeLocked(metricKey{name: name, stream: st.name, code: code}, v, n)
		if sh != nil && m.gran >= GranularityShard {
			m.observeLocked(metricKey{name: name, stream: st.name, shard: sh.id, code: code}, v, n)
		}
	}
	m.mu.Unlock()
}

func (m *metrics) observeLocked(k metricKey, v float64, n int64) {
	s := m.total[k]
	if s == nil {
		s = new(stat)
		m.total[k] = s
	}
	s.observe(v, n)
	if m.interval != nil {
		s := m.interval[k]
		if s == nil {
			s = new(stat)
			m.interval[k] = s
		}
		s.observe(v, n)
	}
}

// userReceived counts one Put; it is an atomic add per stream on the hot path.
func (m *metrics) userReceived(st *stream) {
	if m.level == MetricsNone {
		return
	}
	st.received.Add(1)
}

func (m *metrics) errorCode(st *stream, sh *shard, code string) { m.errorCodeN(st, sh, code, 1) }

func (m *metrics) errorCodeN(st *stream, sh *shard, code string, n int) {
	m.observe(MetricErrorsByCode, st, sh, code, 1, int64(n))
	m.observe(MetricAllErrors, st, sh, "", 1, int64(n))
}

func (m *metrics) expired(st *stream, k *krec) {
	m.observe(MetricUserRecordExpired, st, k.sh, "", 1, int64(len(k.users)))
}

func (m *metrics) buffering(k *krec, d int64, tally *callTally) {
	if m.level == MetricsNone {
		return
	}
	tally.of(k.sh)[tallyBufferingTime].observe(float64(d)/1e6, 1)
}

func (m *metrics) request(st *stream, n int, d time.Duration) {
	m.observe(MetricRequestTime, st, nil, "", float64(d)/1e6, 1)
	m.observe(MetricKinesisRecordsPerPutRecordsRequest, st, nil, "", float64(n), 1)
}

// put records a Kinesis record written with count of its user records, into tally when
// it is not nil (the caller then flushes it), otherwise at once.
func (m *metrics) put(st *stream, k *krec, count int, attempts int, tally *callTally) {
	if m.level == MetricsNone {
		return
	}
	if tally == nil {
		tally = new(callTally)
		defer m.flush(st, tally)
	}
	s := tally.of(k.sh)
	s[tallyUserRecordsPut].observe(1, int64(count))
	s[tallyUserRecordsDataPut].observe(float64(k.userBytes)/float64(max(count, 1)), int64(count))
	s[tallyKinesisRecordsPut].observe(1, 1)
	s[tallyKinesisRecordsDataPut].observe(float64(k.size), 1)
	s[tallyUserRecordsPerKinesisRecord].observe(float64(count), 1)
	s[tallyRetriesPerRecord].observe(float64(max(attempts-1, 0)), int64(count))
}

// The per-record metrics of a call, gathered in a callTally.
const (
	tallyBufferingTime = iota
	tallyUserRecordsPut
	tallyUserRecordsDataPut
	tallyKinesisRecordsPut
	tallyKinesisRecordsDataPut
	tallyUserRecordsPerKinesisRecord
	tallyRetriesPerRecord
	tallyMetrics
)

var tallyNames = [tallyMetrics]string{
	MetricBufferingTime, MetricUserRecordsPut, MetricUserRecordsDataPut, MetricKinesisRecordsPut,
	MetricKinesisRecordsDataPut, MetricUserRecordsPerKinesisRecord, MetricRetriesPerRecord,
}

// callTally gathers the per-record metrics of one PutRecords call by shard, so that the
// shared maps are updated once per shard and call (flush) rather than once per record.
type callTally struct {
	shards []*shard
	stats  [][tallyMetrics]stat
	eps    []epochRelease // flush epochs to release once the metrics are in
}

type epochRelease struct {
	ep *epoch
	n  int64
}

// release releases n records of ep after the call's metrics are flushed, or at once
// without a tally.
func (t *callTally) release(ep *epoch, n int64) {
	if t == nil {
		ep.release(n)
		return
	}
	t.eps = append(t.eps, epochRelease{ep, n})
}

// of returns the tally of sh.
func (t *callTally) of(sh *shard) *[tallyMetrics]stat {
	for i, s := range t.shards {
		if s == sh {
			return &t.stats[i]
		}
	}
	t.shards = append(t.shards, sh)
	t.stats = append(t.stats, [tallyMetrics]stat{})
	return &t.stats[len(t.stats)-1]
}

// merge adds the observations of o to s.
func (s *stat) merge(o *stat) {
	if o.n == 0 {
		return
	}
	if s.n == 0 || o.min < s.min {
		s.min = o.min
	}
	if s.n == 0 || o.max > s.max {
		s.max = o.max
	}
	s.n += o.n
	s.sum += o.sum
}

// flush adds a call's tally to the metrics of stream st and empties it.
func (m *metrics) flush(st *stream, t *callTally) {
	if m.level == MetricsNone || len(t.shards) == 0 {
		return
	}
	m.mu.Lock()
	for i, sh := range t.shards {
		s := &t.stats[i]
		st.resolved.Add(s[tallyUserRecordsPut].n)
		for j := range s {
			if s[j].n == 0 || !m.enabled(tallyNames[j]) {
				continue
			}
			m.mergeLocked(metricKey{name: tallyNames[j]}, &s[j])
			if m.gran >= GranularityStream {
				m.mergeLocked(metricKey{name: tallyNames[j], stream: st.name}, &s[j])
				if sh != nil && m.gran >= GranularityShard {
					m.mergeLocked(metricKey{name: tallyNames[j], stream: st.name, shard: sh.id}, &s[j])
				}
			}
		}
	}
	m.mu.Unlock()
	clear(t.shards)
	t.shards, t.stats = t.shards[:0], t.stats[:0]
}

func (m *metrics) mergeLocked(k metricKey, o *stat) {
	s := m.total[k]
	if s == nil {
		s = new(stat)
		m.total[k] = s
	}
	s.merge(o)
	if m.interval != nil {
		s := m.interval[k]
		if s == nil {
			s = new(stat)
			m.interval[k] = s
		}
		s.merge(o)
	}
}

// failed records user records that failed for good.
func (m *metrics) failed(st *stream, k *krec, n int) {
	if m.level == MetricsNone {
		return
	}
	st.resolved.Add(int64(n))
	m.observe(MetricRetriesPerRecord, st, k.sh, "", float64(max(len(k.attempts)-1, 0)), int64(n))
}

// fold adds the per-stream Put counters and the pending gauge to the maps.
func (m *metrics) fold(streams []*stream) {
	for _, st := range streams {
		r := st.received.Swap(0)
		if r > 0 {
			m.observe(MetricUserRecordsReceived, st, nil, "", 1, r)
		}
		st.receivedTotal.Add(r)
		pending := st.receivedTotal.Load() - st.resolved.Load()
		m.observe(MetricUserRecordsPending, st, nil, "", float64(max(pending, 0)), 1)
	}
}

func snapshotOf(src map[metricKey]*stat) []Metric {
	out := make([]Metric, 0, len(src))
	for k, s := range src {
		unit := metricUnits[k.name]
		if unit == "" {
			unit = cwtypes.StandardUnitCount
		}
		out = append(out, Metric{Name: k.name, Stream: k.stream, ShardID: k.shard, ErrorCode: k.code, Unit: string(unit),
			SampleCount: s.n, Sum: s.sum, Min: s.min, Max: s.max})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Stream != b.Stream {
			return a.Stream < b.Stream
		}
		if a.ShardID != b.ShardID {
			return a.ShardID < b.ShardID
		}
		return a.ErrorCode < b.ErrorCode
	})
	return out
}

// Metrics returns the producer's metrics since it started, for users who export them
// elsewhere. It is empty at MetricsNone.
func (p *Producer) Metrics() []Metric {
	if p.metrics.level == MetricsNone {
		return nil
	}
	p.metrics.fold(*p.list.Load())
	p.metrics.mu.Lock()
	defer p.metrics.mu.Unlock()
	return snapshotOf(p.metrics.total)
}

// CloudWatchClient is the part of *cloudwatch.Client the metrics publisher uses.
type CloudWatchClient interface {
	// PutMetricData publishes a batch of metric data.
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// maxDatumsPerCall is CloudWatch's limit of metric data per PutMetricData call.
const maxDatumsPerCall = 1000

func (p *Producer) publishLoop() {
	defer p.workers.Done()
	p.metrics.mu.Lock()
	p.metrics.interval = make(map[metricKey]*stat)
	p.metrics.mu.Unlock()
	t := time.NewTicker(p.cfg.cwInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(p.ctx, p.cfg.requestTimeout)
			p.publishOnce(ctx)
			cancel()
		case <-p.quit:
			return
		}
	}
}

// publishOnce sends the current interval's metrics in batched PutMetricData calls.
func (p *Producer) publishOnce(ctx context.Context) {
	m := p.metrics
	if m.level == MetricsNone {
		return
	}
	m.fold(*p.list.Load())
	m.mu.Lock()
	cur := m.interval
	if cur == nil {
		m.mu.Unlock()
		return
	}
	m.interval = make(map[metricKey]*stat)
	m.mu.Unlock()
	data := make([]cwtypes.MetricDatum, 0, len(cur))
	ts := time.Now()
	for _, mt := range snapshotOf(cur) {
		d := cwtypes.MetricDatum{
			MetricName: aws.String(mt.Name),
			Timestamp:  aws.Time(ts),
			Unit:       cwtypes.StandardUnit(mt.Unit),
			StatisticValues: &cwtypes.StatisticSet{
				SampleCount: aws.Float64(float64(mt.SampleCount)), Sum: aws.Float64(mt.Sum),
				Minimum: aws.Float64(mt.Min), Maximum: aws.Float64(mt.Max),
			},
		}
		if mt.Stream != "" {
			d.Dimensions = append(d.Dimensions, cwtypes.Dimension{Name: aws.String("StreamName"), Value: aws.String(mt.Stream)})
		}
		if mt.ShardID != "" {
			d.Dimensions = append(d.Dimensions, cwtypes.Dimension{Name: aws.String("ShardId"), Value: aws.String(mt.ShardID)})
		}
		if mt.ErrorCode != "" {
			d.Dimensions = append(d.Dimensions, cwtypes.Dimension{Name: aws.String("ErrorCode"), Value: aws.String(mt.ErrorCode)})
		}
		data = append(data, d)
	}
	for len(data) > 0 {
		n := min(len(data), maxDatumsPerCall)
		_, err := p.cfg.cloudWatch.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(p.cfg.cwNamespace), MetricData: data[:n]})
		if err != nil {
			p.log.Warn("producer: publishing metrics failed", zap.Error(err))
			return
		}
		data = data[n:]
	}
}

// streamCounters are the per-stream atomics behind UserRecordsReceived and Pending.
type streamCounters struct {
	received      atomic.Int64
	receivedTotal atomic.Int64
	resolved      atomic.Int64
}
