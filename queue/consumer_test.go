package queue

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/metrics"
)

// fixture is an engine with an ON_DEMAND stream and a queue on it.
type fixture struct {
	e     *engine.Engine
	k     *kinesis.Client
	arn   string // queue
	sarn  string // stream
	ctx   context.Context
	total int
}

func newFixture(t testing.TB, shards int, attrs *types.QueueAttributes) *fixture {
	t.Helper()
	e := enginetest.Start(t, engine.Config{Streams: streams.Config{OnDemandShards: shards, OnDemandWindow: -1}})
	k := enginetest.Kinesis(e)
	if err := e.Streams.CreateOnDemandStream("s", 0); err != nil {
		t.Fatal(err)
	}
	f := &fixture{e: e, k: k, sarn: e.Streams.StreamARN("s"), ctx: context.Background()}
	out, err := k.CreateQueue(f.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("q"),
		StreamConfigurationList: []types.QueueStreamConfiguration{{StreamARN: aws.String(f.sarn),
			StartingPosition: &types.QueueStartingPosition{Type: types.QueueStartingPositionTypeTrimHorizon}}},
		QueueAttributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	f.arn = *out.QueueDescription.QueueARN
	return f
}

// put writes records n..n+count-1 with their index as data.
func (f *fixture) put(t testing.TB, count int) {
	t.Helper()
	var entries []types.PutRecordsRequestEntry
	for i := f.total; i < f.total+count; i++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("k" + strconv.Itoa(i%100)), Data: []byte(strconv.Itoa(i))})
		if len(entries) == 500 || i == f.total+count-1 {
			out, err := f.k.PutRecords(f.ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(f.sarn), Records: entries})
			if err != nil || *out.FailedRecordCount != 0 {
				t.Fatalf("put: %v %+v", err, out)
			}
			entries = nil
		}
	}
	f.total += count
}

func (f *fixture) stats(t testing.TB) streams.QueueStats {
	t.Helper()
	st, err := f.e.Streams.QueueStats(f.arn)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func waitFor(t testing.TB, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// seen counts handler calls per record data.
type seen struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *seen) add(r *Record) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[string(r.Data)]++
	return len(s.n)
}

func (s *seen) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.n)
}

