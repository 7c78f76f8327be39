package streams

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidOption reports a Config value outside its allowed range.
var ErrInvalidOption = errors.New("streams: invalid option")

// Config configures the Kinesis service. The zero value gives the service's defaults with
// throughput limits off and immediate status transitions, which is what tests want.
type Config struct {
	// Region and AccountID appear in ARNs and messages; "us-east-1" and "000000000000"
	// when empty.
	Region    string
	AccountID string

	// Limits turns on the per-shard throughput limits (token buckets) and the
	// SubscribeToShard call rate rule. Off by default.
	Limits bool
	// WriteBytesPerSecond, WriteRecordsPerSecond, ReadBytesPerSecond and
	// ReadCallsPerSecond are the per-shard rates when Limits is on: 1 MiB/s, 1,000/s,
	// 2 MiB/s and 5/s when zero.
	WriteBytesPerSecond   float64
	WriteRecordsPerSecond float64
	ReadBytesPerSecond    float64
	ReadCallsPerSecond    float64
	// Burst is how many seconds of each rate a bucket holds; 1 s when zero. A stream's
	// write-bytes bucket always holds at least one maximum-size record.
	Burst time.Duration

	// ShardLimit is the account's open-shard limit; 1,000 when zero.
	ShardLimit int
	// OnDemandStreamLimit is the account's ON_DEMAND stream limit; 50 when zero.
	OnDemandStreamLimit int
	// ConsumerLimit is the number of registered consumers per stream; 20 when zero.
	ConsumerLimit int
	// UpdateShardCountLimit is how many UpdateShardCount calls a stream accepts per
	// rolling 24 hours (LimitExceededException beyond); 10 when zero, negative for no
	// limit.
	UpdateShardCountLimit int
	// MaxStoredBytes caps the partition-key and data bytes the service holds across all
	// streams; zero for no cap. A PutRecord or PutRecords call that would pass it is
	// refused whole with LimitExceededException (a throttling error, so clients back off
	// and retry) until retention, DeleteStream or DecreaseStreamRetentionPeriod frees
	// space. Stored records are never dropped early: what a test wrote stays readable
	// for the stream's retention period.
	MaxStoredBytes int64

	// CreateDelay is how long a new stream stays CREATING; UpdateDelay how long it stays
	// UPDATING after a reshard, mode or retention change; DeleteDelay how long it stays
	// DELETING; ConsumerDelay how long a consumer stays CREATING or DELETING. All zero by
	// default.
	CreateDelay   time.Duration
	UpdateDelay   time.Duration
	DeleteDelay   time.Duration
	ConsumerDelay time.Duration

	// IteratorTTL is how long a shard iterator stays valid; 5 minutes when zero.
	IteratorTTL time.Duration
	// SubscriptionDuration is how long a SubscribeToShard call streams events; 5 minutes
	// when zero (measured on the service's clock).
	SubscriptionDuration time.Duration
	// SubscribeResponseDelay is the wall-clock time a SubscribeToShard call waits before it
	// sends its response headers; 50 ms when zero, negative for none. The real service
	// answers after a network round trip; answering at once on loopback loses a race in
	// clients built on aws-sdk-go-v2: smithy-go closes the request body as soon as the
	// response headers arrive, while net/http's transport may still be checking that body
	// for extra bytes; that check then fails, the transport closes the connection, and the
	// event stream ends with "use of closed network connection", often before its first
	// event.
	SubscribeResponseDelay time.Duration
	// SubscribeHeartbeat is the wall-clock interval at which an idle subscription sends an
	// empty event; 1 s when zero.
	SubscribeHeartbeat time.Duration

	// OnDemandShards is the shard count of a new ON_DEMAND stream without warm
	// throughput; 4 when zero. It is also the floor for merging cold shards.
	OnDemandShards int
	// OnDemandWindow is the observation window after which an ON_DEMAND stream splits
	// hot shards and merges cold ones; 1 minute when zero. Negative turns scaling off.
	OnDemandWindow time.Duration
	// OnDemandHotFraction: a shard whose write rate over the window reached this
	// fraction of its limit (bytes or records), or that was throttled, is split. 0.5
	// when zero.
	OnDemandHotFraction float64
	// OnDemandColdFraction: two adjacent shards both below this fraction are merged.
	// 0.05 when zero.
	OnDemandColdFraction float64

	// MaxRequestBytes caps a request body; 32 MiB when zero.
	MaxRequestBytes int64
	// MaintenanceInterval is the wall-clock period of the background work (retention,
	// deletion, on-demand scaling); 100 ms when zero, negative to turn it off (call
	// Service.Maintain instead).
	MaintenanceInterval time.Duration

	// QueueMaxRecords bounds the records each queue holds loaded and not yet
	// acknowledged (dead-letter records included); 100,000 when zero. A full queue loads
	// no more of its stream until records are acknowledged.
	QueueMaxRecords int
}

