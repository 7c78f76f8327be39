// Command prometheus serves Freshet's producer and consumer metrics to Prometheus through
// the OpenTelemetry meter of package otelfreshet and the OTel Prometheus exporter. It
// starts the bundled engine on loopback, produces records to a stream and consumes them,
// and serves /metrics on -addr until interrupted (or for -for, then prints one scrape).
//
//	go run ./examples/prometheus -addr 127.0.0.1:9464
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	otelfreshet "github.com/freshet/freshet/otel"
	"github.com/freshet/freshet/producer"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9464", "address to serve /metrics on")
	runFor := flag.Duration("for", 0, "stop after this long and print one scrape (0: run until interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, ln, os.Stdout, *runFor > 0); err != nil {
		log.Fatal(err)
	}
}

// run serves the metrics of a producer and a consumer on ln until ctx ends; with scrape
// it then writes one scrape of /metrics to out.
func run(ctx context.Context, ln net.Listener, out io.Writer, scrape bool) error {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())
	meter, err := otelfreshet.NewMeter(otelfreshet.WithMeterProvider(mp))
	if err != nil {
		return err
	}

	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	e, err := engine.Start(engine.Config{})
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.Streams.CreateStream("orders", 2); err != nil {
		return err
	}
	kin := enginetest.Kinesis(e)
	p, err := producer.New(kin, producer.WithStream("orders"), producer.WithMetricsRecorder(meter))
	if err != nil {
		return err
	}
	w, err := consumer.New("orders-app", kin, enginetest.DynamoDB(e),
		consumer.HandlerFunc(func(context.Context, consumer.ShardInfo, []consumer.Record) error { return nil }),
		consumer.WithStream("orders", consumer.TrimHorizon()), consumer.WithMetrics(meter), consumer.WithCPUMetrics(false))
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for i := 0; ctx.Err() == nil; i++ {
		if err := p.Put(ctx, producer.Record{PartitionKey: fmt.Sprint("key-", i%100), Data: []byte("hello")}, nil); err != nil && ctx.Err() == nil {
			return err
		}
		if i%1000 == 999 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		return err
	}
	if err := <-done; err != nil {
		return err
	}
	if !scrape {
		return nil
	}
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(out, resp.Body)
	return err
}
