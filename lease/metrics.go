package lease

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/clock"
)

// JavaWorkerMetricsMaxAge is how old a worker-metrics row without a report interval (a
// Java worker's) may be before a leader treats the worker as gone: Java workers report
// every 30 s and Java's leader waits 60 s.
const JavaWorkerMetricsMaxAge = time.Minute

// MetricCPU is the short name of the CPU metric: the key of WorkerMetrics.Stats and
// WorkerMetrics.OperatingRange.
const MetricCPU = "C"

// Attribute names of a worker-metrics item, as Java KCL 3.x writes them.
const (
	attrMetricsLastUpdate     = "lut"
	attrMetricsStats          = "sts"
	attrMetricsOperatingRange = "opr"
	// attrMetricsSupportCode (N) is the highest table-migration support code of the
	// worker's KCL version; Java KCL 3.5 writes supportCodeTableMigration and reads a
	// missing one as 0, which blocks its move from three tables to one while such a
	// worker runs.
	attrMetricsSupportCode = "sup"
	// attrMetricsSupportCodeUpdate (N) is when sup was last written, in epoch seconds.
	attrMetricsSupportCodeUpdate = "slu"
	// attrMetricsReportInterval (N, milliseconds) is Freshet's own: how often the worker
	// reports, so a leader can tell a silent Freshet worker within a few reports. Java
	// rows have none; Java workers report every 30 s (JavaWorkerMetricsMaxAge).
	attrMetricsReportInterval = "freshetReportIntervalMillis"
	// attrMetricsSelfFence (N, milliseconds) is Freshet's own: the worker promises to
	// process no lease once its last successful metrics write started this long ago
	// (WithSelfFence). A leader that has seen such a row unchanged for that long, by its
	// own clock, takes the worker's leases without waiting for their counters to expire.
	// Java rows have none, and their leases expire by their counters only.
	attrMetricsSelfFence = "freshetSelfFenceMillis"
	// attrMetricsReported (N, epoch milliseconds) is Freshet's own: when the write
	// started, so every write of a row changes it.
	attrMetricsReported = "freshetReportedMillis"
	// attrMetricsNewLeases (SS) is Freshet's own: keys of leases the worker just created
	// (the children of a shard it ended), so the leader places them at its next round
	// instead of at its next scan of the lease table.
	attrMetricsNewLeases = "freshetNewLeases"
	// attrMetricsAssigned (N) is Freshet's own, written by a Freshet leader into the row
	// of a worker it just gave leases (or asked to hand one off): the worker's next
	// report returns it (the old row, at no read cost) and erases it, and the worker then
	// queries the owner index (docs/lease-cost.md, "Discovery hints").
	attrMetricsAssigned = "freshetAssigned"
	// attrMetricsExpect (N, milliseconds) is Freshet's own, written by a Freshet leader
	// into the live workers' rows when another self-fencing worker's row has stood still
	// for half its fence: the leader expects to hand out that worker's leases within this
	// many milliseconds, so the worker looks for them every assignment interval meanwhile.
	attrMetricsExpect = "freshetExpectMillis"
	// supportCodeTableMigration is the support code of KCL 3.5 (the table migration),
	// which Freshet implements.
	supportCodeTableMigration = 1
	// javaReportInterval is how often Java KCL 3.x workers write their row
	// (workerMetricsReporterFreqInMillis).
	javaReportInterval = 30 * time.Second
	// maxMetricValues is how many values per metric a worker keeps, as Java does.
	maxMetricValues = 10
)

