package metrics

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
)

type fakeCloudWatch struct {
	mu    sync.Mutex
	calls []*cloudwatch.PutMetricDataInput
	err   error
}

func (f *fakeCloudWatch) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in)
	return &cloudwatch.PutMetricDataOutput{}, f.err
}

func TestMemoryKeepsStatistics(t *testing.T) {
	m := NewMemory()
	m.Record("RecordsProcessed", UnitCount, 10, Dimension{"ShardId", "a"})
	m.Record("RecordsProcessed", UnitCount, 5, Dimension{"ShardId", "a"})
	m.Record("RecordsProcessed", UnitCount, 7, Dimension{"ShardId", "b"})
	m.Record("RecordsProcessedX", UnitCount, 100)
	a := m.Snapshot()["RecordsProcessed|ShardId=a"]
	if a.Count != 2 || a.Sum != 15 || a.Min != 5 || a.Max != 10 || a.Last != 5 || a.Unit != UnitCount {
		t.Fatalf("stat %+v", a)
	}
	if sum, n := m.Total("RecordsProcessed"); sum != 22 || n != 3 {
		t.Fatalf("total %v/%d", sum, n)
	}
	ss := m.Series()
	// In key order: "X" sorts before "|".
	if len(ss) != 3 || ss[0].Name != "RecordsProcessedX" || ss[1].Dimension("ShardId") != "a" || ss[2].Dimension("ShardId") != "b" {
		t.Fatalf("series %+v", ss)
	}
	if Key("m", Dimension{"A", "1"}, Dimension{"B", "2"}) != "m|A=1|B=2" {
		t.Fatal(Key("m", Dimension{"A", "1"}, Dimension{"B", "2"}))
	}
}

// TestRecordOfKnownSeriesDoesNotAllocate: the producer and the consumer record on their
// hot paths; once a series exists, recording to it allocates nothing.
func TestRecordOfKnownSeriesDoesNotAllocate(t *testing.T) {
	m := NewMemory()
	cw, err := NewCloudWatch(&fakeCloudWatch{}, "ns", WithManualFlush())
	if err != nil {
		t.Fatal(err)
	}
	r := Multi(m, cw)
	dims := []Dimension{{DimStreamName, "s"}, {DimShardID, "shardId-000000000001"}}
	r.Record("UserRecordsPut", UnitCount, 1, dims...)
	if n := testing.AllocsPerRun(1000, func() { r.Record("UserRecordsPut", UnitCount, 1, dims...) }); n != 0 {
		t.Fatalf("%v allocations per Record", n)
	}
}

func TestMulti(t *testing.T) {
	if Multi() != nil || Multi(nil, nil) != nil {
		t.Fatal("Multi of nothing is not nil")
	}
	a := NewMemory()
	if Multi(nil, a) != Recorder(a) {
		t.Fatal("Multi of one recorder is not that recorder")
	}
	b := NewMemory()
	Multi(a, b).Record("m", UnitBytes, 3)
	for _, m := range []*Memory{a, b} {
		if s, n := m.Total("m"); s != 3 || n != 1 {
			t.Fatalf("%v/%d", s, n)
		}
	}
}

func TestCloudWatchBatches(t *testing.T) {
	api := &fakeCloudWatch{}
	cw, err := NewCloudWatch(api, "app", WithFlushInterval(time.Hour), WithMaxSeries(1500))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1200; i++ {
		cw.Record("RecordsProcessed", UnitCount, 1, Dimension{"ShardId", strconv.Itoa(i)})
		cw.Record("RecordsProcessed", UnitCount, 3, Dimension{"ShardId", strconv.Itoa(i)})
	}
	for i := 0; i < 400; i++ {
		cw.Record("DataBytesProcessed", UnitBytes, 1, Dimension{"ShardId", strconv.Itoa(i)})
	}
	if got := cw.Dropped(); got != 100 {
		t.Fatalf("dropped %d, want 100 over the series limit", got)
	}
	if err := cw.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(api.calls) != 2 || len(api.calls[0].MetricData) != MaxDatumsPerCall || len(api.calls[1].MetricData) != 500 {
		t.Fatalf("%d calls", len(api.calls))
	}
	found := false
	for _, in := range api.calls {
		if aws.ToString(in.Namespace) != "app" {
			t.Fatalf("namespace %q", aws.ToString(in.Namespace))
		}
		for _, d := range in.MetricData {
			if aws.ToString(d.MetricName) == "RecordsProcessed" {
				s := d.StatisticValues
				if *s.SampleCount != 2 || *s.Sum != 4 || *s.Minimum != 1 || *s.Maximum != 3 || len(d.Dimensions) != 1 || d.Unit != "Count" {
					t.Fatalf("datum %+v %+v", d, *s)
				}
				found = true
			}
		}
	}
	if !found {
		t.Fatal("no RecordsProcessed datum")
	}
	// A second Close sends only what was recorded since.
	cw.Record("late", UnitCount, 1)
	if err := cw.Close(context.Background()); err != nil || len(api.calls) != 3 || len(api.calls[2].MetricData) != 1 {
		t.Fatalf("second close: %v, %d calls", err, len(api.calls))
	}
}

