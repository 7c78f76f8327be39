package consumer

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	fproducer "github.com/freshet/freshet/producer"
)

// poisonStream is a stream on the engine holding n records key#i, one of which (the
// poison) every handler call containing it fails on, and a destination stream.
type poisonStream struct {
	e        *engine.Engine
	kin      *kinesis.Client
	payloads []string
	poison   string
	poisonAt types.PutRecordsResultEntry
	last     map[string]string // shard -> last sequence number
}

func newPoisonStream(t *testing.T, n, poisonAt int) *poisonStream {
	t.Helper()
	e := enginetest.Start(t, engine.Config{})
	ps := &poisonStream{e: e, kin: enginetest.Kinesis(e), last: map[string]string{}}
	if err := e.Streams.CreateStream("orders", 2); err != nil {
		t.Fatal(err)
	}
	if err := e.Streams.CreateStream("dlq", 1); err != nil {
		t.Fatal(err)
	}
	next := map[string]int{}
	for from := 0; from < n; from += 500 {
		var entries []types.PutRecordsRequestEntry
		for i := from; i < min(n, from+500); i++ {
			k := "key" + strconv.Itoa(i%40)
			next[k]++
			p := k + "#" + strconv.Itoa(next[k])
			ps.payloads = append(ps.payloads, p)
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: []byte(p)})
		}
		out, err := ps.kin.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("orders"), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put: %v", err)
		}
		for j, r := range out.Records {
			ps.last[aws.ToString(r.ShardId)] = aws.ToString(r.SequenceNumber)
			if from+j == poisonAt {
				ps.poisonAt, ps.poison = r, ps.payloads[poisonAt]
			}
		}
	}
	return ps
}

// destination reads every failed record from the destination stream.
func (ps *poisonStream) destination(t *testing.T) []FailedRecord {
	t.Helper()
	ctx := context.Background()
	shards, err := ps.kin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("dlq")})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := aggregation.NewDeaggregator()
	var out []FailedRecord
	for _, sh := range shards.Shards {
		it, err := ps.kin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("dlq"), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		res, err := ps.kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Records {
			users, err := d.Append(nil, aggregation.Record{PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range users {
				f, err := ParseFailedRecord(u.Data)
				if err != nil {
					t.Fatalf("destination record %q: %v", u.Data, err)
				}
				out = append(out, f)
			}
		}
	}
	return out
}

// poisonHandler counts the records it handled; it fails every call holding the poison.
type poisonHandler struct {
	mu     sync.Mutex
	poison string
	seen   map[string]int
	// block, when set, makes calls wait for their context once that many records
	// were handled (to kill a worker in the middle).
	block int
}

func (h *poisonHandler) handle(ctx context.Context, _ ShardInfo, recs []Record) error {
	for _, r := range recs {
		if string(r.Data) == h.poison {
			return errors.New("poison: cannot decode " + h.poison)
		}
	}
	h.mu.Lock()
	if h.block > 0 && len(h.seen) >= h.block {
		h.mu.Unlock()
		<-ctx.Done()
		return ctx.Err()
	}
	for _, r := range recs {
		h.seen[string(r.Data)]++
	}
	h.mu.Unlock()
	return nil
}

func (h *poisonHandler) missing(payloads []string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, p := range payloads {
		if p != h.poison && h.seen[p] == 0 {
			n++
		}
	}
	return n
}

func poisonOptions(t *testing.T, ps *poisonStream, id string, m Metrics) []Option {
	t.Helper()
	dest, err := NewStreamDestination(ps.kin, "dlq", fproducer.WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dest.Close(context.Background()) })
	return append(testOptions(id), WithMetrics(m), WithLanes(4),
		WithFailurePolicy(FailurePolicy{MaxAttempts: 3, BisectOnError: true, Destination: dest, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}))
}

func checkPoisonInDestination(t *testing.T, ps *poisonStream, got []FailedRecord) {
	t.Helper()
	for _, f := range got {
		if string(f.Data) != ps.poison || f.ShardID != aws.ToString(ps.poisonAt.ShardId) || f.SequenceNumber != aws.ToString(ps.poisonAt.SequenceNumber) ||
			f.SubSequenceNumber != 0 || f.Stream != "orders" || f.Attempts < 3 || f.Reason != ReasonMaxAttempts ||
			!strings.Contains(f.Error, "cannot decode") || f.ApproximateArrivalTimestamp.IsZero() {
			t.Fatalf("destination record %+v; the poison is %s at %s/%s", f, ps.poison, aws.ToString(ps.poisonAt.ShardId), aws.ToString(ps.poisonAt.SequenceNumber))
		}
	}
}