// WorkerMetrics is one worker's row of the worker-metrics table.
type WorkerMetrics struct {
	// WorkerID is the worker (lease owner) name.
	WorkerID string
	// LastUpdate is when the worker last reported (stored as epoch seconds).
	LastUpdate time.Time
	// Stats maps a metric's short name ("C" for CPU) to its last values, oldest first;
	// -1 marks a failed measurement.
	Stats map[string][]float64
	// OperatingRange maps a metric's short name to its operating range; the first value
	// is the maximum utilization (100 for CPU).
	OperatingRange map[string][]int64
	// SupportCode is the sup attribute (0 when absent); Freshet writes 1, the code of KCL
	// 3.5's table migration.
	SupportCode int64
	// SupportCodeUpdate is the slu attribute (epoch seconds), zero when absent.
	SupportCodeUpdate time.Time
	// ReportInterval is how often a Freshet worker reports; zero for Java workers.
	ReportInterval time.Duration
	// SelfFence is the self-fence time the worker keeps (attrMetricsSelfFence); zero for
	// workers that do not fence themselves (Java workers).
	SelfFence time.Duration
	// Reported is when the write of the row started, to the millisecond
	// (attrMetricsReported); zero for Java workers.
	Reported time.Time
	// NewLeases lists the keys of leases the worker announced (attrMetricsNewLeases).
	NewLeases []string
}

// maxAge returns how old the row may be before its worker is treated as gone: three
// report intervals and the second LastUpdate is truncated to for a Freshet row, javaMax
// for a row without a report interval (a Java worker's).
func (m *WorkerMetrics) maxAge(javaMax time.Duration) time.Duration {
	if m.ReportInterval > 0 {
		return 3*m.ReportInterval + time.Second
	}
	return javaMax
}

// CPU returns the worker's average CPU utilization over its reported values, and false
// when it reports no CPU, its last measurement failed or its operating range is missing.
func (m *WorkerMetrics) CPU() (float64, bool) {
	vals := m.Stats[MetricCPU]
	if len(vals) == 0 || vals[len(vals)-1] < 0 {
		return 0, false
	}
	if r := m.OperatingRange[MetricCPU]; len(r) == 0 || r[0] <= 0 {
		return 0, false
	}
	var sum float64
	n := 0
	for _, v := range vals {
		if v >= 0 {
			sum += v
			n++
		}
	}
	return sum / float64(n), true
}

// Valid reports whether the entry can be used for assignment: it has an update time and
// every reported metric has an operating range with a non-zero maximum (the rules Java
// KCL applies).
func (m *WorkerMetrics) Valid() bool {
	if m.LastUpdate.IsZero() {
		return false
	}
	for name := range m.Stats {
		if r := m.OperatingRange[name]; len(r) == 0 || r[0] == 0 {
			return false
		}
	}
	return true
}

func marshalWorkerMetrics(m *WorkerMetrics, keyAttr string) map[string]types.AttributeValue {
	sts := map[string]types.AttributeValue{}
	for name, vals := range m.Stats {
		l := make([]types.AttributeValue, len(vals))
		for i, v := range vals {
			l[i] = numFloat(v)
		}
		sts[name] = &types.AttributeValueMemberL{Value: l}
	}
	opr := map[string]types.AttributeValue{}
	for name, vals := range m.OperatingRange {
		l := make([]types.AttributeValue, len(vals))
		for i, v := range vals {
			l[i] = num(v)
		}
		opr[name] = &types.AttributeValueMemberL{Value: l}
	}
	item := map[string]types.AttributeValue{
		keyAttr:                   str(m.WorkerID),
		attrMetricsLastUpdate:     num(m.LastUpdate.Unix()),
		attrMetricsStats:          &types.AttributeValueMemberM{Value: sts},
		attrMetricsOperatingRange: &types.AttributeValueMemberM{Value: opr},
		attrEntityType:            str(entityWorkerMetricStats),
	}
	if m.SupportCode != 0 {
		item[attrMetricsSupportCode] = num(m.SupportCode)
		item[attrMetricsSupportCodeUpdate] = num(m.SupportCodeUpdate.Unix())
	}
	if m.ReportInterval > 0 {
		item[attrMetricsReportInterval] = num(m.ReportInterval.Milliseconds())
	}
	if m.SelfFence > 0 {
		item[attrMetricsSelfFence] = num(m.SelfFence.Milliseconds())
	}
	if !m.Reported.IsZero() {
		item[attrMetricsReported] = num(m.Reported.UnixMilli())
	}
	if len(m.NewLeases) > 0 {
		item[attrMetricsNewLeases] = &types.AttributeValueMemberSS{Value: append([]string(nil), m.NewLeases...)}
	}
	return item
}

