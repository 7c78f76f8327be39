// Command consumer is the smallest Freshet consumer: a worker of application --app that
// prints every record of a Kinesis stream and checkpoints after each batch. Start
// several to share the shards; stop one with Ctrl-C and the others take its shards.
// It uses the default AWS credentials chain; --endpoint points it at a local engine.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/consumer"
)

func main() {
	stream := flag.String("stream", "my-stream", "stream name")
	app := flag.String("app", "my-app", "application name (and lease table)")
	endpoint := flag.String("endpoint", "", "Kinesis and DynamoDB endpoint (default: AWS)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if *endpoint != "" {
		cfg.BaseEndpoint = aws.String(*endpoint)
	}
	handler := consumer.HandlerFunc(func(ctx context.Context, shard consumer.ShardInfo, records []consumer.Record) error {
		for _, r := range records {
			fmt.Printf("%s %s/%d %s: %s\n", shard.ShardID, r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, r.Data)
		}
		return nil // the batch is checkpointed once the handler returns nil
	})
	w, err := consumer.New(*app, kinesis.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg), handler,
		consumer.WithStream(*stream, consumer.TrimHorizon()))
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Run(ctx); err != nil { // until Ctrl-C, then a graceful shutdown
		log.Fatal(err)
	}
}
