package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestRateMeter(t *testing.T) {
	m := newRateMeter(time.Second)
	var count uint64
	var rate float64
	// 1,000 per second sampled every 100 ms.
	for i := 0; i <= 30; i++ {
		rate = m.Observe(time.Duration(i)*100*time.Millisecond, count)
		count += 100
	}
	if math.Abs(rate-1000) > 1 {
		t.Errorf("steady rate %v, want 1000", rate)
	}
	// A burst to 5,000/s for two seconds, then back.
	for i := 31; i <= 50; i++ {
		rate = m.Observe(time.Duration(i)*100*time.Millisecond, count)
		count += 500
	}
	for i := 51; i <= 80; i++ {
		rate = m.Observe(time.Duration(i)*100*time.Millisecond, count)
		count += 100
	}
	if math.Abs(rate-1000) > 1 {
		t.Errorf("rate after burst %v, want 1000", rate)
	}
	if math.Abs(m.Peak()-5000) > 1 {
		t.Errorf("peak %v, want 5000", m.Peak())
	}
	// One sample: no rate yet.
	if r := newRateMeter(time.Second).Observe(0, 10); r != 0 {
		t.Errorf("first sample rate %v", r)
	}
}

func testSnapshot(at time.Duration) snapshot {
	return snapshot{
		Elapsed: at, Duration: 60 * time.Second, Phase: "viral-peak",
		TargetRate: 30000, InRate: 29000, OutRate: 28000, Produced: 123, Consumed: 120,
		OpenShards: 8, ClosedShards: 4, Throttled: 17, Retries: 17, LagMillis: 1500,
		Workers: []workerLeases{
			{Worker: "worker-2", Leases: 4, State: "running"},
			{Worker: "worker-1", Leases: 3, State: "running"},
			{Worker: "worker-3", Leases: 0, State: "killed"},
		},
		Sentiment: [numSentiments]uint64{sentimentNeutral: 5, sentimentPositive: 10, sentimentNegative: 3},
	}
}

func TestPlainViewPrintsPeriodicLines(t *testing.T) {
	var out bytes.Buffer
	v := newLiveView(&out, false, time.Second)
	for ms := 0; ms <= 3000; ms += 250 {
		s := testSnapshot(time.Duration(ms) * time.Millisecond)
		if ms == 1250 {
			s.Events = []string{"worker-3 killed"}
		}
		v.Update(s)
	}
	v.Finish()
	text := out.String()
	if strings.Contains(text, "\x1b") {
		t.Fatalf("plain output has escape codes: %q", text)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	// Lines at 0, 1, 2 and 3 s plus the event line.
	if len(lines) != 5 {
		t.Fatalf("%d lines:\n%s", len(lines), text)
	}
	for _, want := range []string{"in=29000/s", "out=28000/s", "shards=8 open/4 closed", "throttled=17", "lag=1500ms", "leases=worker-2:4,worker-1:3", "sentiment=+10/-3/=5", "viral-peak"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
	if !strings.Contains(text, "1.2s  * worker-3 killed") {
		t.Errorf("event line missing:\n%s", text)
	}
}

func TestANSIViewRedrawsInPlace(t *testing.T) {
	var out bytes.Buffer
	v := newLiveView(&out, true, time.Second)
	v.Update(testSnapshot(time.Second))
	first := out.String()
	if !strings.HasPrefix(first, "\x1b[2K") {
		t.Fatalf("first frame should start by clearing its first line, not moving up: %q", first[:20])
	}
	frameHeight := strings.Count(first, "\n")
	out.Reset()
	s := testSnapshot(2 * time.Second)
	s.Events = []string{"worker-4 joined"}
	v.Update(s)
	second := out.String()
	if want := "\x1b[" + itoa(frameHeight) + "F"; !strings.HasPrefix(second, want) {
		t.Fatalf("second frame starts %q, want cursor up %q", second[:12], want)
	}
	for _, want := range []string{"worker-4 joined", "8 open, 4 closed", "1500 ms behind latest", "positive", "worker-3   killed"} {
		if !strings.Contains(second, want) {
			t.Errorf("frame lacks %q", want)
		}
	}
	// A shorter frame clears the leftover lines and returns the cursor.
	v.events = nil
	out.Reset()
	short := testSnapshot(3 * time.Second)
	short.Workers = nil
	v.Update(short)
	tallest := frameHeight + 3 // the second frame added a blank line, a heading and the event
	shorter := len(frameLines(short, nil))
	if v.drawn != shorter {
		t.Errorf("drawn %d after a shorter frame, want %d", v.drawn, shorter)
	}
	third := out.String()
	if want := "\x1b[" + itoa(tallest-shorter) + "F"; !strings.HasSuffix(third, want) {
		t.Errorf("shorter frame ends %q, want the cursor back up %q", third[len(third)-8:], want)
	}
	if n := strings.Count(third, "\x1b[2K"); n != tallest {
		t.Errorf("shorter frame cleared %d lines, want %d", n, tallest)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}

func TestBar(t *testing.T) {
	tests := []struct {
		v, max float64
		full   int
	}{{0, 10, 0}, {5, 10, 5}, {10, 10, 10}, {20, 10, 10}, {-1, 10, 0}, {1, 0, 0}}
	for _, tt := range tests {
		got := bar(tt.v, tt.max, 10)
		if n := strings.Count(got, "█"); n != tt.full || strings.Count(got, "·") != 10-tt.full {
			t.Errorf("bar(%v,%v) = %q", tt.v, tt.max, got)
		}
	}
}

func TestSummaryWrite(t *testing.T) {
	s := summary{
		Target: "bundled engine", Stream: "s", Elapsed: 8 * time.Second,
		Totals:        ledgerTotals{Put: 100, Acked: 100, Consumed: 100, Deliveries: 103, Redelivered: 2, StoredTwice: 1},
		ShardsAtStart: 4, ShardsCreated: 8, ShardsClosed: 4, OpenAtEnd: 8,
		WorkersKilled: []string{"worker-2"}, WorkersJoined: []string{"worker-4"}, Failovers: 2,
	}
	var out bytes.Buffer
	s.Write(&out)
	text := out.String()
	for _, want := range []string{"lost                0", "duplicates          3", "redelivered       2", "stored twice      1", "4 at start, 8 created, 4 closed", "killed worker-2, joined worker-4; 2 leases failed over", "result              OK"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	if !s.OK() {
		t.Error("OK() false with nothing lost")
	}
	s.Totals.Lost = 1
	out.Reset()
	s.Write(&out)
	if s.OK() || !strings.Contains(out.String(), "FAILED: 1 posts lost") {
		t.Errorf("lost run: OK=%v\n%s", s.OK(), out.String())
	}
	if (summary{}).OK() {
		t.Error("a run that produced nothing is not OK")
	}
}
