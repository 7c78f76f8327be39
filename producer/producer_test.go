package producer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testStream = "test"

// outcomes collects the outcome of every record by index.
type outcomes struct {
	mu      sync.Mutex
	res     []Result
	seen    []int
	pending atomic.Int64
}

func newOutcomes(n int) *outcomes {
	return &outcomes{res: make([]Result, n), seen: make([]int, n)}
}

func (o *outcomes) cb(i int) func(Result) {
	o.pending.Add(1)
	return func(r Result) {
		o.mu.Lock()
		o.res[i] = r
		o.seen[i]++
		o.mu.Unlock()
		o.pending.Add(-1)
	}
}

// check asserts that every record resolved exactly once and returns the failures.
func (o *outcomes) check(t *testing.T, n int) []Result {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	var failed []Result
	for i := 0; i < n; i++ {
		if o.seen[i] != 1 {
			t.Fatalf("record %d resolved %d times", i, o.seen[i])
		}
		if o.res[i].Err != nil {
			failed = append(failed, o.res[i])
		}
	}
	return failed
}

func newTestProducer(t *testing.T, f *fakeKinesis, opts ...Option) *Producer {
	t.Helper()
	opts = append([]Option{WithStream(testStream), WithBackoff(time.Millisecond, 20*time.Millisecond), WithLinger(5 * time.Millisecond)}, opts...)
	p, err := New(f, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

func scale(small, full int) int {
	if os.Getenv("FRESHET_SOAK") != "" {
		return full
	}
	return small
}

func recordData(i int) []byte {
	return []byte(fmt.Sprintf("record-%08d-%s", i, strings.Repeat("x", 80)))
}

func keyOf(i, keys int) string { return fmt.Sprintf("key-%d", i%keys) }

// putAll puts n records over keys partition keys and waits for them with Flush.
func putAll(t *testing.T, p *Producer, n, keys int) *outcomes {
	t.Helper()
	o := newOutcomes(n)
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if err := p.Put(ctx, Record{PartitionKey: keyOf(i, keys), Data: recordData(i)}, o.cb(i)); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.Flush(fctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if o.pending.Load() != 0 {
		t.Fatalf("%d records unresolved after Flush", o.pending.Load())
	}
	return o
}

// assertExactlyOnce reads the fake back and checks that every record is stored exactly
// once in a shard whose range holds its hash key.
func assertExactlyOnce(t *testing.T, f *fakeKinesis, n, keys int) []stored {
	t.Helper()
	recs, err := f.readAll()
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	count := make(map[string]int, n)
	for _, r := range recs {
		if r.inRange {
			count[r.data]++
		}
	}
	for i := 0; i < n; i++ {
		if c := count[string(recordData(i))]; c != 1 {
			t.Fatalf("record %d stored %d times in its shard (want 1)", i, c)
		}
	}
	return recs
}

func TestPutAndReadBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"aggregated", nil},
		{"plain", []Option{WithAggregation(false)}},
		{"ordered", []Option{WithOrdering(true)}},
		{"ordered plain", []Option{WithOrdering(true), WithAggregation(false)}},
		{"small aggregates", []Option{WithAggregationMaxCount(7), WithCollectionMaxCount(13)}},
		{"zstd", []Option{WithCompression(compressionZstd)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(4)
			p := newTestProducer(t, f, tc.opts...)
			n, keys := scale(3000, 100000), 50
			o := putAll(t, p, n, keys)
			if failed := o.check(t, n); len(failed) > 0 {
				t.Fatalf("%d records failed, first: %v", len(failed), failed[0].Err)
			}
			assertExactlyOnce(t, f, n, keys)
			for i := 0; i < n; i++ {
				r := o.res[i]
				if r.ShardID == "" || r.SequenceNumber == "" || len(r.Attempts) != 1 || r.Attempts[0].ErrorCode != "" || r.Stream != testStream {
					t.Fatalf("record %d: bad result %+v", i, r)
				}
			}
			if got := p.BufferedBytes(); got != 0 {
				t.Fatalf("BufferedBytes after Flush = %d", got)
			}
		})
	}
}

