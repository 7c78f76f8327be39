package producer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/internal/hashkey"
)

// fakeKinesis is an in-memory Kinesis for unit tests: one stream's shards with hash key
// ranges, stored records, and injected failures per entry and per call.
type fakeKinesis struct {
	mu      sync.Mutex
	rng     *rand.Rand
	shards  []*fakeShard
	nextID  int
	seq     int64
	calls   int
	entries int

	throttleRate float64 // probability an entry is throttled
	internalRate float64 // probability an entry fails with InternalFailure
	callErrRate  float64 // probability a whole call fails with a 500
	callErr      error   // when set, every call fails with it
	hang         bool    // calls block until their context ends
	latency      time.Duration
	maxRecord    int32 // MaxRecordSizeInKiB reported
	// throttleAll throttles every entry.
	throttleAll bool
	// throttleIf, when set, throttles the entries whose data it returns true for.
	throttleIf func(data []byte) bool
	// discard answers success without storing, for benchmarks.
	discard bool
	// perShardLimit throttles entries beyond this many bytes per call per shard (0: off).
	onPut func(n int)
}

type fakeShard struct {
	id     string
	rng    hashkey.Range
	closed bool
	recs   []fakeRecord
}

type fakeRecord struct {
	pk, ehk string
	data    []byte
	seq     string
}

func newFake(shards int) *fakeKinesis {
	f := &fakeKinesis{rng: rand.New(rand.NewPCG(1, 2))}
	for _, r := range hashkey.Uniform(shards) {
		f.addShard(r)
	}
	return f
}

func (f *fakeKinesis) addShard(r hashkey.Range) *fakeShard {
	s := &fakeShard{id: fmt.Sprintf("shardId-%012d", f.nextID), rng: r}
	f.nextID++
	f.shards = append(f.shards, s)
	return s
}

// split closes the open shard at index i of the open shards and adds two children.
func (f *fakeKinesis) split(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	open := f.openShards()
	s := open[i%len(open)]
	mid := s.rng.Midpoint()
	s.closed = true
	f.addShard(hashkey.Range{Start: s.rng.Start, End: mid})
	f.addShard(hashkey.Range{Start: mid.Add1(), End: s.rng.End})
}

// merge closes two adjacent open shards and adds their union.
func (f *fakeKinesis) merge(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	open := f.openShards()
	sort.Slice(open, func(a, b int) bool { return open[a].rng.Start.Less(open[b].rng.Start) })
	if len(open) < 2 {
		return
	}
	i %= len(open) - 1
	a, b := open[i], open[i+1]
	a.closed, b.closed = true, true
	f.addShard(hashkey.Range{Start: a.rng.Start, End: b.rng.End})
}

