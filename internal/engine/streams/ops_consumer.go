package streams

import (
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/freshet/freshet/internal/kinesiswire"
)

type consumerOut struct {
	ConsumerName              string    `json:"ConsumerName"`
	ConsumerARN               string    `json:"ConsumerARN"`
	ConsumerStatus            string    `json:"ConsumerStatus"`
	ConsumerCreationTimestamp epochTime `json:"ConsumerCreationTimestamp"`
	StreamARN                 *string   `json:"StreamARN,omitempty"`
}

func (c *consumer) describe(now time.Time, withStream bool) consumerOut {
	o := consumerOut{ConsumerName: c.name, ConsumerARN: c.arn, ConsumerStatus: c.statusAt(now), ConsumerCreationTimestamp: epochTime{c.created}}
	if withStream {
		o.StreamARN = strPtr(c.stream.arn)
	}
	return o
}

func checkConsumerName(n string) *APIError { return checkName(n, "consumerName") }

type consumerReq struct {
	StreamARN    *string           `json:"StreamARN"`
	ConsumerName *string           `json:"ConsumerName"`
	ConsumerARN  *string           `json:"ConsumerARN"`
	Tags         map[string]string `json:"Tags"`
	MaxResults   *int64            `json:"MaxResults"`
	NextToken    *string           `json:"NextToken"`
}

func (s *Service) streamOfARN(arn *string, member string, now time.Time) (*stream, *APIError) {
	if arn == nil {
		return nil, errMissing(member)
	}
	name, ok := parseStreamARN(*arn)
	if !ok {
		return nil, errValidation(quoteValue(*arn), member, "must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+")
	}
	return s.lookup(name, now)
}

func (s *Service) opRegisterStreamConsumer(c *call) (any, error) {
	var req consumerReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.ConsumerName == nil {
		return nil, errMissing("consumerName")
	}
	if e := checkConsumerName(*req.ConsumerName); e != nil {
		return nil, e
	}
	if e := checkTags(req.Tags); e != nil {
		return nil, e
	}
	st, e := s.streamOfARN(req.StreamARN, "streamARN", c.now)
	if e != nil {
		return nil, e
	}
	cs, e := s.registerConsumer(st, *req.ConsumerName, req.Tags, c.now)
	if e != nil {
		return nil, e
	}
	return struct {
		Consumer consumerOut `json:"Consumer"`
	}{cs}, nil
}

func (s *Service) registerConsumer(st *stream, name string, tags map[string]string, now time.Time) (consumerOut, *APIError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if e := s.readableLocked(st, now); e != nil {
		return consumerOut{}, e
	}
	if _, ok := st.consumers[name]; ok {
		return consumerOut{}, errInUse("Consumer %s under stream %s already exists for account %s.", name, st.name, s.cfg.AccountID)
	}
	if len(st.consumers)+st.queues >= s.cfg.ConsumerLimit {
		return consumerOut{}, errLimit("Consumer limit of %d for stream %s under account %s exceeded.", s.cfg.ConsumerLimit, st.name, s.cfg.AccountID)
	}
	cs := &consumer{
		name:          name,
		arn:           st.arn + "/consumer/" + name + ":" + strconv.FormatInt(now.Unix(), 10),
		created:       now,
		activeAt:      now.Add(s.cfg.ConsumerDelay),
		stream:        st,
		tags:          map[string]string{},
		lastSubscribe: map[int]time.Time{},
		readLimits:    map[int]*readLimiter{},
	}
	for k, v := range tags {
		cs.tags[k] = v
	}
	st.consumers[name] = cs
	return cs.describe(now, false), nil
}