func unmarshalWorkerMetrics(item map[string]types.AttributeValue, keyAttr string) (WorkerMetrics, error) {
	m := WorkerMetrics{WorkerID: stringAttr(item, keyAttr), Stats: map[string][]float64{}, OperatingRange: map[string][]int64{}}
	if m.WorkerID == "" {
		return m, fmt.Errorf("%w: worker metrics without %s", ErrMalformedItem, keyAttr)
	}
	if n, ok := item[attrMetricsLastUpdate].(*types.AttributeValueMemberN); ok {
		secs, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return m, fmt.Errorf("%w: lut %q", ErrMalformedItem, n.Value)
		}
		m.LastUpdate = time.Unix(secs, 0).UTC()
	}
	for _, a := range []struct {
		name string
		set  func(int64)
	}{
		{attrMetricsSupportCode, func(v int64) { m.SupportCode = v }},
		{attrMetricsSupportCodeUpdate, func(v int64) { m.SupportCodeUpdate = time.Unix(v, 0).UTC() }},
		{attrMetricsReportInterval, func(v int64) { m.ReportInterval = time.Duration(v) * time.Millisecond }},
		{attrMetricsSelfFence, func(v int64) { m.SelfFence = time.Duration(v) * time.Millisecond }},
		{attrMetricsReported, func(v int64) { m.Reported = time.UnixMilli(v).UTC() }},
	} {
		if n, ok := item[a.name].(*types.AttributeValueMemberN); ok {
			v, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil || v < 0 {
				return m, fmt.Errorf("%w: %s %q", ErrMalformedItem, a.name, n.Value)
			}
			a.set(v)
		}
	}
	if ss, ok := item[attrMetricsNewLeases].(*types.AttributeValueMemberSS); ok {
		m.NewLeases = append([]string(nil), ss.Value...)
	}
	if sts, ok := item[attrMetricsStats].(*types.AttributeValueMemberM); ok {
		for name, v := range sts.Value {
			l, ok := v.(*types.AttributeValueMemberL)
			if !ok {
				return m, fmt.Errorf("%w: sts.%s is not a list", ErrMalformedItem, name)
			}
			for _, x := range l.Value {
				n, ok := x.(*types.AttributeValueMemberN)
				f, err := strconv.ParseFloat(nValue(n), 64)
				if !ok || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
					return m, fmt.Errorf("%w: sts.%s holds a non-number", ErrMalformedItem, name)
				}
				m.Stats[name] = append(m.Stats[name], f)
			}
		}
	}
	if opr, ok := item[attrMetricsOperatingRange].(*types.AttributeValueMemberM); ok {
		for name, v := range opr.Value {
			l, ok := v.(*types.AttributeValueMemberL)
			if !ok {
				return m, fmt.Errorf("%w: opr.%s is not a list", ErrMalformedItem, name)
			}
			for _, x := range l.Value {
				n, ok := x.(*types.AttributeValueMemberN)
				f, err := strconv.ParseFloat(nValue(n), 64)
				if !ok || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
					return m, fmt.Errorf("%w: opr.%s holds a non-number", ErrMalformedItem, name)
				}
				m.OperatingRange[name] = append(m.OperatingRange[name], int64(f))
			}
		}
	}
	return m, nil
}

func nValue(n *types.AttributeValueMemberN) string {
	if n == nil {
		return ""
	}
	return n.Value
}

// PutWorkerMetrics writes a worker's metrics row (replacing it).
func (s *Store) PutWorkerMetrics(ctx context.Context, m WorkerMetrics) error {
	_, err := s.putWorkerMetrics(ctx, m)
	return err
}

// Hint is what a Freshet leader left in a worker's metrics row since the worker's
// previous report (docs/lease-cost.md, "Discovery hints").
type Hint struct {
	// Assigned is set when the leader gave the worker leases, or asked it to hand one
	// off, since its previous report.
	Assigned bool
	// Expect, when positive, is how soon the leader expects to give the worker the leases
	// of a silent worker (counted from when the report returned).
	Expect time.Duration
}

