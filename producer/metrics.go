package producer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/metrics"
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

func isSummaryMetric(name string) bool {
	switch name {
	case MetricUserRecordsReceived, MetricUserRecordsPending, MetricUserRecordsPut,
		MetricKinesisRecordsPut, MetricAllErrors, MetricUserRecordExpired:
		return true
	}
	return false
}

func unitOf(name string) metrics.Unit {
	switch name {
	case MetricUserRecordsDataPut, MetricKinesisRecordsDataPut:
		return metrics.UnitBytes
	case MetricBufferingTime, MetricRequestTime:
		return metrics.UnitMilliseconds
	}
	return metrics.UnitCount
}

// Metric is one metric at one set of dimensions, aggregated over its observations since
// the producer started.
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

// CloudWatchClient is the part of *cloudwatch.Client the metrics publisher uses
// (metrics.PutMetricDataAPI).
type CloudWatchClient = metrics.PutMetricDataAPI

// instruments is where the producer reports what happens: the metrics (to rec, at the
// configured level and granularity) and the hooks. Its methods are the producer's
// events; each costs a nil check and no allocation when metrics are off and no hook
// wants the event.
type instruments struct {
	level MetricsLevel
	gran  MetricsGranularity
	rec   metrics.Recorder     // nil at MetricsNone
	stat  metrics.StatRecorder // rec when it takes summaries: then calls are tallied
	mem   *metrics.Memory      // behind Producer.Metrics; nil at MetricsNone
	cw    *metrics.CloudWatch  // WithCloudWatch's sink, or nil
	hooks hooks

	// dims caches the dimensions of each stream and shard: *stream or *shard ->
	// []metrics.Dimension.
	dims sync.Map
}

func newInstruments(cfg *config) (*instruments, error) {
	m := &instruments{level: cfg.metricsLevel, gran: cfg.metricsGranularity, hooks: cfg.hooks}
	if m.level == MetricsNone {
		return m, nil
	}
	m.mem = metrics.NewMemory()
	rs := []metrics.Recorder{m.mem, cfg.recorder}
	if cfg.cloudWatch != nil {
		cw, err := metrics.NewCloudWatch(cfg.cloudWatch, cfg.cwNamespace, metrics.WithManualFlush())
		if err != nil {
			return nil, invalid("%v", err)
		}
		m.cw = cw
		rs = append(rs, cw)
	}
	m.rec = metrics.Multi(rs...)
	m.stat, _ = m.rec.(metrics.StatRecorder)
	return m, nil
}

func (m *instruments) enabled(name string) bool {
	return m.rec != nil && (m.level == MetricsDetailed || isSummaryMetric(name))
}

func (m *instruments) streamDims(st *stream) []metrics.Dimension {
	if d, ok := m.dims.Load(st); ok {
		return d.([]metrics.Dimension)
	}
	d := []metrics.Dimension{{Name: metrics.DimStreamName, Value: st.name}}
	m.dims.Store(st, d)
	return d
}

func (m *instruments) shardDims(st *stream, sh *shard) []metrics.Dimension {
	if d, ok := m.dims.Load(sh); ok {
		return d.([]metrics.Dimension)
	}
	d := []metrics.Dimension{{Name: metrics.DimStreamName, Value: st.name}, {Name: metrics.DimShardID, Value: sh.id}}
	m.dims.Store(sh, d)
	return d
}

// observe records one observation of value v at the global level and at every finer
// level up to the granularity (the stream, then the shard when sh is not nil). A code
// adds the ErrorCode dimension.
func (m *instruments) observe(name string, st *stream, sh *shard, code string, v float64) {
	if !m.enabled(name) {
		return
	}
	unit := unitOf(name)
	withCode := func(d []metrics.Dimension) []metrics.Dimension {
		if code == "" {
			return d
		}
		return append(append(make([]metrics.Dimension, 0, len(d)+1), d...), metrics.Dimension{Name: metrics.DimErrorCode, Value: code})
	}
	m.rec.Record(name, unit, v, withCode(nil)...)
	if st != nil && m.gran >= GranularityStream {
		m.rec.Record(name, unit, v, withCode(m.streamDims(st))...)
		if sh != nil && m.gran >= GranularityShard {
			m.rec.Record(name, unit, v, withCode(m.shardDims(st, sh))...)
		}
	}
}

