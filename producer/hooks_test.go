package producer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/internal/engine/fault"
	"github.com/freshet/freshet/internal/engine/streams"
)

type ctxKey struct{}

// recordingHooks implements every producer hook and keeps what it saw.
type recordingHooks struct {
	mu       sync.Mutex
	puts     int
	results  map[string]Result // by the record's data
	early    map[string]bool   // the result hook ran before done
	batches  []BatchSent
	failures []CallFailure
	throttle []Throttle
	ctxOK    bool
}

func newRecordingHooks() *recordingHooks {
	return &recordingHooks{results: map[string]Result{}, early: map[string]bool{}, ctxOK: true}
}

func (h *recordingHooks) OnRecordPut(ctx context.Context, rec *Record) func(Result) {
	h.mu.Lock()
	h.puts++
	if ctx.Value(ctxKey{}) != "put-context" {
		h.ctxOK = false
	}
	h.mu.Unlock()
	id := string(rec.Data)
	rec.Tags = append(rec.Tags, Tag{Key: "id", Value: id})
	return func(r Result) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, dup := h.results[id]; dup {
			h.results[id] = Result{Err: errors.New("result hook called twice")}
			return
		}
		h.results[id] = r
		h.early[id] = true
	}
}

func (h *recordingHooks) OnBatchSent(b BatchSent) {
	h.mu.Lock()
	h.batches = append(h.batches, b)
	h.mu.Unlock()
}

func (h *recordingHooks) OnCallFailed(f CallFailure) {
	h.mu.Lock()
	h.failures = append(h.failures, f)
	h.mu.Unlock()
}

func (h *recordingHooks) OnThrottled(t Throttle) {
	h.mu.Lock()
	h.throttle = append(h.throttle, t)
	h.mu.Unlock()
}

