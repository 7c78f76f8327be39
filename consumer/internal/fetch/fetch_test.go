package fetch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/internal/retrypolicy"
)

// fakeShard is one shard of a fake Kinesis: records with sequence numbers seq(i), an
// optional closed end, and scripted errors.
type fakeShard struct {
	mu       sync.Mutex
	recs     []types.Record
	closed   bool
	children []types.ChildShard
	errs     []error // returned by the next GetRecords calls, in order
	iterErrs []error // returned by the next GetShardIterator calls
	calls    int
	iters    []string // starting positions asked for
	limits   []int32
}

func seq(i int) string { return fmt.Sprintf("4960000000000000000%05d", i) }

func (f *fakeShard) add(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for j := 0; j < n; j++ {
		i := len(f.recs)
		f.recs = append(f.recs, types.Record{
			SequenceNumber: aws.String(seq(i)),
			PartitionKey:   aws.String("k" + strconv.Itoa(i)),
			Data:           []byte("d" + strconv.Itoa(i)),
		})
	}
}

func (f *fakeShard) index(s string) int {
	for i := range f.recs {
		if *f.recs[i].SequenceNumber == s {
			return i
		}
	}
	return -1
}

func (f *fakeShard) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.iterErrs) > 0 {
		err := f.iterErrs[0]
		f.iterErrs = f.iterErrs[1:]
		return nil, err
	}
	pos := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeLatest:
		pos = len(f.recs)
	case types.ShardIteratorTypeAtSequenceNumber:
		pos = f.index(*in.StartingSequenceNumber)
	case types.ShardIteratorTypeAfterSequenceNumber:
		pos = f.index(*in.StartingSequenceNumber) + 1
	}
	f.iters = append(f.iters, string(in.ShardIteratorType)+":"+aws.ToString(in.StartingSequenceNumber))
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String("it:" + strconv.Itoa(pos))}, nil
}

func (f *fakeShard) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.limits = append(f.limits, aws.ToInt32(in.Limit))
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		if err != nil {
			return nil, err
		}
	}
	pos, _ := strconv.Atoi(strings.TrimPrefix(*in.ShardIterator, "it:"))
	end := min(pos+int(aws.ToInt32(in.Limit)), len(f.recs))
	out := &kinesis.GetRecordsOutput{Records: f.recs[pos:end], MillisBehindLatest: aws.Int64(int64(len(f.recs) - end))}
	if f.closed && end == len(f.recs) {
		out.ChildShards = f.children
		return out, nil
	}
	out.NextShardIterator = aws.String("it:" + strconv.Itoa(end))
	return out, nil
}

func apiErr(code string) error { return &smithy.GenericAPIError{Code: code, Message: code} }

func fastConfig(start Position) PollingConfig {
	return PollingConfig{
		StreamName: "s", ShardID: "shardId-000000000000", Start: start, MaxRecords: 3, Prefetch: 2,
		IdleTime: time.Millisecond,
		Retry:    NewPolicy(retrypolicy.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}, retrypolicy.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}),
	}
}

// drain reads batches until n records arrived or the shard ended.
func drain(t *testing.T, f Fetcher, n int) (got []string, ended bool, last Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(got) < n {
		b, err := f.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(got), err)
		}
		for _, r := range b.Records {
			got = append(got, *r.SequenceNumber)
		}
		if b.ShardEnd {
			return got, true, b
		}
	}
	return got, false, Batch{}
}

func want(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, seq(i))
	}
	return s
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPollerPositions(t *testing.T) {
	tests := []struct {
		name  string
		start Position
		from  int
	}{
		{"trim horizon", Position{Type: types.ShardIteratorTypeTrimHorizon}, 0},
		{"at sequence", Position{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: seq(4)}, 4},
		{"after sequence", Position{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: seq(4)}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := &fakeShard{}
			sh.add(10)
			p, err := NewPoller(context.Background(), sh, fastConfig(tt.start))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			got, _, _ := drain(t, p, 10-tt.from)
			if !equal(got, want(tt.from, 10)) {
				t.Fatalf("got %v, want %v", got, want(tt.from, 10))
			}
		})
	}
}

