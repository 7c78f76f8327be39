package streams

import (
	"encoding/base64"
	"sort"
	"strings"
	"time"

	"github.com/freshet/freshet/internal/hashkey"
)

// streamRef is the stream-identifying part of most requests: a name or an ARN.
type streamRef struct {
	StreamName *string `json:"StreamName,omitempty"`
	StreamARN  *string `json:"StreamARN,omitempty"`
	StreamID   *string `json:"StreamId,omitempty"`
}

func validStreamName(n string) bool {
	if len(n) == 0 || len(n) > 128 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func checkStreamName(n, member string) *APIError { return checkName(n, member) }

func (s *Service) streamARN(name string) string {
	return "arn:aws:kinesis:" + s.cfg.Region + ":" + s.cfg.AccountID + ":stream/" + name
}

// parseStreamARN returns the stream name of a stream ARN, or of a consumer ARN's stream.
func parseStreamARN(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "kinesis" {
		return "", false
	}
	res := parts[5]
	if !strings.HasPrefix(res, "stream/") {
		return "", false
	}
	name := res[len("stream/"):]
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[:i]
	}
	return name, validStreamName(name)
}

// resolveName returns the stream a request names by StreamName or StreamARN.
func (s *Service) resolveName(ref streamRef, arnOnly bool) (string, *APIError) {
	if ref.StreamARN != nil {
		name, ok := parseStreamARN(*ref.StreamARN)
		if !ok || strings.Contains((*ref.StreamARN)[strings.Index(*ref.StreamARN, "stream/")+7:], "/") {
			return "", errValidation(quoteValue(*ref.StreamARN), "streamARN",
				"must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+")
		}
		if ref.StreamName != nil && *ref.StreamName != name {
			return "", errInvalid("StreamARN %s and StreamName %s do not name the same stream.", *ref.StreamARN, *ref.StreamName)
		}
		return name, nil
	}
	if arnOnly {
		return "", errMissing("streamARN")
	}
	if ref.StreamName == nil {
		return "", errInvalid("Either StreamName or StreamARN should be provided.")
	}
	if e := checkStreamName(*ref.StreamName, "streamName"); e != nil {
		return "", e
	}
	return *ref.StreamName, nil
}

func (s *Service) notFound(name string) *APIError {
	return errNotFound("Stream %s under account %s not found.", name, s.cfg.AccountID)
}

// lookup returns a stream that exists (in any status).
func (s *Service) lookup(name string, now time.Time) (*stream, *APIError) {
	s.mu.RLock()
	st := s.streams[name]
	s.mu.RUnlock()
	if st == nil {
		return nil, s.notFound(name)
	}
	st.mu.RLock()
	gone := st.deleting && !now.Before(st.goneAt)
	st.mu.RUnlock()
	if gone {
		return nil, s.notFound(name)
	}
	return st, nil
}

func (s *Service) lookupRef(ref streamRef, now time.Time) (*stream, *APIError) {
	name, e := s.resolveName(ref, false)
	if e != nil {
		return nil, e
	}
	return s.lookup(name, now)
}

// requireActiveLocked checks that st can be modified. The caller holds st.mu.
func (s *Service) requireActiveLocked(st *stream, now time.Time) *APIError {
	if status := st.statusAt(now); status != statusActive {
		return errInUse("Stream %s under account %s not ACTIVE, instead in state %s", st.name, s.cfg.AccountID, status)
	}
	return nil
}

// readableLocked checks that st accepts data calls. The caller holds st.mu.
func (s *Service) readableLocked(st *stream, now time.Time) *APIError {
	switch st.statusAt(now) {
	case statusActive, statusUpdating:
		return nil
	}
	return s.notFound(st.name)
}

func (s *Service) newShard(st *stream, rng hashkey.Range, parent, adjacent string, now time.Time) *shard {
	sh := &shard{
		id:       shardID(len(st.shards)),
		num:      len(st.shards),
		suffix:   seqSuffix(len(st.shards)),
		rng:      rng,
		parent:   parent,
		adjacent: adjacent,
		created:  now,
		startSeq: st.seq.Add(1),
	}
	s.initBuckets(st, sh)
	st.shards = append(st.shards, sh)
	return sh
}

func (s *Service) initBuckets(st *stream, sh *shard) {
	c := s.cfg
	sh.writeBytes = newBucket(c.WriteBytesPerSecond, c.Burst, float64(st.maxRecordKiB)*1024)
	sh.writeRecords = newBucket(c.WriteRecordsPerSecond, c.Burst, 1)
	sh.readBytes = newBucket(c.ReadBytesPerSecond, c.Burst, 1)
	sh.readCalls = newBucket(c.ReadCallsPerSecond, c.Burst, 1)
}

type modeDetails struct {
	StreamMode *string `json:"StreamMode,omitempty"`
}

