package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/freshet/freshet/internal/engine/fault"
	"github.com/freshet/freshet/internal/engine/streams"
)

// putThroughHooks puts n records through p (with h among its hooks) and returns each
// record's outcome from its done callback, after checking that the result hook saw the
// same outcome.
func putThroughHooks(t *testing.T, p *Producer, h *recordingHooks, n int) map[string]Result {
	t.Helper()
	ctx := context.WithValue(context.Background(), ctxKey{}, "put-context")
	var mu sync.Mutex
	done := map[string]Result{}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("rec-%05d", i)
		wg.Add(1)
		if err := p.Put(ctx, Record{PartitionKey: keyOf(i, 50), Data: []byte(id)}, func(r Result) {
			mu.Lock()
			done[id] = r
			mu.Unlock()
			wg.Done()
		}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.puts != n || len(h.results) != n {
		t.Fatalf("%d puts, %d results hooked; want %d", h.puts, len(h.results), n)
	}
	for id, r := range done {
		hr := h.results[id]
		if fmt.Sprint(hr.Err) != fmt.Sprint(r.Err) || hr.SequenceNumber != r.SequenceNumber || len(hr.Attempts) != len(r.Attempts) {
			t.Fatalf("%s: done %+v, result hook %+v", id, r, hr)
		}
	}
	return done
}

// failedAttempts counts the failed attempts of the distinct Kinesis records the outcomes
// show (the records of an aggregate share their attempts), all and throttled ones.
func failedAttempts(done map[string]Result) (failed, throttled int) {
	seen := map[string]bool{}
	for _, r := range done {
		if len(r.Attempts) == 0 {
			continue
		}
		k := fmt.Sprintf("%p", &r.Attempts[0])
		if seen[k] {
			continue
		}
		seen[k] = true
		for _, a := range r.Attempts {
			if a.ErrorCode != "" {
				failed++
			}
			if isThrottleCode(a.ErrorCode) {
				throttled++
			}
		}
	}
	return failed, throttled
}

// TestHooksSeeRecordsFailForGood: when records fail for good (their TTL passes while
// every entry is throttled, a call fails with an error retrying cannot fix, throttling
// under WithFailIfThrottled), every record's result hook gets the error its done
// callback gets, and the failure and throttle hooks account for every failed attempt
// with whether it is retried; a failing ListShards is hooked too.
func TestHooksSeeRecordsFailForGood(t *testing.T) {
	t.Run("expired", func(t *testing.T) {
		e := startEngine(t, streams.Config{}, 2)
		if err := e.Streams.SetEntryFaults(streams.EntryFaults{ThrottleRate: 1}); err != nil {
			t.Fatal(err)
		}
		h := newRecordingHooks()
		p := newEngineProducer(t, e, WithHooks(h), WithRecordTTL(300*time.Millisecond), WithMetrics(MetricsNone, GranularityGlobal))
		done := putThroughHooks(t, p, h, 200)
		for id, r := range done {
			if !errors.Is(r.Err, ErrRecordExpired) {
				t.Fatalf("%s: %v, want ErrRecordExpired", id, r.Err)
			}
		}
		// Every entry sent was throttled: the failure and throttle hooks see each one.
		h.mu.Lock()
		defer h.mu.Unlock()
		sent := 0
		for _, b := range h.batches {
			sent += b.Records
		}
		for _, f := range h.failures {
			if f.Op != "PutRecords" || f.ShardID == "" || f.ErrorCode != "ProvisionedThroughputExceededException" || !f.Retryable || f.Records != 1 {
				t.Fatalf("failure %+v", f)
			}
		}
		for _, th := range h.throttle {
			if th.Op != "PutRecords" || th.ShardID == "" || th.Records != 1 {
				t.Fatalf("throttle %+v", th)
			}
		}
		if sent == 0 || len(h.failures) != sent || len(h.throttle) != sent {
			t.Fatalf("%d failures and %d throttles hooked for %d entries sent", len(h.failures), len(h.throttle), sent)
		}
	})
	t.Run("fatal call error", func(t *testing.T) {
		e := startEngine(t, streams.Config{}, 2)
		e.Faults.Set("Kinesis.PutRecords", fault.Rule{ErrorRate: 1, ErrorCode: "AccessDeniedException"})
		h := newRecordingHooks()
		p := newEngineProducer(t, e, WithHooks(h), WithMetrics(MetricsNone, GranularityGlobal))
		done := putThroughHooks(t, p, h, 200)
		var se *ServiceError
		for id, r := range done {
			if !errors.As(r.Err, &se) || se.Code != "AccessDeniedException" || len(r.Attempts) != 1 {
				t.Fatalf("%s: %v after %d attempts, want one AccessDeniedException", id, r.Err, len(r.Attempts))
			}
		}
		failed, _ := failedAttempts(done)
		h.mu.Lock()
		defer h.mu.Unlock()
		records, sent := 0, 0
		for _, f := range h.failures {
			if f.Op != "PutRecords" || f.ShardID != "" || f.ErrorCode != "AccessDeniedException" || f.Retryable || f.Records < 1 {
				t.Fatalf("failure %+v", f)
			}
			records += f.Records
		}
		for _, b := range h.batches {
			sent += b.Records
		}
		if records != failed || sent != failed || len(h.throttle) != 0 {
			t.Fatalf("failures hooked for %d Kinesis records, batches sent %d, %d throttles; the outcomes show %d failed sends", records, sent, len(h.throttle), failed)
		}
	})
	t.Run("fail if throttled", func(t *testing.T) {
		e := startEngine(t, streams.Config{}, 2)
		if err := e.Streams.SetEntryFaults(streams.EntryFaults{ThrottleRate: 1}); err != nil {
			t.Fatal(err)
		}
		h := newRecordingHooks()
		p := newEngineProducer(t, e, WithHooks(h), WithFailIfThrottled(true), WithMetrics(MetricsNone, GranularityGlobal))
		done := putThroughHooks(t, p, h, 200)
		for id, r := range done {
			if !errors.Is(r.Err, ErrThrottled) || len(r.Attempts) != 1 {
				t.Fatalf("%s: %v after %d attempts, want ErrThrottled after one", id, r.Err, len(r.Attempts))
			}
		}
		failed, throttled := failedAttempts(done)
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, f := range h.failures {
			if f.Retryable || f.ShardID == "" {
				t.Fatalf("failure %+v under WithFailIfThrottled", f)
			}
		}
		if len(h.failures) != failed || len(h.throttle) != throttled || throttled != failed {
			t.Fatalf("%d failures, %d throttles hooked; the outcomes show %d failed, %d throttled", len(h.failures), len(h.throttle), failed, throttled)
		}
	})
	t.Run("first ListShards", func(t *testing.T) {
		e := startEngine(t, streams.Config{}, 2)
		e.Faults.Set("Kinesis.ListShards", fault.Rule{ErrorRate: 1, ErrorCode: "LimitExceededException"})
		h := newRecordingHooks()
		p := newEngineProducer(t, e, WithHooks(h), WithMetrics(MetricsNone, GranularityGlobal))
		ctx := context.WithValue(context.Background(), ctxKey{}, "put-context")
		_, err := p.PutAsync(ctx, Record{PartitionKey: "k", Data: []byte("rec-00000")})
		var se *ServiceError
		if !errors.As(err, &se) || se.Op != "ListShards" || se.Code != "LimitExceededException" {
			t.Fatalf("Put while ListShards fails: %v", err)
		}
		h.mu.Lock()
		if h.puts != 0 {
			t.Fatalf("record-put hook called %d times for a record whose stream is unknown", h.puts)
		}
		want := CallFailure{Op: "ListShards", Stream: testStream, ErrorCode: "LimitExceededException", Records: 1}
		if len(h.failures) != 1 || h.failures[0] != want {
			t.Fatalf("failures %+v, want one %+v", h.failures, want)
		}
		if wantT := (Throttle{Op: "ListShards", Stream: testStream, ErrorCode: "LimitExceededException", Records: 1}); len(h.throttle) != 1 || h.throttle[0] != wantT {
			t.Fatalf("throttles %+v, want one %+v", h.throttle, wantT)
		}
		h.mu.Unlock()
		e.Faults.Reset()
		if r, err := p.PutSync(ctx, Record{PartitionKey: "k", Data: []byte("rec-00001")}); err != nil || r.Err != nil {
			t.Fatalf("Put after ListShards recovered: %v, %v", err, r)
		}
	})
}
