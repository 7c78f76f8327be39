package consumer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/consumer"
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
