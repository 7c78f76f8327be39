package engine

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// HealthPath answers GET and HEAD with 200 and a small JSON status once the engine
// serves (after any journal replay), for container and script readiness checks.
const HealthPath = "/health"

func (e *Engine) serveHealth(w http.ResponseWriter) {
	entries, bytes := e.JournalStats()
	c := e.Streams.Counters()
	body := []byte(`{"status":"ok","uptimeSeconds":`)
	body = strconv.AppendInt(body, int64(time.Since(e.started).Seconds()), 10)
	body = append(body, `,"openShards":`...)
	body = strconv.AppendInt(body, c.OpenShards, 10)
	body = append(body, `,"storedBytes":`...)
	body = strconv.AppendInt(body, c.StoredBytes, 10)
	body = append(body, `,"tables":`...)
	body = strconv.AppendInt(body, int64(len(e.Tables.TableNames())), 10)
	body = append(body, `,"persistent":`...)
	body = strconv.AppendBool(body, e.persist != nil)
	body = append(body, `,"journalEntries":`...)
	body = strconv.AppendUint(body, entries, 10)
	body = append(body, `,"journalBytes":`...)
	body = strconv.AppendInt(body, bytes, 10)
	body = append(body, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// serveLoggingRequest serves r and logs it (Config.LogRequests).
func (e *Engine) serveLoggingRequest(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	lw := &loggingWriter{ResponseWriter: w}
	e.serve(lw, r)
	name, op, _ := e.route(r)
	if name == "" {
		op = r.Header.Get("X-Amz-Target")
		if op == "" {
			op = r.URL.Path
		}
	}
	status := lw.status
	if lw.hijacked {
		status = 0 // connection dropped
	}
	e.log.Info("request", zap.String("service", name), zap.String("operation", op), zap.Int("status", status),
		zap.Duration("took", time.Since(start)), zap.Int64("requestBytes", r.ContentLength), zap.Int64("responseBytes", lw.bytes),
		zap.String("remote", r.RemoteAddr))
}

// loggingWriter records a response's status and size; it keeps the Flusher and
// Hijacker of the writer it wraps, which subscriptions and dropped connections need.
type loggingWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

func (l *loggingWriter) WriteHeader(status int) {
	if l.status == 0 {
		l.status = status
	}
	l.ResponseWriter.WriteHeader(status)
}

func (l *loggingWriter) Write(b []byte) (int, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	n, err := l.ResponseWriter.Write(b)
	l.bytes += int64(n)
	return n, err
}

func (l *loggingWriter) Flush() {
	if f, ok := l.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (l *loggingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := l.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	l.hijacked = true
	return hj.Hijack()
}
