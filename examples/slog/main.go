// Command slog shows Freshet's logs going to a log/slog handler. Freshet logs with zap
// (a no-op logger unless one is given); a program that logs with slog bridges the two
// with a small zapcore.Core that hands zap's entries to its slog.Handler (core.go,
// about 60 lines on zap and the standard library only). It starts the bundled engine,
// makes every PutRecords call fail for a moment, and the producer's warnings and debug
// lines appear as slog JSON on stderr.
//
//	go run ./examples/slog
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/fault"
	"github.com/freshet/freshet/producer"
)

func main() {
	h := slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	if err := run(context.Background(), h); err != nil {
		log.Fatal(err)
	}
}

// run writes records to a stream of the bundled engine, whose PutRecords calls fail
// for the first 200 ms, with the producer logging to h.
func run(ctx context.Context, h slog.Handler) error {
	e, err := engine.Start(engine.Config{})
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.Streams.CreateStream("orders", 2); err != nil {
		return err
	}
	e.Faults.Set("Kinesis.PutRecords", fault.Rule{ErrorRate: 1, ErrorCode: "InternalFailure"})
	time.AfterFunc(200*time.Millisecond, e.Faults.Reset)

	logger := zap.New(newSlogCore(h)).Named("freshet")
	p, err := producer.New(enginetest.Kinesis(e), producer.WithStream("orders"), producer.WithLogger(logger))
	if err != nil {
		return err
	}
	for i := 0; i < 100; i++ {
		if err := p.Put(ctx, producer.Record{PartitionKey: fmt.Sprint("key-", i), Data: []byte("hello")}, nil); err != nil {
			return err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return p.Close(cctx)
}