func (f *fakeKinesis) openShards() []*fakeShard {
	var out []*fakeShard
	for _, s := range f.shards {
		if !s.closed {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeKinesis) route(k hashkey.Key) *fakeShard {
	for _, s := range f.shards {
		if !s.closed && s.rng.Contains(k) {
			return s
		}
	}
	return nil
}

type fakeAPIError struct {
	code string
	msg  string
}

func (e *fakeAPIError) Error() string        { return e.code + ": " + e.msg }
func (e *fakeAPIError) ErrorCode() string    { return e.code }
func (e *fakeAPIError) ErrorMessage() string { return e.msg }
func (e *fakeAPIError) ErrorFault() smithy.ErrorFault {
	if e.code == "InternalFailure" {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

func (f *fakeKinesis) wait(ctx context.Context) error {
	f.mu.Lock()
	hang, lat, err := f.hang, f.latency, f.callErr
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if lat > 0 {
		select {
		case <-time.After(lat):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	if len(in.Records) > MaxPutRecordsCount {
		return nil, &fakeAPIError{code: "ValidationException", msg: "too many records"}
	}
	total := 0
	for _, e := range in.Records {
		total += len(e.Data) + len(aws.ToString(e.PartitionKey))
	}
	if total > MaxPutRecordsBytes {
		return nil, &fakeAPIError{code: "ValidationException", msg: "request too large"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.entries += len(in.Records)
	if f.callErrRate > 0 && f.rng.Float64() < f.callErrRate {
		return nil, &fakeAPIError{code: "InternalFailure", msg: "injected call failure"}
	}
	out := &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}
	failed := int32(0)
	for i, e := range in.Records {
		r := &out.Records[i]
		switch x := f.rng.Float64(); {
		case f.throttleAll || x < f.throttleRate || (f.throttleIf != nil && f.throttleIf(e.Data)):
			r.ErrorCode = aws.String("ProvisionedThroughputExceededException")
			r.ErrorMessage = aws.String("Rate exceeded for shard")
			failed++
			continue
		case x < f.throttleRate+f.internalRate:
			r.ErrorCode = aws.String("InternalFailure")
			r.ErrorMessage = aws.String("Internal service failure.")
			failed++
			continue
		}
		var k hashkey.Key
		if e.ExplicitHashKey != nil {
			var err error
			if k, err = hashkey.Parse(*e.ExplicitHashKey); err != nil {
				return nil, &fakeAPIError{code: "InvalidArgumentException", msg: "bad hash key"}
			}
		} else {
			k = hashkey.FromPartitionKey(aws.ToString(e.PartitionKey))
		}
		s := f.route(k)
		f.seq++
		seq := strconv.FormatInt(f.seq, 10)
		if f.discard {
			r.ShardId, r.SequenceNumber = aws.String(s.id), aws.String("1")
			continue
		}
		s.recs = append(s.recs, fakeRecord{pk: aws.ToString(e.PartitionKey), ehk: aws.ToString(e.ExplicitHashKey), data: append([]byte(nil), e.Data...), seq: seq})
		r.ShardId = aws.String(s.id)
		r.SequenceNumber = aws.String(seq)
	}
	out.FailedRecordCount = &failed
	if f.onPut != nil {
		f.onPut(len(in.Records))
	}
	return out, nil
}

func (f *fakeKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	hang, err := f.hang, f.callErr
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Two pages, to exercise pagination.
	start := 0
	if in.NextToken != nil {
		start, _ = strconv.Atoi(*in.NextToken)
	}
	end := min(start+(len(f.shards)+1)/2, len(f.shards))
	out := &kinesis.ListShardsOutput{}
	for _, s := range f.shards[start:end] {
		sh := types.Shard{
			ShardId: aws.String(s.id),
			HashKeyRange: &types.HashKeyRange{
				StartingHashKey: aws.String(s.rng.Start.String()),
				EndingHashKey:   aws.String(s.rng.End.String()),
			},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("0")},
		}
		if s.closed {
			sh.SequenceNumberRange.EndingSequenceNumber = aws.String("99")
		}
		out.Shards = append(out.Shards, sh)
	}
	if end < len(f.shards) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

func (f *fakeKinesis) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	f.mu.Lock()
	hang, err, mr := f.hang, f.callErr, f.maxRecord
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	out := &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{StreamName: in.StreamName}}
	if mr > 0 {
		out.StreamDescriptionSummary.MaxRecordSizeInKiB = aws.Int32(mr)
	}
	return out, nil
}

// stored is one user record read back from the fake, with where it was stored.
type stored struct {
	pk, ehk  string
	data     string
	shardID  string
	inRange  bool // its hash key lies in the storing shard's range
	kinesis  int  // index of the Kinesis record in its shard
	subIndex int
}

// readAll de-aggregates everything the fake stored, shard by shard, in order. A user
// record is in range only if every user record of its aggregate lies in the storing
// shard's range: Java KCL drops the whole of an aggregate that holds one outside it.
func (f *fakeKinesis) readAll() ([]stored, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []stored
	for _, s := range f.shards {
		for ki, r := range s.recs {
			urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: r.pk, ExplicitHashKey: r.ehk, Data: r.data})
			if err != nil {
				return nil, err
			}
			whole := true
			for _, u := range urs {
				hk, err := (aggregation.Record{PartitionKey: u.PartitionKey, ExplicitHashKey: u.ExplicitHashKey}).HashKey()
				if err != nil {
					return nil, err
				}
				whole = whole && s.rng.Contains(hk)
			}
			for i, u := range urs {
				out = append(out, stored{pk: u.PartitionKey, ehk: u.ExplicitHashKey, data: string(u.Data), shardID: s.id,
					inRange: whole, kinesis: ki, subIndex: i})
			}
		}
	}
	return out, nil
}

func (f *fakeKinesis) set(fn func(f *fakeKinesis)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

var errDead = errors.New("dial tcp 127.0.0.1:1: connect: connection refused")

const compressionZstd = aggregation.CodecZstd