// findConsumer resolves ConsumerARN, or StreamARN with ConsumerName. It returns the
// stream; the consumer is read under the stream's lock by the caller.
func (s *Service) findConsumer(req *consumerReq, now time.Time) (*stream, string, *APIError) {
	if req.ConsumerARN != nil {
		arn := *req.ConsumerARN
		name, ok := parseStreamARN(arn)
		i := strings.Index(arn, "/consumer/")
		if !ok || i < 0 {
			return nil, "", errValidation(quoteValue(arn), "consumerARN", "must satisfy regular expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+")
		}
		st, e := s.lookup(name, now)
		if e != nil {
			return nil, "", errNotFound("Consumer %s not found.", arn)
		}
		rest := arn[i+len("/consumer/"):]
		cname := rest
		if j := strings.LastIndexByte(rest, ':'); j >= 0 {
			cname = rest[:j]
		}
		st.mu.RLock()
		cs := st.consumers[cname]
		st.mu.RUnlock()
		if cs == nil || cs.arn != arn {
			return nil, "", errNotFound("Consumer %s not found.", arn)
		}
		return st, cname, nil
	}
	if req.StreamARN == nil || req.ConsumerName == nil {
		return nil, "", errInvalid("Either ConsumerARN or both ConsumerName and StreamARN must be provided.")
	}
	st, e := s.streamOfARN(req.StreamARN, "streamARN", now)
	if e != nil {
		return nil, "", e
	}
	st.mu.RLock()
	cs := st.consumers[*req.ConsumerName]
	st.mu.RUnlock()
	if cs == nil {
		return nil, "", errNotFound("Consumer %s under stream %s not found for account %s.", *req.ConsumerName, st.name, s.cfg.AccountID)
	}
	return st, *req.ConsumerName, nil
}

