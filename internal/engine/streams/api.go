package streams

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/freshet/freshet/internal/hashkey"
)

type counters struct {
	recordsIn, bytesIn, recordsOut, bytesOut atomic.Int64
	throttledRequests, throttledRecords      atomic.Int64
	faultedEntries, ghostRecords             atomic.Int64
	splits, merges                           atomic.Int64
}

// Counters is a snapshot of the service's activity since it started.
type Counters struct {
	// RecordsIn and BytesIn count stored records and their partition-key plus data bytes,
	// including GhostRecords.
	RecordsIn, BytesIn int64
	// RecordsOut and BytesOut count records and data bytes returned by GetRecords and
	// subscriptions.
	RecordsOut, BytesOut int64
	// ThrottledRequests counts calls that were throttled entirely or in part;
	// ThrottledRecords counts PutRecord(s) entries refused by limits or forced throttling.
	ThrottledRequests, ThrottledRecords int64
	// FaultedEntries counts PutRecords entries failed by EntryFaults; GhostRecords those
	// of them that were stored anyway.
	FaultedEntries, GhostRecords int64
	// Splits and Merges count shard splits and merges, whatever caused them.
	Splits, Merges int64
	// StoredBytes is the partition-key and data bytes held now (Config.MaxStoredBytes);
	// OpenShards the open shards of all streams not being deleted (Config.ShardLimit).
	StoredBytes, OpenShards int64
}

// Counters returns the current counters.
func (s *Service) Counters() Counters {
	c := &s.counters
	return Counters{
		RecordsIn: c.recordsIn.Load(), BytesIn: c.bytesIn.Load(),
		RecordsOut: c.recordsOut.Load(), BytesOut: c.bytesOut.Load(),
		ThrottledRequests: c.throttledRequests.Load(), ThrottledRecords: c.throttledRecords.Load(),
		FaultedEntries: c.faultedEntries.Load(), GhostRecords: c.ghostRecords.Load(),
		Splits: c.splits.Load(), Merges: c.merges.Load(),
		StoredBytes: s.storedBytes.Load(), OpenShards: s.openShards.Load(),
	}
}

// EntryFaults fails individual PutRecords entries at random, as the service does under
// load. Rates are probabilities in [0, 1] per entry and must not sum above 1.
type EntryFaults struct {
	// ThrottleRate fails entries with ProvisionedThroughputExceededException.
	ThrottleRate float64
	// InternalFailureRate fails entries with InternalFailure.
	InternalFailureRate float64
	// StoredRate is the probability that an entry reported as failed was stored anyway,
	// the case that makes a correct producer write a duplicate.
	StoredRate float64
}

func (f *EntryFaults) draw(rnd func() float64) (code uint8, stored bool) {
	r := rnd()
	switch {
	case r < f.ThrottleRate:
		code = resultThrottled
	case r < f.ThrottleRate+f.InternalFailureRate:
		code = resultInternal
	default:
		return resultOK, false
	}
	return code, f.StoredRate > 0 && rnd() < f.StoredRate
}

// SetEntryFaults installs per-entry PutRecords faults; the zero value removes them.
func (s *Service) SetEntryFaults(f EntryFaults) error {
	for _, v := range []float64{f.ThrottleRate, f.InternalFailureRate, f.StoredRate} {
		if v < 0 || v > 1 {
			return fmt.Errorf("%w: entry fault rate %v outside [0, 1]", ErrInvalidOption, v)
		}
	}
	if f.ThrottleRate+f.InternalFailureRate > 1 {
		return fmt.Errorf("%w: entry fault rates sum above 1", ErrInvalidOption)
	}
	if f == (EntryFaults{}) {
		s.entryFaults.Store(nil)
		return nil
	}
	s.entryFaults.Store(&f)
	return nil
}

// ThrottleStream forces (or stops forcing) ProvisionedThroughputExceededException for
// every put entry and GetRecords call on the stream, whatever the limits.
func (s *Service) ThrottleStream(name string, on bool) error {
	st, e := s.lookup(name, s.clock.Now())
	if e != nil {
		return e
	}
	st.forceThrottle.Store(on)
	return nil
}

// ThrottleShard is ThrottleStream for one shard.
func (s *Service) ThrottleShard(stream, shardID string, on bool) error {
	st, e := s.lookup(stream, s.clock.Now())
	if e != nil {
		return e
	}
	st.mu.RLock()
	sh := st.shardByID(shardID)
	st.mu.RUnlock()
	if sh == nil {
		return s.shardNotFound(st, shardID)
	}
	sh.forceThrottle.Store(on)
	return nil
}

// CreateStream creates a PROVISIONED stream with shardCount uniform shards.
func (s *Service) CreateStream(name string, shardCount int) error {
	if e := checkStreamName(name, "streamName"); e != nil {
		return e
	}
	if shardCount < 1 {
		return errValidation(fmt.Sprint(shardCount), "shardCount", "must have value greater than or equal to 1")
	}
	_, e := s.createStream(name, modeProvisioned, "", shardCount, 1024, 0, nil, s.clock.Now())
	if e != nil {
		return e
	}
	return nil
}

