// Package engine is Freshet's bundled stream engine: an in-process Amazon Kinesis Data
// Streams, DynamoDB and CloudWatch that speak the real wire protocols on a loopback HTTP
// listener.
//
// Producers, consumers and lease code talk to the engine through the same aws-sdk-go-v2
// clients they use against AWS; only the endpoint differs. Requests are routed by their
// X-Amz-Target header (Kinesis JSON 1.1, DynamoDB JSON 1.0) or by the Smithy RPC v2 path
// (CloudWatch CBOR) to the streams, tables and metrics services. Every request passes the
// fault injector first, so tests can add errors, latency and dropped connections to any
// operation. Credentials and signatures are accepted whatever they are.
package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.uber.org/zap"

	"github.com/freshet/freshet/internal/clock"
	"github.com/freshet/freshet/internal/engine/fault"
	"github.com/freshet/freshet/internal/engine/metrics"
	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/internal/engine/tables"
	"github.com/freshet/freshet/internal/sdkhttp"
)

// Config configures an engine. The zero value serves on a free loopback port with the
// real clock and every service's defaults.
type Config struct {
	// Addr is the listen address; "127.0.0.1:0" when empty.
	Addr string
	// Clock drives expiry, retention, throttling and status transitions; clock.Real when nil.
	Clock clock.Clock
	// FaultSeed seeds the fault injector's random decisions.
	FaultSeed int64
	// Logger receives the engine's logs; a no-op logger when nil.
	Logger *zap.Logger
	// Streams configures the Kinesis service.
	Streams streams.Config
	// Tables configures the DynamoDB service.
	Tables tables.Config
	// Metrics configures the CloudWatch service.
	Metrics metrics.Config
}

// Service is one AWS service served by the engine.
type Service interface {
	// ServeOperation handles one call of operation op. The request body is unread.
	ServeOperation(w http.ResponseWriter, r *http.Request, op string)
	// WriteError writes a service error in the service's own protocol.
	WriteError(w http.ResponseWriter, r *http.Request, code, message string, status int)
}

// Engine is a running engine. Its exported services let tests inspect and steer state
// directly; everything else goes through the wire protocols.
type Engine struct {
	// Streams is the Kinesis service.
	Streams *streams.Service
	// Tables is the DynamoDB service.
	Tables *tables.Service
	// Metrics is the CloudWatch service.
	Metrics *metrics.Service
	// Faults injects failures into any operation.
	Faults *fault.Injector

	clock    clock.Clock
	log      *zap.Logger
	listener net.Listener
	server   *http.Server
	url      string

	closeOnce sync.Once
	closeErr  error
}

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config) (*Engine, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	faults := fault.New(cfg.FaultSeed)
	st, err := streams.New(cfg.Streams, cfg.Clock, faults)
	if err != nil {
		return nil, fmt.Errorf("engine: streams: %w", err)
	}
	tb, err := tables.New(cfg.Tables, cfg.Clock)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("engine: tables: %w", err)
	}
	mt, err := metrics.New(cfg.Metrics, cfg.Clock)
	if err != nil {
		st.Close()
		tb.Close()
		return nil, fmt.Errorf("engine: metrics: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		st.Close()
		tb.Close()
		mt.Close()
		return nil, fmt.Errorf("engine: listen on %s: %w", cfg.Addr, err)
	}
	e := &Engine{
		Streams:  st,
		Tables:   tb,
		Metrics:  mt,
		Faults:   faults,
		clock:    cfg.Clock,
		log:      cfg.Logger,
		listener: ln,
		url:      "http://" + ln.Addr().String(),
	}
	e.server = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       10 * time.Minute,
		ErrorLog:          zap.NewStdLog(cfg.Logger),
	}
	go func() {
		if err := e.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("engine: serve", zap.Error(err))
		}
	}()
	return e, nil
}

// URL returns the endpoint, e.g. "http://127.0.0.1:41234", for an SDK client's
// BaseEndpoint.
func (e *Engine) URL() string { return e.url }

// Addr returns the listener's address.
func (e *Engine) Addr() net.Addr { return e.listener.Addr() }

// Clock returns the engine's clock.
func (e *Engine) Clock() clock.Clock { return e.clock }

// AWSConfig returns an aws.Config that points every client at the engine with static
// credentials in region us-east-1. Build clients with kinesis.NewFromConfig and friends.
// Its HTTP client sends bodies through sdkhttp.ReadOnlyBodies, so the SDK does not resend
// calls the engine has already applied (see package sdkhttp).
func (e *Engine) AWSConfig() aws.Config { return ClientConfig(e.url) }

// ClientConfig returns an SDK configuration for an engine listening at url (static
// credentials, its region, pooled connections), for clients in another process.
func ClientConfig(url string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("freshet", "freshet", ""),
		BaseEndpoint: aws.String(url),
		HTTPClient: sdkhttp.ReadOnlyBodies(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 256
			t.MaxIdleConnsPerHost = 256
		})),
	}
}

// Close stops the listener, ends open connections and releases the services.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		e.Streams.Close()
		e.Tables.Close()
		e.Metrics.Close()
		if err := e.server.Shutdown(ctx); err != nil {
			e.closeErr = e.server.Close()
		}
	})
	return e.closeErr
}

const (
	kinesisTargetPrefix  = "Kinesis_20131202."
	dynamoDBTargetPrefix = "DynamoDB_20120810."
	cloudWatchPathPrefix = "/service/GraniteServiceVersion20100801/operation/"
)

// ServeHTTP routes a request to its service after applying injected faults.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	svcName, op, svc := e.route(r)
	if svc == nil {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"UnknownOperationException","message":"Unknown operation %q"}`, sanitize(r.Header.Get("X-Amz-Target")+r.URL.Path))
		return
	}
	act := e.Faults.Decide(svcName, op)
	if act.Latency > 0 {
		select {
		case <-time.After(act.Latency):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case act.Drop:
		dropConnection(w)
		return
	case act.Failing():
		svc.WriteError(w, r, act.ErrorCode, act.ErrMessage, act.StatusCode)
		return
	case act.DropAfter:
		svc.ServeOperation(discardWriter{h: make(http.Header)}, r, op)
		dropConnection(w)
		return
	}
	svc.ServeOperation(w, r, op)
}

func (e *Engine) route(r *http.Request) (name, op string, svc Service) {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		switch {
		case strings.HasPrefix(t, kinesisTargetPrefix):
			return "Kinesis", t[len(kinesisTargetPrefix):], e.Streams
		case strings.HasPrefix(t, dynamoDBTargetPrefix):
			return "DynamoDB", t[len(dynamoDBTargetPrefix):], e.Tables
		}
		return "", "", nil
	}
	if strings.HasPrefix(r.URL.Path, cloudWatchPathPrefix) {
		return "CloudWatch", r.URL.Path[len(cloudWatchPathPrefix):], e.Metrics
	}
	return "", "", nil
}

func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}
func (d discardWriter) Flush()                      {}

func sanitize(s string) string {
	if len(s) > 128 {
		s = s[:128]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == '\\' || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
