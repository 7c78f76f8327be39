package streams

import (
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/freshet/freshet/internal/hashkey"
)

// closeShardLocked closes an open shard. The caller holds st.mu exclusively.
func (s *Service) closeShardLocked(st *stream, sh *shard, now time.Time) {
	sh.mu.Lock()
	sh.endSeq = st.seq.Add(1)
	sh.closedAt = now
	sh.wakeLocked()
	sh.mu.Unlock()
}

func (s *Service) notEligible(st *stream, sh *shard) *APIError {
	return errInvalid("Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", sh.id, st.name, s.cfg.AccountID)
}

// checkShardLimit refuses a change that would open extra more shards than the account's
// shard limit allows. It reads the service's open-shard count and takes no lock, so any
// caller may use it; two streams resharding at the same instant may together pass the
// limit by the shards of one call.
func (s *Service) checkShardLimit(extra int) *APIError {
	open := int(s.openShards.Load())
	if open+extra > s.cfg.ShardLimit {
		return errLimit("This request would exceed the shard limit for the account %s in %s. Current shard count for the account: %d. Limit: %d. Number of additional shards that would have resulted from this request: %d.",
			s.cfg.AccountID, s.cfg.Region, open, s.cfg.ShardLimit, extra)
	}
	return nil
}

// splitLocked splits parent at key at: children [start, at-1] and [at, end]. The caller
// holds st.mu exclusively and has checked at lies strictly inside the range.
func (s *Service) splitLocked(st *stream, parent *shard, at hashkey.Key, now time.Time) (*shard, *shard) {
	s.closeShardLocked(st, parent, now)
	s.openShards.Add(1)
	left := s.newShard(st, hashkey.Range{Start: parent.rng.Start, End: at.Sub1()}, parent.id, "", now)
	right := s.newShard(st, hashkey.Range{Start: at, End: parent.rng.End}, parent.id, "", now)
	parent.mu.Lock()
	parent.children = []*shard{left, right}
	parent.mu.Unlock()
	st.rebuildOpen()
	s.counters.splits.Add(1)
	return left, right
}

// mergeLocked merges two adjacent open shards. The caller holds st.mu exclusively.
func (s *Service) mergeLocked(st *stream, a, b *shard, now time.Time) *shard {
	rng := hashkey.Range{Start: a.rng.Start, End: b.rng.End}
	if b.rng.Start.Less(a.rng.Start) {
		rng = hashkey.Range{Start: b.rng.Start, End: a.rng.End}
	}
	s.closeShardLocked(st, a, now)
	s.closeShardLocked(st, b, now)
	s.openShards.Add(-1)
	child := s.newShard(st, rng, a.id, b.id, now)
	for _, p := range []*shard{a, b} {
		p.mu.Lock()
		p.children = []*shard{child}
		p.mu.Unlock()
	}
	st.rebuildOpen()
	s.counters.merges.Add(1)
	return child
}

func adjacent(a, b *shard) bool {
	return a.rng.End.Add1() == b.rng.Start && a.rng.End != hashkey.Max ||
		b.rng.End.Add1() == a.rng.Start && b.rng.End != hashkey.Max
}

type splitReq struct {
	streamRef
	ShardToSplit       *string `json:"ShardToSplit"`
	NewStartingHashKey *string `json:"NewStartingHashKey"`
}