// CreateOnDemandStream creates an ON_DEMAND stream with warmMiBps of warm throughput
// (0 for none).
func (s *Service) CreateOnDemandStream(name string, warmMiBps int) error {
	if e := checkStreamName(name, "streamName"); e != nil {
		return e
	}
	if warmMiBps < 0 {
		return errValidation(fmt.Sprint(warmMiBps), "warmThroughputMiBps", "must have value greater than or equal to 0")
	}
	n := max(s.cfg.OnDemandShards, warmShards(int32(warmMiBps)))
	_, e := s.createStream(name, modeOnDemand, "", n, 1024, int32(warmMiBps), nil, s.clock.Now())
	if e != nil {
		return e
	}
	return nil
}

// DeleteStream deletes a stream and its consumers.
func (s *Service) DeleteStream(name string) error {
	now := s.clock.Now()
	st, e := s.lookup(name, now)
	if e != nil {
		return e
	}
	if e := s.deleteStream(st, true, now); e != nil {
		return e
	}
	return nil
}

// SplitShard splits an open shard so that the second child starts at
// newStartingHashKey, with the service's validation.
func (s *Service) SplitShard(stream, shardID string, newStartingHashKey hashkey.Key) error {
	now := s.clock.Now()
	st, e := s.lookup(stream, now)
	if e != nil {
		return e
	}
	if e := s.split(st, shardID, newStartingHashKey, now); e != nil {
		return e
	}
	return nil
}

// MergeShards merges two adjacent open shards.
func (s *Service) MergeShards(stream, shardID, adjacentShardID string) error {
	now := s.clock.Now()
	st, e := s.lookup(stream, now)
	if e != nil {
		return e
	}
	if e := s.merge(st, shardID, adjacentShardID, now); e != nil {
		return e
	}
	return nil
}

// UpdateShardCount reshapes a PROVISIONED stream to target uniform shards.
func (s *Service) UpdateShardCount(stream string, target int) error {
	now := s.clock.Now()
	st, e := s.lookup(stream, now)
	if e != nil {
		return e
	}
	if _, e := s.updateShardCount(st, target, now); e != nil {
		return e
	}
	return nil
}

// ShardInfo describes one shard as the Go API sees it.
type ShardInfo struct {
	ID                     string
	ParentID               string
	AdjacentParentID       string
	HashKeyRange           hashkey.Range
	StartingSequenceNumber string
	EndingSequenceNumber   string
	Open                   bool
	// Records is the number of records still stored.
	Records int
}

// Shards lists a stream's shards still within retention, by shard ID.
func (s *Service) Shards(stream string) ([]ShardInfo, error) {
	now := s.clock.Now()
	st, e := s.lookup(stream, now)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	var out []ShardInfo
	for _, sh := range st.shards {
		if !st.visibleShard(sh, now) {
			continue
		}
		sh.mu.RLock()
		info := ShardInfo{ID: sh.id, ParentID: sh.parent, AdjacentParentID: sh.adjacent, HashKeyRange: sh.rng,
			StartingSequenceNumber: formatSeq(sh.startSeq, sh.num), Open: !sh.closed(),
			Records: int(sh.total - sh.horizon(now.Add(-st.retention).UnixNano()))}
		if sh.closed() {
			info.EndingSequenceNumber = formatSeq(sh.endSeq, sh.num)
		}
		sh.mu.RUnlock()
		out = append(out, info)
	}
	return out, nil
}

// Record is a stored record as the Go API returns it.
type Record struct {
	ShardID        string
	SequenceNumber string
	PartitionKey   string
	Data           []byte
	ArrivalTime    time.Time
}

// Records returns every record of the stream still within retention, shard by shard in
// shard-ID order and in sequence order within a shard. The data is copied.
func (s *Service) Records(stream string) ([]Record, error) {
	now := s.clock.Now()
	st, e := s.lookup(stream, now)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	shards := append([]*shard(nil), st.shards...)
	retention := st.retention
	st.mu.RUnlock()
	var out []Record
	for _, sh := range shards {
		out = appendShardRecords(out, sh, now, retention)
	}
	return out, nil
}

// ShardRecords returns the records of one shard still within retention.
func (s *Service) ShardRecords(stream, shardID string) ([]Record, error) {
	now := s.clock.Now()
	st, e := s.lookup(stream, now)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	sh := st.shardByID(shardID)
	retention := st.retention
	st.mu.RUnlock()
	if sh == nil {
		return nil, s.shardNotFound(st, shardID)
	}
	return appendShardRecords(nil, sh, now, retention), nil
}

func appendShardRecords(out []Record, sh *shard, now time.Time, retention time.Duration) []Record {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	pos := sh.horizon(now.Add(-retention).UnixNano())
	for pos < sh.total {
		var refs []recRef
		refs, pos = sh.readLocked(refs, pos, 1<<20, 1<<62)
		for _, r := range refs {
			out = append(out, Record{ShardID: sh.id, SequenceNumber: formatSeq(r.seq, sh.num), PartitionKey: string(r.pk),
				Data: append([]byte(nil), r.data...), ArrivalTime: time.Unix(0, r.ts)})
		}
	}
	return out
}

// StreamARN returns the ARN the service gives a stream name.
func (s *Service) StreamARN(name string) string { return s.streamARN(name) }