// putWorkerMetrics writes a worker's metrics row, replacing it, and returns the hint the
// leader had left in the row it replaced. The old row comes back with the write
// (ReturnValues ALL_OLD), which consumes no read capacity.
func (s *Store) putWorkerMetrics(ctx context.Context, m WorkerMetrics) (Hint, error) {
	table, keyAttr := s.tables.metricsTable()
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: marshalWorkerMetrics(&m, keyAttr),
		ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		return Hint{}, &Error{Op: "put-worker-metrics", Table: table, Key: m.WorkerID, Err: err}
	}
	return hintOf(out.Attributes), nil
}

// hintOf reads the leader's hint from a worker-metrics row.
func hintOf(item map[string]types.AttributeValue) Hint {
	var h Hint
	_, h.Assigned = item[attrMetricsAssigned]
	if n, ok := item[attrMetricsExpect].(*types.AttributeValueMemberN); ok {
		if ms, err := strconv.ParseInt(n.Value, 10, 64); err == nil && ms > 0 {
			h.Expect = time.Duration(ms) * time.Millisecond
		}
	}
	return h
}

// hintWorker leaves a hint in the metrics row of a self-fencing (Freshet) worker: that it
// was given leases, or, with expect > 0, that it may be given a silent worker's leases
// within expect. The row's report time is left as it is, so the leader's watch of the
// row is unaffected; a row that does not exist or is not a Freshet worker's is left
// alone (ErrNotFound).
func (s *Store) hintWorker(ctx context.Context, worker string, expect time.Duration) error {
	table, keyAttr := s.tables.metricsTable()
	in := &dynamodb.UpdateItemInput{TableName: aws.String(table),
		Key:                       map[string]types.AttributeValue{keyAttr: str(worker)},
		UpdateExpression:          aws.String("SET #a = :a"),
		ConditionExpression:       aws.String("attribute_exists(#f)"),
		ExpressionAttributeNames:  map[string]string{"#a": attrMetricsAssigned, "#f": attrMetricsSelfFence},
		ExpressionAttributeValues: map[string]types.AttributeValue{":a": num(1)},
	}
	if expect > 0 {
		in.ExpressionAttributeNames["#a"] = attrMetricsExpect
		in.ExpressionAttributeValues[":a"] = num(max(1, expect.Milliseconds()))
	}
	_, err := s.db.UpdateItem(ctx, in)
	switch {
	case err == nil:
		return nil
	case isConditionFailed(err):
		return &Error{Op: "hint-worker", Table: table, Key: worker, Err: ErrNotFound}
	}
	return &Error{Op: "hint-worker", Table: table, Key: worker, Err: err}
}

// ListWorkerMetrics returns every worker's metrics, sorted by worker ID. In the
// single-table layout only WORKER_METRIC_STATS rows are read.
func (s *Store) ListWorkerMetrics(ctx context.Context) ([]WorkerMetrics, error) {
	return s.listWorkerMetrics(ctx, true)
}

// listWorkerMetrics scans the worker metrics, consistently or not (half the read units).
func (s *Store) listWorkerMetrics(ctx context.Context, consistent bool) ([]WorkerMetrics, error) {
	table, keyAttr := s.tables.metricsTable()
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(consistent)}
	var out []WorkerMetrics
	for {
		page, err := s.db.Scan(ctx, in)
		if err != nil {
			return nil, &Error{Op: "list-worker-metrics", Table: table, Err: err}
		}
		for _, item := range page.Items {
			if s.tables.SingleTable && stringAttr(item, attrEntityType) != entityWorkerMetricStats {
				continue
			}
			m, err := unmarshalWorkerMetrics(item, keyAttr)
			if err != nil {
				return nil, &Error{Op: "list-worker-metrics", Table: table, Err: err}
			}
			out = append(out, m)
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	sort.Slice(out, func(i, j int) bool { return out[i].WorkerID < out[j].WorkerID })
	return out, nil
}

// GetWorkerMetrics returns worker's metrics row (a consistent read); ErrNotFound when it
// has none.
func (s *Store) GetWorkerMetrics(ctx context.Context, worker string) (WorkerMetrics, error) {
	return s.getWorkerMetrics(ctx, worker, true)
}

// getWorkerMetrics reads worker's metrics row, consistently or not (half a read unit).
func (s *Store) getWorkerMetrics(ctx context.Context, worker string, consistent bool) (WorkerMetrics, error) {
	table, keyAttr := s.tables.metricsTable()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{keyAttr: str(worker)}, ConsistentRead: aws.Bool(consistent)})
	if err != nil {
		return WorkerMetrics{}, &Error{Op: "get-worker-metrics", Table: table, Key: worker, Err: err}
	}
	if len(out.Item) == 0 || s.tables.SingleTable && stringAttr(out.Item, attrEntityType) != entityWorkerMetricStats {
		return WorkerMetrics{}, &Error{Op: "get-worker-metrics", Table: table, Key: worker, Err: ErrNotFound}
	}
	m, err := unmarshalWorkerMetrics(out.Item, keyAttr)
	if err != nil {
		return WorkerMetrics{}, &Error{Op: "get-worker-metrics", Table: table, Key: worker, Err: err}
	}
	return m, nil
}