func TestResultsLocateRecords(t *testing.T) {
	f := newFake(2)
	p := newTestProducer(t, f)
	n := 200
	o := putAll(t, p, n, 10)
	o.check(t, n)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 0; i < n; i++ {
		r := o.res[i]
		var found bool
		for _, s := range f.shards {
			if s.id != r.ShardID {
				continue
			}
			for _, kr := range s.recs {
				if kr.seq == r.SequenceNumber {
					found = strings.Contains(string(kr.data), string(recordData(i)))
				}
			}
		}
		if !found {
			t.Fatalf("record %d not in the Kinesis record its result names (%s %s)", i, r.ShardID, r.SequenceNumber)
		}
		if !r.Aggregated {
			t.Fatalf("record %d not aggregated", i)
		}
	}
}

func TestPutValidation(t *testing.T) {
	f := newFake(1)
	f.maxRecord = 1 // KiB
	p := newTestProducer(t, f)
	ctx := context.Background()
	long := strings.Repeat("k", 257)
	cases := []struct {
		name string
		rec  Record
		want error
	}{
		{"empty key", Record{Data: []byte("x")}, ErrInvalidRecord},
		{"key too long", Record{PartitionKey: long, Data: []byte("x")}, ErrInvalidRecord},
		{"invalid utf8 key", Record{PartitionKey: "\xff", Data: []byte("x")}, ErrInvalidRecord},
		{"bad explicit hash key", Record{PartitionKey: "k", ExplicitHashKey: "12a", Data: []byte("x")}, ErrInvalidRecord},
		{"hash key out of range", Record{PartitionKey: "k", ExplicitHashKey: "340282366920938463463374607431768211456", Data: []byte("x")}, ErrInvalidRecord},
		{"nil data", Record{PartitionKey: "k"}, ErrInvalidRecord},
		{"too large", Record{PartitionKey: "k", Data: make([]byte, 1024)}, ErrRecordTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			err := p.Put(ctx, tc.rec, func(Result) { called = true })
			if !errors.Is(err, tc.want) {
				t.Fatalf("Put = %v, want %v", err, tc.want)
			}
			if IsRetryable(err) {
				t.Fatalf("%v classified retryable", err)
			}
			if p.BufferedRecords() != 0 || called {
				t.Fatalf("record enqueued: buffered %d, called %v", p.BufferedRecords(), called)
			}
		})
	}
	// 256 multi-byte characters are fine; a record of exactly the limit is fine.
	if err := p.Put(ctx, Record{PartitionKey: strings.Repeat("é", 256), Data: []byte("x")}, nil); err != nil {
		t.Fatalf("256-character key: %v", err)
	}
	if err := p.Put(ctx, Record{PartitionKey: "k", Data: make([]byte, 1023)}, nil); err != nil {
		t.Fatalf("record at the limit: %v", err)
	}
	if _, err := p.PutSync(ctx, Record{PartitionKey: "k", Data: []byte{}}); err != nil {
		t.Fatalf("empty data: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Put(ctx, Record{PartitionKey: "k", Data: []byte("x")}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
	p2 := newTestProducer(t, newFake(1), func(c *config) error { c.stream = ""; return nil })
	if err := p2.Put(ctx, Record{PartitionKey: "k", Data: []byte("x")}, nil); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Put without stream = %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		opt  Option
	}{
		{"stream", WithStream("")},
		{"logger", WithLogger(nil)},
		{"agg count", WithAggregationMaxCount(0)},
		{"agg bytes", WithAggregationMaxBytes(10)},
		{"compression", WithCompression(Compression(99))},
		{"collect count", WithCollectionMaxCount(501)},
		{"collect bytes", WithCollectionMaxBytes(6 << 20)},
		{"linger", WithLinger(-1)},
		{"in flight", WithMaxInFlight(0)},
		{"rate", WithRateLimit(-1, 0)},
		{"rate small", WithRateLimit(10, 0)},
		{"ttl", WithRecordTTL(time.Millisecond)},
		{"buffered", WithMaxBuffered(0, 1<<20)},
		{"buffered bytes", WithMaxBuffered(10, 10)},
		{"timeout", WithRequestTimeout(0)},
		{"backoff", WithBackoff(0, time.Second)},
		{"refresh", WithShardRefreshInterval(0)},
		{"hash cache", WithHashCacheSize(-1)},
		{"max record", WithMaxRecordSize(11 << 20)},
		{"metrics", WithMetrics(MetricsLevel(7), GranularityShard)},
		{"cloudwatch", WithCloudWatch(nil, "", time.Minute)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(newFake(1), tc.opt); !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("New = %v, want ErrInvalidOption", err)
			}
		})
	}
	if _, err := New(nil); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("New(nil) = %v", err)
	}
	// Cross-field rules.
	if _, err := New(newFake(1), WithCollectionMaxBytes(64<<10), WithAggregationMaxBytes(128<<10)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("aggregate above request: %v", err)
	}
	if _, err := New(newFake(1), WithMaxBuffered(10, 1<<20)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("buffer below request: %v", err)
	}
	if _, err := New(newFake(1), WithBackoff(time.Second, time.Millisecond)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("backoff max below min: %v", err)
	}
}