func (c Config) withDefaults() (Config, error) {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccountID == "" {
		c.AccountID = "000000000000"
	}
	type check struct {
		name string
		bad  bool
	}
	for _, ck := range []check{
		{"WriteBytesPerSecond", c.WriteBytesPerSecond < 0},
		{"WriteRecordsPerSecond", c.WriteRecordsPerSecond < 0},
		{"ReadBytesPerSecond", c.ReadBytesPerSecond < 0},
		{"ReadCallsPerSecond", c.ReadCallsPerSecond < 0},
		{"Burst", c.Burst < 0},
		{"ShardLimit", c.ShardLimit < 0},
		{"OnDemandStreamLimit", c.OnDemandStreamLimit < 0},
		{"ConsumerLimit", c.ConsumerLimit < 0},
		{"CreateDelay", c.CreateDelay < 0},
		{"UpdateDelay", c.UpdateDelay < 0},
		{"DeleteDelay", c.DeleteDelay < 0},
		{"ConsumerDelay", c.ConsumerDelay < 0},
		{"IteratorTTL", c.IteratorTTL < 0},
		{"SubscriptionDuration", c.SubscriptionDuration < 0},
		{"SubscribeHeartbeat", c.SubscribeHeartbeat < 0},
		{"OnDemandShards", c.OnDemandShards < 0},
		{"QueueMaxRecords", c.QueueMaxRecords < 0},
		{"OnDemandHotFraction", c.OnDemandHotFraction < 0 || c.OnDemandHotFraction > 1},
		{"OnDemandColdFraction", c.OnDemandColdFraction < 0 || c.OnDemandColdFraction > 1},
		{"MaxRequestBytes", c.MaxRequestBytes < 0},
		{"MaxStoredBytes", c.MaxStoredBytes < 0},
	} {
		if ck.bad {
			return c, fmt.Errorf("%w: %s out of range", ErrInvalidOption, ck.name)
		}
	}
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.WriteBytesPerSecond, 1<<20)
	def(&c.WriteRecordsPerSecond, 1000)
	def(&c.ReadBytesPerSecond, 2<<20)
	def(&c.ReadCallsPerSecond, 5)
	def(&c.OnDemandHotFraction, 0.5)
	def(&c.OnDemandColdFraction, 0.05)
	if c.Burst == 0 {
		c.Burst = time.Second
	}
	if c.ShardLimit == 0 {
		c.ShardLimit = 1000
	}
	if c.OnDemandStreamLimit == 0 {
		c.OnDemandStreamLimit = 50
	}
	if c.ConsumerLimit == 0 {
		c.ConsumerLimit = 20
	}
	if c.UpdateShardCountLimit == 0 {
		c.UpdateShardCountLimit = 10
	}
	if c.IteratorTTL == 0 {
		c.IteratorTTL = 5 * time.Minute
	}
	if c.SubscriptionDuration == 0 {
		c.SubscriptionDuration = 5 * time.Minute
	}
	if c.SubscribeResponseDelay == 0 {
		c.SubscribeResponseDelay = 50 * time.Millisecond
	}
	if c.SubscribeHeartbeat == 0 {
		c.SubscribeHeartbeat = time.Second
	}
	if c.OnDemandShards == 0 {
		c.OnDemandShards = 4
	}
	if c.OnDemandWindow == 0 {
		c.OnDemandWindow = time.Minute
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 32 << 20
	}
	if c.MaintenanceInterval == 0 {
		c.MaintenanceInterval = 100 * time.Millisecond
	}
	if c.QueueMaxRecords == 0 {
		c.QueueMaxRecords = 100_000
	}
	if c.OnDemandShards > c.ShardLimit {
		return c, fmt.Errorf("%w: OnDemandShards %d above ShardLimit %d", ErrInvalidOption, c.OnDemandShards, c.ShardLimit)
	}
	return c, nil
}
