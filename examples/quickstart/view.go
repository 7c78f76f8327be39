package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// rateMeter turns a monotonically growing counter into a rate over a sliding window and
// remembers the highest rate seen. It keeps a fixed number of samples.
type rateMeter struct {
	window  time.Duration
	samples [64]rateSample
	n, next int
	peak    float64
}

type rateSample struct {
	at    time.Duration
	count uint64
}

func newRateMeter(window time.Duration) *rateMeter { return &rateMeter{window: window} }

// Observe adds the counter's value at elapsed and returns the rate over the window (or
// over what has been observed, if less). Samples must come in time order.
func (m *rateMeter) Observe(elapsed time.Duration, count uint64) float64 {
	m.samples[m.next] = rateSample{at: elapsed, count: count}
	m.next = (m.next + 1) % len(m.samples)
	if m.n < len(m.samples) {
		m.n++
	}
	// The oldest sample within the window (or the oldest kept).
	oldest := rateSample{at: -1}
	for i := 1; i <= m.n; i++ {
		s := m.samples[(m.next-i+len(m.samples))%len(m.samples)]
		if elapsed-s.at > m.window {
			break
		}
		oldest = s
	}
	span := elapsed - oldest.at
	if oldest.at < 0 || span <= 0 || count < oldest.count {
		return 0
	}
	rate := float64(count-oldest.count) / span.Seconds()
	// Only a full window counts towards the peak, so a single short burst between two
	// close samples does not inflate it.
	if span >= m.window*3/4 && rate > m.peak {
		m.peak = rate
	}
	return rate
}

// Peak returns the highest windowed rate observed.
func (m *rateMeter) Peak() float64 { return m.peak }

// workerLeases is one consumer worker's line in the live view.
type workerLeases struct {
	Worker string
	Leases int
	State  string // "running", "killed", "stopped"
	// Load is the worker's load in the leader's last plan, in units of Basis.
	Load float64
}

// snapshot is everything the live view shows at one refresh.
type snapshot struct {
	Elapsed, Duration time.Duration
	Phase             string
	TargetRate        float64
	InRate, OutRate   float64
	Produced          uint64 // posts the producer reported stored
	Consumed          uint64 // distinct posts delivered
	OpenShards        int
	ClosedShards      int
	Throttled         uint64 // write requests or entries the service throttled
	Retries           uint64 // producer retries
	LagMillis         int64  // highest MillisBehindLatest among the latest batches
	Workers           []workerLeases
	Basis             string  // what the leader's last plan balanced: cpu, throughput or count
	MeanKBps          float64 // the mean lease throughput that plan saw
	Sentiment         [numSentiments]uint64
	Events            []string // new since the previous snapshot
}

// liveView renders snapshots, redrawing in place on a terminal and printing plain
// periodic lines otherwise.
type liveView struct {
	w         io.Writer
	ansi      bool
	every     time.Duration // plain mode: the period between lines
	lastLine  time.Duration
	printed   bool
	drawn     int // ANSI mode: lines drawn by the previous refresh
	events    []string
	maxEvents int
}