func TestPollerLatestSeesOnlyNewRecords(t *testing.T) {
	sh := &fakeShard{}
	sh.add(5)
	p, err := NewPoller(context.Background(), sh, fastConfig(Position{Type: types.ShardIteratorTypeLatest}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitFor(t, func() bool { sh.mu.Lock(); defer sh.mu.Unlock(); return sh.calls > 0 })
	sh.add(3)
	got, _, _ := drain(t, p, 3)
	if !equal(got, want(5, 8)) {
		t.Fatalf("got %v", got)
	}
}

func TestPollerShardEnd(t *testing.T) {
	sh := &fakeShard{closed: true, children: []types.ChildShard{{ShardId: aws.String("shardId-000000000001"), ParentShards: []string{"shardId-000000000000"}}}}
	sh.add(7)
	p, err := NewPoller(context.Background(), sh, fastConfig(Position{Type: types.ShardIteratorTypeTrimHorizon}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got, ended, last := drain(t, p, 100)
	if !ended || !equal(got, want(0, 7)) {
		t.Fatalf("ended=%v got %v", ended, got)
	}
	if len(last.ChildShards) != 1 || *last.ChildShards[0].ShardId != "shardId-000000000001" {
		t.Fatalf("child shards %v", last.ChildShards)
	}
	if _, err := p.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after end = %v, want ErrClosed", err)
	}
}

func TestPollerErrorHandling(t *testing.T) {
	tests := []struct {
		name      string
		errs      []error
		wantIters int // GetShardIterator calls
		fatal     bool
	}{
		{"throttled then ok", []error{apiErr("ProvisionedThroughputExceededException"), apiErr("ProvisionedThroughputExceededException")}, 1, false},
		{"internal failure retried", []error{apiErr("InternalFailure"), errors.New("connection reset")}, 1, false},
		{"expired iterator renewed", []error{nil, apiErr("ExpiredIteratorException")}, 2, false},
		{"not found is fatal", []error{apiErr("ResourceNotFoundException")}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := &fakeShard{errs: tt.errs}
			sh.add(9)
			p, err := NewPoller(context.Background(), sh, fastConfig(Position{Type: types.ShardIteratorTypeTrimHorizon}))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if tt.fatal {
				_, err := p.Next(context.Background())
				var fe *Error
				if !errors.As(err, &fe) || fe.Op != "GetRecords" || !isCode(err, "ResourceNotFoundException") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			got, _, _ := drain(t, p, 9)
			if !equal(got, want(0, 9)) {
				t.Fatalf("got %v", got)
			}
			sh.mu.Lock()
			defer sh.mu.Unlock()
			if len(sh.iters) != tt.wantIters {
				t.Fatalf("GetShardIterator calls %v, want %d", sh.iters, tt.wantIters)
			}
			if tt.wantIters == 2 && sh.iters[1] != "AFTER_SEQUENCE_NUMBER:"+seq(2) {
				t.Fatalf("renewed iterator at %s, want after %s", sh.iters[1], seq(2))
			}
			for _, l := range sh.limits {
				if l != 3 {
					t.Fatalf("Limit %d, want MaxRecords 3", l)
				}
			}
		})
	}
}

func TestPollerPrefetchIsBounded(t *testing.T) {
	sh := &fakeShard{}
	sh.add(100)
	cfg := fastConfig(Position{Type: types.ShardIteratorTypeTrimHorizon})
	p, err := NewPoller(context.Background(), sh, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// With nobody reading, the poller fills Prefetch batches, holds one more, and stops.
	waitFor(t, func() bool { sh.mu.Lock(); defer sh.mu.Unlock(); return sh.calls >= cfg.Prefetch+1 })
	time.Sleep(20 * time.Millisecond)
	sh.mu.Lock()
	calls := sh.calls
	sh.mu.Unlock()
	if calls > cfg.Prefetch+1 {
		t.Fatalf("%d GetRecords calls without a reader, want at most %d", calls, cfg.Prefetch+1)
	}
	got, _, _ := drain(t, p, 100)
	if !equal(got, want(0, 100)) {
		t.Fatalf("got %d records", len(got))
	}
}

func TestPollerIdleAtTip(t *testing.T) {
	sh := &fakeShard{}
	p, err := NewPoller(context.Background(), sh, fastConfig(Position{Type: types.ShardIteratorTypeTrimHorizon}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b, err := p.Next(context.Background())
	if err != nil || len(b.Records) != 0 || b.ShardEnd {
		t.Fatalf("batch %+v err %v, want an empty batch at the tip", b, err)
	}
	sh.add(2)
	got, _, _ := drain(t, p, 2)
	if !equal(got, want(0, 2)) {
		t.Fatalf("got %v", got)
	}
}

func TestNewPollerValidates(t *testing.T) {
	sh := &fakeShard{}
	bad := []PollingConfig{
		{ShardID: "x", MaxRecords: 1},
		{StreamName: "s", MaxRecords: 1},
		{StreamName: "s", ShardID: "x", MaxRecords: 0},
		{StreamName: "s", ShardID: "x", MaxRecords: 10001},
	}
	for i, cfg := range bad {
		if _, err := NewPoller(context.Background(), sh, cfg); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	if _, err := NewPoller(context.Background(), nil, fastConfig(Position{})); err == nil {
		t.Error("nil API accepted")
	}
}

func TestCompareSequence(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1", "2", -1}, {"10", "9", 1}, {"49600", "49600", 0}, {"123", "1234", -1},
	}
	for _, tt := range tests {
		if got := CompareSequence(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareSequence(%s,%s)=%d want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPollerRampsUpItsLimit(t *testing.T) {
	sh := &fakeShard{}
	sh.add(firstLimit*7 + 10)
	cfg := fastConfig(Position{Type: types.ShardIteratorTypeTrimHorizon})
	cfg.MaxRecords, cfg.Prefetch = 2*firstLimit+1, 100
	p, err := NewPoller(context.Background(), sh, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, _, _ := drain(t, p, firstLimit*7+10); !equal(got, want(0, firstLimit*7+10)) {
		t.Fatalf("got %d records", len(got))
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// 500 (full) -> 1000 (full) -> capped at 1001 from then on.
	wantLimits := []int32{firstLimit, 2 * firstLimit, 2*firstLimit + 1, 2*firstLimit + 1}
	for i, w := range wantLimits {
		if i >= len(sh.limits) || sh.limits[i] != w {
			t.Fatalf("limits %v, want a start of %v", sh.limits, wantLimits)
		}
	}
}

func TestPollerBatchesCarryCallTime(t *testing.T) {
	sh := &fakeShard{}
	sh.add(4)
	p, err := NewPoller(context.Background(), sh, fastConfig(Position{Type: types.ShardIteratorTypeTrimHorizon}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for got := 0; got < 4; {
		b, err := p.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b.CallTime <= 0 {
			t.Fatalf("batch of %d records from a GetRecords call has CallTime %v", len(b.Records), b.CallTime)
		}
		got += len(b.Records)
	}
}
