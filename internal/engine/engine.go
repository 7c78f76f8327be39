// Package engine is Freshet's bundled stream engine: an in-process Amazon Kinesis Data
// Streams, DynamoDB and CloudWatch that speak the real wire protocols on a loopback HTTP
// listener.
//
// Producers, consumers and lease code talk to the engine through the same aws-sdk-go-v2
// clients they use against AWS; only the endpoint differs. Requests are routed by their
// X-Amz-Target header (Kinesis JSON 1.1, DynamoDB JSON 1.0) or by the Smithy RPC v2 path
// (CloudWatch CBOR) to the streams, tables and metrics services; STS GetCallerIdentity (a
// form POST) is answered for the KPL daemon. With Config.TLS the same routes are also
// served over HTTPS (HTTP/1.1 and HTTP/2), for clients that only speak TLS. Every request
// passes the fault injector first, so tests can add errors, latency and dropped
// connections to any operation. Credentials and signatures are accepted whatever they
// are.
package engine

import (
	"context"
	"crypto/tls"
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

	"github.com/freshet/freshet/clock"
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
	// Clock drives expiry, retention, throttling and status transitions; clock.Real() when nil.
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
	// DataDir, when set, keeps the engine's state (streams, shards, records, consumers,
	// tables, items and metrics) in a journal in this directory, replayed at start; a
	// call is answered only once the journal holds it on disk, so a crash loses nothing
	// that was acknowledged (package journal). Calls that change state are then applied
	// one at a time, and Streams.MaintenanceInterval runs from the engine (100 ms when
	// zero, never when negative). Only calls over the wire are journaled: changes made
	// through the services' Go API (Streams.CreateStream, SetEntryFaults, ...) are not.
	// Empty keeps everything in memory only.
	DataDir string
	// LogRequests logs every request at info level: service, operation, status,
	// duration and body sizes.
	LogRequests bool
	// TLS, when set, adds an HTTPS listener (HTTP/1.1 and HTTP/2) beside the plain one.
	TLS *TLSConfig
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

	clock   clock.Clock
	log     *zap.Logger
	account string
	persist *persistence // nil without Config.DataDir
	started time.Time

	calls callCounters

	logRequests bool
	listener    net.Listener
	server      *http.Server
	url         string

	tlsListener net.Listener
	tlsServer   *http.Server
	tlsURL      string
	certPEM     []byte

	closeOnce sync.Once
	closeErr  error
}

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config) (*Engine, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	faults := fault.New(cfg.FaultSeed)
	svcClock := cfg.Clock
	var pin *pinClock
	maintainEvery := cfg.Streams.MaintenanceInterval
	if cfg.DataDir != "" {
		pin = &pinClock{base: cfg.Clock}
		svcClock = pin
		if maintainEvery == 0 {
			maintainEvery = 100 * time.Millisecond
		}
		cfg.Streams.MaintenanceInterval = -1
	}
	st, err := streams.New(cfg.Streams, svcClock, faults)
	if err != nil {
		return nil, fmt.Errorf("engine: streams: %w", err)
	}
	tb, err := tables.New(cfg.Tables, svcClock)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("engine: tables: %w", err)
	}
	mt, err := metrics.New(cfg.Metrics, svcClock)
	if err != nil {
		st.Close()
		tb.Close()
		return nil, fmt.Errorf("engine: metrics: %w", err)
	}
	e := &Engine{
		Streams: st,
		Tables:  tb,
		Metrics: mt,
		Faults:  faults,
		clock:   cfg.Clock,
		log:     cfg.Logger,
		started: time.Now(),
		calls:   newCallCounters(),

		logRequests: cfg.LogRequests,
	}
	if cfg.DataDir != "" {
		if err := e.openPersistence(cfg.DataDir, cfg, pin); err != nil {
			st.Close()
			tb.Close()
			mt.Close()
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		st.Close()
		tb.Close()
		mt.Close()
		if e.persist != nil {
			_ = e.persist.log.Close()
		}
		return nil, fmt.Errorf("engine: listen on %s: %w", cfg.Addr, err)
	}
	e.listener = ln
	e.url = "http://" + ln.Addr().String()
	e.account = cfg.Streams.AccountID
	if e.persist != nil && maintainEvery > 0 {
		e.persist.stopped.Add(1)
		go e.maintainLoop(maintainEvery)
	}
	if e.account == "" {
		e.account = "000000000000"
	}
	if cfg.TLS != nil {
		if err := e.listenTLS(cfg.TLS); err != nil {
			_ = ln.Close()
			st.Close()
			tb.Close()
			mt.Close()
			return nil, err
		}
	}
	e.server = e.newServer()
	go func() {
		if err := e.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("engine: serve", zap.Error(err))
		}
	}()
	if e.tlsServer != nil {
		go func() {
			if err := e.tlsServer.Serve(e.tlsListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.log.Error("engine: serve tls", zap.Error(err))
			}
		}()
	}
	return e, nil
}