// isTerminal reports whether f is a character device (a terminal) and the environment
// does not ask for plain output.
func isTerminal(f *os.File) bool {
	if os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newLiveView returns a view writing to w; ansi selects in-place redraw; every is the
// period of plain lines.
func newLiveView(w io.Writer, ansi bool, every time.Duration) *liveView {
	return &liveView{w: w, ansi: ansi, every: every, maxEvents: 5}
}

// Update renders s.
func (v *liveView) Update(s snapshot) {
	if v.ansi {
		v.events = append(v.events, s.Events...)
		if len(v.events) > v.maxEvents {
			v.events = v.events[len(v.events)-v.maxEvents:]
		}
		v.redraw(s)
		return
	}
	for _, e := range s.Events {
		fmt.Fprintf(v.w, "%6.1fs  * %s\n", s.Elapsed.Seconds(), e)
	}
	if !v.printed || s.Elapsed-v.lastLine >= v.every {
		v.printed = true
		v.lastLine = s.Elapsed
		fmt.Fprintln(v.w, plainLine(s))
	}
}

// Finish ends the live part: in ANSI mode the last frame stays on screen.
func (v *liveView) Finish() {
	if v.ansi {
		v.drawn = 0
		fmt.Fprintln(v.w)
	}
}

// plainLine is one periodic line of the non-terminal view.
func plainLine(s snapshot) string {
	return fmt.Sprintf("%6.1fs  %-16s target=%.0f/s in=%.0f/s out=%.0f/s shards=%d open/%d closed throttled=%d lag=%dms leases=%s balanced=%s sentiment=%s",
		s.Elapsed.Seconds(), s.Phase, s.TargetRate, s.InRate, s.OutRate, s.OpenShards, s.ClosedShards,
		s.Throttled, s.LagMillis, leasesText(s.Workers), orDash(s.Basis), sentimentText(s.Sentiment))
}

func leasesText(ws []workerLeases) string {
	parts := make([]string, 0, len(ws))
	for _, w := range ws {
		if w.State != "running" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s:%d", w.Worker, w.Leases))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

func sentimentText(t [numSentiments]uint64) string {
	return fmt.Sprintf("+%d/-%d/=%d", t[sentimentPositive], t[sentimentNegative], t[sentimentNeutral])
}

// bar draws value against max as a bar of width cells.
func bar(value, max float64, width int) string {
	n := 0
	if max > 0 {
		n = int(value / max * float64(width))
	}
	n = min(width, maxInt(n, 0))
	return strings.Repeat("█", n) + strings.Repeat("·", width-n)
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// redraw moves the cursor back over the previous frame and draws s.
func (v *liveView) redraw(s snapshot) {
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dF", v.drawn)
	}
	lines := frameLines(s, v.events)
	for _, l := range lines {
		b.WriteString("\x1b[2K")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	// Clear leftovers of a taller previous frame.
	for i := len(lines); i < v.drawn; i++ {
		b.WriteString("\x1b[2K\n")
	}
	if v.drawn > len(lines) {
		fmt.Fprintf(&b, "\x1b[%dF", v.drawn-len(lines))
	}
	v.drawn = len(lines)
	io.WriteString(v.w, b.String())
}

// frameLines lays out one frame of the terminal view.
func frameLines(s snapshot, events []string) []string {
	scale := s.TargetRate
	if s.InRate > scale {
		scale = s.InRate
	}
	if s.OutRate > scale {
		scale = s.OutRate
	}
	progress := 0.0
	if s.Duration > 0 {
		progress = s.Elapsed.Seconds() / s.Duration.Seconds()
	}
	lines := []string{
		fmt.Sprintf("Freshet quickstart: launch day   %5.1fs / %.0fs  [%s]  phase: %s",
			s.Elapsed.Seconds(), s.Duration.Seconds(), bar(progress, 1, 20), s.Phase),
		"",
		fmt.Sprintf("  posts/s target %8.0f", s.TargetRate),
		fmt.Sprintf("  posts/s in     %8.0f  %s", s.InRate, bar(s.InRate, scale, 40)),
		fmt.Sprintf("  posts/s out    %8.0f  %s", s.OutRate, bar(s.OutRate, scale, 40)),
		fmt.Sprintf("  produced %d   consumed %d", s.Produced, s.Consumed),
		"",
		fmt.Sprintf("  shards         %d open, %d closed", s.OpenShards, s.ClosedShards),
		fmt.Sprintf("  throttled      %d   producer retries %d", s.Throttled, s.Retries),
		fmt.Sprintf("  consumer lag   %d ms behind latest", s.LagMillis),
		"",
		"  leases per worker" + basisText(s),
	}
	ws := append([]workerLeases(nil), s.Workers...)
	sort.Slice(ws, func(i, j int) bool { return ws[i].Worker < ws[j].Worker })
	for _, w := range ws {
		lines = append(lines, fmt.Sprintf("    %-10s %-8s %3d %-40s %s", w.Worker, w.State, w.Leases, strings.Repeat("▮", min(w.Leases, 40)), loadText(s.Basis, w.Load)))
	}
	total := s.Sentiment[sentimentPositive] + s.Sentiment[sentimentNegative] + s.Sentiment[sentimentNeutral]
	pct := func(n uint64) float64 {
		if total == 0 {
			return 0
		}
		return 100 * float64(n) / float64(total)
	}
	lines = append(lines, "",
		"  sentiment",
		fmt.Sprintf("    positive %9d  %5.1f%%", s.Sentiment[sentimentPositive], pct(s.Sentiment[sentimentPositive])),
		fmt.Sprintf("    negative %9d  %5.1f%%", s.Sentiment[sentimentNegative], pct(s.Sentiment[sentimentNegative])),
		fmt.Sprintf("    neutral  %9d  %5.1f%%", s.Sentiment[sentimentNeutral], pct(s.Sentiment[sentimentNeutral])),
	)
	if len(events) > 0 {
		lines = append(lines, "", "  events")
		for _, e := range events {
			lines = append(lines, "    "+e)
		}
	}
	return lines
}

// basisText names what the leader's last plan balanced, as the view's heading says it.
func basisText(s snapshot) string {
	if s.Basis == "" {
		return ""
	}
	return fmt.Sprintf(" (the leader balances %s; mean lease throughput %.1f KB/s)", s.Basis, s.MeanKBps)
}

// loadText is a worker's load in the leader's plan, in the plan's unit.
func loadText(basis string, load float64) string {
	switch basis {
	case "throughput":
		return fmt.Sprintf("%.0f KB/s", load)
	case "cpu":
		return fmt.Sprintf("%.0f%% CPU", load)
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