// TestPoisonRecordToDestinationStream runs one poison record among 10,000 through a
// worker on the engine with {3 attempts, bisect, a destination stream written by the
// producer}: exactly that record reaches the destination stream with its metadata,
// every other record is handled exactly once, and the lag returns to zero (each lease
// checkpointed at its shard's last record, the oldest unfinished record's age 0).
func TestPoisonRecordToDestinationStream(t *testing.T) {
	ps := newPoisonStream(t, 10000, 4321)
	h := &poisonHandler{poison: ps.poison, seen: map[string]int{}}
	m := NewMemoryMetrics()
	db := enginetest.DynamoDB(ps.e)
	r := startWorker(t, ps.kin, db, HandlerFunc(h.handle), poisonOptions(t, ps, "w1", m)...)
	waitUntil(t, func() bool {
		if h.missing(ps.payloads) > 0 {
			return false
		}
		ls := leases(t, db)
		for shard, seq := range ps.last {
			if ls[shard].Checkpoint.SequenceNumber != seq {
				return false
			}
		}
		return true
	})
	waitUntil(t, func() bool {
		for shard := range ps.last {
			if st, ok := m.Snapshot()[MetricOldestUnfinishedAge+"|ShardId="+shard]; !ok || st.Last != 0 {
				return false
			}
		}
		return true
	})
	r.shutdown(t)
	// The consumer gives the poison up once (the metric counts successful sends); the
	// stream may hold a copy more when the SDK resent a PutRecords whose response it
	// failed to read (FACTS.md), so copies are told apart by position.
	got := ps.destination(t)
	distinct := map[string]bool{}
	for _, f := range got {
		distinct[f.ShardID+"/"+f.SequenceNumber+"/"+strconv.FormatInt(f.SubSequenceNumber, 10)] = true
	}
	if len(distinct) != 1 {
		t.Fatalf("destination stream holds %d distinct records, want 1", len(distinct))
	}
	if len(got) > 1 {
		t.Logf("destination stream holds %d copies of the poison (a resent PutRecords)", len(got))
	}
	checkPoisonInDestination(t, ps, got)
	for p, n := range h.seen {
		if n != 1 {
			t.Fatalf("%s handled %d times", p, n)
		}
	}
	if sum, _ := m.Total(MetricRecordsToDestination); sum != 1 {
		t.Fatalf("%s = %v", MetricRecordsToDestination, sum)
	}
	if _, n := m.Total(MetricBatchesBisected); n == 0 {
		t.Fatal("no bisection recorded")
	}
	if _, n := m.Total(MetricRecordsRetried); n == 0 {
		t.Fatal("no retry recorded")
	}
}

// TestPoisonWorkerKilledSkipsNothing kills the worker (Abort: no shutdown, no final
// checkpoint) in the middle of the same run; a fresh worker takes the leases over
// after the failover time and resumes from the checkpoints: no record is skipped, and
// the poison reaches the destination stream.
func TestPoisonWorkerKilledSkipsNothing(t *testing.T) {
	ps := newPoisonStream(t, 10000, 2345)
	h := &poisonHandler{poison: ps.poison, seen: map[string]int{}, block: 5000}
	db := enginetest.DynamoDB(ps.e)
	r1 := startWorker(t, ps.kin, db, HandlerFunc(h.handle), poisonOptions(t, ps, "w1", NewMemoryMetrics())...)
	waitUntil(t, func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.seen) >= 5000 })
	r1.w.Abort()
	r1.done <- <-r1.done // stopped; the cleanup reads it again
	h.mu.Lock()
	h.block = 0
	before := len(h.seen)
	h.mu.Unlock()
	r2 := startWorker(t, ps.kin, db, HandlerFunc(h.handle), poisonOptions(t, ps, "w2", NewMemoryMetrics())...)
	deadline := time.Now().Add(60 * time.Second)
	for h.missing(ps.payloads) > 0 || len(ps.destination(t)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d records never handled after the kill (%d before it)", h.missing(ps.payloads), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r2.shutdown(t)
	checkPoisonInDestination(t, ps, ps.destination(t))
	t.Logf("%d records handled before the kill", before)
}