// TestNoLossUnderFaults: 20% of entries throttled, 5% internal errors and some failed
// calls: every record succeeds and is stored exactly once.
func TestNoLossUnderFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"aggregated", nil},
		{"plain", []Option{WithAggregation(false)}},
		{"ordered", []Option{WithOrdering(true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(8)
			f.throttleRate, f.internalRate, f.callErrRate = 0.20, 0.05, 0.02
			opts := append([]Option{WithAggregationMaxCount(20)}, tc.opts...)
			p := newTestProducer(t, f, opts...)
			n, keys := scale(5000, 1000000), 1000
			o := putAll(t, p, n, keys)
			if failed := o.check(t, n); len(failed) > 0 {
				t.Fatalf("%d records failed, first: %v", len(failed), failed[0].Err)
			}
			assertExactlyOnce(t, f, n, keys)
			retried := 0
			for i := 0; i < n; i++ {
				if len(o.res[i].Attempts) > 1 {
					retried++
					if o.res[i].Attempts[0].ErrorCode == "" {
						t.Fatalf("record %d: first of several attempts has no error code", i)
					}
				}
			}
			if retried == 0 {
				t.Fatal("no record was retried: faults not injected")
			}
		})
	}
}

// TestOrderingUnderFaults: with ordering on, records of each key are stored in Put order.
func TestOrderingUnderFaults(t *testing.T) {
	for _, agg := range []bool{true, false} {
		t.Run(fmt.Sprintf("aggregate=%v", agg), func(t *testing.T) {
			f := newFake(8)
			f.throttleRate, f.internalRate, f.callErrRate = 0.20, 0.05, 0.02
			p := newTestProducer(t, f, WithOrdering(true), WithAggregation(agg), WithAggregationMaxCount(10))
			n, keys := scale(4000, 1000000), 100
			o := putAll(t, p, n, keys)
			if failed := o.check(t, n); len(failed) > 0 {
				t.Fatalf("%d records failed: %v", len(failed), failed[0].Err)
			}
			recs := assertExactlyOnce(t, f, n, keys)
			assertKeyOrder(t, recs, n)
		})
	}
}

// assertKeyOrder checks that, per partition key, stored records appear in Put order.
func assertKeyOrder(t *testing.T, recs []stored, n int) {
	t.Helper()
	last := map[string]int{}
	var idx int
	for _, r := range recs {
		if !r.inRange {
			continue
		}
		if _, err := fmt.Sscanf(r.data, "record-%08d-", &idx); err != nil {
			t.Fatalf("bad data %q", r.data)
		}
		if prev, ok := last[r.pk]; ok && idx < prev {
			t.Fatalf("key %s: record %d stored after record %d", r.pk, idx, prev)
		}
		last[r.pk] = idx
	}
}

// TestResharding splits and merges shards while records flow: nothing is lost, and
// records of aggregates that landed in a shard not holding them are written again.
func TestResharding(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			f := newFake(4)
			p := newTestProducer(t, f, WithOrdering(ordered), WithAggregationMaxCount(50))
			n, keys := scale(20000, 1000000), 500
			o := newOutcomes(n)
			ctx := context.Background()
			for i := 0; i < n; i++ {
				switch i {
				case n / 5:
					f.split(0)
				case 2 * n / 5:
					f.split(3)
				case 3 * n / 5:
					f.merge(1)
				}
				if err := p.Put(ctx, Record{PartitionKey: keyOf(i, keys), Data: recordData(i)}, o.cb(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if failed := o.check(t, n); len(failed) > 0 {
				t.Fatalf("%d failed: %v", len(failed), failed[0].Err)
			}
			recs := assertExactlyOnce(t, f, n, keys)
			open := map[string]bool{}
			f.mu.Lock()
			for _, s := range f.openShards() {
				open[s.id] = true
			}
			f.mu.Unlock()
			for i := 0; i < n; i++ {
				if o.res[i].ShardID == "" {
					t.Fatalf("record %d: no shard", i)
				}
			}
			if len(open) != 5 {
				t.Fatalf("open shards %d, want 5", len(open))
			}
			m := p.def.Load().shards.Load()
			if len(m.shards) != 5 {
				t.Fatalf("producer sees %d shards, want 5", len(m.shards))
			}
			if ordered {
				assertKeyOrder(t, recs, n)
			}
		})
	}
}

