package integration

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/integration/peers"
	"github.com/freshet/freshet/producer"
)

// traceTagHook gives records the tags a tracer writes: a W3C traceparent on four
// records in five, a tracestate and two tags of the application's own (one non-ASCII,
// one empty) on every third of those, none on the fifth; it keeps where each record
// was stored.
type traceTagHook struct {
	mu     sync.Mutex
	stored map[int64]position // sequence and sub-sequence number
}

func traceTags(id int64) []producer.Tag {
	if id%5 == 4 {
		return nil
	}
	tags := []producer.Tag{{Key: "traceparent", Value: fmt.Sprintf("00-%032x-%016x-01", id+1, id+1)}}
	if id%3 == 0 {
		tags = append(tags, producer.Tag{Key: "tracestate", Value: fmt.Sprintf("freshet=%x,vendor=1", id)},
			producer.Tag{Key: "app.tenant", Value: "zürich"}, producer.Tag{Key: "app.flag", Value: ""})
	}
	return tags
}

func (h *traceTagHook) OnRecordPut(_ context.Context, rec *producer.Record) func(producer.Result) {
	g, ok := parseGen(rec.Data)
	if !ok {
		return nil
	}
	rec.Tags = traceTags(g.id)
	return func(r producer.Result) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Err == nil {
			h.stored[g.id] = position{seq: r.SequenceNumber, sub: r.SubSequenceNumber}
		}
	}
}

// TestTaggedRecordsToJavaKCL: Freshet's producer writes 20,000 aggregated records over
// 200 keys, most of them carrying trace tags (traceparent, tracestate, tags of the
// application's own) beside untagged ones in the same aggregates; the stored aggregates hold every
// tag, and a Java KCL 3.x worker, which ignores tags, delivers every record exactly once
// in per-key Put order with its partition key, data byte for byte, and the sequence and
// sub-sequence numbers the producer reported.
func TestTaggedRecordsToJavaKCL(t *testing.T) {
	const records, keys = 20_000, 200
	e, kin := javaEngine(t, "tagged-to-java", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h := &traceTagHook{stored: map[int64]position{}}
	stored := produceGen(ctx, t, kin, "tagged-to-java", 0, records, keys, make([]int64, keys), producer.WithHooks(h))
	if stored > records/10 || len(h.stored) != records {
		t.Fatalf("%d Kinesis records for %d user records, %d outcomes", stored, records, len(h.stored))
	}

	// The tags are in the stored aggregates, each record's own.
	all, err := e.Streams.Records("tagged-to-java")
	if err != nil {
		t.Fatal(err)
	}
	tagged, withTags := 0, 0
	for _, r := range all {
		urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: r.PartitionKey, Data: r.Data})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range urs {
			g, ok := parseGen(u.Data)
			if !ok {
				t.Fatalf("stored record %q", u.Data)
			}
			if want := traceTags(g.id); fmt.Sprint(u.Tags) != fmt.Sprint(want) {
				t.Fatalf("record %d stored with tags %q, want %q", g.id, u.Tags, want)
			}
			if len(u.Tags) > 0 {
				withTags++
			}
			tagged++
		}
	}
	if tagged != records || withTags != records*4/5 {
		t.Fatalf("%d user records stored, %d with tags; want %d, %d", tagged, withTags, records, records*4/5)
	}

	w := drainWithJavaKCL(t, peers.KCLConfig{WorkerID: "java-tags", App: "java-tag-reader", Stream: "tagged-to-java", Endpoint: e.TLSURL(),
		FailoverTime: 5 * time.Second}, records, keys, 2*time.Minute)
	for _, r := range w.Records() {
		g, _ := parseGen(r.Data)
		if want := genData(g.id, g.perKey, 100); !bytes.Equal(r.Data, want) {
			t.Fatalf("Java read record %d as %q, want %q", g.id, r.Data, want)
		}
		if got, want := (position{seq: r.Sequence, sub: r.SubSequence}), h.stored[g.id]; got != want {
			t.Fatalf("Java read record %d at %s/%d, the producer stored it at %s/%d", g.id, got.seq, got.sub, want.seq, want.sub)
		}
	}
	t.Logf("%d user records (%d with trace tags) in %d Kinesis records, delivered once each by Java KCL with identical data and positions",
		records, withTags, stored)
}