// observeStat records the observations s summarizes as observe does one.
func (m *instruments) observeStat(name string, st *stream, sh *shard, s metrics.Stat) {
	if s.Count == 0 || !m.enabled(name) {
		return
	}
	m.stat.RecordStat(name, s)
	if m.gran >= GranularityStream {
		m.stat.RecordStat(name, s, m.streamDims(st)...)
		if sh != nil && m.gran >= GranularityShard {
			m.stat.RecordStat(name, s, m.shardDims(st, sh)...)
		}
	}
}

// userReceived counts one Put; it is an atomic add per stream on the hot path.
func (m *instruments) userReceived(st *stream) {
	if m.rec == nil {
		return
	}
	st.received.Add(1)
}

// listFailed counts a failed DescribeStreamSummary or ListShards call: retried in a
// refresh, returned to Put's caller at a stream's first discovery (retryable false).
func (m *instruments) listFailed(st *stream, err error, retryable bool) {
	op := "ListShards"
	if se := (*ServiceError)(nil); errors.As(err, &se) && se.Op != "" {
		op = se.Op
	}
	m.failure(op, st, nil, errorCode(err), 1, retryable)
}

// errorCodeN counts n Kinesis records of a failed PutRecords call (sh nil) or one
// rejected entry of it (sh set); retryable is what the retry policy decided.
func (m *instruments) errorCodeN(st *stream, sh *shard, code string, n int, retryable bool) {
	m.failure("PutRecords", st, sh, code, n, retryable)
}

func (m *instruments) failure(op string, st *stream, sh *shard, code string, n int, retryable bool) {
	m.observe(MetricErrorsByCode, st, sh, code, float64(n))
	m.observe(MetricAllErrors, st, sh, "", float64(n))
	if len(m.hooks.callFailed) == 0 && len(m.hooks.throttled) == 0 {
		return
	}
	shardID := ""
	if sh != nil {
		shardID = sh.id
	}
	for _, h := range m.hooks.callFailed {
		h.OnCallFailed(CallFailure{Op: op, Stream: st.name, ShardID: shardID, ErrorCode: code, Records: n, Retryable: retryable})
	}
	if isThrottleCode(code) {
		for _, h := range m.hooks.throttled {
			h.OnThrottled(Throttle{Op: op, Stream: st.name, ShardID: shardID, ErrorCode: code, Records: n})
		}
	}
}

func (m *instruments) expired(st *stream, k *krec) {
	m.observe(MetricUserRecordExpired, st, k.sh, "", float64(len(k.users)))
}

// buffering records how long k waited before its first send, in tally when there is
// one.
func (m *instruments) buffering(st *stream, k *krec, d int64, tally *callTally) {
	if m.stat != nil && tally != nil {
		if m.enabled(MetricBufferingTime) {
			tally.of(k.sh)[tallyBufferingTime].Add(metrics.UnitMilliseconds, float64(d)/1e6)
		}
		return
	}
	m.observe(MetricBufferingTime, st, k.sh, "", float64(d)/1e6)
}

// request records one finished PutRecords call of n Kinesis records.
func (m *instruments) request(st *stream, n int, d time.Duration) {
	m.observe(MetricRequestTime, st, nil, "", float64(d)/1e6)
	m.observe(MetricKinesisRecordsPerPutRecordsRequest, st, nil, "", float64(n))
	for _, h := range m.hooks.batchSent {
		h.OnBatchSent(BatchSent{Stream: st.name, Records: n, Duration: d})
	}
}