// TestBackpressure: with a small buffer and a stream that throttles everything, the
// buffered bytes stay under the bound, Put blocks until its context ends, or fails fast.
func TestBackpressure(t *testing.T) {
	const bound = 256 << 10
	for _, failFast := range []bool{false, true} {
		t.Run(fmt.Sprintf("failFast=%v", failFast), func(t *testing.T) {
			f := newFake(2)
			f.throttleAll = true
			p := newTestProducer(t, f, WithMaxBuffered(1<<20, bound), WithCollectionMaxBytes(64<<10),
				WithAggregationMaxBytes(16<<10), WithFailFast(failFast), WithRecordTTL(time.Hour))
			var peak atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if b := p.BufferedBytes(); b > peak.Load() {
						peak.Store(b)
					}
					select {
					case <-stop:
						return
					default:
						runtime.Gosched()
					}
				}
			}()
			ctx := context.Background()
			var blockedErr error
			i := 0
			for ; i < 100000; i++ {
				pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				err := p.Put(pctx, Record{PartitionKey: keyOf(i, 100), Data: recordData(i)}, nil)
				cancel()
				if err != nil {
					blockedErr = err
					break
				}
			}
			close(stop)
			wg.Wait()
			want := context.DeadlineExceeded
			if failFast {
				want = ErrBufferFull
			}
			if !errors.Is(blockedErr, want) {
				t.Fatalf("Put at the bound = %v after %d records, want %v", blockedErr, i, want)
			}
			if pk := peak.Load(); pk > bound || p.BufferedBytes() > bound {
				t.Fatalf("buffered bytes peaked at %d, bound %d", pk, bound)
			}
			if p.BufferedBytes() < bound/2 {
				t.Fatalf("buffer only %d bytes full when Put gave up", p.BufferedBytes())
			}
			// Once the stream accepts again, the blocked Put goes through.
			f.set(func(f *fakeKinesis) { f.throttleAll = false })
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if _, err := p.PutSync(pctx, Record{PartitionKey: "k", Data: []byte("after")}); err != nil {
				t.Fatalf("PutSync after recovery: %v", err)
			}
		})
	}
}