func (s *Service) opDescribeStreamConsumer(c *call) (any, error) {
	var req consumerReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	st, name, e := s.findConsumer(&req, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	cs := st.consumers[name]
	if cs == nil {
		return nil, errNotFound("Consumer %s not found.", name)
	}
	return struct {
		ConsumerDescription consumerOut `json:"ConsumerDescription"`
	}{cs.describe(c.now, true)}, nil
}

func (s *Service) opListStreamConsumers(c *call) (any, error) {
	var req consumerReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	limit, e := intInRange(req.MaxResults, "maxResults", 1, 10000, 100)
	if e != nil {
		return nil, e
	}
	st, e := s.streamOfARN(req.StreamARN, "streamARN", c.now)
	if e != nil {
		return nil, e
	}
	after := ""
	if req.NextToken != nil {
		b, err := base64.RawURLEncoding.DecodeString(*req.NextToken)
		if err != nil || !strings.HasPrefix(string(b), "lc:") {
			return nil, errInvalid("Invalid NextToken.")
		}
		after = string(b[3:])
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	names := make([]string, 0, len(st.consumers))
	for n := range st.consumers {
		names = append(names, n)
	}
	sort.Strings(names)
	out := struct {
		Consumers []consumerOut `json:"Consumers"`
		NextToken *string       `json:"NextToken,omitempty"`
	}{Consumers: []consumerOut{}}
	for _, n := range names {
		if after != "" && n <= after {
			continue
		}
		if len(out.Consumers) == limit {
			tok := base64.RawURLEncoding.EncodeToString([]byte("lc:" + out.Consumers[limit-1].ConsumerName))
			out.NextToken = &tok
			break
		}
		out.Consumers = append(out.Consumers, st.consumers[n].describe(c.now, false))
	}
	return out, nil
}

func (s *Service) opDeregisterStreamConsumer(c *call) (any, error) {
	var req consumerReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	st, name, e := s.findConsumer(&req, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	cs := st.consumers[name]
	if cs == nil || cs.deleting {
		return nil, errNotFound("Consumer %s not found.", name)
	}
	cs.deleting = true
	cs.goneAt = c.now.Add(s.cfg.ConsumerDelay)
	if s.cfg.ConsumerDelay == 0 {
		delete(st.consumers, name)
	}
	for _, sh := range st.shards {
		sh.mu.Lock()
		sh.wakeLocked()
		sh.mu.Unlock()
	}
	return nil, nil
}

type subscribeReq struct {
	ConsumerARN      *string `json:"ConsumerARN"`
	ShardID          *string `json:"ShardId"`
	StartingPosition *struct {
		Type           *string    `json:"Type"`
		SequenceNumber *string    `json:"SequenceNumber"`
		Timestamp      *epochTime `json:"Timestamp"`
	} `json:"StartingPosition"`
	DryRun *bool `json:"DryRun"`
}

// maxEventDataBytes caps the record data of one SubscribeToShardEvent (a single larger
// record is still sent whole).
const maxEventDataBytes = 2 << 20

// subscription is an accepted SubscribeToShard call.
type subscription struct {
	st        *stream
	sh        *shard
	cs        *consumer
	pos       uint64
	retention time.Duration
	// limit is the consumer's read-bytes bucket for the shard (2 MiB/s by default) when
	// limits are on; a subscription in debt sends only heartbeats until it refills.
	limit *readLimiter
}

func (s *Service) prepareSubscribe(c *call) (*subscription, *APIError) {
	var req subscribeReq
	if err := c.decode(&req); err != nil {
		if ae, ok := err.(*APIError); ok {
			return nil, ae
		}
		return nil, errSerialization("Malformed request body")
	}
	if req.ConsumerARN == nil {
		return nil, errMissing("consumerARN")
	}
	if req.ShardID == nil {
		return nil, errMissing("shardId")
	}
	if e := checkName(*req.ShardID, "shardId"); e != nil {
		return nil, e
	}
	if req.StartingPosition == nil {
		return nil, errMissing("startingPosition")
	}
	if req.StartingPosition.Type == nil {
		return nil, errMissing("startingPosition.type")
	}
	sp := startPosition{typ: *req.StartingPosition.Type, seq: req.StartingPosition.SequenceNumber, ts: req.StartingPosition.Timestamp}
	if e := s.checkStart(sp, "startingPosition.type", "startingPosition.sequenceNumber"); e != nil {
		return nil, e
	}
	st, name, e := s.findConsumer(&consumerReq{ConsumerARN: req.ConsumerARN}, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	cs := st.consumers[name]
	if cs == nil {
		st.mu.Unlock()
		return nil, errNotFound("Consumer %s not found.", *req.ConsumerARN)
	}
	if status := cs.statusAt(c.now); status != statusActive {
		st.mu.Unlock()
		return nil, errInUse("Consumer %s is not ACTIVE, instead in state %s.", cs.arn, status)
	}
	if e := s.readableLocked(st, c.now); e != nil {
		st.mu.Unlock()
		return nil, e
	}
	sh := st.shardByID(*req.ShardID)
	if sh == nil || !st.visibleShard(sh, c.now) {
		st.mu.Unlock()
		return nil, s.shardNotFound(st, *req.ShardID)
	}
	if s.cfg.Limits {
		if last, ok := cs.lastSubscribe[sh.num]; ok && c.now.Sub(last) < 5*time.Second {
			st.mu.Unlock()
			return nil, errInUse("Another active subscription exists for consumer %s on shard %s, or one started less than 5 seconds ago.", cs.arn, sh.id)
		}
	}
	if req.DryRun != nil && *req.DryRun {
		st.mu.Unlock()
		return nil, errDryRun()
	}
	cs.lastSubscribe[sh.num] = c.now
	var lim *readLimiter
	if s.cfg.Limits {
		lim = cs.readLimits[sh.num]
		if lim == nil {
			lim = &readLimiter{b: newBucket(s.cfg.ReadBytesPerSecond, s.cfg.Burst, 1)}
			cs.readLimits[sh.num] = lim
		}
	}
	retention := st.retention
	st.mu.Unlock()
	sh.mu.RLock()
	pos, e := s.positionOf(st, sh, sp, c.now, retention)
	sh.mu.RUnlock()
	if e != nil {
		return nil, e
	}
	return &subscription{st: st, sh: sh, cs: cs, pos: pos, retention: retention, limit: lim}, nil
}

// subscribeToShard serves SubscribeToShard: an initial-response event, then
// SubscribeToShardEvents as records arrive (or an empty one per heartbeat), until the
// shard ends, the subscription's duration passes, the client leaves, or the consumer or
// stream goes away.
func (s *Service) subscribeToShard(w http.ResponseWriter, r *http.Request) {
	buf := getBuf()
	body, aerr := s.readBody(r, buf)
	if aerr != nil {
		putBuf(buf)
		s.writeAPIError(w, r, aerr)
		return
	}
	c := &call{r: r, body: body, cbor: isCBOR(r), now: s.clock.Now()}
	sub, aerr := s.prepareSubscribe(c)
	putBuf(buf)
	if aerr != nil {
		s.writeAPIError(w, r, aerr)
		return
	}
	if !s.awaitSubscribeResponse(r) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/vnd.amazon.eventstream")
	h.Set("X-Amzn-Requestid", strconv.FormatUint(s.requestID.Add(1), 36))
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := eventstream.NewEncoder()
	send := func(msgType, typeHeader, typ string, payload []byte) bool {
		msg := eventstream.Message{Payload: payload}
		msg.Headers.Set(typeHeader, eventstream.StringValue(typ))
		msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		msg.Headers.Set(":message-type", eventstream.StringValue(msgType))
		if err := enc.Encode(w, msg); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	if !send("event", ":event-type", "initial-response", []byte("{}")) {
		return
	}
	deadline := s.clock.After(s.cfg.SubscriptionDuration)
	heartbeat := time.NewTicker(s.cfg.SubscribeHeartbeat)
	defer heartbeat.Stop()
	refs := make([]recRef, 0, 256)
	due := true
	for {
		now := s.clock.Now()
		sub.st.mu.RLock()
		gone := sub.st.deleting || sub.cs.deleting || sub.st.consumers[sub.cs.name] != sub.cs
		sub.st.mu.RUnlock()
		if gone {
			msg := kinesiswire.AppendString([]byte(`{"message":`), "Consumer "+sub.cs.arn+" or its stream no longer exists.")
			send("exception", ":exception-type", "ResourceNotFoundException", append(msg, '}'))
			return
		}
		sh := sub.sh
		maxRecs := maxGetRecords
		var refill *time.Timer
		var refilled <-chan time.Time
		if sub.limit != nil {
			if d := sub.limit.wait(now); d > 0 {
				maxRecs = 0
				refill = time.NewTimer(d)
				refilled = refill.C
			}
		}
		sh.mu.Lock()
		res := s.readLocked(sh, refs[:0], sub.pos, maxRecs, maxEventDataBytes, now, sub.retention)
		var wait <-chan struct{}
		if !res.ended && res.next >= sh.total && maxRecs > 0 {
			wait = sh.waitChanLocked()
		}
		sh.mu.Unlock()
		refs = res.refs
		if len(res.refs) > 0 || res.ended || due {
			payload := make([]byte, 0, 256)
			payload = append(payload, '{')
			payload = appendRecordsJSON(payload, res.refs, sh.suffix, "NONE")
			if !res.ended {
				payload = append(payload, `,"ContinuationSequenceNumber":"`...)
				payload = appendSeq(payload, res.contSeq, sh.suffix)
				payload = append(payload, '"')
			}
			payload = append(payload, `,"MillisBehindLatest":`...)
			payload = strconv.AppendInt(payload, res.behindMs, 10)
			if res.ended {
				payload = appendChildrenJSON(payload, res.children)
			}
			payload = append(payload, '}')
			if !send("event", ":event-type", "SubscribeToShardEvent", payload) {
				return
			}
			var n int64
			for _, ref := range res.refs {
				n += int64(len(ref.data))
			}
			if sub.limit != nil && n > 0 {
				sub.limit.take(n)
			}
			s.counters.recordsOut.Add(int64(len(res.refs)))
			s.counters.bytesOut.Add(n)
			sub.pos = res.next
			due = false
			clear(refs)
			if res.ended {
				return
			}
			if wait == nil && maxRecs > 0 {
				continue
			}
		}
		select {
		case <-refilled:
		case <-wait:
		case <-heartbeat.C:
			due = true
		case <-deadline:
			return
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
		if refill != nil {
			refill.Stop()
		}
	}
}
