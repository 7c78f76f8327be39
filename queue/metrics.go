package queue

import (
	"time"

	"github.com/freshet/freshet/metrics"
)

// Metric names a Consumer records (WithMetrics), each with the dimension QueueARN. They
// are recorded once per service call or handler call, never per record within one.
const (
	// MetricReceiveTime is the time of one ReceiveQueueRecords call (its long poll
	// included), in milliseconds.
	MetricReceiveTime = "ReceiveQueueRecords.Time"
	// MetricRecordsReceived counts the records of one receive (0 for an empty one).
	MetricRecordsReceived = "ReceiveQueueRecords.Records"
	// MetricReceiveFailure counts failed receives (1 per failed call).
	MetricReceiveFailure = "ReceiveQueueRecords.Failure"
	// MetricHandlerTime is the time of one handler call, in milliseconds.
	MetricHandlerTime = "Handler.Time"
	// MetricRecordsProcessed counts the records a handler call succeeded with, and
	// MetricDataBytesProcessed their data bytes (the KCL's names).
	MetricRecordsProcessed   = "RecordsProcessed"
	MetricDataBytesProcessed = "DataBytesProcessed"
	// MetricRecordsFailed counts the records a handler call failed (or panicked) on.
	MetricRecordsFailed = "RecordsFailed"
	// MetricRecordsAcknowledged counts the records one AcknowledgeQueueRecords call
	// (with its retries) acknowledged, and MetricAcknowledgeFailure those it could not:
	// they will be delivered again.
	MetricRecordsAcknowledged = "AcknowledgeQueueRecords.Records"
	MetricAcknowledgeFailure  = "AcknowledgeQueueRecords.Failure"
	// MetricVisibilityExtended counts the records one extension call kept invisible
	// while their handlers ran or they waited for one.
	MetricVisibilityExtended = "VisibilityExtended"
	// MetricRecordsReleased counts the records one call made visible at once
	// (FailureRetryNow, or not started at shutdown).
	MetricRecordsReleased = "RecordsReleased"
	// MetricRecordsInFlight is the number of records held after a receive.
	MetricRecordsInFlight = "RecordsInFlight"
)

// DimQueueARN is the dimension every queue metric carries.
const DimQueueARN = "QueueARN"

type nopRecorder struct{}

func (nopRecorder) Record(string, metrics.Unit, float64, ...metrics.Dimension) {}

// count records a count metric.
func (c *Consumer) count(name string, n int) {
	c.cfg.metrics.Record(name, metrics.UnitCount, float64(n), c.dims...)
}

// millis records a time metric in milliseconds.
func (c *Consumer) millis(name string, d time.Duration) {
	c.cfg.metrics.Record(name, metrics.UnitMilliseconds, float64(d)/float64(time.Millisecond), c.dims...)
}
