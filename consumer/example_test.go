package consumer_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/freshettest"
	"github.com/freshet/freshet/producer"
)

// A worker with the handler-function form: each batch is checkpointed after the handler
// returns nil.
func ExampleHandlerFunc() {
	cfg := aws.Config{Region: "us-east-1"} // from config.LoadDefaultConfig in a program
	w, err := consumer.New("orders-app", kinesis.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg),
		consumer.HandlerFunc(func(ctx context.Context, shard consumer.ShardInfo, records []consumer.Record) error {
			for _, r := range records {
				fmt.Printf("%s %s/%d %s\n", shard.ShardID, r.SequenceNumber, r.SubSequenceNumber, r.Data)
			}
			return nil
		}),
		consumer.WithStream("orders", consumer.TrimHorizon()),
		consumer.WithFailoverTime(10*time.Second),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(w.ID() != "")
	// In a program: err = w.Run(ctx); cancel ctx to shut down gracefully.
	// Output: true
}

// counter is a Processor with the full KCL lifecycle: it checkpoints every 1,000
// records, at shard end and at shutdown.
type counter struct{ n int }

func (c *counter) Initialize(ctx context.Context, in consumer.InitializeInput) error { return nil }

func (c *counter) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	c.n += len(in.Records)
	if c.n >= 1000 {
		c.n = 0
		return in.Checkpointer.Checkpoint(ctx)
	}
	return nil
}

func (c *counter) LeaseLost(ctx context.Context, in consumer.LeaseLostInput) {}

func (c *counter) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx) // SHARD_END: the children may start
}

func (c *counter) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

// A worker with a Processor per shard, reading two streams with enhanced fan-out.
func ExampleNew() {
	cfg := aws.Config{Region: "us-east-1"}
	metrics := consumer.NewMemoryMetrics()
	_, err := consumer.New("billing", kinesis.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg),
		func(shard consumer.ShardInfo) (consumer.Processor, error) { return &counter{}, nil },
		consumer.WithStream("orders", consumer.Latest()),
		consumer.WithStream("refunds", consumer.AtTimestamp(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))),
		consumer.WithFanOut("billing"),
		consumer.WithMetrics(metrics),
	)
	fmt.Println(err)
	// Output: <nil>
}

// A failure policy on the bundled engine: the handler reports the record it cannot
// parse with FailedAt, the policy tries it three times and then hands it to the
// destination (here a function; NewStreamDestination writes to another stream), and the
// orders behind it are handled.
func ExampleWithFailurePolicy() {
	e, err := freshettest.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.CreateStream(ctx, freshettest.Stream{Name: "orders", Shards: 1}); err != nil {
		fmt.Println(err)
		return
	}
	p, err := producer.New(e.Kinesis(), producer.WithStream("orders"))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range 20 {
		data := strconv.Itoa(i)
		if i == 7 {
			data = "seven"
		}
		if err := p.Put(ctx, producer.Record{PartitionKey: "k" + strconv.Itoa(i%3), Data: []byte(data)}, nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := p.Close(ctx); err != nil {
		fmt.Println(err)
		return
	}

	var mu sync.Mutex
	var handled int
	var dead []consumer.FailedRecord
	handler := consumer.HandlerFunc(func(ctx context.Context, _ consumer.ShardInfo, records []consumer.Record) error {
		mu.Lock()
		defer mu.Unlock()
		for i, r := range records {
			if _, err := strconv.Atoi(string(r.Data)); err != nil {
				return consumer.FailedAt(i, err) // records[:i] are done
			}
			handled++
		}
		return nil
	})
	toDeadLetters := consumer.DestinationFunc(func(ctx context.Context, records []consumer.FailedRecord) error {
		mu.Lock()
		defer mu.Unlock()
		dead = append(dead, records...)
		return nil
	})
	w, err := consumer.New("orders-app", e.Kinesis(), e.DynamoDB(), handler,
		consumer.WithStream("orders", consumer.TrimHorizon()),
		consumer.WithPolling(100, 1, 10*time.Millisecond),
		consumer.WithFailurePolicy(consumer.FailurePolicy{
			MaxAttempts: 3, Backoff: 10 * time.Millisecond, Destination: toDeadLetters,
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	for ctx.Err() == nil {
		mu.Lock()
		finished := handled == 19 && len(dead) == 1
		mu.Unlock()
		if finished {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("handled:", handled)
	for _, f := range dead {
		fmt.Printf("dead letter: %q, %s after %d attempts\n", f.Data, f.Reason, f.Attempts)
	}
	// Output:
	// handled: 19
	// dead letter: "seven", MaxAttempts after 3 attempts
}