// AnnounceLeases adds keys to the new leases of worker's metrics row (one conditional
// write of an existing row; its report time is left as it is), so the leader places
// those leases at its next round. A report replaces the whole row: a worker announces
// through Reporter.Announce, whose reports repeat the keys. The leader's periodic scan of
// the lease table finds leases whose announcement it missed.
func (s *Store) AnnounceLeases(ctx context.Context, worker string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	table, keyAttr := s.tables.metricsTable()
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
		Key:                       map[string]types.AttributeValue{keyAttr: str(worker)},
		UpdateExpression:          aws.String("ADD #n :n"),
		ConditionExpression:       aws.String("attribute_exists(#k)"),
		ExpressionAttributeNames:  map[string]string{"#n": attrMetricsNewLeases, "#k": keyAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberSS{Value: append([]string(nil), keys...)}},
	})
	switch {
	case err == nil:
		return nil
	case isConditionFailed(err):
		return &Error{Op: "announce-leases", Table: table, Key: worker, Err: ErrNotFound}
	}
	return &Error{Op: "announce-leases", Table: table, Key: worker, Err: err}
}

// DeleteWorkerMetrics removes a worker's metrics row.
func (s *Store) DeleteWorkerMetrics(ctx context.Context, worker string) error {
	table, keyAttr := s.tables.metricsTable()
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{keyAttr: str(worker)}})
	if err != nil {
		return &Error{Op: "delete-worker-metrics", Table: table, Key: worker, Err: err}
	}
	return nil
}

// DeleteWorkerMetricsIfUnchanged removes a worker's metrics row as it was read (m from
// ListWorkerMetrics): only while its lut still equals m.LastUpdate (or is still absent),
// so a worker that reported again meanwhile keeps its row. It reports whether it deleted
// the row. The leader uses it to clean up rows of workers gone for good.
func (s *Store) DeleteWorkerMetricsIfUnchanged(ctx context.Context, m WorkerMetrics) (bool, error) {
	table, keyAttr := s.tables.metricsTable()
	names := map[string]string{"#k": keyAttr, "#lut": attrMetricsLastUpdate}
	values := map[string]types.AttributeValue{}
	cond := "attribute_exists(#k) AND "
	if m.LastUpdate.IsZero() {
		cond += "attribute_not_exists(#lut)"
	} else {
		cond += "#lut = :lut"
		values[":lut"] = num(m.LastUpdate.Unix())
	}
	if s.tables.SingleTable {
		cond += " AND #et = :et"
		names["#et"] = attrEntityType
		values[":et"] = str(entityWorkerMetricStats)
	}
	in := &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{keyAttr: str(m.WorkerID)},
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: names}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	_, err := s.db.DeleteItem(ctx, in)
	switch {
	case err == nil:
		return true, nil
	case isConditionFailed(err):
		return false, nil
	}
	return false, &Error{Op: "delete-worker-metrics", Table: table, Key: m.WorkerID, Err: err}
}

// MaxShardReadKBps is the most a shard can deliver to one application, in KB/s: 2 MiB/s
// (GetRecords' per-shard limit, and enhanced fan-out's per consumer). No lease is
// measured above it.
const MaxShardReadKBps = 2048

