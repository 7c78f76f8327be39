package freshettest_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/freshettest"
	"github.com/freshet/freshet/producer"
)

// orderTotals is the code under test: a handler that sums order amounts per customer.
type orderTotals struct {
	mu     sync.Mutex
	totals map[string]int
	orders int
}

func (o *orderTotals) Handle(_ context.Context, _ consumer.ShardInfo, records []consumer.Record) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range records {
		amount, err := strconv.Atoi(string(r.Data))
		if err != nil {
			return err
		}
		o.totals[r.PartitionKey] += amount
		o.orders++
	}
	return nil
}

func (o *orderTotals) seen() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.orders
}

// Example tests a record handler end to end: a Freshet producer writes orders to a
// two-shard stream on the engine, a Freshet consumer worker (its lease table on the
// engine's DynamoDB) feeds them to the handler, and the test checks the handler's
// totals. It runs in well under a second. In a test, freshettest.Start(t) replaces New
// and Close.
func Example() {
	e, err := freshettest.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.CreateStream(ctx, freshettest.Stream{Name: "orders", Shards: 2}); err != nil {
		fmt.Println(err)
		return
	}

	p, err := producer.New(e.Kinesis(), producer.WithStream("orders"))
	if err != nil {
		fmt.Println(err)
		return
	}
	customers := []string{"ada", "grace", "alan"}
	for i := range 30 {
		rec := producer.Record{PartitionKey: customers[i%3], Data: []byte(strconv.Itoa(i))}
		if err := p.Put(ctx, rec, nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := p.Close(ctx); err != nil {
		fmt.Println(err)
		return
	}

	h := &orderTotals{totals: map[string]int{}}
	w, err := consumer.New("orders-app", e.Kinesis(), e.DynamoDB(), consumer.HandlerFunc(h.Handle),
		consumer.WithStream("orders", consumer.TrimHorizon()),
		consumer.WithPolling(1000, 1, 10*time.Millisecond),
		consumer.WithFailoverTime(time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	for h.seen() < 30 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("orders:", h.seen())
	fmt.Println("ada:", h.totals["ada"], "grace:", h.totals["grace"], "alan:", h.totals["alan"])
	// Output:
	// orders: 30
	// ada: 135 grace: 145 alan: 155
}