func runConsumer(t testing.TB, c *Consumer, h Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(60 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
}

// TestConsumerAcknowledgesEveryRecord: 5,000 records over four shards are each handled
// once and acknowledged in batches; the queue is empty afterwards.
func TestConsumerAcknowledgesEveryRecord(t *testing.T) {
	f := newFixture(t, 4, nil)
	f.put(t, 5000)
	c, err := New(f.k, f.arn, WithWaitTime(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	stop := runConsumer(t, c, func(_ context.Context, r *Record) error {
		if !r.HasPartitionKey() || r.ID == "" || r.ReceiveCount != 1 {
			return errors.New("bad record")
		}
		s.add(r)
		return nil
	})
	waitFor(t, "5,000 records acknowledged", 60*time.Second, func() bool { return c.Stats().Acknowledged == 5000 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Succeeded != 5000 || st.Failed != 0 || st.AckFailed != 0 || st.InFlight != 0 || s.distinct() != 5000 {
		t.Fatalf("stats %+v, %d distinct", st, s.distinct())
	}
	if st.Receives > 5000/5 {
		t.Fatalf("%d receives for 5,000 records: receives are not batched", st.Receives)
	}
	if q := f.stats(t); q.Loaded != 0 {
		t.Fatalf("queue still holds %+v", q)
	}
}

// TestConsumerExtendsVisibility: a handler that runs three times the visibility
// timeout keeps its record: no other receiver gets it, and the visibility was extended.
func TestConsumerExtendsVisibility(t *testing.T) {
	f := newFixture(t, 1, nil)
	f.put(t, 3)
	c, err := New(f.k, f.arn, WithVisibilityTimeout(time.Second), WithWaitTime(0), WithReceivers(3))
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	stop := runConsumer(t, c, func(ctx context.Context, r *Record) error {
		s.add(r)
		if string(r.Data) == "0" {
			select {
			case <-time.After(3 * time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	waitFor(t, "3 records acknowledged", 30*time.Second, func() bool { return c.Stats().Acknowledged == 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for d, n := range s.n {
		if n != 1 {
			t.Fatalf("record %s handled %d times: its visibility was not extended", d, n)
		}
	}
	if c.Stats().Extended == 0 {
		t.Fatal("no visibility extension counted")
	}
}

// TestConsumerBoundsInFlight: with handlers blocked, the consumer holds at most
// WithMaxInFlight records, then takes more as they finish.
func TestConsumerBoundsInFlight(t *testing.T) {
	f := newFixture(t, 2, nil)
	f.put(t, 200)
	c, err := New(f.k, f.arn, WithMaxInFlight(15), WithHandlers(50), WithWaitTime(0))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var running, peak atomic.Int64
	stop := runConsumer(t, c, func(ctx context.Context, r *Record) error {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		defer running.Add(-1)
		<-release
		return nil
	})
	waitFor(t, "15 records in flight", 30*time.Second, func() bool { return c.Stats().InFlight == 15 })
	time.Sleep(100 * time.Millisecond)
	if st := c.Stats(); st.InFlight > 15 || st.Received > 15 || peak.Load() > 15 {
		t.Fatalf("bound of 15 passed: %+v, peak handlers %d", st, peak.Load())
	}
	close(release)
	waitFor(t, "200 records acknowledged", 60*time.Second, func() bool { return c.Stats().Acknowledged == 200 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestConsumerShutdownReleasesUnstarted: at shutdown the running handler finishes and
// is acknowledged, and the records received but not started go back to the queue at
// once (another consumer gets them without waiting out the visibility timeout).
func TestConsumerShutdownReleasesUnstarted(t *testing.T) {
	f := newFixture(t, 1, nil)
	f.put(t, 10)
	c, err := New(f.k, f.arn, WithHandlers(1), WithReceivers(1), WithWaitTime(0), WithVisibilityTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 1)
	finish := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(ctx context.Context, r *Record) error {
			select {
			case started <- struct{}{}:
				<-finish
			default:
			}
			return nil
		})
	}()
	<-started
	waitFor(t, "10 records received", 10*time.Second, func() bool { return c.Stats().Received == 10 })
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(finish)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Acknowledged != 1 || st.Released != 9 || st.InFlight != 0 {
		t.Fatalf("after shutdown: %+v, want 1 acknowledged and 9 released", st)
	}
	if q := f.stats(t); q.Loaded != 9 || q.InFlight != 0 {
		t.Fatalf("queue after shutdown: %+v, want 9 visible records", q)
	}
}

// TestDeadLettersExactlyTheFailingRecords: a handler that always fails 1% of the
// records: exactly those become dead-letter records after MaxReceiveCount receives;
// restored, a fixed handler processes them.
func TestDeadLettersExactlyTheFailingRecords(t *testing.T) {
	f := newFixture(t, 2, &types.QueueAttributes{DeadLetterConfiguration: &types.DeadLetterConfiguration{
		TargetType: types.TargetTypeBuiltIn, MaxReceiveCount: aws.Int32(3)}})
	f.put(t, 5000)
	failing := func(r *Record) bool { n, _ := strconv.Atoi(string(r.Data)); return n%100 == 7 }
	c, err := New(f.k, f.arn, WithFailurePolicy(FailureRetryNow), WithWaitTime(0))
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, c, func(_ context.Context, r *Record) error {
		if failing(r) {
			return errors.New("cannot process")
		}
		return nil
	})
	waitFor(t, "50 dead letters", 60*time.Second, func() bool { q := f.stats(t); return q.DeadLetter == 50 && q.Loaded == 50 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Acknowledged != 4950 || st.Failed != 150 {
		t.Fatalf("stats %+v, want 4,950 acknowledged and 150 failures (50 records x 3 receives)", st)
	}
	dl, err := NewDeadLetters(f.k, f.arn)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := dl.Receive(f.ctx, 1000, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 50 {
		t.Fatalf("%d dead letters received, want 50", len(recs))
	}
	for _, r := range recs {
		if !failing(r) || r.ReceiveCount < 3 {
			t.Fatalf("dead letter %q (receive count %d) is not one of the failing records", r.Data, r.ReceiveCount)
		}
	}
	refused, err := dl.Restore(f.ctx, recs)
	if err != nil || len(refused) != 0 {
		t.Fatalf("restore: %v %v", err, refused)
	}
	fixed, err := New(f.k, f.arn, WithWaitTime(0))
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	stop = runConsumer(t, fixed, func(_ context.Context, r *Record) error {
		if !failing(r) || r.ReceiveCount != 1 {
			return errors.New("unexpected record")
		}
		s.add(r)
		return nil
	})
	waitFor(t, "restored records processed", 60*time.Second, func() bool { return fixed.Stats().Acknowledged == 50 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s.distinct() != 50 || f.stats(t).Loaded != 0 {
		t.Fatalf("%d restored records processed, queue %+v", s.distinct(), f.stats(t))
	}
}

// TestRunBatchPartialFailure: a batch handler's per-record errors: successes are
// acknowledged, failures stay in flight under FailureLeave.
func TestRunBatchPartialFailure(t *testing.T) {
	f := newFixture(t, 1, nil)
	f.put(t, 100)
	c, err := New(f.k, f.arn, WithWaitTime(0), WithVisibilityTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var batches atomic.Int64
	go func() {
		done <- c.RunBatch(ctx, func(_ context.Context, recs []*Record) []error {
			batches.Add(1)
			errs := make([]error, len(recs))
			for i, r := range recs {
				if n, _ := strconv.Atoi(string(r.Data)); n%2 == 1 {
					errs[i] = errors.New("odd")
				}
			}
			return errs
		})
	}()
	waitFor(t, "50 acknowledged", 30*time.Second, func() bool { return c.Stats().Acknowledged == 50 && c.Stats().Failed == 50 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if q := f.stats(t); q.InFlight != 50 || q.Loaded != 50 {
		t.Fatalf("queue %+v, want the 50 failures in flight", q)
	}
	if b := batches.Load(); b > 50 {
		t.Fatalf("%d batches for 100 records", b)
	}
}

// TestRunStopsOnMissingQueue: Run returns the service's error when the queue does
// not exist, rather than retrying forever.
func TestRunStopsOnMissingQueue(t *testing.T) {
	f := newFixture(t, 1, nil)
	if _, err := f.k.DeleteQueue(f.ctx, &kinesis.DeleteQueueInput{QueueARN: aws.String(f.arn)}); err != nil {
		t.Fatal(err)
	}
	c, err := New(f.k, f.arn, WithWaitTime(0))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(context.Background(), func(context.Context, *Record) error { return nil })
	if err == nil {
		t.Fatal("Run on a deleted queue returned nil")
	}
	if !errors.Is(c.Run(context.Background(), func(context.Context, *Record) error { return nil }), ErrAlreadyRun) {
		t.Fatal("second Run did not fail with ErrAlreadyRun")
	}
}

func TestNewValidates(t *testing.T) {
	f := newFixture(t, 1, nil)
	for name, opts := range map[string][]Option{
		"receivers 0":       {WithReceivers(0)},
		"wait 21 s":         {WithWaitTime(21 * time.Second)},
		"wait 1.5 s":        {WithWaitTime(1500 * time.Millisecond)},
		"visibility 0":      {WithVisibilityTimeout(0)},
		"visibility 13 h":   {WithVisibilityTimeout(13 * time.Hour)},
		"in flight 0":       {WithMaxInFlight(0)},
		"bytes 0":           {WithMaxInFlightBytes(0)},
		"handlers 0":        {WithHandlers(0)},
		"ack interval 0":    {WithAckInterval(0)},
		"policy 9":          {WithFailurePolicy(9)},
		"shutdown 0":        {WithShutdownTimeout(0)},
		"backoff":           {WithRetryBackoff(time.Second, time.Millisecond)},
		"logger nil":        {WithLogger(nil)},
		"metrics nil":       {WithMetrics(nil)},
		"nil option":        {nil},
		"in flight < recvs": {WithMaxInFlight(3), WithReceivers(8)},
	} {
		if _, err := New(f.k, f.arn, opts...); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := New(nil, f.arn); !errors.Is(err, ErrInvalidOption) {
		t.Error("nil API accepted")
	}
	if _, err := New(f.k, f.sarn); !errors.Is(err, ErrInvalidOption) {
		t.Error("a stream ARN accepted as a queue ARN")
	}
	c, _ := New(f.k, f.arn)
	if err := c.Run(context.Background(), nil); !errors.Is(err, ErrInvalidOption) {
		t.Error("nil handler accepted")
	}
	if _, err := NewDeadLetters(f.k, "nope"); !errors.Is(err, ErrInvalidOption) {
		t.Error("bad dead-letter ARN accepted")
	}
}

// deadLetters makes the fixture's next n records dead letters: a queue with
// MaxReceiveCount 1 (newFixture's attrs) receives them once and makes them visible again.
func (f *fixture) deadLetters(t testing.TB, n int) {
	t.Helper()
	f.put(t, n)
	for got := 0; got < n; {
		out, err := f.k.ReceiveQueueRecords(f.ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(f.arn), Limit: aws.Int32(10), WaitTimeSeconds: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		var entries []types.UpdateQueueRecordsVisibilityRequestEntry
		for _, r := range out.QueueRecords {
			entries = append(entries, types.UpdateQueueRecordsVisibilityRequestEntry{ReceiptHandle: r.ReceiptHandle, VisibilityTimeoutSeconds: aws.Int32(0)})
		}
		if len(entries) > 0 {
			if _, err := f.k.UpdateQueueRecordsVisibility(f.ctx, &kinesis.UpdateQueueRecordsVisibilityInput{QueueARN: aws.String(f.arn), Entries: entries}); err != nil {
				t.Fatal(err)
			}
		}
		got += len(entries)
	}
	waitFor(t, "dead letters", 10*time.Second, func() bool { return f.stats(t).DeadLetter >= n })
}

func ids(recs []*Record) map[string]bool {
	m := make(map[string]bool, len(recs))
	for _, r := range recs {
		m[r.ID] = true
	}
	return m
}

// TestDeadLettersVisibilityAndAcknowledge: SetVisibility hides received dead-letter
// records for a while or (Release) returns them at once, Acknowledge discards them, and
// a handle that is no longer valid comes back as a refused entry with the service's code.
func TestDeadLettersVisibilityAndAcknowledge(t *testing.T) {
	f := newFixture(t, 2, &types.QueueAttributes{DeadLetterConfiguration: &types.DeadLetterConfiguration{
		TargetType: types.TargetTypeBuiltIn, MaxReceiveCount: aws.Int32(1)}})
	f.deadLetters(t, 25)
	dl, err := NewDeadLetters(f.k, f.arn)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := dl.Receive(f.ctx, 100, time.Minute)
	if err != nil || len(recs) != 25 {
		t.Fatalf("received %d dead letters (%v), want 25", len(recs), err)
	}
	if again, err := dl.Receive(f.ctx, 100, time.Minute); err != nil || len(again) != 0 {
		t.Fatalf("%d dead letters visible while all are held (%v)", len(again), err)
	}
	released, acked, hidden := recs[:5], recs[5:10], recs[10:]
	if refused, err := dl.Release(f.ctx, released); err != nil || len(refused) != 0 {
		t.Fatalf("release: %v %v", err, refused)
	}
	if refused, err := dl.Acknowledge(f.ctx, acked); err != nil || len(refused) != 0 {
		t.Fatalf("acknowledge: %v %v", err, refused)
	}
	if refused, err := dl.SetVisibility(f.ctx, hidden, 2*time.Second); err != nil || len(refused) != 0 {
		t.Fatalf("set visibility: %v %v", err, refused)
	}
	back, err := dl.Receive(f.ctx, 100, time.Minute)
	if err != nil || len(back) != 5 {
		t.Fatalf("%d dead letters visible after the release (%v), want 5", len(back), err)
	}
	for id := range ids(back) {
		if !ids(released)[id] {
			t.Fatalf("record %s visible, but it was not released", id)
		}
	}
	if st := f.stats(t); st.Loaded != 20 || st.DeadLetter+st.DeadLetterInFlight != 20 {
		t.Fatalf("queue %+v after acknowledging 5 of 25 dead letters", st)
	}
	var later []*Record
	waitFor(t, "the hidden dead letters", 10*time.Second, func() bool {
		r, err := dl.Receive(f.ctx, 100, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		later = append(later, r...)
		return len(later) >= 15
	})
	if len(later) != 15 || len(ids(later)) != 15 {
		t.Fatalf("%d dead letters back after their visibility, want the 15 hidden", len(later))
	}
	refused, err := dl.Acknowledge(f.ctx, acked) // handles already used
	if err != nil || len(refused) != 5 {
		t.Fatalf("acknowledging stale handles: %v, %d refused, want 5", err, len(refused))
	}
	if refused[0].Code == "" || refused[0].Record != acked[0] {
		t.Fatalf("refused entry %+v", refused[0])
	}
	for _, d := range []time.Duration{-time.Second, 1500 * time.Millisecond, 12*time.Hour + time.Second} {
		if _, err := dl.SetVisibility(f.ctx, hidden, d); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("SetVisibility(%v): %v, want ErrInvalidOption", d, err)
		}
	}
	if _, err := dl.Receive(f.ctx, 0, time.Second); !errors.Is(err, ErrInvalidOption) {
		t.Error("Receive of 0 accepted")
	}
}

// TestConsumerMetrics: every metric agrees with what happened: records received,
// processed (with their bytes) and failed, acknowledgements, releases of failures
// (FailureRetryNow) and an extension for a slow handler, each with the queue's ARN.
func TestConsumerMetrics(t *testing.T) {
	f := newFixture(t, 2, nil)
	f.put(t, 200)
	m := metrics.NewMemory()
	c, err := New(f.k, f.arn, WithWaitTime(0), WithMetrics(m), WithFailurePolicy(FailureRetryNow), WithVisibilityTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	bytes := 0
	for i := 0; i < 200; i++ {
		bytes += len(strconv.Itoa(i))
	}
	stop := runConsumer(t, c, func(_ context.Context, r *Record) error {
		n, _ := strconv.Atoi(string(r.Data))
		if n == 5 {
			time.Sleep(2500 * time.Millisecond)
		}
		if n%10 == 3 && r.ReceiveCount == 1 {
			return errors.New("first delivery fails")
		}
		return nil
	})
	waitFor(t, "200 acknowledged", 30*time.Second, func() bool { return c.Stats().Acknowledged == 200 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	for _, w := range []struct {
		name  string
		sum   float64
		count int64 // -1: any
	}{
		{MetricRecordsReceived, 220, st.Receives},
		{MetricReceiveTime, -1, st.Receives},
		{MetricReceiveFailure, 0, 0},
		{MetricRecordsProcessed, 200, -1},
		{MetricDataBytesProcessed, float64(bytes), -1},
		{MetricRecordsFailed, 20, 20},
		{MetricHandlerTime, -1, 220},
		{MetricRecordsAcknowledged, 200, -1},
		{MetricAcknowledgeFailure, 0, 0},
		{MetricRecordsReleased, 20, -1},
	} {
		sum, count := m.Total(w.name)
		if w.sum >= 0 && sum != w.sum || w.count >= 0 && count != w.count {
			t.Errorf("%s: sum %v over %d observations, want %v over %d", w.name, sum, count, w.sum, w.count)
		}
	}
	if sum, _ := m.Total(MetricVisibilityExtended); sum < 1 || int64(sum) != st.Extended {
		t.Errorf("%s: %v, want at least 1 and Stats().Extended %d", MetricVisibilityExtended, sum, st.Extended)
	}
	if _, count := m.Total(MetricRecordsInFlight); count == 0 {
		t.Errorf("%s never recorded", MetricRecordsInFlight)
	}
	for _, s := range m.Series() {
		if s.Dimension(DimQueueARN) != f.arn {
			t.Errorf("series %s without the queue's ARN", s.Name)
		}
	}
}