// ThroughputWindow is the time constant of a lease's throughput average: a minute, long
// enough that the catch-up reads after a restart or a move (the shard read at its full
// 2 MiB/s for a few seconds) do not make a lease look hotter than the stream keeps it.
const ThroughputWindow = time.Minute

// ThroughputMeter measures each held lease's throughput in KB/s as what its shard
// sustains: each interval's rate is capped at MaxShardReadKBps, and the rates are
// averaged exponentially with the time constant ThroughputWindow (an interval of length
// dt weighs 1-exp(-dt/ThroughputWindow)). A lease starts from the throughput stored in it
// when the coordinator starts holding it, so a lease that moves keeps its measure. The
// consumer adds the bytes it fetches (Add); the Coordinator samples the rate at every
// renewal and writes it into the lease, where the leader's plan reads it. Safe for
// concurrent use.
type ThroughputMeter struct {
	mu    sync.Mutex
	clock clock.Clock
	byKey map[string]*meterState
}

type meterState struct {
	bytes int64
	since time.Time
	ema   float64
}

// NewThroughputMeter returns a meter timed by clk (clock.Real() when nil).
func NewThroughputMeter(clk clock.Clock) *ThroughputMeter {
	if clk == nil {
		clk = clock.Real()
	}
	return &ThroughputMeter{clock: clk, byKey: map[string]*meterState{}}
}

func (t *ThroughputMeter) state(key string) *meterState {
	st := t.byKey[key]
	if st == nil {
		st = &meterState{since: t.clock.Now()}
		t.byKey[key] = st
	}
	return st
}

// seed starts the average of key at kbps (the throughput stored in the lease) unless the
// meter already measures key.
func (t *ThroughputMeter) seed(key string, kbps float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.byKey[key]; !ok {
		t.state(key).ema = min(max(kbps, 0), MaxShardReadKBps)
	}
}

// Add records n bytes fetched for lease key.
func (t *ThroughputMeter) Add(key string, n int) {
	t.mu.Lock()
	t.state(key).bytes += int64(n)
	t.mu.Unlock()
}

// sample closes the current interval of key and returns the updated average in KB/s.
func (t *ThroughputMeter) sample(key string) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	st := t.state(key)
	dt := now.Sub(st.since)
	if dt <= 0 {
		return st.ema
	}
	rate := min(float64(st.bytes)/1024/dt.Seconds(), MaxShardReadKBps)
	w := -math.Expm1(-dt.Seconds() / ThroughputWindow.Seconds())
	st.ema += w * (rate - st.ema)
	st.bytes, st.since = 0, now
	return st.ema
}

// forget drops the state of key (the lease is no longer held).
func (t *ThroughputMeter) forget(key string) {
	t.mu.Lock()
	delete(t.byKey, key)
	t.mu.Unlock()
}

// Reporter samples this worker's CPU and heartbeats its WorkerMetrics row. Without a CPU
// sampler (or when sampling fails) it reports no CPU statistics, so the leader balances by
// throughput.
type Reporter struct {
	store    *Store
	worker   string
	clock    clock.Clock
	log      *zap.Logger
	cpu      *CPUSampler
	sample   time.Duration
	interval time.Duration

	fence time.Duration

	mu      sync.Mutex
	window  []float64 // samples of the current report interval
	history []float64 // last maxMetricValues reported values
	// liveFrom and liveUntil bound the self-fence's window (WithSelfFence): liveFrom is
	// when the first successful write after the last gap returned, liveUntil the start of
	// the last successful write plus the fence less its margin.
	liveFrom, liveUntil time.Time
	// The fence on the leader lock (WithLeaderFence): lockUntil is, while the lock may be
	// the worker's, the start of its last confirmed heartbeat plus the lock's duration less
	// its margin; zero once it released the lock (confirmed) or knows another worker holds
	// it. rejoin is set when it learnt that it lost the lock (a new leader may have taken
	// its leases at once): it then processes nothing until a successful write that started
	// at or after rejoin returns, and after that only on renewals sent from then on.
	lockUntil, rejoin time.Time
	// hint accumulates the leader's hints returned by the reports since TakeHint last
	// took them; hinted is signalled when one arrives.
	hint   Hint
	hinted chan struct{}
	// announced maps the keys of leases the worker announced (Announce) to the time
	// until which its reports repeat them in the row.
	announced map[string]time.Time
}