// TestCloseDeadEndpoint: Close with a deadline under an endpoint that never answers
// returns, gives every record an outcome and leaves no goroutine behind.
func TestCloseDeadEndpoint(t *testing.T) {
	for _, mode := range []string{"hang", "refuse"} {
		t.Run(mode, func(t *testing.T) {
			base := runtime.NumGoroutine()
			f := newFake(4)
			p, err := New(f, WithStream(testStream), WithLinger(time.Millisecond), WithBackoff(time.Millisecond, 10*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := p.PutSync(ctx, Record{PartitionKey: "warm", Data: []byte("up")}); err != nil {
				t.Fatal(err)
			}
			f.set(func(f *fakeKinesis) {
				if mode == "hang" {
					f.hang = true
				} else {
					f.callErr = errDead
				}
			})
			n := 2000
			o := newOutcomes(n)
			for i := 0; i < n; i++ {
				if err := p.Put(ctx, Record{PartitionKey: keyOf(i, 100), Data: recordData(i)}, o.cb(i)); err != nil {
					t.Fatal(err)
				}
			}
			cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			if err := p.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Close = %v, want deadline exceeded", err)
			}
			failed := o.check(t, n)
			if len(failed) != n {
				t.Fatalf("%d of %d records failed", len(failed), n)
			}
			for _, r := range failed {
				if !errors.Is(r.Err, ErrClosed) {
					t.Fatalf("outcome %v, want ErrClosed", r.Err)
				}
			}
			waitGoroutines(t, base)
		})
	}
}

func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, %d before:\n%s", n, base, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCloseFlushesAndStops(t *testing.T) {
	base := runtime.NumGoroutine()
	f := newFake(3)
	p, err := New(f, WithStream(testStream), WithLinger(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	n := 500
	o := newOutcomes(n)
	for i := 0; i < n; i++ {
		if err := p.Put(context.Background(), Record{PartitionKey: keyOf(i, 7), Data: recordData(i)}, o.cb(i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if failed := o.check(t, n); len(failed) > 0 {
		t.Fatalf("%d failed: %v", len(failed), failed[0].Err)
	}
	assertExactlyOnce(t, f, n, 7)
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitGoroutines(t, base)
}

// TestPutSyncSkipsLinger: with a one-hour linger, PutSync still completes.
func TestPutSyncSkipsLinger(t *testing.T) {
	f := newFake(2)
	p := newTestProducer(t, f, WithLinger(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 5; i++ {
		res, err := p.PutSync(ctx, Record{PartitionKey: keyOf(i, 3), Data: recordData(i)})
		if err != nil {
			t.Fatalf("PutSync: %v", err)
		}
		if res.ShardID == "" || res.SequenceNumber == "" {
			t.Fatalf("result %+v", res)
		}
	}
	fut, err := p.PutAsync(ctx, Record{PartitionKey: "async", Data: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fut.Done():
	default:
		t.Fatal("future not done after Flush")
	}
	if r := fut.Result(); r.Err != nil {
		t.Fatal(r.Err)
	}
}

func TestFailIfThrottled(t *testing.T) {
	f := newFake(2)
	f.throttleAll = true
	p := newTestProducer(t, f, WithFailIfThrottled(true))
	n := 100
	o := putAll(t, p, n, 10)
	failed := o.check(t, n)
	if len(failed) != n {
		t.Fatalf("%d of %d failed", len(failed), n)
	}
	for _, r := range failed {
		if !errors.Is(r.Err, ErrThrottled) || len(r.Attempts) != 1 {
			t.Fatalf("outcome %v with %d attempts", r.Err, len(r.Attempts))
		}
	}
}

func TestNonRetryableCallError(t *testing.T) {
	f := newFake(2)
	p := newTestProducer(t, f)
	if _, err := p.PutSync(context.Background(), Record{PartitionKey: "a", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fakeKinesis) { f.callErr = &fakeAPIError{code: "AccessDeniedException", msg: "no"} })
	res, err := p.PutSync(context.Background(), Record{PartitionKey: "a", Data: []byte("x")})
	var se *ServiceError
	if err == nil || !errors.As(err, &se) || se.Code != "AccessDeniedException" || res.Err == nil {
		t.Fatalf("PutSync = %v (%+v), want AccessDeniedException", err, res)
	}
	if errors.Is(err, ErrRecordExpired) || len(res.Attempts) != 1 {
		t.Fatalf("non-retryable error was retried: %v, %d attempts", err, len(res.Attempts))
	}
}

func TestMultipleStreams(t *testing.T) {
	f := newFake(2)
	p := newTestProducer(t, f, func(c *config) error { c.stream = ""; return nil })
	ctx := context.Background()
	for _, s := range []string{"a", "b", "c"} {
		for i := 0; i < 10; i++ {
			if err := p.Put(ctx, Record{Stream: s, PartitionKey: keyOf(i, 3), Data: []byte(s)}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := f.readAll()
	if len(recs) != 30 {
		t.Fatalf("stored %d records, want 30", len(recs))
	}
	names := map[string]bool{}
	for _, m := range p.Metrics() {
		if m.Name == MetricUserRecordsPut && m.Stream != "" && m.ShardID == "" {
			names[m.Stream] = true
			if m.Sum != 10 {
				t.Fatalf("stream %s: UserRecordsPut %v", m.Stream, m.Sum)
			}
		}
	}
	if len(names) != 3 {
		t.Fatalf("per-stream metrics for %v", names)
	}
}

func TestIsRetryable(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{ErrClosed, false},
		{ErrRecordExpired, false},
		{ErrBufferFull, false},
		{context.Canceled, false},
		{context.DeadlineExceeded, true},
		{errDead, true},
		{&fakeAPIError{code: "ProvisionedThroughputExceededException"}, true},
		{&ServiceError{Code: "InternalFailure"}, true},
		{&ServiceError{Code: "ResourceNotFoundException"}, false},
		{&ServiceError{Code: "ProvisionedThroughputExceededException"}, true},
		{fmt.Errorf("wrapped: %w", &ServiceError{Code: "ThrottlingException"}), true},
		{&RecordError{Err: ErrRecordExpired, Last: &ServiceError{Code: "InternalFailure"}}, false},
	}
	for _, tc := range cases {
		if got := IsRetryable(tc.err); got != tc.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if !errors.Is(&ServiceError{Code: "ProvisionedThroughputExceededException"}, ErrThrottled) {
		t.Error("throttle code does not match ErrThrottled")
	}
}