type createStreamReq struct {
	StreamName          *string           `json:"StreamName"`
	ShardCount          *int64            `json:"ShardCount"`
	StreamModeDetails   *modeDetails      `json:"StreamModeDetails"`
	Tags                map[string]string `json:"Tags"`
	MaxRecordSizeInKiB  *int64            `json:"MaxRecordSizeInKiB"`
	WarmThroughputMiBps *int64            `json:"WarmThroughputMiBps"`
	// RecordDistributionStrategy is AUTO or USER_PARTITION_KEY (ON_DEMAND only).
	RecordDistributionStrategy *string `json:"RecordDistributionStrategy"`
}

func checkMode(m *modeDetails) (string, *APIError) {
	if m == nil {
		return modeProvisioned, nil
	}
	if m.StreamMode == nil {
		return "", errMissing("streamModeDetails.streamMode")
	}
	switch *m.StreamMode {
	case modeProvisioned, modeOnDemand:
		return *m.StreamMode, nil
	}
	return "", errValidation(quoteValue(*m.StreamMode), "streamModeDetails.streamMode", "must satisfy enum value set: [PROVISIONED, ON_DEMAND]")
}

func checkMaxRecordSize(v *int64) *APIError {
	if v != nil && (*v < 1024 || *v > 10240) {
		return errIntRange(*v, "maxRecordSizeInKiB", 1024, 10240)
	}
	return nil
}

func checkTags(tags map[string]string) *APIError {
	for k, v := range tags {
		if len(k) < 1 || len(k) > 128 {
			return errInvalid("Tag key %s must be between 1 and 128 characters long.", quoteValue(k))
		}
		if len(v) > 256 {
			return errInvalid("Tag value for key %s must be at most 256 characters long.", quoteValue(k))
		}
	}
	return nil
}

const maxTags = 50

// warmShards is the shard count that gives mibps of write throughput at 1 MiB/s each.
func warmShards(mibps int32) int {
	return int(mibps)
}

func (s *Service) opCreateStream(c *call) (any, error) {
	var req createStreamReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.StreamName == nil {
		return nil, errMissing("streamName")
	}
	if e := checkStreamName(*req.StreamName, "streamName"); e != nil {
		return nil, e
	}
	mode, e := checkMode(req.StreamModeDetails)
	if e != nil {
		return nil, e
	}
	if e := checkMaxRecordSize(req.MaxRecordSizeInKiB); e != nil {
		return nil, e
	}
	if e := checkTags(req.Tags); e != nil {
		return nil, e
	}
	if len(req.Tags) > maxTags {
		return nil, errInvalid("A stream cannot have more than %d tags.", maxTags)
	}
	var warm int32
	if req.WarmThroughputMiBps != nil {
		if *req.WarmThroughputMiBps < 0 || *req.WarmThroughputMiBps > 1<<20 {
			return nil, errIntRange(*req.WarmThroughputMiBps, "warmThroughputMiBps", 0, 1<<20)
		}
		if mode != modeOnDemand {
			return nil, errInvalid("Warm throughput can only be set on ON_DEMAND streams.")
		}
		warm = int32(*req.WarmThroughputMiBps)
	}
	var n int
	if mode == modeProvisioned {
		if req.ShardCount == nil {
			return nil, errInvalid("ShardCount is required for PROVISIONED streams.")
		}
		if e := checkIntRange(req.ShardCount, "shardCount", 1, 100000); e != nil {
			return nil, e
		}
		n = int(*req.ShardCount)
	} else {
		if req.ShardCount != nil {
			return nil, errInvalid("ShardCount cannot be specified for ON_DEMAND streams.")
		}
		n = max(s.cfg.OnDemandShards, warmShards(warm))
	}
	distribution, e := checkDistribution(req.RecordDistributionStrategy, "recordDistributionStrategy", mode)
	if e != nil {
		return nil, e
	}
	maxKiB := int32(1024)
	if req.MaxRecordSizeInKiB != nil {
		maxKiB = int32(*req.MaxRecordSizeInKiB)
	}
	_, err := s.createStream(*req.StreamName, mode, distribution, n, maxKiB, warm, req.Tags, c.now)
	return nil, err
}