// NewReporter returns a metrics reporter for worker.
func NewReporter(store *Store, worker string, opts ...Option) (*Reporter, error) {
	if store == nil || worker == "" {
		return nil, fmt.Errorf("%w: reporter needs a store and a worker ID", ErrInvalidOption)
	}
	o, err := newOptions("NewReporter", forReporter, opts)
	if err != nil {
		return nil, err
	}
	return &Reporter{store: store, worker: worker, clock: o.clock, log: o.log, cpu: o.cpu,
		sample: o.sample, interval: o.report, fence: o.fence, hinted: make(chan struct{}, 1)}, nil
}

// Announce announces keys, leases this worker just created (the children of a shard it
// ended), in its metrics row, so the leader places them at its next round
// (Store.AnnounceLeases). The worker's reports repeat them for two report intervals: a
// report replaces the whole row, and would otherwise erase an announcement the leader
// had not read yet.
func (r *Reporter) Announce(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	until := r.clock.Now().Add(2 * r.interval)
	r.mu.Lock()
	if r.announced == nil {
		r.announced = make(map[string]time.Time, len(keys))
	}
	for _, k := range keys {
		r.announced[k] = until
	}
	r.mu.Unlock()
	return r.store.AnnounceLeases(ctx, r.worker, keys)
}

// Hinted returns a channel that receives a value (coalesced) when a report returned a
// hint the leader left in this worker's row; TakeHint returns it.
func (r *Reporter) Hinted() <-chan struct{} { return r.hinted }

// TakeHint returns the hints the reports returned since the last call (Assigned if any
// had it, the longest Expect) and clears them.
func (r *Reporter) TakeHint() Hint {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hint
	r.hint = Hint{}
	return h
}

// sampleCPU takes one CPU sample into the current window.
func (r *Reporter) sampleCPU() {
	if r.cpu == nil {
		return
	}
	p, ok, err := r.cpu.sample()
	if err != nil {
		r.log.Debug("cpu sample failed", zap.Error(err))
		return
	}
	if ok {
		r.mu.Lock()
		r.window = append(r.window, p)
		if len(r.window) > 3600 {
			r.window = r.window[1:]
		}
		r.mu.Unlock()
	}
}

// Report writes the worker's metrics row: the average of the window's CPU samples
// appended to the last values (-1 when the window has none), the update time, KCL 3.5's
// support code (sup, slu), the report interval, the self-fence, the start of the write
// and the leases announced in the last two report intervals (Announce). A successful
// write extends the self-fence's window from its start.
func (r *Reporter) Report(ctx context.Context) error {
	now := r.clock.Now()
	m := WorkerMetrics{WorkerID: r.worker, LastUpdate: now, Stats: map[string][]float64{}, OperatingRange: map[string][]int64{},
		SupportCode: supportCodeTableMigration, SupportCodeUpdate: now, ReportInterval: r.interval, SelfFence: r.fence, Reported: now}
	r.mu.Lock()
	for k, until := range r.announced {
		if now.Before(until) {
			m.NewLeases = append(m.NewLeases, k)
		} else {
			delete(r.announced, k)
		}
	}
	r.mu.Unlock()
	sort.Strings(m.NewLeases)
	if r.cpu != nil {
		r.mu.Lock()
		v := -1.0
		if len(r.window) > 0 {
			var sum float64
			for _, x := range r.window {
				sum += x
			}
			v = math.Round(sum/float64(len(r.window))*100) / 100
		}
		r.window = r.window[:0]
		r.history = append(r.history, v)
		if len(r.history) > maxMetricValues {
			r.history = r.history[len(r.history)-maxMetricValues:]
		}
		m.Stats[MetricCPU] = append([]float64(nil), r.history...)
		m.OperatingRange[MetricCPU] = []int64{100}
		r.mu.Unlock()
	}
	hint, err := r.store.putWorkerMetrics(ctx, m)
	if err != nil {
		return err
	}
	done := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if hint.Assigned || hint.Expect > 0 {
		r.hint.Assigned = r.hint.Assigned || hint.Assigned
		r.hint.Expect = max(r.hint.Expect, hint.Expect)
		select {
		case r.hinted <- struct{}{}:
		default:
		}
	}
	if !done.Before(r.liveUntil) {
		// A gap: the leader may have judged the worker dead on the previous row at any
		// time until this write landed, and may take its leases after it on counters
		// read before it. Only renewals sent from now on prove a lease still held.
		r.liveFrom = done
	}
	if !r.rejoin.IsZero() && !now.Before(r.rejoin) {
		// The first write since the worker stopped holding the leader lock: a new leader
		// that took the lock from it compares its row before the lock with the row after
		// its reads of the leases, so this write ends its fast takeover.
		r.rejoin, r.liveFrom = time.Time{}, done
	}
	r.liveUntil = now.Add(r.fence - r.fence/50)
	return nil
}

