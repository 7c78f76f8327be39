package producer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// keysInFlight wraps the fake and watches the partition keys of the PutRecords calls
// in flight: how many calls overlap, and whether a key was ever in two at once.
type keysInFlight struct {
	*fakeKinesis
	mu       sync.Mutex
	out      map[string]bool
	calls    int
	maxCalls int
	twice    []string
}

func (c *keysInFlight) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	c.mu.Lock()
	c.calls++
	c.maxCalls = max(c.maxCalls, c.calls)
	for _, e := range in.Records {
		pk := aws.ToString(e.PartitionKey)
		if c.out[pk] {
			c.twice = append(c.twice, pk)
		}
		c.out[pk] = true
	}
	c.mu.Unlock()
	out, err := c.fakeKinesis.PutRecords(ctx, in, opts...)
	c.mu.Lock()
	c.calls--
	for _, e := range in.Records {
		delete(c.out, aws.ToString(e.PartitionKey))
	}
	c.mu.Unlock()
	return out, err
}

// TestOrderedPlainCallsOverlapWithoutSharingKeys: an ordered plain producer sends
// several calls of one shard at a time, never two records of one key at once, and
// stores every key's records once and in Put order although 10% of entries are
// throttled or fail.
func TestOrderedPlainCallsOverlapWithoutSharingKeys(t *testing.T) {
	f := newFake(1)
	f.latency = 5 * time.Millisecond
	f.throttleRate, f.internalRate = 0.05, 0.05
	c := &keysInFlight{fakeKinesis: f, out: map[string]bool{}}
	p, err := New(c, WithStream(testStream), WithAggregation(false), WithBackoff(time.Millisecond, 20*time.Millisecond),
		WithLinger(5*time.Millisecond), WithCollectionMaxCount(50))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	n, keys := scale(6000, 200000), 300
	o := putAll(t, p, n, keys)
	if failed := o.check(t, n); len(failed) > 0 {
		t.Fatalf("%d records failed: %v", len(failed), failed[0].Err)
	}
	c.mu.Lock()
	twice, maxCalls := c.twice, c.maxCalls
	c.mu.Unlock()
	if len(twice) > 0 {
		t.Fatalf("%d times a key was in two calls at once (first %s)", len(twice), twice[0])
	}
	if maxCalls < 2 {
		t.Fatalf("at most %d call in flight for the one shard, want several", maxCalls)
	}
	recs := assertExactlyOnce(t, f, n, keys)
	assertKeyOrder(t, recs, n)
}