func (e *Engine) newServer() *http.Server {
	return &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       10 * time.Minute,
		ErrorLog:          zap.NewStdLog(e.log),
	}
}

// listenTLS opens the HTTPS listener of cfg; Start serves it.
func (e *Engine) listenTLS(cfg *TLSConfig) error {
	cert, certPEM, err := cfg.tlsCertificate(e.clock.Now())
	if err != nil {
		return err
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("engine: listen (tls) on %s: %w", addr, err)
	}
	e.tlsListener = &tlsListener{Listener: ln, cfg: &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}}
	e.tlsURL = "https://" + ln.Addr().String()
	e.certPEM = certPEM
	e.tlsServer = e.newServer()
	// The server sees the decrypted connections as plain ones and picks the protocol from
	// the first bytes: HTTP/2 whether the client chose h2 by ALPN or assumed it without
	// ALPN (the Java SDK's Netty client does, for SubscribeToShard), HTTP/1.1 otherwise.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	e.tlsServer.Protocols = &protocols
	return nil
}

// URL returns the endpoint, e.g. "http://127.0.0.1:41234", for an SDK client's
// BaseEndpoint.
func (e *Engine) URL() string { return e.url }

// TLSURL returns the HTTPS endpoint, e.g. "https://127.0.0.1:41235", or "" when the
// engine has no TLS listener (Config.TLS).
func (e *Engine) TLSURL() string { return e.tlsURL }

// TLSAddr returns the HTTPS listener's address, or nil without one.
func (e *Engine) TLSAddr() net.Addr {
	if e.tlsListener == nil {
		return nil
	}
	return e.tlsListener.Addr()
}

// CertificatePEM returns the PEM certificate the HTTPS listener presents (generated or
// loaded), or nil without one. Clients that verify certificates trust it through
// x509.CertPool.AppendCertsFromPEM.
func (e *Engine) CertificatePEM() []byte { return e.certPEM }

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
		if e.tlsServer != nil {
			if err := e.tlsServer.Shutdown(ctx); err != nil {
				e.closeErr = errors.Join(e.closeErr, e.tlsServer.Close())
			}
		}
		if p := e.persist; p != nil {
			close(p.stop)
			p.stopped.Wait()
			p.mu.Lock() // no logged call is being applied
			if err := p.log.Close(); err != nil && e.closeErr == nil {
				e.closeErr = err
			}
			p.mu.Unlock()
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
	if r.URL.Path == HealthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		e.serveHealth(w)
		return
	}
	if e.logRequests {
		e.serveLoggingRequest(w, r)
		return
	}
	e.serve(w, r)
}

func (e *Engine) serve(w http.ResponseWriter, r *http.Request) {
	svcName, op, svc := e.route(r)
	if svc == nil && e.serveSTS(w, r) {
		return
	}
	if svc == nil {
		writeUnknownOperation(w, r)
		return
	}
	e.calls.count(svcName, op)
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
	case e.persist != nil && logged(op):
		e.serveLogged(w, r, svcName, op, svc, act.DropAfter)
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

// Operations returns, per service name as fault rules spell it ("Kinesis", "DynamoDB",
// "CloudWatch"), the operations the engine serves, sorted.
func Operations() map[string][]string {
	return map[string][]string{
		"Kinesis":    streams.Operations(),
		"DynamoDB":   tables.Operations(),
		"CloudWatch": metrics.Operations(),
	}
}

// SetFault validates rule and installs it for key: "<Service>.<Operation>" of an
// operation the engine serves (see Operations), "<Service>.*" or "*". A bad key or rule
// is reported with an error wrapping fault.ErrInvalidRule.
func (e *Engine) SetFault(key string, rule fault.Rule) error {
	if err := CheckFaultKey(key); err != nil {
		return err
	}
	if err := rule.Validate(); err != nil {
		return err
	}
	e.Faults.Set(key, rule)
	return nil
}

// CheckFaultKey reports whether key names "*", a service ("Kinesis.*") or an operation
// the engine serves ("Kinesis.PutRecords"), with an error wrapping fault.ErrInvalidRule
// that lists the choices when it does not.
func CheckFaultKey(key string) error {
	if key == "*" {
		return nil
	}
	svc, op, _ := strings.Cut(key, ".")
	ops, ok := Operations()[svc]
	if !ok {
		return fmt.Errorf("%w: fault key %q: service must be Kinesis, DynamoDB or CloudWatch (or the key *)", fault.ErrInvalidRule, key)
	}
	if op == "*" {
		return nil
	}
	for _, o := range ops {
		if o == op {
			return nil
		}
	}
	return fmt.Errorf("%w: fault key %q: %s serves no operation %q (it serves %s)", fault.ErrInvalidRule, key, svc, op, strings.Join(ops, ", "))
}