// TestHooksFireUnderFaults: with throttled and failing entries and whole PutRecords
// calls failing in the engine, every hook fires with the values the records' outcomes
// show: one put and one result per record (the result before the record's own
// callback), the Kinesis records of every call sent, every failed attempt, every
// throttled one; and the tags the put hook added are stored with each record.
func TestHooksFireUnderFaults(t *testing.T) {
	e := startEngine(t, streams.Config{}, 4)
	if err := e.Streams.SetEntryFaults(streams.EntryFaults{ThrottleRate: 0.15, InternalFailureRate: 0.05}); err != nil {
		t.Fatal(err)
	}
	e.Faults.Set("Kinesis.PutRecords", fault.Rule{ErrorRate: 0.3, ErrorCode: "InternalFailure"})
	h := newRecordingHooks()
	p := newEngineProducer(t, e, WithAggregationMaxCount(20), WithCollectionMaxCount(10), WithHooks(h), WithMetrics(MetricsNone, GranularityGlobal))
	const n = 3000
	ctx := context.WithValue(context.Background(), ctxKey{}, "put-context")
	var mu sync.Mutex
	done := map[string]Result{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("rec-%05d", i)
		err := p.Put(ctx, Record{PartitionKey: keyOf(i, 200), Data: []byte(id)}, func(r Result) {
			h.mu.Lock()
			early := h.early[id]
			h.mu.Unlock()
			mu.Lock()
			defer mu.Unlock()
			if !early {
				r.Err = errors.New("done called before the result hook")
			}
			done[id] = r
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(fctx); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.puts != n || !h.ctxOK || len(h.results) != n {
		t.Fatalf("%d puts (context passed: %v), %d results; want %d", h.puts, h.ctxOK, len(h.results), n)
	}
	// Distinct Kinesis records (the records of one aggregate share a sequence number).
	sends, failedAttempts, throttledAttempts := 0, 0, 0
	seen := map[string]bool{}
	for id, r := range done {
		hr := h.results[id]
		if r.Err != nil || hr.Err != nil || hr.SequenceNumber != r.SequenceNumber || hr.ShardID != r.ShardID {
			t.Fatalf("%s: done %+v, hook %+v", id, r, hr)
		}
		if k := r.ShardID + "/" + r.SequenceNumber; !seen[k] {
			seen[k] = true
			sends += len(r.Attempts)
			for _, a := range r.Attempts {
				if a.ErrorCode != "" {
					failedAttempts++
				}
				if isThrottleCode(a.ErrorCode) {
					throttledAttempts++
				}
			}
		}
	}
	sent := 0
	for _, b := range h.batches {
		if b.Stream != testStream || b.Records < 1 || b.Records > MaxPutRecordsCount || b.Duration <= 0 {
			t.Fatalf("batch %+v", b)
		}
		sent += b.Records
	}
	if sent != sends {
		t.Fatalf("batches sent %d Kinesis records, the outcomes show %d sends", sent, sends)
	}
	failed, wholeCalls := 0, 0
	for _, f := range h.failures {
		if f.Op != "PutRecords" || f.Stream != testStream || !f.Retryable || f.ErrorCode == "" {
			t.Fatalf("failure %+v", f)
		}
		if f.ShardID == "" {
			wholeCalls++
		} else if f.Records != 1 || !strings.HasPrefix(f.ShardID, "shardId-") {
			t.Fatalf("entry failure %+v", f)
		}
		failed += f.Records
	}
	if failed != failedAttempts || wholeCalls == 0 {
		t.Fatalf("failures hooked for %d Kinesis records (%d whole calls), the outcomes show %d failed attempts", failed, wholeCalls, failedAttempts)
	}
	throttled := 0
	for _, th := range h.throttle {
		if th.ErrorCode != "ProvisionedThroughputExceededException" || th.ShardID == "" {
			t.Fatalf("throttle %+v", th)
		}
		throttled += th.Records
	}
	if throttled != throttledAttempts || throttled == 0 {
		t.Fatalf("throttles hooked for %d records, the outcomes show %d", throttled, throttledAttempts)
	}
	// Every stored user record carries the tag the hook gave it.
	all, err := e.Streams.Records(testStream)
	if err != nil {
		t.Fatal(err)
	}
	tagged := map[string]bool{}
	for _, r := range all {
		urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: r.PartitionKey, Data: r.Data})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range urs {
			if tags := u.Tags(); len(tags) != 1 || tags[0] != (Tag{Key: "id", Value: string(u.Data)}) {
				t.Fatalf("record %q stored with tags %+v", u.Data, tags)
			}
			tagged[string(u.Data)] = true
		}
	}
	if len(tagged) != n {
		t.Fatalf("%d distinct tagged records stored, want %d", len(tagged), n)
	}
	t.Logf("%d calls, %d sends, %d failed attempts (%d whole calls), %d throttled", len(h.batches), sends, failed, wholeCalls, throttled)
}

type oversizeTagHook struct{ got []Result }

func (h *oversizeTagHook) OnRecordPut(_ context.Context, rec *Record) func(Result) {
	rec.Tags = []Tag{{Key: "big", Value: strings.Repeat("x", DefaultMaxRecordSize)}}
	return func(r Result) { h.got = append(h.got, r) }
}

// TestRecordPutHookSeesPutErrors: when Put fails after the hook ran (here the hook's tag
// makes the record too large), the hook's function gets Put's error, once.
func TestRecordPutHookSeesPutErrors(t *testing.T) {
	h := &oversizeTagHook{}
	p := newTestProducer(t, newFake(1), WithHooks(h))
	err := p.Put(context.Background(), Record{PartitionKey: "k", Data: []byte("d")}, func(Result) { t.Error("done called for a record Put refused") })
	if !errors.Is(err, ErrRecordTooLarge) || len(h.got) != 1 || !errors.Is(h.got[0].Err, ErrRecordTooLarge) || h.got[0].Stream != testStream {
		t.Fatalf("Put: %v; hook got %+v", err, h.got)
	}
}

func TestTagsNeedAggregation(t *testing.T) {
	p := newTestProducer(t, newFake(1), WithAggregation(false))
	err := p.Put(context.Background(), Record{PartitionKey: "k", Data: []byte("d"), Tags: []Tag{{Key: "a", Value: "b"}}}, nil)
	if !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Put with tags on a plain producer: %v", err)
	}
	p = newTestProducer(t, newFake(1))
	err = p.Put(context.Background(), Record{PartitionKey: "k", Data: []byte("d"), Tags: []Tag{{Key: ""}}}, nil)
	if !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Put with an empty tag key: %v", err)
	}
}

func TestWithHooksValidates(t *testing.T) {
	for _, h := range []Hook{nil, 42, struct{}{}} {
		if _, err := New(newFake(1), WithStream(testStream), WithHooks(h)); !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("hook %v: %v", h, err)
		}
	}
	if _, err := New(newFake(1), WithMetricsRecorder(nil)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("nil recorder: %v", err)
	}
}