// holdLock records that the worker holds the leader lock until until (its confirmed
// heartbeat's start plus the lock's duration less the margin): past it, Live and Permits
// refuse until the worker heartbeats again or learns it lost the lock. rejoin, when not
// zero, is a time after which the lock may have been taken from the worker (it acquired
// the lock again while it did not know whether it had lost it): Permits then refuses as
// after lostLock(rejoin).
func (r *Reporter) holdLock(until, rejoin time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !rejoin.IsZero() && rejoin.After(r.rejoin) {
		r.rejoin = rejoin
	}
	r.lockUntil = until
}

// lostLock records that the worker learnt at at that the leader lock is another worker's
// (or gone): a new leader may have taken it on expiry and with it this worker's leases, so
// Permits refuses until the first successful write that started at or after at returns,
// and then permits only renewals sent after that return.
func (r *Reporter) lostLock(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lockUntil = time.Time{}
	if at.After(r.rejoin) {
		r.rejoin = at
	}
}

// releasedLock records a confirmed release of the leader lock: no new leader takes a
// released lock for expired, so the fence on the lock ends.
func (r *Reporter) releasedLock() {
	r.mu.Lock()
	r.lockUntil = time.Time{}
	r.mu.Unlock()
}

// lockArmed reports whether the fence on the leader lock is set: the worker holds the
// lock, or left it without knowing whether another worker took it on expiry.
func (r *Reporter) lockArmed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.lockUntil.IsZero()
}

// Permits reports whether the worker may process a lease whose last successful renewal
// was sent at renewed: always without a self-fence; with one, only while the last
// successful write started less than the fence (less its margin) ago, and only if
// renewed is no earlier than the return of the first successful write after the last
// gap. With WithLeaderFence it also refuses while Live does, and after the worker stopped
// holding the leader lock until a write started since returned (renewals sent before
// that return never permit). See docs/lease-cost.md, "Self-fencing", for why this makes
// the leader's fast takeovers safe.
func (r *Reporter) Permits(renewed time.Time) bool {
	if r.fence == 0 {
		return true
	}
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live(now) && r.rejoin.IsZero() && !renewed.Before(r.liveFrom)
}

// Live reports whether the self-fence's window is open (always without a self-fence), and
// while the worker holds the leader lock with WithLeaderFence, whether its last confirmed
// heartbeat is recent enough: a worker whose window is closed renews and discovers
// nothing, and processes nothing.
func (r *Reporter) Live() bool {
	if r.fence == 0 {
		return true
	}
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live(now)
}

// live is Live at now. It must be called with r.mu held.
func (r *Reporter) live(now time.Time) bool {
	return now.Before(r.liveUntil) && (r.lockUntil.IsZero() || now.Before(r.lockUntil))
}

// Run samples and reports until ctx ends. Errors are logged and retried at the next
// report.
func (r *Reporter) Run(ctx context.Context) error {
	next := r.clock.Now()
	for {
		r.sampleCPU()
		if !r.clock.Now().Before(next) {
			if err := r.Report(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("worker metrics report failed", zap.Error(err))
			}
			next = r.clock.Now().Add(r.interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.clock.After(r.sample):
		}
	}
}
