package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// summary is the demo's final account of a run.
type summary struct {
	Target          string // "bundled engine" or the endpoint / AWS region
	Stream          string
	WarmThroughput  int // MiB/s, 0 when not set
	Elapsed         time.Duration
	Totals          ledgerTotals
	ShardsAtStart   int
	ShardsCreated   int // shards that appeared during the run (splits, merges, scaling)
	ShardsClosed    int // shards closed during the run
	OpenAtEnd       int
	Throttled       uint64 // requests or entries the service throttled
	Retries         uint64 // producer retries that absorbed them
	PeakIn, PeakOut float64
	MaxLagMillis    int64
	WorkersKilled   []string
	WorkersJoined   []string
	Failovers       int // leases of killed workers taken over by others
	Sentiment       [numSentiments]uint64
	Notes           []string
}

// OK reports whether the run lost nothing.
func (s summary) OK() bool { return s.Totals.Lost == 0 && s.Totals.Put > 0 }

// Write prints the summary.
func (s summary) Write(w io.Writer) {
	t := s.Totals
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("=== Freshet quickstart summary ===")
	p("target              %s, stream %s", s.Target, s.Stream)
	if s.WarmThroughput > 0 {
		p("warm throughput     %d MiB/s", s.WarmThroughput)
	}
	p("duration            %.1fs", s.Elapsed.Seconds())
	p("records produced    %d (stored %d, failed %d, no outcome %d)", t.Put, t.Acked, t.Failed, t.Pending)
	if len(t.Failures) > 0 {
		p("  producer failures %s", mapText(t.Failures))
	}
	p("records consumed    %d distinct, %d deliveries", t.Consumed, t.Deliveries)
	p("lost                %d", t.Lost)
	if t.LostAcked > 0 {
		p("  of which stored   %d (the producer reported them written)", t.LostAcked)
	}
	p("duplicates          %d", t.Duplicates())
	if t.Redelivered > 0 {
		p("  redelivered       %d: replayed from the last checkpoint after a lease changed owner (at-least-once)", t.Redelivered)
	}
	if t.StoredTwice > 0 {
		p("  stored twice      %d: a second stored copy (an SDK retry of a write that had succeeded, or records", t.StoredTwice)
		p("                    the producer re-put after their aggregate landed in a shard that had just split)")
	}
	if t.Unexpected > 0 {
		p("unexpected          %d deliveries of posts this run never produced", t.Unexpected)
	}
	p("shards              %d at start, %d created, %d closed, %d open at end", s.ShardsAtStart, s.ShardsCreated, s.ShardsClosed, s.OpenAtEnd)
	p("throttled           %d, absorbed by the producer's limiter and %d retries", s.Throttled, s.Retries)
	p("peak throughput     %.0f posts/s in, %.0f posts/s out", s.PeakIn, s.PeakOut)
	p("max consumer lag    %d ms behind latest", s.MaxLagMillis)
	if len(s.WorkersKilled) > 0 || len(s.WorkersJoined) > 0 {
		p("workers             killed %s, joined %s; %d leases failed over", listText(s.WorkersKilled), listText(s.WorkersJoined), s.Failovers)
	}
	p("sentiment           %d positive, %d negative, %d neutral", s.Sentiment[sentimentPositive], s.Sentiment[sentimentNegative], s.Sentiment[sentimentNeutral])
	for _, n := range s.Notes {
		p("note                %s", n)
	}
	if s.OK() {
		p("result              OK: every post produced was consumed")
	} else {
		p("result              FAILED: %d posts lost", t.Lost)
	}
}

func mapText(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func listText(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ",")
}