// createStream adds a stream with n uniform shards. An ON_DEMAND stream's distribution
// is USER_PARTITION_KEY unless distribution says otherwise.
func (s *Service) createStream(name, mode, distribution string, n int, maxKiB, warm int32, tags map[string]string, now time.Time) (*stream, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.streams[name]; old != nil {
		old.mu.RLock()
		gone := old.deleting && !now.Before(old.goneAt)
		old.mu.RUnlock()
		if !gone {
			return nil, errInUse("Stream %s under account %s already exists.", name, s.cfg.AccountID)
		}
	}
	if e := s.checkShardLimit(n); e != nil {
		return nil, e
	}
	if mode == modeOnDemand {
		count := 0
		for _, st := range s.streams {
			st.mu.RLock()
			if st.mode == modeOnDemand {
				count++
			}
			st.mu.RUnlock()
		}
		if count >= s.cfg.OnDemandStreamLimit {
			return nil, errLimit("This request would exceed the ON_DEMAND stream count limit of %d for the account %s in %s.", s.cfg.OnDemandStreamLimit, s.cfg.AccountID, s.cfg.Region)
		}
	}
	st := &stream{
		name:         name,
		arn:          s.streamARN(name),
		created:      now,
		epoch:        now.UnixNano(),
		activeAt:     now.Add(s.cfg.CreateDelay),
		mode:         mode,
		retention:    24 * time.Hour,
		maxRecordKiB: maxKiB,
		warmMiBps:    warm,
		encryption:   "NONE",
		tags:         make(map[string]string, len(tags)),
		consumers:    make(map[string]*consumer),
		windowStart:  now,
	}
	if mode == modeOnDemand {
		st.distribution = distributionPartitionKey
		if distribution != "" {
			st.distribution = distribution
		}
	}
	for k, v := range tags {
		st.tags[k] = v
	}
	for _, rng := range hashkey.Uniform(n) {
		s.newShard(st, rng, "", "", now)
	}
	st.rebuildOpen()
	s.openShards.Add(int64(len(st.open)))
	s.streams[name] = st
	return st, nil
}

type deleteStreamReq struct {
	streamRef
	EnforceConsumerDeletion *bool `json:"EnforceConsumerDeletion"`
}

func (s *Service) opDeleteStream(c *call) (any, error) {
	var req deleteStreamReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	return nil, s.deleteStream(st, req.EnforceConsumerDeletion != nil && *req.EnforceConsumerDeletion, c.now)
}

func (s *Service) deleteStream(st *stream, enforce bool, now time.Time) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.deleting {
		return errInUse("Stream %s under account %s is already being deleted.", st.name, s.cfg.AccountID)
	}
	if len(st.consumers) > 0 && !enforce {
		return errInUse("Stream %s under account %s has registered consumers.", st.name, s.cfg.AccountID)
	}
	if st.queues > 0 {
		return errInUse("Stream %s under account %s has %d queues: delete them first.", st.name, s.cfg.AccountID, st.queues)
	}
	st.deleting = true
	st.goneAt = now.Add(s.cfg.DeleteDelay)
	s.openShards.Add(-int64(len(st.open)))
	if s.cfg.DeleteDelay == 0 && s.streams[st.name] == st {
		delete(s.streams, st.name)
	}
	var stored int64
	for _, sh := range st.shards {
		sh.mu.Lock()
		stored += sh.storedLocked()
		sh.wakeLocked()
		sh.mu.Unlock()
	}
	s.storedBytes.Add(-stored)
	return nil
}

type hashRangeOut struct {
	StartingHashKey string `json:"StartingHashKey"`
	EndingHashKey   string `json:"EndingHashKey"`
}

type seqRangeOut struct {
	StartingSequenceNumber string  `json:"StartingSequenceNumber"`
	EndingSequenceNumber   *string `json:"EndingSequenceNumber,omitempty"`
}

type shardOut struct {
	ShardID               string       `json:"ShardId"`
	ParentShardID         *string      `json:"ParentShardId,omitempty"`
	AdjacentParentShardID *string      `json:"AdjacentParentShardId,omitempty"`
	HashKeyRange          hashRangeOut `json:"HashKeyRange"`
	SequenceNumberRange   seqRangeOut  `json:"SequenceNumberRange"`
}

func strPtr(s string) *string { return &s }

// deref returns *p, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func int32Ptr(v int) *int32 { x := int32(v); return &x }

// describeShard reads a shard's listing. The caller holds st.mu.
func describeShard(sh *shard) shardOut {
	o := shardOut{
		ShardID:             sh.id,
		HashKeyRange:        hashRangeOut{StartingHashKey: sh.rng.Start.String(), EndingHashKey: sh.rng.End.String()},
		SequenceNumberRange: seqRangeOut{StartingSequenceNumber: formatSeq(sh.startSeq, sh.num)},
	}
	if sh.parent != "" {
		o.ParentShardID = strPtr(sh.parent)
	}
	if sh.adjacent != "" {
		o.AdjacentParentShardID = strPtr(sh.adjacent)
	}
	if sh.closed() {
		o.SequenceNumberRange.EndingSequenceNumber = strPtr(formatSeq(sh.endSeq, sh.num))
	}
	return o
}