// put records a Kinesis record written with count of its user records, into tally when
// there is one (the call flushes it once it has settled every record).
func (m *instruments) put(st *stream, k *krec, count int, attempts int, tally *callTally) {
	if m.rec == nil {
		return
	}
	bytes := float64(k.userBytes)
	if len(k.users) > 0 && count != len(k.users) {
		bytes = bytes * float64(count) / float64(len(k.users))
	}
	retries := float64(max(attempts-1, 0))
	if m.stat != nil && tally != nil {
		tally.count += int64(count)
		s := tally.of(k.sh)
		s[tallyUserRecordsPut].Add(metrics.UnitCount, float64(count))
		s[tallyUserRecordsDataPut].Add(metrics.UnitBytes, bytes)
		s[tallyKinesisRecordsPut].Add(metrics.UnitCount, 1)
		s[tallyKinesisRecordsDataPut].Add(metrics.UnitBytes, float64(k.size))
		s[tallyUserRecordsPerKinesisRecord].Add(metrics.UnitCount, float64(count))
		s[tallyRetriesPerRecord].Add(metrics.UnitCount, retries)
		return
	}
	st.resolved.Add(int64(count))
	m.observe(MetricUserRecordsPut, st, k.sh, "", float64(count))
	m.observe(MetricUserRecordsDataPut, st, k.sh, "", bytes)
	m.observe(MetricKinesisRecordsPut, st, k.sh, "", 1)
	m.observe(MetricKinesisRecordsDataPut, st, k.sh, "", float64(k.size))
	m.observe(MetricUserRecordsPerKinesisRecord, st, k.sh, "", float64(count))
	m.observe(MetricRetriesPerRecord, st, k.sh, "", retries)
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
// recorder is called once per metric, shard and call (flush) rather than once per
// Kinesis record, and the flush epochs the call's records settle, released only after.
type callTally struct {
	shards []*shard
	stats  [][tallyMetrics]metrics.Stat
	count  int64          // user records put
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
func (t *callTally) of(sh *shard) *[tallyMetrics]metrics.Stat {
	for i, s := range t.shards {
		if s == sh {
			return &t.stats[i]
		}
	}
	t.shards = append(t.shards, sh)
	t.stats = append(t.stats, [tallyMetrics]metrics.Stat{})
	return &t.stats[len(t.stats)-1]
}

// flush records a call's tally for stream st and empties it.
func (m *instruments) flush(st *stream, t *callTally) {
	if t.count > 0 {
		st.resolved.Add(t.count)
		t.count = 0
	}
	for i, sh := range t.shards {
		for j := range t.stats[i] {
			m.observeStat(tallyNames[j], st, sh, t.stats[i][j])
		}
	}
	clear(t.shards)
	t.shards, t.stats = t.shards[:0], t.stats[:0]
}

// failed records user records that failed for good.
func (m *instruments) failed(st *stream, k *krec, n int) {
	if m.rec == nil {
		return
	}
	st.resolved.Add(int64(n))
	m.observe(MetricRetriesPerRecord, st, k.sh, "", float64(max(len(k.attempts)-1, 0)))
}

// fold records the per-stream Put counters and samples the pending gauge.
func (m *instruments) fold(streams []*stream) {
	if m.rec == nil {
		return
	}
	for _, st := range streams {
		r := st.received.Swap(0)
		if r > 0 {
			m.observe(MetricUserRecordsReceived, st, nil, "", float64(r))
		}
		st.receivedTotal.Add(r)
		pending := st.receivedTotal.Load() - st.resolved.Load()
		m.observe(MetricUserRecordsPending, st, nil, "", float64(max(pending, 0)))
	}
}

// Metrics returns the producer's metrics since it started, sorted by name and
// dimensions, for users who read them in process; WithMetricsRecorder sends them
// elsewhere as they happen. It is empty at MetricsNone.
func (p *Producer) Metrics() []Metric {
	m := p.metrics
	if m.mem == nil {
		return nil
	}
	m.fold(*p.list.Load())
	series := m.mem.Series()
	out := make([]Metric, len(series))
	for i, s := range series {
		out[i] = Metric{Name: s.Name, Stream: s.Dimension(metrics.DimStreamName), ShardID: s.Dimension(metrics.DimShardID),
			ErrorCode: s.Dimension(metrics.DimErrorCode), Unit: string(s.Stat.Unit),
			SampleCount: s.Stat.Count, Sum: s.Stat.Sum, Min: s.Stat.Min, Max: s.Stat.Max}
	}
	return out
}

func (p *Producer) publishLoop() {
	defer p.workers.Done()
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

// publishOnce sends the current interval's metrics to CloudWatch.
func (p *Producer) publishOnce(ctx context.Context) {
	m := p.metrics
	if m.cw == nil {
		return
	}
	m.fold(*p.list.Load())
	if err := m.cw.Flush(ctx); err != nil {
		p.log.Warn("producer: publishing metrics failed", zap.Error(err))
	}
}

// streamCounters are the per-stream atomics behind UserRecordsReceived and Pending.
type streamCounters struct {
	received      atomic.Int64
	receivedTotal atomic.Int64
	resolved      atomic.Int64
}
