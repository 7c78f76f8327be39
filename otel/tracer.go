package otelfreshet

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/producer"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/freshet/freshet/otel"

// Attribute keys the spans carry (OpenTelemetry messaging conventions where they exist).
const (
	AttrMessagingSystem       = attribute.Key("messaging.system")
	AttrDestination           = attribute.Key("messaging.destination.name")
	AttrOperationType         = attribute.Key("messaging.operation.type")
	AttrPartitionKey          = attribute.Key("messaging.kinesis.partition_key")
	AttrShardID               = attribute.Key("messaging.destination.partition.id")
	AttrSequenceNumber        = attribute.Key("messaging.kinesis.sequence_number")
	AttrSubSequenceNumber     = attribute.Key("messaging.kinesis.sub_sequence_number")
	AttrAttempts              = attribute.Key("messaging.kinesis.attempts")
	AttrBatchSize             = attribute.Key("messaging.batch.message_count")
	messagingSystemAWSKinesis = "aws_kinesis"
)

// Option configures a Tracer.
type Option func(*Tracer) error

// ErrInvalidOption is wrapped by the errors NewTracer and NewMeter return for a bad
// option.
var ErrInvalidOption = fmt.Errorf("otelfreshet: invalid option")

// WithTracerProvider sets the tracer provider (otel.GetTracerProvider() by default).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(t *Tracer) error {
		if tp == nil {
			return fmt.Errorf("%w: nil tracer provider", ErrInvalidOption)
		}
		t.tracer = tp.Tracer(ScopeName)
		return nil
	}
}

// WithPropagator sets how a span context is written to and read from a record's tags
// (W3C trace context, propagation.TraceContext, by default; otel's global propagator is
// not used, since the tags must be readable by every consumer of the stream).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(t *Tracer) error {
		if p == nil {
			return fmt.Errorf("%w: nil propagator", ErrInvalidOption)
		}
		t.prop = p
		return nil
	}
}

// Tracer traces records across a stream. On the producer it is a hook
// (producer.WithHooks(tracer)): each record put gets a "send" span and carries its
// context in its tags. On the consumer, Processor wraps a ProcessorFactory so that each
// record delivered gets a "process" span linked to the producer's.
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// NewTracer returns a Tracer. Bad options fail with an error wrapping ErrInvalidOption.
func NewTracer(opts ...Option) (*Tracer, error) {
	t := &Tracer{prop: propagation.TraceContext{}}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(t); err != nil {
			return nil, err
		}
	}
	if t.tracer == nil {
		t.tracer = otel.GetTracerProvider().Tracer(ScopeName)
	}
	return t, nil
}

var _ producer.HookRecordPut = (*Tracer)(nil)

// OnRecordPut starts the record's "send" span, a child of the span in ctx (the context
// given to Put), writes its context into the record's tags and returns the function that
// ends it with the record's outcome. It implements producer.HookRecordPut.
func (t *Tracer) OnRecordPut(ctx context.Context, rec *producer.Record) func(producer.Result) {
	attrs := []attribute.KeyValue{
		AttrMessagingSystem.String(messagingSystemAWSKinesis),
		AttrOperationType.String("send"),
		AttrPartitionKey.String(rec.PartitionKey),
	}
	if rec.Stream != "" {
		attrs = append(attrs, AttrDestination.String(rec.Stream))
	}
	ctx, span := t.tracer.Start(ctx, spanName("send", rec.Stream), trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	// A copy: the caller's tags slice is never written to.
	tags := make([]aggregation.Tag, len(rec.Tags), len(rec.Tags)+2)
	copy(tags, rec.Tags)
	t.prop.Inject(ctx, tagCarrier{&tags})
	rec.Tags = tags
	return func(r producer.Result) {
		if rec.Stream == "" && r.Stream != "" {
			span.SetName(spanName("send", r.Stream))
		}
		span.SetAttributes(AttrDestination.String(r.Stream), AttrAttempts.Int(len(r.Attempts)))
		if r.ShardID != "" {
			span.SetAttributes(AttrShardID.String(r.ShardID))
		}
		if r.Err != nil {
			span.RecordError(r.Err)
			span.SetStatus(codes.Error, r.Err.Error())
		} else {
			span.SetAttributes(AttrSequenceNumber.String(r.SequenceNumber), AttrSubSequenceNumber.Int64(r.SubSequenceNumber))
		}
		span.End()
	}
}

func spanName(op, stream string) string {
	if stream == "" {
		return op
	}
	return op + " " + stream
}

// ProducerSpanContext returns the span context the producer wrote into rec's tags, or
// an invalid one when rec carries none.
func (t *Tracer) ProducerSpanContext(rec *consumer.Record) trace.SpanContext {
	tags := rec.Tags()
	if len(tags) == 0 {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(t.prop.Extract(context.Background(), tagCarrier{&tags}))
}

// Processor returns a ProcessorFactory whose processors trace each record: around every
// ProcessRecords call of the processor factory makes, each record gets a "process" span
// (kind consumer), a child of the call's context and linked to the producer's span when
// the record carries one; the spans end with the call's outcome. The processor reaches
// a record's span with RecordContext.
func (t *Tracer) Processor(factory consumer.ProcessorFactory) consumer.ProcessorFactory {
	return func(shard consumer.ShardInfo) (consumer.Processor, error) {
		if factory == nil {
			return nil, fmt.Errorf("otelfreshet: nil processor factory")
		}
		p, err := factory(shard)
		if err != nil || p == nil {
			return p, err
		}
		return &tracedProcessor{Processor: p, t: t}, nil
	}
}

type tracedProcessor struct {
	consumer.Processor
	t *Tracer
}

type spansKey struct{}

// ProcessRecords starts one span per record, calls the processor and ends the spans.
func (p *tracedProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	if len(in.Records) == 0 {
		return p.Processor.ProcessRecords(ctx, in)
	}
	spans := make([]trace.Span, len(in.Records))
	base := []attribute.KeyValue{
		AttrMessagingSystem.String(messagingSystemAWSKinesis),
		AttrOperationType.String("process"),
		AttrDestination.String(in.Shard.StreamName),
		AttrShardID.String(in.Shard.ShardID),
		AttrBatchSize.Int(len(in.Records)),
	}
	name := spanName("process", in.Shard.StreamName)
	for i := range in.Records {
		r := &in.Records[i]
		opts := []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(base...),
			trace.WithAttributes(AttrPartitionKey.String(r.PartitionKey), AttrSequenceNumber.String(r.SequenceNumber),
				AttrSubSequenceNumber.Int64(r.SubSequenceNumber)),
		}
		if sc := p.t.ProducerSpanContext(r); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
		_, spans[i] = p.t.tracer.Start(ctx, name, opts...)
	}
	err := p.Processor.ProcessRecords(context.WithValue(ctx, spansKey{}, spans), in)
	for _, s := range spans {
		if err != nil {
			s.RecordError(err)
			s.SetStatus(codes.Error, err.Error())
		}
		s.End()
	}
	return err
}

// RecordContext returns ctx (a ProcessRecords context of a Processor that Tracer.Processor
// wraps) with the span of the batch's record i as the current span, for work on that
// record to be traced under it. Outside such a call, or for i out of range, it returns
// ctx unchanged.
func RecordContext(ctx context.Context, i int) context.Context {
	spans, _ := ctx.Value(spansKey{}).([]trace.Span)
	if i < 0 || i >= len(spans) {
		return ctx
	}
	return trace.ContextWithSpan(ctx, spans[i])
}
