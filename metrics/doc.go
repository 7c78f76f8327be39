// Package metrics is the one metrics design the producer and the consumer share: a
// Recorder interface they both report to, an in-memory Recorder for tests, tools and
// status pages (Memory), and a CloudWatch Recorder that sums observations per metric
// and dimension set and sends them as statistic sets in batched PutMetricData calls
// (CloudWatch).
//
// In Freshet's data flow, the producer records once per PutRecords call or Kinesis
// record (never per user record) and the consumer once per batch or lease event, under
// the metric names of the Java KPL and KCL (producer.Metric*, consumer.Metric*), so
// dashboards and alarms built on them carry over. Any other backend (Prometheus,
// OpenTelemetry) is a Recorder of its own: see the module
// github.com/freshet/freshet/otel for an OpenTelemetry meter.
//
// Implementations of Recorder must be safe for concurrent use and must not block.
package metrics
