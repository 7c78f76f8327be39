package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine/journal"
)

// JournalFile is the name of the write-ahead log in Config.DataDir.
const JournalFile = "journal.wal"

// persistence is the engine's state on disk (Config.DataDir): see package journal for
// the design.
type persistence struct {
	log *journal.Log
	pin *pinClock
	// mu orders the calls that change state: each one is applied and appended to the
	// log alone, so the log's order is the order the services saw.
	mu      sync.Mutex
	stop    chan struct{}
	stopped sync.WaitGroup
}

// pinClock is the services' clock with Config.DataDir set: while a logged call or
// maintenance run is applied it reads the time that run was logged with, so replaying
// the log reproduces every time-dependent decision.
type pinClock struct {
	base   clock.Clock
	pinned atomic.Int64
	last   int64 // the last pinned time; guarded by persistence.mu
}

func (c *pinClock) Now() time.Time {
	if p := c.pinned.Load(); p != 0 {
		return time.Unix(0, p)
	}
	return c.base.Now()
}

func (c *pinClock) After(d time.Duration) <-chan time.Time { return c.base.After(d) }
func (c *pinClock) Since(t time.Time) time.Duration        { return c.Now().Sub(t) }

// pinNow pins the clock to the base clock's time, never before the last pinned time,
// and returns it. The caller holds persistence.mu.
func (c *pinClock) pinNow() int64 {
	return c.pinAt(c.base.Now().UnixNano())
}

// pinAt pins the clock to t (or the last pinned time, if later). The caller holds
// persistence.mu.
func (c *pinClock) pinAt(t int64) int64 {
	if t < c.last {
		t = c.last
	}
	c.last = t
	c.pinned.Store(t)
	return t
}

func (c *pinClock) unpin() { c.pinned.Store(0) }

// logged reports whether calls of op go through the journal: every operation except
// SubscribeToShard and those that only read.
func logged(op string) bool {
	switch op {
	case "SubscribeToShard", "Query", "Scan", "BatchGetItem":
		return false
	}
	return !strings.HasPrefix(op, "Describe") && !strings.HasPrefix(op, "List") && !strings.HasPrefix(op, "Get")
}

// SettingsFile is the name of the file in Config.DataDir that keeps the service
// settings the journal was written with.
const SettingsFile = "settings.json"

// checkSettings writes cfg's service settings to dir on first use and otherwise
// requires them to be what they were: the journal replays to the same state only under
// the same settings (limits, rates, delays, scaling).
func checkSettings(dir string, cfg Config) error {
	want, err := json.MarshalIndent(struct {
		Streams any
		Tables  any
		Metrics any
	}{cfg.Streams, cfg.Tables, cfg.Metrics}, "", "  ")
	if err != nil {
		return fmt.Errorf("engine: settings: %w", err)
	}
	want = append(want, '\n')
	path := filepath.Join(dir, SettingsFile)
	have, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.WriteFile(path, want, 0o644); err != nil {
			return fmt.Errorf("engine: settings: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("engine: settings: %w", err)
	case !bytes.Equal(have, want):
		return fmt.Errorf("engine: data directory %s was written with other settings; start with the same flags, or use a new directory\nwas: %s\nnow: %s", dir, have, want)
	}
	return nil
}

// openPersistence replays dir's journal into e's services and opens it for appending.
func (e *Engine) openPersistence(dir string, cfg Config, pin *pinClock) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("engine: data directory: %w", err)
	}
	if err := checkSettings(dir, cfg); err != nil {
		return err
	}
	p := &persistence{pin: pin, stop: make(chan struct{})}
	e.persist = p
	start := time.Now()
	var n int
	log, err := journal.Open(filepath.Join(dir, JournalFile), func(en journal.Entry) error {
		n++
		return e.replay(en)
	})
	pin.unpin()
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	p.log = log
	e.log.Info("engine: journal replayed", zap.String("dir", dir), zap.Int("entries", n), zap.Duration("took", time.Since(start)))
	return nil
}

// serviceHeaders are the request headers the services read besides the body.
var serviceHeaders = []string{"Content-Type", "Content-Encoding", "Smithy-Protocol"}