func TestCloudWatchFlushLoop(t *testing.T) {
	api := &fakeCloudWatch{}
	cw, err := NewCloudWatch(api, "app", WithFlushInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cw.Close(context.Background())
	cw.Record("m", UnitCount, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		api.mu.Lock()
		n := len(api.calls)
		api.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the flush loop sent nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCloudWatchErrors(t *testing.T) {
	for name, f := range map[string]func() error{
		"nil client":      func() error { _, err := NewCloudWatch(nil, "x"); return err },
		"empty namespace": func() error { _, err := NewCloudWatch(&fakeCloudWatch{}, ""); return err },
		"interval":        func() error { _, err := NewCloudWatch(&fakeCloudWatch{}, "x", WithFlushInterval(0)); return err },
		"series":          func() error { _, err := NewCloudWatch(&fakeCloudWatch{}, "x", WithMaxSeries(0)); return err },
		"logger":          func() error { _, err := NewCloudWatch(&fakeCloudWatch{}, "x", WithLogger(nil)); return err },
	} {
		if err := f(); !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	api := &fakeCloudWatch{err: errors.New("boom")}
	cw, err := NewCloudWatch(api, "x", WithManualFlush())
	if err != nil {
		t.Fatal(err)
	}
	cw.Record("m", UnitCount, 1)
	if err := cw.Close(context.Background()); err == nil {
		t.Fatal("send error not reported")
	}
}

// TestCloudWatchSendsWhatMemoryRecords records the same random observations to a Memory
// and to a CloudWatch sink sending to the bundled engine, which checks every call as the
// service does, and reads the data back: every series arrives once with the statistics
// the Memory kept.
func TestCloudWatchSendsWhatMemoryRecords(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	cw, err := NewCloudWatch(enginetest.CloudWatch(e), "Freshet/Metrics", WithManualFlush())
	if err != nil {
		t.Fatal(err)
	}
	mem := NewMemory()
	r := Multi(mem, cw)
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"UserRecordsPut", "BufferingTime", "MillisBehindLatest"}
	units := []Unit{UnitCount, UnitMilliseconds, UnitBytes}
	for i := 0; i < 5000; i++ {
		k := rng.IntN(3)
		var dims []Dimension
		switch rng.IntN(3) {
		case 1:
			dims = []Dimension{{DimStreamName, "s"}}
		case 2:
			dims = []Dimension{{DimStreamName, "s"}, {DimShardID, fmt.Sprintf("shardId-%012d", rng.IntN(700))}}
		}
		r.Record(names[k], units[k], float64(rng.IntN(1000)), dims...)
	}
	if err := cw.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := mem.Series()
	if len(want) <= MaxDatumsPerCall {
		t.Fatalf("only %d series: the test must need more than one call", len(want))
	}
	got := map[string]Stat{}
	for _, name := range names {
		for _, d := range e.Metrics.Datums("Freshet/Metrics", name) {
			var dims []Dimension
			for _, dim := range d.Dimensions {
				dims = append(dims, Dimension{dim.Name, dim.Value})
			}
			k := Key(d.MetricName, dims...)
			if _, dup := got[k]; dup {
				t.Fatalf("series %s sent twice", k)
			}
			s := d.Stats()
			got[k] = Stat{Unit: Unit(d.Unit), Count: int64(s.SampleCount), Sum: s.Sum, Min: s.Minimum, Max: s.Maximum}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("engine has %d series, memory %d", len(got), len(want))
	}
	for _, s := range want {
		g := got[Key(s.Name, s.Dimensions...)]
		w := s.Stat
		w.Last = 0
		if g != w {
			t.Fatalf("%s: engine %+v, memory %+v", Key(s.Name, s.Dimensions...), g, w)
		}
	}
}

func BenchmarkMemoryRecord(b *testing.B) {
	m := NewMemory()
	dims := []Dimension{{DimStreamName, "s"}, {DimShardID, "shardId-000000000001"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.Record("UserRecordsPut", UnitCount, 1, dims...)
	}
}

// plainRecorder records nothing and takes no summaries.
type plainRecorder struct{ n int }

func (p *plainRecorder) Record(string, Unit, float64, ...Dimension) { p.n++ }

// TestRecordStatMatchesRecord: observations handed over summarized (RecordStat) leave
// the same statistics as the same observations recorded one by one, in Memory and
// through Multi; Multi takes summaries only when all its recorders do.
func TestRecordStatMatchesRecord(t *testing.T) {
	one, sum := NewMemory(), NewMemory()
	dims := []Dimension{{Name: DimStreamName, Value: "s"}}
	var st Stat
	for _, v := range []float64{3, 1, 7, 2} {
		one.Record("M", UnitBytes, v, dims...)
		st.Add(UnitBytes, v)
	}
	var half Stat
	half.Add(UnitBytes, 5)
	one.Record("M", UnitBytes, 5, dims...)
	st.Merge(half)
	st.Merge(Stat{}) // adds nothing
	both := Multi(sum, NewMemory())
	sr, ok := both.(StatRecorder)
	if !ok {
		t.Fatal("Multi of two Memory recorders takes no summaries")
	}
	sr.RecordStat("M", st, dims...)
	sr.RecordStat("Empty", Stat{}, dims...)
	got, want := sum.Snapshot(), one.Snapshot()
	if len(got) != 1 || got[Key("M", dims...)] != want[Key("M", dims...)] {
		t.Fatalf("summarized %+v, one by one %+v", got, want)
	}
	if s := want[Key("M", dims...)]; s.Count != 5 || s.Sum != 18 || s.Min != 1 || s.Max != 7 || s.Last != 5 {
		t.Fatalf("one by one %+v", s)
	}
	if _, ok := Multi(NewMemory(), &plainRecorder{}).(StatRecorder); ok {
		t.Fatal("Multi with a recorder that takes no summaries claims to take them")
	}
}
