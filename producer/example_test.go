package producer_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/producer"
)

// Example puts records asynchronously with a callback per record, then one synchronously,
// and closes the producer, against the bundled engine.
func Example() {
	e, err := engine.Start(engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	if err := e.Streams.CreateStream("orders", 2); err != nil {
		log.Fatal(err)
	}

	p, err := producer.New(kinesis.NewFromConfig(e.AWSConfig()),
		producer.WithStream("orders"),
		producer.WithCBOR(true),
		producer.WithOrdering(true),
		producer.WithMaxBuffered(100000, 32<<20),
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		rec := producer.Record{PartitionKey: "customer-42", Data: []byte(fmt.Sprintf("order %d", i))}
		err := p.Put(ctx, rec, func(r producer.Result) {
			if r.Err != nil {
				log.Printf("order lost: %v", r.Err)
			}
		})
		if err != nil {
			log.Fatal(err) // invalid record, closed producer or ctx ended at the buffer bound
		}
	}
	res, err := p.PutSync(ctx, producer.Record{PartitionKey: "customer-42", Data: []byte("order 3")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("attempts:", len(res.Attempts), "written:", res.Err == nil && res.SequenceNumber != "")

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		log.Fatal(err)
	}
	// Output: attempts: 1 written: true
}

// ExampleProducer_PutAsync waits for one record's outcome through its Future.
func ExampleProducer_PutAsync() {
	e, err := engine.Start(engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	if err := e.Streams.CreateStream("clicks", 1); err != nil {
		log.Fatal(err)
	}
	p, err := producer.New(kinesis.NewFromConfig(e.AWSConfig()), producer.WithStream("clicks"))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	f, err := p.PutAsync(ctx, producer.Record{PartitionKey: "page-1", Data: []byte("click")})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	r, err := f.Wait(ctx)
	fmt.Println(err, r.ShardID)
	// Output: <nil> shardId-000000000000
}
