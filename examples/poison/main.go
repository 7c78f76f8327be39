// Command poison shows what Freshet's failure policy does with a record that always
// fails. It starts the bundled engine (freshettest), writes orders to the stream
// "orders" with a Freshet producer, one of them a poison record whose amount is not a
// number, and runs a consumer whose handler fails on it. The failure policy (3
// attempts, bisect on error, an on-failure destination stream "orders-dlq") isolates
// the poison, sends it to the destination with its shard, sequence number, attempts and
// error, and goes on with the records behind it. A second worker reads the destination
// stream and prints its contents, as an operator's dead-letter tool would.
//
//	go run ./examples/poison [-orders 500] [-poison 137] [-lanes 4]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/freshettest"
	"github.com/freshet/freshet/producer"
)

func main() {
	orders := flag.Int("orders", 500, "orders to write")
	poison := flag.Int("poison", 137, "index of the poison order (its amount is not a number)")
	lanes := flag.Int("lanes", 4, "parallel lanes per shard")
	timeout := flag.Duration("timeout", time.Minute, "give up after this long")
	flag.Parse()
	if *orders < 1 || *poison < 0 || *poison >= *orders {
		log.Fatalf("poison: -poison %d must be an index among -orders %d", *poison, *orders)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *orders, *poison, *lanes); err != nil {
		fmt.Fprintln(os.Stderr, "poison:", err)
		os.Exit(1)
	}
}

// ledger is the application's handler: it sums each order's amount, and fails the
// batch on an order it cannot parse.
type ledger struct {
	mu      sync.Mutex
	handled map[string]int // order ID -> times handled
	total   int
}

func (l *ledger) handle(_ context.Context, _ consumer.ShardInfo, records []consumer.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	parsed := make([]int, len(records))
	for i, r := range records {
		_, amount, _ := strings.Cut(string(r.Data), " amount=")
		n, err := strconv.Atoi(amount)
		if err != nil {
			// The whole call fails: the policy retries it, bisects it, and in the end
			// gives up only the record that keeps failing.
			return fmt.Errorf("order %q: bad amount: %w", r.Data, err)
		}
		parsed[i] = n
	}
	for i, r := range records {
		id, _, _ := strings.Cut(string(r.Data), " ")
		l.handled[id]++
		l.total += parsed[i]
	}
	return nil
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.handled)
}

// deadLetters collects what the destination stream holds.
type deadLetters struct {
	mu      sync.Mutex
	records []consumer.FailedRecord
	raw     []string
}

func (d *deadLetters) handle(_ context.Context, _ consumer.ShardInfo, records []consumer.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range records {
		f, err := consumer.ParseFailedRecord(r.Data)
		if err != nil {
			return err // not a failed-record document: leave it for an operator
		}
		d.records = append(d.records, f)
		d.raw = append(d.raw, string(r.Data))
	}
	return nil
}

func (d *deadLetters) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.records)
}