func (s *Service) opSplitShard(c *call) (any, error) {
	var req splitReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.ShardToSplit == nil {
		return nil, errMissing("shardToSplit")
	}
	if req.NewStartingHashKey == nil {
		return nil, errMissing("newStartingHashKey")
	}
	if e := checkName(*req.ShardToSplit, "shardToSplit"); e != nil {
		return nil, e
	}
	at, e := parseHashKey([]byte(*req.NewStartingHashKey), "newStartingHashKey", func(v string) *APIError {
		return errInvalid("NewStartingHashKey %s used in SplitShard() on shard %s in stream %s under account %s is not both greater than one plus the shard's StartingHashKey and less than the shard's EndingHashKey.",
			v, *req.ShardToSplit, deref(req.StreamName), s.cfg.AccountID)
	})
	if e != nil {
		return nil, e
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	return nil, s.split(st, *req.ShardToSplit, at, c.now)
}

func (s *Service) split(st *stream, shardID string, at hashkey.Key, now time.Time) *APIError {
	if e := s.checkShardLimit(1); e != nil {
		return e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if e := s.requireActiveLocked(st, now); e != nil {
		return e
	}
	sh := st.shardByID(shardID)
	if sh == nil || !st.visibleShard(sh, now) {
		return errNotFound("Could not find shard %s in stream %s under account %s.", shardID, st.name, s.cfg.AccountID)
	}
	if sh.closed() {
		return s.notEligible(st, sh)
	}
	if !(sh.rng.Start.Add1().Less(at) && at.Less(sh.rng.End)) {
		return errInvalid("NewStartingHashKey %s used in SplitShard() on shard %s in stream %s under account %s is not both greater than one plus the shard's StartingHashKey %s and less than the shard's EndingHashKey %s.",
			at, sh.id, st.name, s.cfg.AccountID, sh.rng.Start, sh.rng.End)
	}
	s.splitLocked(st, sh, at, now)
	st.updatingUntil = now.Add(s.cfg.UpdateDelay)
	return nil
}

type mergeReq struct {
	streamRef
	ShardToMerge         *string `json:"ShardToMerge"`
	AdjacentShardToMerge *string `json:"AdjacentShardToMerge"`
}

func (s *Service) opMergeShards(c *call) (any, error) {
	var req mergeReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.ShardToMerge == nil {
		return nil, errMissing("shardToMerge")
	}
	if req.AdjacentShardToMerge == nil {
		return nil, errMissing("adjacentShardToMerge")
	}
	if e := checkName(*req.ShardToMerge, "shardToMerge"); e != nil {
		return nil, e
	}
	if e := checkName(*req.AdjacentShardToMerge, "adjacentShardToMerge"); e != nil {
		return nil, e
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	return nil, s.merge(st, *req.ShardToMerge, *req.AdjacentShardToMerge, c.now)
}

func (s *Service) merge(st *stream, aID, bID string, now time.Time) *APIError {
	st.mu.Lock()
	defer st.mu.Unlock()
	if e := s.requireActiveLocked(st, now); e != nil {
		return e
	}
	a, b := st.shardByID(aID), st.shardByID(bID)
	for i, sh := range []*shard{a, b} {
		if sh == nil || !st.visibleShard(sh, now) {
			id := aID
			if i == 1 {
				id = bID
			}
			return errNotFound("Could not find shard %s in stream %s under account %s.", id, st.name, s.cfg.AccountID)
		}
		if sh.closed() {
			return s.notEligible(st, sh)
		}
	}
	if a == b || !adjacent(a, b) {
		return errInvalid("Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging", aID, bID, st.name, s.cfg.AccountID)
	}
	s.mergeLocked(st, a, b, now)
	st.updatingUntil = now.Add(s.cfg.UpdateDelay)
	return nil
}

// maxUniformShards is the largest shard count UpdateShardCount scales a stream to.
const maxUniformShards = 10000

// updateShardCountWindow is the rolling period of Config.UpdateShardCountLimit.
const updateShardCountWindow = 24 * time.Hour

type updateShardCountReq struct {
	streamRef
	TargetShardCount *int64  `json:"TargetShardCount"`
	ScalingType      *string `json:"ScalingType"`
}

func (s *Service) opUpdateShardCount(c *call) (any, error) {
	var req updateShardCountReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.TargetShardCount == nil {
		return nil, errMissing("targetShardCount")
	}
	if req.ScalingType == nil {
		return nil, errMissing("scalingType")
	}
	if *req.ScalingType != "UNIFORM_SCALING" {
		return nil, errValidation(quoteValue(*req.ScalingType), "scalingType", "must satisfy enum value set: [UNIFORM_SCALING]")
	}
	if e := checkIntRange(req.TargetShardCount, "targetShardCount", 1, 100000); e != nil {
		return nil, e
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	cur, e := s.updateShardCount(st, int(*req.TargetShardCount), c.now)
	if e != nil {
		return nil, e
	}
	return struct {
		StreamName        string `json:"StreamName"`
		StreamARN         string `json:"StreamARN"`
		CurrentShardCount int32  `json:"CurrentShardCount"`
		TargetShardCount  int32  `json:"TargetShardCount"`
	}{st.name, st.arn, int32(cur), int32(*req.TargetShardCount)}, nil
}

func (s *Service) updateShardCount(st *stream, target int, now time.Time) (int, *APIError) {
	st.mu.RLock()
	cur := len(st.open)
	mode := st.mode
	st.mu.RUnlock()
	if mode == modeOnDemand {
		return 0, errInvalid("UpdateShardCount is not supported for ON_DEMAND stream %s under account %s.", st.name, s.cfg.AccountID)
	}
	if target > 2*cur || target*2 < cur {
		return 0, errLimit("UpdateShardCount of stream %s under account %s from %d to %d shards: the target must be between half and double the current open shard count.", st.name, s.cfg.AccountID, cur, target)
	}
	if target > maxUniformShards && (cur <= maxUniformShards || target >= maxUniformShards) {
		return 0, errLimit("UpdateShardCount of stream %s under account %s to %d shards: a stream can be scaled to at most %d shards, and one above that only to fewer than %d.", st.name, s.cfg.AccountID, target, maxUniformShards, maxUniformShards)
	}
	if e := s.checkShardLimit(max(0, target-cur)); e != nil {
		return 0, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if e := s.requireActiveLocked(st, now); e != nil {
		return 0, e
	}
	if limit := s.cfg.UpdateShardCountLimit; limit > 0 {
		recent := st.shardCountUpdates[:0]
		for _, t := range st.shardCountUpdates {
			if now.Sub(t) < updateShardCountWindow {
				recent = append(recent, t)
			}
		}
		st.shardCountUpdates = recent
		if len(recent) >= limit {
			return 0, errLimit("Rate exceeded for UpdateShardCount of stream %s under account %s: at most %d calls per rolling 24 hours; the oldest of them expires at %s.",
				st.name, s.cfg.AccountID, limit, recent[0].Add(updateShardCountWindow).UTC().Format(time.RFC3339))
		}
		st.shardCountUpdates = append(st.shardCountUpdates, now)
	}
	s.reshapeLocked(st, hashkey.Uniform(target), now)
	st.updatingUntil = now.Add(s.cfg.UpdateDelay)
	return cur, nil
}

// reshapeLocked splits and merges open shards until they are exactly targets, keeping
// lineage as the service does (every child has one parent, or two adjacent parents).
func (s *Service) reshapeLocked(st *stream, targets []hashkey.Range, now time.Time) {
	for _, t := range targets[1:] {
		sh := st.route(t.Start)
		if sh != nil && sh.rng.Start != t.Start {
			s.splitLocked(st, sh, t.Start, now)
		}
	}
	for _, t := range targets {
		for {
			var group []*shard
			for _, sh := range st.open {
				if t.Start.Cmp(sh.rng.Start) <= 0 && sh.rng.End.Cmp(t.End) <= 0 {
					group = append(group, sh)
				}
			}
			if len(group) <= 1 {
				break
			}
			for i := 0; i+1 < len(group); i += 2 {
				s.mergeLocked(st, group[i], group[i+1], now)
			}
		}
	}
}

type shardFilter struct {
	Type      *string    `json:"Type"`
	ShardID   *string    `json:"ShardId"`
	Timestamp *epochTime `json:"Timestamp"`
}

type listShardsReq struct {
	streamRef
	NextToken               *string      `json:"NextToken"`
	ExclusiveStartShardID   *string      `json:"ExclusiveStartShardId"`
	MaxResults              *int64       `json:"MaxResults"`
	StreamCreationTimestamp *epochTime   `json:"StreamCreationTimestamp"`
	ShardFilter             *shardFilter `json:"ShardFilter"`
}

// listShardsToken is the state a ListShards NextToken carries.
type listShardsToken struct {
	Stream string       `json:"s"`
	Epoch  int64        `json:"e"`
	Issued int64        `json:"i"`
	After  string       `json:"a"`
	Filter *shardFilter `json:"f,omitempty"`
}

const nextTokenTTL = 5 * time.Minute

func (s *Service) opListShards(c *call) (any, error) {
	var req listShardsReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	maxResults, e := intInRange(req.MaxResults, "maxResults", 1, 10000, 1000)
	if e != nil {
		return nil, e
	}
	if e := checkOptName(req.ExclusiveStartShardID, "exclusiveStartShardId"); e != nil {
		return nil, e
	}
	if req.ShardFilter != nil {
		if e := checkOptName(req.ShardFilter.ShardID, "shardFilter.shardId"); e != nil {
			return nil, e
		}
	}
	after := ""
	filter := req.ShardFilter
	var st *stream
	if req.NextToken != nil {
		if req.StreamName != nil || req.StreamARN != nil {
			return nil, errInvalid("NextToken and StreamName cannot be provided together.")
		}
		if req.ExclusiveStartShardID != nil || req.ShardFilter != nil {
			return nil, errInvalid("NextToken cannot be combined with ExclusiveStartShardId or ShardFilter.")
		}
		raw, err := base64.RawURLEncoding.DecodeString(*req.NextToken)
		var tok listShardsToken
		if err != nil || json.Unmarshal(raw, &tok) != nil || !validStreamName(tok.Stream) {
			return nil, errInvalid("Invalid NextToken.")
		}
		if c.now.Sub(time.UnixMilli(tok.Issued)) > nextTokenTTL {
			return nil, apiErr("ExpiredNextTokenException", 400, "The timestamp of the last ListShards call is more than 5 minutes old. NextToken has expired.")
		}
		var e *APIError
		if st, e = s.lookup(tok.Stream, c.now); e != nil {
			return nil, e
		}
		if st.epoch != tok.Epoch {
			return nil, errInvalid("Invalid NextToken.")
		}
		after, filter = tok.After, tok.Filter
	} else {
		var e *APIError
		if st, e = s.lookupRef(req.streamRef, c.now); e != nil {
			return nil, e
		}
		if req.ExclusiveStartShardID != nil {
			after = *req.ExclusiveStartShardID
		}
	}
	match, e := s.shardMatcher(st, filter, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := struct {
		Shards    []shardOut `json:"Shards"`
		NextToken *string    `json:"NextToken,omitempty"`
	}{Shards: []shardOut{}}
	last := ""
	for _, sh := range st.shards {
		if !st.visibleShard(sh, c.now) || (after != "" && sh.id <= after) || !match(sh) {
			continue
		}
		if len(out.Shards) == maxResults {
			b, _ := json.Marshal(listShardsToken{Stream: st.name, Epoch: st.epoch, Issued: c.now.UnixMilli(), After: last, Filter: filter})
			tok := base64.RawURLEncoding.EncodeToString(b)
			out.NextToken = &tok
			break
		}
		out.Shards = append(out.Shards, describeShard(sh))
		last = sh.id
	}
	return out, nil
}

// shardMatcher returns the ShardFilter predicate. It is applied with st.mu held.
func (s *Service) shardMatcher(st *stream, f *shardFilter, now time.Time) (func(*shard) bool, *APIError) {
	all := func(*shard) bool { return true }
	if f == nil {
		return all, nil
	}
	if f.Type == nil {
		return nil, errMissing("shardFilter.type")
	}
	openAt := func(t time.Time) func(*shard) bool {
		if t.Before(st.created) {
			t = st.created
		}
		return func(sh *shard) bool {
			return !sh.created.After(t) && (!sh.closed() || sh.closedAt.After(t))
		}
	}
	st.mu.RLock()
	retention := st.retention
	st.mu.RUnlock()
	switch *f.Type {
	case "AFTER_SHARD_ID":
		if f.ShardID == nil {
			return nil, errInvalid("ShardId must be provided for the AFTER_SHARD_ID filter type.")
		}
		id := *f.ShardID
		return func(sh *shard) bool { return sh.id > id }, nil
	case "AT_TRIM_HORIZON":
		return openAt(now.Add(-retention)), nil
	case "FROM_TRIM_HORIZON":
		return all, nil
	case "AT_LATEST":
		return func(sh *shard) bool { return !sh.closed() }, nil
	case "AT_TIMESTAMP", "FROM_TIMESTAMP":
		if f.Timestamp == nil {
			return nil, errInvalid("Timestamp must be provided for the %s filter type.", *f.Type)
		}
		at := openAt(f.Timestamp.Time)
		if *f.Type == "AT_TIMESTAMP" {
			return at, nil
		}
		t := f.Timestamp.Time
		return func(sh *shard) bool { return at(sh) || sh.created.After(t) }, nil
	}
	return nil, errValidation(quoteValue(*f.Type), "shardFilter.type", "must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]")
}
