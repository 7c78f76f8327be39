package wordcount_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"example.com/testing_with_freshettest"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/freshettest"
	"github.com/freshet/freshet/producer"
)

// TestCountsEveryLineDespiteFaults runs the service against freshettest with a fifth of
// PutRecords calls throttled and some answers lost after the write, a shard split while
// it runs, and checks the counts, the stored records and the published metric.
func TestCountsEveryLineDespiteFaults(t *testing.T) {
	e := freshettest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.CreateStream(ctx, freshettest.Stream{Name: "lines", Shards: 2}); err != nil {
		t.Fatal(err)
	}
	if err := e.InjectFault("Kinesis.PutRecords", freshettest.Fault{ErrorRate: 0.2, ErrorCode: "ProvisionedThroughputExceededException"}); err != nil {
		t.Fatal(err)
	}

	p, err := producer.New(e.Kinesis(), producer.WithStream("lines"))
	if err != nil {
		t.Fatal(err)
	}
	const lines = 200
	for i := range lines {
		author := fmt.Sprint("author-", i%5)
		if err := p.Put(ctx, producer.Record{PartitionKey: author, Data: []byte("one two three")}, func(r producer.Result) {
			if r.Err != nil {
				t.Errorf("line %d: %v", i, r.Err)
			}
		}); err != nil {
			t.Fatal(err)
		}
		if i == lines/2 {
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := e.SplitShard(ctx, "lines", "shardId-000000000000", "85070591730234615865843651857942052864"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e.ClearFaults()
	if shards, err := e.Shards("lines"); err != nil || len(shards) != 4 {
		t.Fatalf("shards after the split: %v %v", shards, err)
	}

	c := wordcount.New(e.CloudWatch())
	w, err := consumer.New("wordcount", e.Kinesis(), e.DynamoDB(), consumer.HandlerFunc(c.Handle),
		consumer.WithStream("lines", consumer.TrimHorizon()),
		consumer.WithPolling(1000, 1, 10*time.Millisecond),
		consumer.WithShardSyncInterval(100*time.Millisecond),
		consumer.WithFailoverTime(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	for c.Lines() < lines && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.Lines() < lines {
		t.Fatalf("counted %d of %d lines", c.Lines(), lines)
	}
	for i := range 5 {
		if got := c.Words(fmt.Sprint("author-", i)); got < 3*lines/5 {
			t.Errorf("author-%d: %d words, want at least %d", i, got, 3*lines/5)
		}
	}
	if s := e.MetricStats("wordcount", "Words"); s.Sum < 3*lines {
		t.Errorf("published Words sum %v, want at least %d", s.Sum, 3*lines)
	}
	if items, err := e.Items("wordcount"); err != nil || len(items) == 0 {
		t.Errorf("lease table items %d, %v", len(items), err)
	}
}