// TestStreamDestinationClose closes a stream destination from several goroutines while
// others send: every Close returns the first one's result, a Send either stores all its
// records or fails, a Send after Close fails with ErrDestinationClosed, and a Close after
// the first returns its result even with an ended context.
func TestStreamDestinationClose(t *testing.T) {
	ps := newPoisonStream(t, 0, -1)
	dest, err := NewStreamDestination(ps.kin, "dlq", fproducer.WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	failed := func(shard string, i int) FailedRecord {
		return FailedRecord{Stream: "orders", ShardID: shard, SequenceNumber: sq(i), PartitionKey: "k" + strconv.Itoa(i%7),
			Reason: ReasonMaxAttempts, Attempts: 3, Data: []byte(shard + "/" + strconv.Itoa(i))}
	}
	if err := dest.Send(ctx, []FailedRecord{failed("before", 0)}); err != nil {
		t.Fatal(err)
	}
	const senders, closers = 8, 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := map[string]bool{"before/0": true}
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; ; i++ {
				recs := []FailedRecord{failed("g"+strconv.Itoa(g), 2*i), failed("g"+strconv.Itoa(g), 2*i+1)}
				err := dest.Send(ctx, recs)
				if err != nil {
					return
				}
				mu.Lock()
				for _, r := range recs {
					stored[string(r.Data)] = true
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	errs := make(chan error, closers)
	for c := 0; c < closers; c++ {
		go func() { errs <- dest.Close(ctx) }()
	}
	for c := 0; c < closers; c++ {
		if err := <-errs; err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	wg.Wait()
	if err := dest.Send(ctx, []FailedRecord{failed("after", 0)}); !errors.Is(err, ErrDestinationClosed) {
		t.Fatalf("Send after Close: %v, want ErrDestinationClosed", err)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := dest.Close(ended); err != nil {
		t.Fatalf("Close again with an ended context: %v, want the first Close's nil", err)
	}
	got := map[string]bool{}
	for _, f := range ps.destination(t) {
		got[string(f.Data)] = true
	}
	for d := range stored {
		if !got[d] {
			t.Fatalf("%s: Send returned nil but the record is not in the stream", d)
		}
	}
	if len(stored) < 3 {
		t.Fatalf("only %d records stored before Close: the senders never ran", len(stored))
	}
	t.Logf("%d records stored by sends that succeeded; %d in the stream", len(stored), len(got))
}

// TestStreamDestinationOmitsDataTooLarge sends a failed record whose document would
// exceed the destination stream's 1 MiB maximum record size, one with a huge error as
// well, and a small one: the large ones are stored without their data (DataOmitted,
// DataSize, the error cut), every other field kept; the small one whole.
func TestStreamDestinationOmitsDataTooLarge(t *testing.T) {
	ps := newPoisonStream(t, 0, -1)
	dest, err := NewStreamDestination(ps.kin, "dlq", fproducer.WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close(context.Background())
	at := time.Now().UTC().Truncate(time.Millisecond)
	big := FailedRecord{Stream: "orders", ShardID: "shardId-000000000001", SequenceNumber: sq(1), SubSequenceNumber: 2, PartitionKey: "big",
		ApproximateArrivalTimestamp: at, Attempts: 3, Reason: ReasonMaxAttempts, Error: "too big", FailedAt: at, Data: []byte(strings.Repeat("x", 900<<10))}
	huge := big
	huge.PartitionKey, huge.SequenceNumber, huge.Error = "huge", sq(2), strings.Repeat("e", 2<<20)
	small := FailedRecord{Stream: "orders", ShardID: "shardId-000000000001", SequenceNumber: sq(3), PartitionKey: "small", Reason: ReasonMaxRecordAge, Data: []byte("ok")}
	if err := dest.Send(context.Background(), []FailedRecord{big, huge, small}); err != nil {
		t.Fatal(err)
	}
	got := map[string]FailedRecord{}
	for _, f := range ps.destination(t) {
		got[f.PartitionKey] = f
	}
	b := got["big"]
	if !b.DataOmitted || b.DataSize != 900<<10 || b.Data != nil || b.SequenceNumber != sq(1) || b.SubSequenceNumber != 2 ||
		b.Error != "too big" || b.Attempts != 3 || !b.ApproximateArrivalTimestamp.Equal(at) {
		t.Fatalf("large record stored as %+v (data %d bytes)", b, len(b.Data))
	}
	h := got["huge"]
	if !h.DataOmitted || h.DataSize != 900<<10 || h.SequenceNumber != sq(2) || len(h.Error) != maxOmittedError+len(" (truncated)") {
		t.Fatalf("record with a huge error stored as data omitted %v, size %d, error of %d bytes", h.DataOmitted, h.DataSize, len(h.Error))
	}
	if s := got["small"]; s.DataOmitted || string(s.Data) != "ok" {
		t.Fatalf("small record stored as %+v", s)
	}
}
