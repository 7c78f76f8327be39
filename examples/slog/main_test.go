package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestSlogCore: zap entries reach the slog handler with slog's level, the message, the
// time, the logger name, the fields of With and of the call (errors as strings), and
// levels the handler disables are not written.
func TestSlogCore(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})
	l := zap.New(newSlogCore(h)).Named("freshet").With(zap.String("worker", "w1"))
	l.Debug("hidden")
	l.Warn("lease lost", zap.String("shard", "shardId-000000000001"), zap.Int("attempt", 3),
		zap.Duration("after", 1500*time.Millisecond), zap.Error(errors.New("boom")))
	l.Error("failed")
	var lines []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines written, want 2: %s", len(lines), buf.String())
	}
	w := lines[0]
	want := map[string]any{"level": "WARN", "msg": "lease lost", "logger": "freshet", "worker": "w1",
		"shard": "shardId-000000000001", "attempt": float64(3), "after": float64(1500 * time.Millisecond), "error": "boom"}
	for k, v := range want {
		if w[k] != v {
			t.Fatalf("%s = %v (%T), want %v; line %v", k, w[k], w[k], v, w)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, w["time"].(string)); err != nil {
		t.Fatalf("time %v: %v", w["time"], err)
	}
	if lines[1]["level"] != "ERROR" || lines[1]["worker"] != "w1" {
		t.Fatalf("second line %v", lines[1])
	}
	for l, s := range map[zapcore.Level]slog.Level{zapcore.DebugLevel: slog.LevelDebug, zapcore.InfoLevel: slog.LevelInfo,
		zapcore.WarnLevel: slog.LevelWarn, zapcore.ErrorLevel: slog.LevelError, zapcore.FatalLevel: slog.LevelError + 3} {
		if got := slogLevel(l); got != s {
			t.Fatalf("zap %v -> slog %v, want %v", l, got, s)
		}
	}
}

// TestProducerLogsToSlog: the example's producer, whose calls fail for a moment, logs
// through the bridge: the slog handler gets the producer's debug lines with the stream
// and the error.
func TestProducerLogsToSlog(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	if err := run(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if m["msg"] == "producer: PutRecords failed" && m["level"] == "DEBUG" && m["stream"] == "orders" && m["logger"] == "freshet" &&
			strings.Contains(m["error"].(string), "InternalFailure") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no PutRecords failure logged through slog:\n%s", buf.String())
	}
}
