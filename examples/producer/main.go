// Command producer is the smallest Freshet producer: it writes lines from stdin to a
// Kinesis stream, one record per line keyed by its first word, and reports each
// record's outcome. It uses the default AWS credentials chain; --endpoint points it at
// a local engine (go run ./cmd/freshet-engine).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/producer"
)

func main() {
	stream := flag.String("stream", "my-stream", "stream name")
	endpoint := flag.String("endpoint", "", "Kinesis endpoint (default: AWS)")
	flag.Parse()

	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	client := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if *endpoint != "" {
			o.BaseEndpoint = aws.String(*endpoint)
		}
	})
	p, err := producer.New(client, producer.WithStream(*stream))
	if err != nil {
		log.Fatal(err)
	}
	var stored, failed atomic.Int64
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		line := lines.Text()
		key, _, _ := strings.Cut(line, " ")
		if key == "" {
			key = "-"
		}
		rec := producer.Record{PartitionKey: key, Data: []byte(line)}
		err := p.Put(ctx, rec, func(r producer.Result) {
			if r.Err != nil {
				failed.Add(1)
				log.Printf("record failed: %v", r.Err)
				return
			}
			stored.Add(1)
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil { // flushes, then stops
		log.Print(err)
	}
	fmt.Printf("stored %d records, %d failed\n", stored.Load(), failed.Load())
}