type enhancedOut struct {
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

type streamDescription struct {
	StreamName              string        `json:"StreamName"`
	StreamARN               string        `json:"StreamARN"`
	StreamStatus            string        `json:"StreamStatus"`
	StreamModeDetails       modeDetails   `json:"StreamModeDetails"`
	Shards                  []shardOut    `json:"Shards"`
	HasMoreShards           bool          `json:"HasMoreShards"`
	RetentionPeriodHours    int32         `json:"RetentionPeriodHours"`
	StreamCreationTimestamp epochTime     `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []enhancedOut `json:"EnhancedMonitoring"`
	EncryptionType          string        `json:"EncryptionType"`
	KeyID                   *string       `json:"KeyId,omitempty"`
}

type describeStreamReq struct {
	streamRef
	Limit                 *int64  `json:"Limit"`
	ExclusiveStartShardID *string `json:"ExclusiveStartShardId"`
}

func (s *Service) opDescribeStream(c *call) (any, error) {
	var req describeStreamReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	limit, e := intInRange(req.Limit, "limit", 1, 10000, 100)
	if e != nil {
		return nil, e
	}
	if e := checkOptName(req.ExclusiveStartShardID, "exclusiveStartShardId"); e != nil {
		return nil, e
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := streamDescription{
		StreamName:              st.name,
		StreamARN:               st.arn,
		StreamStatus:            st.statusAt(c.now),
		StreamModeDetails:       modeDetails{StreamMode: strPtr(st.mode)},
		Shards:                  []shardOut{},
		RetentionPeriodHours:    int32(st.retention / time.Hour),
		StreamCreationTimestamp: epochTime{st.created},
		EnhancedMonitoring:      []enhancedOut{{ShardLevelMetrics: append([]string{}, st.metrics...)}},
		EncryptionType:          st.encryption,
	}
	if st.keyID != "" {
		d.KeyID = strPtr(st.keyID)
	}
	for _, sh := range st.shards {
		if !st.visibleShard(sh, c.now) {
			continue
		}
		if req.ExclusiveStartShardID != nil && sh.id <= *req.ExclusiveStartShardID {
			continue
		}
		if len(d.Shards) == limit {
			d.HasMoreShards = true
			break
		}
		d.Shards = append(d.Shards, describeShard(sh))
	}
	return struct {
		StreamDescription streamDescription `json:"StreamDescription"`
	}{d}, nil
}

type warmOut struct {
	CurrentMiBps *int32 `json:"CurrentMiBps,omitempty"`
	TargetMiBps  *int32 `json:"TargetMiBps,omitempty"`
}

type streamSummary struct {
	StreamName              string        `json:"StreamName"`
	StreamARN               string        `json:"StreamARN"`
	StreamID                *string       `json:"StreamId,omitempty"`
	StreamStatus            string        `json:"StreamStatus"`
	StreamModeDetails       modeDetails   `json:"StreamModeDetails"`
	RetentionPeriodHours    int32         `json:"RetentionPeriodHours"`
	StreamCreationTimestamp epochTime     `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []enhancedOut `json:"EnhancedMonitoring"`
	EncryptionType          string        `json:"EncryptionType"`
	KeyID                   *string       `json:"KeyId,omitempty"`
	OpenShardCount          int32         `json:"OpenShardCount"`
	ConsumerCount           int32         `json:"ConsumerCount"`
	MaxRecordSizeInKiB      int32         `json:"MaxRecordSizeInKiB"`
	WarmThroughput          *warmOut      `json:"WarmThroughput,omitempty"`
	// RecordDistributionStrategy is present on ON_DEMAND streams only.
	RecordDistributionStrategy *string `json:"RecordDistributionStrategy,omitempty"`
	QueueCount                 *int32  `json:"QueueCount,omitempty"`
}

// warmLocked reports warm throughput: target as set, current as the open shards'
// write capacity in MiB/s. The caller holds st.mu.
func (s *Service) warmLocked(st *stream) *warmOut {
	if st.mode != modeOnDemand {
		return nil
	}
	cur := int(float64(len(st.open)) * s.cfg.WriteBytesPerSecond / (1 << 20))
	return &warmOut{CurrentMiBps: int32Ptr(cur), TargetMiBps: int32Ptr(int(st.warmMiBps))}
}

func (s *Service) opDescribeStreamSummary(c *call) (any, error) {
	var req streamRef
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	st, e := s.lookupRef(req, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := streamSummary{
		StreamName:              st.name,
		StreamARN:               st.arn,
		StreamStatus:            st.statusAt(c.now),
		StreamModeDetails:       modeDetails{StreamMode: strPtr(st.mode)},
		RetentionPeriodHours:    int32(st.retention / time.Hour),
		StreamCreationTimestamp: epochTime{st.created},
		EnhancedMonitoring:      []enhancedOut{{ShardLevelMetrics: append([]string{}, st.metrics...)}},
		EncryptionType:          st.encryption,
		OpenShardCount:          int32(len(st.open)),
		MaxRecordSizeInKiB:      st.maxRecordKiB,
		WarmThroughput:          s.warmLocked(st),
	}
	if st.distribution != "" {
		d.RecordDistributionStrategy = strPtr(st.distribution)
		d.QueueCount = int32Ptr(st.queues)
	}
	if st.keyID != "" {
		d.KeyID = strPtr(st.keyID)
	}
	for _, cs := range st.consumers {
		if cs.statusAt(c.now) == statusActive {
			d.ConsumerCount++
		}
	}
	return struct {
		StreamDescriptionSummary streamSummary `json:"StreamDescriptionSummary"`
	}{d}, nil
}

type listStreamsReq struct {
	Limit                    *int64  `json:"Limit"`
	ExclusiveStartStreamName *string `json:"ExclusiveStartStreamName"`
	NextToken                *string `json:"NextToken"`
}

type streamSummaryOut struct {
	StreamName              string      `json:"StreamName"`
	StreamARN               string      `json:"StreamARN"`
	StreamStatus            string      `json:"StreamStatus"`
	StreamModeDetails       modeDetails `json:"StreamModeDetails"`
	StreamCreationTimestamp epochTime   `json:"StreamCreationTimestamp"`
}

type listStreamsOut struct {
	StreamNames     []string           `json:"StreamNames"`
	StreamSummaries []streamSummaryOut `json:"StreamSummaries"`
	HasMoreStreams  bool               `json:"HasMoreStreams"`
	NextToken       *string            `json:"NextToken,omitempty"`
}

func (s *Service) opListStreams(c *call) (any, error) {
	var req listStreamsReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	limit, e := intInRange(req.Limit, "limit", 1, 10000, 100)
	if e != nil {
		return nil, e
	}
	if e := checkOptName(req.ExclusiveStartStreamName, "exclusiveStartStreamName"); e != nil {
		return nil, e
	}
	after := ""
	if req.ExclusiveStartStreamName != nil {
		after = *req.ExclusiveStartStreamName
	}
	if req.NextToken != nil {
		if req.ExclusiveStartStreamName != nil {
			return nil, errInvalid("NextToken and ExclusiveStartStreamName cannot be provided together.")
		}
		b, err := base64.RawURLEncoding.DecodeString(*req.NextToken)
		if err != nil || !strings.HasPrefix(string(b), "ls:") {
			return nil, errInvalid("Invalid NextToken.")
		}
		after = string(b[3:])
	}
	s.mu.RLock()
	names := make([]string, 0, len(s.streams))
	for n := range s.streams {
		names = append(names, n)
	}
	s.mu.RUnlock()
	sort.Strings(names)
	out := listStreamsOut{StreamNames: []string{}, StreamSummaries: []streamSummaryOut{}}
	for _, n := range names {
		if n <= after && after != "" {
			continue
		}
		st, e := s.lookup(n, c.now)
		if e != nil {
			continue
		}
		if len(out.StreamNames) == limit {
			out.HasMoreStreams = true
			tok := base64.RawURLEncoding.EncodeToString([]byte("ls:" + out.StreamNames[limit-1]))
			out.NextToken = &tok
			break
		}
		st.mu.RLock()
		out.StreamNames = append(out.StreamNames, n)
		out.StreamSummaries = append(out.StreamSummaries, streamSummaryOut{
			StreamName: n, StreamARN: st.arn, StreamStatus: st.statusAt(c.now),
			StreamModeDetails: modeDetails{StreamMode: strPtr(st.mode)}, StreamCreationTimestamp: epochTime{st.created},
		})
		st.mu.RUnlock()
	}
	return out, nil
}

type updateModeReq struct {
	streamRef
	StreamModeDetails   *modeDetails `json:"StreamModeDetails"`
	WarmThroughputMiBps *int64       `json:"WarmThroughputMiBps"`
}

func (s *Service) opUpdateStreamMode(c *call) (any, error) {
	var req updateModeReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	name, e := s.resolveName(req.streamRef, true)
	if e != nil {
		return nil, e
	}
	if req.StreamModeDetails == nil {
		return nil, errMissing("streamModeDetails")
	}
	mode, e := checkMode(req.StreamModeDetails)
	if e != nil {
		return nil, e
	}
	if req.WarmThroughputMiBps != nil && (mode != modeOnDemand || *req.WarmThroughputMiBps < 0) {
		return nil, errInvalid("Warm throughput can only be set on ON_DEMAND streams.")
	}
	st, e := s.lookup(name, c.now)
	if e != nil {
		return nil, e
	}
	if mode == modeOnDemand {
		s.mu.RLock()
		count := 0
		for _, o := range s.streams {
			if o != st {
				o.mu.RLock()
				if o.mode == modeOnDemand {
					count++
				}
				o.mu.RUnlock()
			}
		}
		s.mu.RUnlock()
		if count >= s.cfg.OnDemandStreamLimit {
			return nil, errLimit("This request would exceed the ON_DEMAND stream count limit of %d for the account %s in %s.", s.cfg.OnDemandStreamLimit, s.cfg.AccountID, s.cfg.Region)
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if e := s.requireActiveLocked(st, c.now); e != nil {
		return nil, e
	}
	if mode == modeOnDemand && req.WarmThroughputMiBps != nil {
		if e := s.checkShardLimit(warmShards(int32(*req.WarmThroughputMiBps)) - len(st.open)); e != nil {
			return nil, e
		}
	}
	if mode == modeProvisioned && st.mode == modeOnDemand {
		if st.queues > 0 {
			return nil, errInUse("Stream %s under account %s has %d queues: delete them before switching to PROVISIONED.", st.name, s.cfg.AccountID, st.queues)
		}
		if st.distribution == distributionAuto {
			return nil, errInvalid("Stream %s under account %s uses the AUTO record distribution strategy, which PROVISIONED streams do not support: switch it to USER_PARTITION_KEY first.", st.name, s.cfg.AccountID)
		}
	}
	st.mode = mode
	if mode == modeProvisioned {
		st.warmMiBps = 0
		st.distribution = ""
	} else if st.distribution == "" {
		st.distribution = distributionPartitionKey
	}
	if req.WarmThroughputMiBps != nil {
		st.warmMiBps = int32(*req.WarmThroughputMiBps)
	}
	st.windowStart = c.now
	st.updatingUntil = c.now.Add(s.cfg.UpdateDelay)
	if mode == modeOnDemand {
		if e := s.scaleUpToWarmLocked(st, c.now); e != nil {
			return nil, e
		}
	}
	return nil, nil
}

type retentionReq struct {
	streamRef
	RetentionPeriodHours *int64 `json:"RetentionPeriodHours"`
}

func (s *Service) opIncreaseRetention(c *call) (any, error) { return s.changeRetention(c, true) }

func (s *Service) opDecreaseRetention(c *call) (any, error) { return s.changeRetention(c, false) }

func (s *Service) changeRetention(c *call, increase bool) (any, error) {
	var req retentionReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.RetentionPeriodHours == nil {
		return nil, errMissing("retentionPeriodHours")
	}
	h := *req.RetentionPeriodHours
	if e := checkIntRange(&h, "retentionPeriodHours", 1, 8760); e != nil {
		return nil, e
	}
	if h < 24 {
		return nil, errInvalid("Minimum allowed retention period is 24 hours. Requested retention period (%d hours) is too short.", h)
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if e := s.requireActiveLocked(st, c.now); e != nil {
		return nil, e
	}
	cur := int64(st.retention / time.Hour)
	if increase && h < cur {
		return nil, errInvalid("Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%d hours). Use DecreaseRetentionPeriod API.", h, st.name, cur)
	}
	if !increase && h > cur {
		return nil, errInvalid("Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%d hours). Use IncreaseRetentionPeriod API.", h, st.name, cur)
	}
	if h != cur {
		st.retention = time.Duration(h) * time.Hour
		st.updatingUntil = c.now.Add(s.cfg.UpdateDelay)
	}
	return nil, nil
}

func (s *Service) opDescribeLimits(c *call) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	open := int(s.openShards.Load())
	od := 0
	for _, st := range s.streams {
		st.mu.RLock()
		if st.mode == modeOnDemand {
			od++
		}
		st.mu.RUnlock()
	}
	return struct {
		ShardLimit               int32 `json:"ShardLimit"`
		OpenShardCount           int32 `json:"OpenShardCount"`
		OnDemandStreamCount      int32 `json:"OnDemandStreamCount"`
		OnDemandStreamCountLimit int32 `json:"OnDemandStreamCountLimit"`
	}{int32(s.cfg.ShardLimit), int32(open), int32(od), int32(s.cfg.OnDemandStreamLimit)}, nil
}

type addTagsReq struct {
	streamRef
	Tags map[string]string `json:"Tags"`
}

func (s *Service) opAddTagsToStream(c *call) (any, error) {
	var req addTagsReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Tags == nil {
		return nil, errMissing("tags")
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return nil, s.addTagsLocked(st.tags, req.Tags, st.name)
}

func (s *Service) addTagsLocked(dst, add map[string]string, name string) *APIError {
	if len(add) < 1 || len(add) > maxTags {
		return errLenRange("map", len(add), "tags", 1, maxTags)
	}
	if e := checkTags(add); e != nil {
		return e
	}
	n := len(dst)
	for k := range add {
		if _, ok := dst[k]; !ok {
			n++
		}
	}
	if n > maxTags {
		return errInvalid("Failed to add tags to stream %s under account %s because a given stream cannot have more than %d tags associated with it.", name, s.cfg.AccountID, maxTags)
	}
	for k, v := range add {
		dst[k] = v
	}
	return nil
}

type removeTagsReq struct {
	streamRef
	TagKeys []string `json:"TagKeys"`
}

func (s *Service) opRemoveTagsFromStream(c *call) (any, error) {
	var req removeTagsReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if len(req.TagKeys) < 1 || len(req.TagKeys) > maxTags {
		return nil, errLenRange("list", len(req.TagKeys), "tagKeys", 1, maxTags)
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, k := range req.TagKeys {
		delete(st.tags, k)
	}
	return nil, nil
}

type tagOut struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func sortedTags(m map[string]string) []tagOut {
	out := make([]tagOut, 0, len(m))
	for k, v := range m {
		out = append(out, tagOut{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

type listTagsReq struct {
	streamRef
	ExclusiveStartTagKey *string `json:"ExclusiveStartTagKey"`
	Limit                *int64  `json:"Limit"`
}

func (s *Service) opListTagsForStream(c *call) (any, error) {
	var req listTagsReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	limit, e := intInRange(req.Limit, "limit", 1, 50, 50)
	if e != nil {
		return nil, e
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	all := sortedTags(st.tags)
	st.mu.RUnlock()
	out := struct {
		Tags        []tagOut `json:"Tags"`
		HasMoreTags bool     `json:"HasMoreTags"`
	}{Tags: []tagOut{}}
	for _, t := range all {
		if req.ExclusiveStartTagKey != nil && t.Key <= *req.ExclusiveStartTagKey {
			continue
		}
		if len(out.Tags) == limit {
			out.HasMoreTags = true
			break
		}
		out.Tags = append(out.Tags, t)
	}
	return out, nil
}

type resourceReq struct {
	ResourceARN *string           `json:"ResourceARN"`
	Tags        map[string]string `json:"Tags"`
	TagKeys     []string          `json:"TagKeys"`
}

// resourceTags returns the stream or consumer an ARN names and its tag map; the caller
// must hold the returned stream's lock while using the map.
func (s *Service) resourceTags(arn *string, now time.Time) (*stream, func() map[string]string, *APIError) {
	if arn == nil {
		return nil, nil, errMissing("resourceARN")
	}
	name, ok := parseStreamARN(*arn)
	if !ok {
		return nil, nil, errInvalid("Invalid ResourceARN %s.", quoteValue(*arn))
	}
	st, e := s.lookup(name, now)
	if e != nil {
		return nil, nil, e
	}
	if strings.Contains(*arn, "/consumer/") {
		st.mu.RLock()
		var cs *consumer
		for _, x := range st.consumers {
			if x.arn == *arn {
				cs = x
			}
		}
		st.mu.RUnlock()
		if cs == nil {
			return nil, nil, errNotFound("Consumer %s under account %s not found.", *arn, s.cfg.AccountID)
		}
		return st, func() map[string]string { return cs.tags }, nil
	}
	if *arn != st.arn {
		return nil, nil, s.notFound(name)
	}
	return st, func() map[string]string { return st.tags }, nil
}

func (s *Service) opTagResource(c *call) (any, error) {
	var req resourceReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	st, tags, e := s.resourceTags(req.ResourceARN, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return nil, s.addTagsLocked(tags(), req.Tags, st.name)
}

func (s *Service) opUntagResource(c *call) (any, error) {
	var req resourceReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if len(req.TagKeys) < 1 || len(req.TagKeys) > maxTags {
		return nil, errLenRange("list", len(req.TagKeys), "tagKeys", 1, maxTags)
	}
	st, tags, e := s.resourceTags(req.ResourceARN, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	m := tags()
	for _, k := range req.TagKeys {
		delete(m, k)
	}
	return nil, nil
}

func (s *Service) opListTagsForResource(c *call) (any, error) {
	var req resourceReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	st, tags, e := s.resourceTags(req.ResourceARN, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return struct {
		Tags []tagOut `json:"Tags"`
	}{sortedTags(tags())}, nil
}

type maxRecordSizeReq struct {
	streamRef
	MaxRecordSizeInKiB *int64 `json:"MaxRecordSizeInKiB"`
}

func (s *Service) opUpdateMaxRecordSize(c *call) (any, error) {
	var req maxRecordSizeReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	name, e := s.resolveName(req.streamRef, true)
	if e != nil {
		return nil, e
	}
	if req.MaxRecordSizeInKiB == nil {
		return nil, errMissing("maxRecordSizeInKiB")
	}
	if e := checkMaxRecordSize(req.MaxRecordSizeInKiB); e != nil {
		return nil, e
	}
	st, e := s.lookup(name, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if e := s.requireActiveLocked(st, c.now); e != nil {
		return nil, e
	}
	st.maxRecordKiB = int32(*req.MaxRecordSizeInKiB)
	ts := c.now.UnixNano()
	for _, sh := range st.open {
		sh.mu.Lock()
		floor := float64(st.maxRecordKiB) * 1024
		sh.writeBytes.resize(ts, max(s.cfg.WriteBytesPerSecond*s.cfg.Burst.Seconds(), floor))
		sh.mu.Unlock()
	}
	return nil, nil
}

type warmReq struct {
	streamRef
	WarmThroughputMiBps *int64 `json:"WarmThroughputMiBps"`
}

func (s *Service) opUpdateStreamWarmThroughput(c *call) (any, error) {
	var req warmReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.WarmThroughputMiBps == nil {
		return nil, errMissing("warmThroughputMiBps")
	}
	if *req.WarmThroughputMiBps < 0 || *req.WarmThroughputMiBps > 1<<20 {
		return nil, errIntRange(*req.WarmThroughputMiBps, "warmThroughputMiBps", 0, 1<<20)
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if e := s.requireActiveLocked(st, c.now); e != nil {
		return nil, e
	}
	if st.mode != modeOnDemand {
		return nil, errInvalid("Warm throughput can only be set on ON_DEMAND streams; stream %s is %s.", st.name, st.mode)
	}
	if e := s.checkShardLimit(warmShards(int32(*req.WarmThroughputMiBps)) - len(st.open)); e != nil {
		return nil, e
	}
	st.warmMiBps = int32(*req.WarmThroughputMiBps)
	if e := s.scaleUpToWarmLocked(st, c.now); e != nil {
		return nil, e
	}
	return struct {
		StreamARN      string   `json:"StreamARN"`
		StreamName     string   `json:"StreamName"`
		WarmThroughput *warmOut `json:"WarmThroughput"`
	}{st.arn, st.name, s.warmLocked(st)}, nil
}

var allMetrics = []string{"IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
	"WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded", "IteratorAgeMilliseconds"}

type monitoringReq struct {
	streamRef
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

func (s *Service) opEnableEnhancedMonitoring(c *call) (any, error) {
	return s.changeMonitoring(c, true)
}

func (s *Service) opDisableEnhancedMonitoring(c *call) (any, error) {
	return s.changeMonitoring(c, false)
}

func (s *Service) changeMonitoring(c *call, enable bool) (any, error) {
	var req monitoringReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if len(req.ShardLevelMetrics) < 1 || len(req.ShardLevelMetrics) > 7 {
		return nil, errLenRange("list", len(req.ShardLevelMetrics), "shardLevelMetrics", 1, 7)
	}
	want := map[string]bool{}
	for _, m := range req.ShardLevelMetrics {
		if m == "ALL" {
			for _, a := range allMetrics {
				want[a] = true
			}
			continue
		}
		ok := false
		for _, a := range allMetrics {
			ok = ok || a == m
		}
		if !ok {
			return nil, errValidation(quoteValue(m), "shardLevelMetrics", "must satisfy enum value set: [IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, IteratorAgeMilliseconds, ALL]")
		}
		want[m] = true
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	current := append([]string{}, st.metrics...)
	var next []string
	for _, a := range allMetrics {
		has := false
		for _, m := range st.metrics {
			has = has || m == a
		}
		if (has && !(!enable && want[a])) || (enable && want[a]) {
			next = append(next, a)
		}
	}
	st.metrics = next
	return struct {
		StreamName               string   `json:"StreamName"`
		StreamARN                string   `json:"StreamARN"`
		CurrentShardLevelMetrics []string `json:"CurrentShardLevelMetrics"`
		DesiredShardLevelMetrics []string `json:"DesiredShardLevelMetrics"`
	}{st.name, st.arn, current, append([]string{}, next...)}, nil
}

type encryptionReq struct {
	streamRef
	EncryptionType *string `json:"EncryptionType"`
	KeyID          *string `json:"KeyId"`
}

func (s *Service) opStartStreamEncryption(c *call) (any, error) { return s.changeEncryption(c, true) }

func (s *Service) opStopStreamEncryption(c *call) (any, error) { return s.changeEncryption(c, false) }

func (s *Service) changeEncryption(c *call, start bool) (any, error) {
	var req encryptionReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.EncryptionType == nil {
		return nil, errMissing("encryptionType")
	}
	if *req.EncryptionType != "KMS" && *req.EncryptionType != "NONE" {
		return nil, errValidation(quoteValue(*req.EncryptionType), "encryptionType", "must satisfy enum value set: [KMS, NONE]")
	}
	if req.KeyID == nil || *req.KeyID == "" {
		return nil, errMissing("keyId")
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if e := s.requireActiveLocked(st, c.now); e != nil {
		return nil, e
	}
	if start {
		st.encryption, st.keyID = *req.EncryptionType, *req.KeyID
	} else {
		st.encryption, st.keyID = "NONE", ""
	}
	st.updatingUntil = c.now.Add(s.cfg.UpdateDelay)
	return nil, nil
}