func run(ctx context.Context, orders, poison, lanes int) error {
	e, err := freshettest.New()
	if err != nil {
		return err
	}
	defer e.Close()
	for _, s := range []freshettest.Stream{{Name: "orders", Shards: 2}, {Name: "orders-dlq", Shards: 1}} {
		if err := e.CreateStream(ctx, s); err != nil {
			return err
		}
	}

	p, err := producer.New(e.Kinesis(), producer.WithStream("orders"))
	if err != nil {
		return err
	}
	for i := range orders {
		amount := strconv.Itoa(1 + i%50)
		if i == poison {
			amount = "twelve"
		}
		rec := producer.Record{PartitionKey: "customer-" + strconv.Itoa(i%17), Data: []byte(fmt.Sprintf("order-%d amount=%s", i, amount))}
		if err := p.Put(ctx, rec, nil); err != nil {
			return err
		}
	}
	if err := p.Close(ctx); err != nil {
		return err
	}
	fmt.Printf("wrote %d orders to stream orders; order-%d is poison (its amount is not a number)\n", orders, poison)

	// The on-failure destination: another stream, written with a Freshet producer.
	dest, err := consumer.NewStreamDestination(e.Kinesis(), "orders-dlq")
	if err != nil {
		return err
	}
	metrics := consumer.NewMemoryMetrics()
	l := &ledger{handled: map[string]int{}}
	w, err := consumer.New("ledger", e.Kinesis(), e.DynamoDB(), consumer.HandlerFunc(l.handle),
		consumer.WithStream("orders", consumer.TrimHorizon()),
		consumer.WithPolling(100, 1, 10*time.Millisecond),
		consumer.WithLanes(lanes),
		consumer.WithFailurePolicy(consumer.FailurePolicy{
			MaxAttempts:   3,                     // Lambda: MaximumRetryAttempts 2
			BisectOnError: true,                  // Lambda: BisectBatchOnFunctionError
			MaxRecordAge:  time.Hour,             // Lambda: MaximumRecordAgeInSeconds 3600
			Backoff:       10 * time.Millisecond, // first pause between attempts, doubling
			MaxBackoff:    100 * time.Millisecond,
			Destination:   dest, // Lambda: DestinationConfig.OnFailure
		}),
		consumer.WithMetrics(metrics),
		consumer.WithFailoverTime(time.Second))
	if err != nil {
		return err
	}
	dl := &deadLetters{}
	reader, err := consumer.New("dlq-reader", e.Kinesis(), e.DynamoDB(), consumer.HandlerFunc(dl.handle),
		consumer.WithStream("orders-dlq", consumer.TrimHorizon()),
		consumer.WithPolling(100, 1, 10*time.Millisecond),
		consumer.WithFailoverTime(time.Second))
	if err != nil {
		return err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 2)
	go func() { done <- w.Run(runCtx) }()
	go func() { done <- reader.Run(runCtx) }()
	for l.count() < orders-1 || dl.count() < 1 {
		select {
		case <-ctx.Done():
			stop()
			return fmt.Errorf("handled %d of %d orders, %d dead letters: %w", l.count(), orders-1, dl.count(), ctx.Err())
		case err := <-done:
			stop()
			return fmt.Errorf("a worker stopped early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	var errs []error
	for range 2 {
		errs = append(errs, <-done)
	}
	// Close the destination after the workers that send to it have stopped.
	errs = append(errs, dest.Close(ctx))
	if err := errors.Join(errs...); err != nil {
		return err
	}

	l.mu.Lock()
	twice := 0
	for _, n := range l.handled {
		if n > 1 {
			twice++
		}
	}
	fmt.Printf("handled %d orders (%d more than once), total amount %d\n", len(l.handled), twice, l.total)
	l.mu.Unlock()
	retried, _ := metrics.Total(consumer.MetricRecordsRetried)
	bisected, _ := metrics.Total(consumer.MetricBatchesBisected)
	sent, _ := metrics.Total(consumer.MetricRecordsToDestination)
	fmt.Printf("failure policy: %.0f records retried, %.0f batches bisected, %.0f records sent to the destination\n", retried, bisected, sent)

	dl.mu.Lock()
	defer dl.mu.Unlock()
	fmt.Printf("destination stream orders-dlq holds %d record(s):\n", len(dl.records))
	for i, f := range dl.records {
		fmt.Printf("  %s from %s/%s at %s/%d, key %s: reason %s after %d attempts, error %q\n",
			f.Data, f.Stream, f.ShardID, f.SequenceNumber, f.SubSequenceNumber, f.PartitionKey, f.Reason, f.Attempts, f.Error)
		fmt.Printf("  arrived %s, given up %s\n", f.ApproximateArrivalTimestamp.Format(time.RFC3339Nano), f.FailedAt.Format(time.RFC3339Nano))
		fmt.Printf("  document: %s\n", dl.raw[i])
	}
	return nil
}
