package consumer

import (
	"github.com/freshet/freshet/metrics"
)

// Metric names, as the Kinesis Client Library names them.
const (
	MetricMillisBehindLatest = "MillisBehindLatest"
	MetricRecordsProcessed   = "RecordsProcessed"
	MetricDataBytesProcessed = "DataBytesProcessed"
	MetricProcessTime        = "RecordProcessor.processRecords.Time"
	MetricLeasesHeld         = "CurrentLeases"
	MetricLeaseTaken         = "TakenLeases"
	MetricLeaseLost          = "LostLeases"
	MetricLeaseRenewFailure  = "RenewLease.Failure"
	MetricGetRecordsTime     = "GetRecords.Time"
	MetricShardEnd           = "ShardEnd"
)

// Metrics receives the consumer's measurements: it is metrics.Recorder, the interface the
// producer reports to as well. The consumer calls Record once per batch or lease event,
// never per record.
type Metrics = metrics.Recorder

// Unit is a CloudWatch unit (metrics.Unit).
type Unit = metrics.Unit

// Units used by the consumer.
const (
	UnitCount        = metrics.UnitCount
	UnitMilliseconds = metrics.UnitMilliseconds
	UnitBytes        = metrics.UnitBytes
)

// Dimension qualifies a metric, for example ShardId or WorkerIdentifier
// (metrics.Dimension).
type Dimension = metrics.Dimension

// Stat summarizes the observations of one metric and dimension set (metrics.Stat).
type Stat = metrics.Stat

// MemoryMetrics keeps every metric in process (metrics.Memory).
type MemoryMetrics = metrics.Memory

// NewMemoryMetrics returns an empty in-process metrics store; it is metrics.NewMemory.
func NewMemoryMetrics() *MemoryMetrics { return metrics.NewMemory() }

type nopMetrics struct{}

func (nopMetrics) Record(string, Unit, float64, ...Dimension) {}
