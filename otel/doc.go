// Package otelfreshet connects Freshet's producer and consumer to OpenTelemetry: their
// metrics through an OTel meter (Meter, a metrics.Recorder), and tracing across the
// stream (Tracer).
//
// It is a module of its own (github.com/freshet/freshet/otel), so the core keeps its
// small dependency set; import it as
//
//	import otelfreshet "github.com/freshet/freshet/otel"
//
// # Place in the data flow
//
// Producer: Put(ctx, rec) -> Tracer.OnRecordPut (a producer hook) starts a "send" span
// whose parent is the span in ctx and writes its W3C trace context ("traceparent",
// "tracestate") into the record's KPL tags -> the tags travel inside the aggregate ->
// the span ends with the record's outcome (shard, sequence number, attempts, error).
//
// Consumer: GetRecords -> de-aggregation (tags read by consumer.Record.Tags) -> the Processor that
// Tracer.Processor wraps starts one "process" span per record, a child of the
// processing context and linked to the producer's span read from the tags, hands the
// batch on with the spans in its context (RecordContext), and ends them with the
// batch's outcome.
//
// Kinesis records have no headers; the KPL aggregated format's per-record tags are the
// only place a trace context can ride with a record without changing its data. The
// Java KCL and aws-kinesis-agg read tagged records and ignore the tags. Tags exist only
// in aggregates, so tracing needs an aggregating producer (the default).
//
// Metrics: NewMeter returns a metrics.Recorder that records each observation in an
// OTel histogram (or, for the gauges MillisBehindLatest, UserRecordsPending and
// CurrentLeases, a gauge) named after the KPL or KCL metric, with the dimensions as
// attributes. Give it to producer.WithMetricsRecorder or consumer.WithMetrics; with the
// OTel Prometheus exporter it serves them to Prometheus (examples/prometheus).
package otelfreshet
