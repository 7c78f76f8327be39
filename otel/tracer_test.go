package otelfreshet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/producer"
)

func newTracer(t testing.TB) (*Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr, err := NewTracer(WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	return tr, exp
}

// TestTracingAcrossTheStream: 1,000 records produced with tracing, under a parent span,
// through the engine to a consumer whose processor is traced: 1,000 consumer spans, each
// linked to the producer span of its own record (matched by sequence and sub-sequence
// number), the producer spans children of the caller's span, and the processor able to
// reach each record's span.
func TestTracingAcrossTheStream(t *testing.T) {
	const n = 1000
	tr, exp := newTracer(t)
	e := enginetest.Start(t, engine.Config{})
	if err := e.Streams.CreateStream("traced", 4); err != nil {
		t.Fatal(err)
	}
	kin := enginetest.Kinesis(e)
	p, err := producer.New(kin, producer.WithStream("traced"), producer.WithHooks(tr), producer.WithLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	parentTP := sdktrace.NewTracerProvider()
	ctx, parent := parentTP.Tracer("test").Start(context.Background(), "request")
	var futures []*producer.Future
	for i := 0; i < n; i++ {
		f, err := p.PutAsync(ctx, producer.Record{PartitionKey: fmt.Sprintf("key-%d", i%37), Data: []byte(fmt.Sprintf("rec-%04d", i))})
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	parent.End()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, f := range futures {
		if r := f.Result(); r.Err != nil || !r.Aggregated {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	// Producer spans, by the record position they report.
	sendSpans := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		if s.SpanKind != trace.SpanKindProducer {
			t.Fatalf("unexpected span %s of kind %v before consuming", s.Name, s.SpanKind)
		}
		if s.Name != "send traced" || s.Parent.SpanID() != parent.SpanContext().SpanID() || s.Parent.TraceID() != parent.SpanContext().TraceID() {
			t.Fatalf("send span %q with parent %v, want a child of %v", s.Name, s.Parent, parent.SpanContext())
		}
		sendSpans[position(s)] = s
	}
	if len(sendSpans) != n {
		t.Fatalf("%d distinct producer spans, want %d", len(sendSpans), n)
	}
	exp.Reset()

	var mu sync.Mutex
	seen := map[string]bool{}
	reached := 0
	handler := consumer.HandlerFunc(func(ctx context.Context, _ consumer.ShardInfo, recs []consumer.Record) error {
		mu.Lock()
		defer mu.Unlock()
		for i, r := range recs {
			seen[string(r.Data)] = true
			if tags := r.Tags(); len(tags) == 0 || tags[0].Key != "traceparent" {
				return fmt.Errorf("record %s without its trace context: %+v", r.Data, tags)
			}
			if trace.SpanFromContext(RecordContext(ctx, i)).SpanContext().IsValid() {
				reached++
			}
		}
		return nil
	})
	w, err := consumer.New("traced-app", kin, enginetest.DynamoDB(e), tr.Processor(handler),
		consumer.WithStream("traced", consumer.TrimHorizon()), consumer.WithWorkerID("w"), consumer.WithFailoverTime(3*time.Second),
		consumer.WithPolling(300, 2, 10*time.Millisecond), consumer.WithShardSyncInterval(100*time.Millisecond), consumer.WithCPUMetrics(false),
		consumer.WithAssignmentInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		got := len(seen)
		mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of %d records", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	linked := map[string]bool{}
	for _, s := range exp.GetSpans() {
		if s.SpanKind != trace.SpanKindConsumer {
			continue
		}
		pos := position(s)
		send, ok := sendSpans[pos]
		if !ok || len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != send.SpanContext.SpanID() ||
			s.Links[0].SpanContext.TraceID() != send.SpanContext.TraceID() || !s.Links[0].SpanContext.IsRemote() {
			t.Fatalf("process span at %s: links %+v, producer span %v", pos, s.Links, send.SpanContext)
		}
		if linked[pos] {
			t.Fatalf("two process spans for %s", pos)
		}
		linked[pos] = true
	}
	if len(linked) != n || reached != n {
		t.Fatalf("%d process spans linked to their producer spans, the processor reached %d; want %d", len(linked), reached, n)
	}
}

func position(s tracetest.SpanStub) string {
	var seq, sub string
	for _, a := range s.Attributes {
		switch a.Key {
		case AttrSequenceNumber:
			seq = a.Value.AsString()
		case AttrSubSequenceNumber:
			sub = a.Value.String()
		}
	}
	return seq + "/" + sub
}

// TestSendSpanRecordsFailure: a record that fails ends its span with an error status;
// the caller's tags are left as they were.
func TestSendSpanRecordsFailure(t *testing.T) {
	tr, exp := newTracer(t)
	own := []aggregation.Tag{{Key: "app", Value: "x"}}
	rec := producer.Record{PartitionKey: "k", Data: []byte("d"), Tags: own}
	done := tr.OnRecordPut(context.Background(), &rec)
	if len(rec.Tags) != 2 || rec.Tags[0] != own[0] || rec.Tags[1].Key != "traceparent" || len(own) != 1 {
		t.Fatalf("tags %+v (caller's %+v)", rec.Tags, own)
	}
	done(producer.Result{Stream: "s", Err: errors.New("throttled for good")})
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Status.Code.String() != "Error" || spans[0].Name != "send s" {
		t.Fatalf("spans %+v", spans)
	}
	// The context read back is the span's.
	cr := consumerRecords(t, rec)[0]
	if sc := tr.ProducerSpanContext(&cr); sc.SpanID() != spans[0].SpanContext.SpanID() {
		t.Fatalf("read back %v, want %v", sc, spans[0].SpanContext)
	}
	if sc := tr.ProducerSpanContext(&consumer.Record{}); sc.IsValid() {
		t.Fatal("a record without tags has a producer span")
	}
}

func TestNewTracerValidates(t *testing.T) {
	if _, err := NewTracer(WithTracerProvider(nil)); !errors.Is(err, ErrInvalidOption) {
		t.Fatal(err)
	}
	if _, err := NewTracer(WithPropagator(nil)); !errors.Is(err, ErrInvalidOption) {
		t.Fatal(err)
	}
	if _, err := NewTracer(WithPropagator(propagation.TraceContext{})); err != nil {
		t.Fatal(err)
	}
}

// consumerRecords returns the records a worker delivers for recs aggregated together:
// tags, if any, in the aggregate.
func consumerRecords(t testing.TB, recs ...producer.Record) []consumer.Record {
	t.Helper()
	agg, err := aggregation.NewAggregator()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := agg.Add(aggregation.Record{PartitionKey: r.PartitionKey, Data: r.Data, Tags: r.Tags}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := agg.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	users, err := aggregation.Deaggregate(out)
	if err != nil || len(users) != len(recs) {
		t.Fatalf("%d records, %v", len(users), err)
	}
	crs := make([]consumer.Record, len(users))
	for i := range users {
		crs[i] = consumer.NewRecord("4960", time.Time{}, &users[i])
	}
	return crs
}