func loggedHeaders(h http.Header) []string {
	var out []string
	for _, name := range serviceHeaders {
		if v := h.Get(name); v != "" {
			out = append(out, name, v)
		}
	}
	return out
}

// replay applies one journal entry on the clock pinned to its time.
func (e *Engine) replay(en journal.Entry) error {
	e.persist.pin.pinAt(en.Time)
	if en.Kind == journal.KindMaintain {
		e.Streams.Maintain()
		return nil
	}
	svc := e.serviceNamed(en.Service)
	if svc == nil {
		return fmt.Errorf("unknown service %q", en.Service)
	}
	r, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(en.Body))
	if err != nil {
		return err
	}
	for i := 0; i+1 < len(en.Headers); i += 2 {
		r.Header.Set(en.Headers[i], en.Headers[i+1])
	}
	rec := newBufferedResponse()
	svc.ServeOperation(rec, r, en.Op)
	if got := rec.statusCode(); got != en.Status {
		return fmt.Errorf("status %d on replay, %d when it was logged (%s)", got, en.Status, bytes.TrimSpace(rec.body.Bytes()))
	}
	return nil
}

func (e *Engine) serviceNamed(name string) Service {
	switch name {
	case "Kinesis":
		return e.Streams
	case "DynamoDB":
		return e.Tables
	case "CloudWatch":
		return e.Metrics
	}
	return nil
}

// internalErrorCodes are the services' own codes for a server-side failure.
var internalErrorCodes = map[string]string{"Kinesis": "InternalFailure", "DynamoDB": "InternalServerError", "CloudWatch": "InternalServiceError"}

// serveLogged applies a call that changes state alone, logs it, and answers only once
// the log holds it on disk. With dropAfter the connection is closed instead of
// answering, after the call took effect and was logged.
func (e *Engine) serveLogged(w http.ResponseWriter, r *http.Request, name, op string, svc Service, dropAfter bool) {
	p := e.persist
	body, err := io.ReadAll(io.LimitReader(r.Body, journal.MaxEntryBytes-1024))
	if err != nil {
		return // the client went away mid-body; nothing was applied
	}
	if len(body) >= journal.MaxEntryBytes-1024 {
		svc.WriteError(w, r, "ValidationException", "Request body exceeds "+strconv.Itoa(journal.MaxEntryBytes-1024)+" bytes", http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	rec := newBufferedResponse()
	p.mu.Lock()
	t := p.pin.pinNow()
	svc.ServeOperation(rec, r, op)
	pos := p.log.Append(journal.Entry{Kind: journal.KindCall, Time: t, Service: name, Op: op,
		Headers: loggedHeaders(r.Header), Status: rec.statusCode(), Body: body})
	p.pin.unpin()
	p.mu.Unlock()
	if err := p.log.Sync(pos); err != nil {
		e.log.Error("engine: journal", zap.Error(err))
		svc.WriteError(w, r, internalErrorCodes[name], "The engine could not write its journal: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if dropAfter {
		dropConnection(w)
		return
	}
	rec.copyTo(w)
}

// maintainLoop runs the services' periodic work every interval, logged, until stop.
func (e *Engine) maintainLoop(interval time.Duration) {
	p := e.persist
	defer p.stopped.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		at := p.pin.pinNow()
		e.Streams.Maintain()
		p.log.Append(journal.Entry{Kind: journal.KindMaintain, Time: at})
		p.pin.unpin()
		p.mu.Unlock()
	}
}

// JournalStats reports the entries and bytes of the journal on disk; zeros without
// Config.DataDir.
func (e *Engine) JournalStats() (entries uint64, bytes int64) {
	if e.persist == nil || e.persist.log == nil {
		return 0, 0
	}
	return e.persist.log.Stats()
}

// bufferedResponse holds a response until the journal has the call on disk.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse { return &bufferedResponse{header: make(http.Header)} }

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedResponse) Flush() {}

func (b *bufferedResponse) statusCode() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

func (b *bufferedResponse) copyTo(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range b.header {
		h[k] = v
	}
	w.WriteHeader(b.statusCode())
	_, _ = w.Write(b.body.Bytes())
}
