package streams

import (
	"container/heap"
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// queueOperations are the queue operations, served beside the stream operations.
var queueOperations = map[string]opFunc{
	"CreateQueue":                            (*Service).opCreateQueue,
	"UpdateQueue":                            (*Service).opUpdateQueue,
	"DeleteQueue":                            (*Service).opDeleteQueue,
	"DescribeQueue":                          (*Service).opDescribeQueue,
	"ListQueues":                             (*Service).opListQueues,
	"ReceiveQueueRecords":                    func(s *Service, c *call) (any, error) { return s.receiveQueue(c, false) },
	"ReceiveDeadLetterQueueRecords":          func(s *Service, c *call) (any, error) { return s.receiveQueue(c, true) },
	"AcknowledgeQueueRecords":                func(s *Service, c *call) (any, error) { return s.queueEntries(c, entryAck, false) },
	"AcknowledgeDeadLetterQueueRecords":      func(s *Service, c *call) (any, error) { return s.queueEntries(c, entryAck, true) },
	"UpdateQueueRecordsVisibility":           func(s *Service, c *call) (any, error) { return s.queueEntries(c, entryVisibility, false) },
	"UpdateDeadLetterQueueRecordsVisibility": func(s *Service, c *call) (any, error) { return s.queueEntries(c, entryVisibility, true) },
	"RestoreDeadLetterQueueRecords":          func(s *Service, c *call) (any, error) { return s.queueEntries(c, entryRestore, true) },
}

// Model bounds of the queue operations.
const (
	maxQueueVisibility   = 43200
	maxQueueWait         = 20
	defaultQueueWait     = 9
	maxQueueReceive      = 10
	maxQueueEntries      = 10
	maxReceiveCountBound = 1000
	maxReceiptLen        = 1024
	maxListQueues        = 100
	patternQueueARN      = `arn:aws.*:kinesis:.*:\d{12}:queue/\S+`
)

type queueStartIn struct {
	Type      *string    `json:"Type"`
	Timestamp *epochTime `json:"Timestamp"`
}

type queueStreamConfigIn struct {
	StreamARN        *string       `json:"StreamARN"`
	StartingPosition *queueStartIn `json:"StartingPosition"`
}

type deadLetterIn struct {
	TargetType      *string `json:"TargetType"`
	MaxReceiveCount *int64  `json:"MaxReceiveCount"`
}

type queueAttributesIn struct {
	DeadLetterConfiguration  *deadLetterIn `json:"DeadLetterConfiguration"`
	VisibilityTimeoutSeconds *int64        `json:"VisibilityTimeoutSeconds"`
}

type createQueueReq struct {
	QueueName               *string               `json:"QueueName"`
	StreamConfigurationList []queueStreamConfigIn `json:"StreamConfigurationList"`
	QueueAttributes         *queueAttributesIn    `json:"QueueAttributes"`
	Tags                    map[string]string     `json:"Tags"`
}

type queueStartOut struct {
	Type      string     `json:"Type"`
	Timestamp *epochTime `json:"Timestamp,omitempty"`
}

type queueStreamConfigOut struct {
	StreamARN        string        `json:"StreamARN"`
	StartingPosition queueStartOut `json:"StartingPosition"`
}

type deadLetterOut struct {
	TargetType      string `json:"TargetType"`
	MaxReceiveCount *int32 `json:"MaxReceiveCount,omitempty"`
}

type queueAttributesOut struct {
	DeadLetterConfiguration  deadLetterOut `json:"DeadLetterConfiguration"`
	VisibilityTimeoutSeconds int32         `json:"VisibilityTimeoutSeconds"`
}

type queueDescriptionOut struct {
	QueueARN                string                 `json:"QueueARN"`
	QueueCreationTimestamp  epochTime              `json:"QueueCreationTimestamp"`
	QueueName               string                 `json:"QueueName"`
	QueueStatus             string                 `json:"QueueStatus"`
	StreamConfigurationList []queueStreamConfigOut `json:"StreamConfigurationList"`
	QueueAttributes         queueAttributesOut     `json:"QueueAttributes"`
}

// checkQueueAttributes validates QueueAttributes members against the model and their
// combination rules.
func checkQueueAttributes(a *queueAttributesIn) *APIError {
	if a == nil {
		return nil
	}
	if e := checkIntRange(a.VisibilityTimeoutSeconds, "queueAttributes.visibilityTimeoutSeconds", 0, maxQueueVisibility); e != nil {
		return e
	}
	d := a.DeadLetterConfiguration
	if d == nil {
		return nil
	}
	if d.TargetType == nil {
		return errMissing("queueAttributes.deadLetterConfiguration.targetType")
	}
	switch *d.TargetType {
	case queueTargetBuiltIn, queueTargetNone:
	default:
		return errValidation(quoteValue(*d.TargetType), "queueAttributes.deadLetterConfiguration.targetType", "must satisfy enum value set: [BUILT_IN, NONE]")
	}
	if e := checkIntRange(d.MaxReceiveCount, "queueAttributes.deadLetterConfiguration.maxReceiveCount", 1, maxReceiveCountBound); e != nil {
		return e
	}
	if *d.TargetType == queueTargetBuiltIn && d.MaxReceiveCount == nil {
		return errInvalid("MaxReceiveCount is required when the dead-letter TargetType is BUILT_IN.")
	}
	if *d.TargetType == queueTargetNone && d.MaxReceiveCount != nil {
		return errInvalid("MaxReceiveCount cannot be specified when the dead-letter TargetType is NONE.")
	}
	return nil
}

// applyAttributes sets the attributes given. The caller holds q.mu.
func (q *queue) applyAttributes(a *queueAttributesIn) {
	if a == nil {
		return
	}
	if a.VisibilityTimeoutSeconds != nil {
		q.visibility = time.Duration(*a.VisibilityTimeoutSeconds) * time.Second
	}
	if d := a.DeadLetterConfiguration; d != nil {
		q.dlq = *d.TargetType == queueTargetBuiltIn
		if q.dlq {
			q.maxReceive = int32(*d.MaxReceiveCount)
		}
	}
}

func (s *Service) queueARN(id uint64) string {
	return "arn:aws:kinesis:" + s.cfg.Region + ":" + s.cfg.AccountID + ":queue/q-" + strconv.FormatUint(id, 36) + "-" +
		strconv.FormatInt(s.clock.Now().UnixNano()%1e9, 36)
}

func checkQueueARN(arn *string) *APIError {
	if arn == nil {
		return errMissing("queueARN")
	}
	parts := strings.SplitN(*arn, ":", 6)
	if len(*arn) > 2048 || len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "kinesis" ||
		!strings.HasPrefix(parts[5], "queue/") || len(parts[5]) == len("queue/") || len(parts[4]) != 12 {
		return errValidation(quoteValue(*arn), "queueARN", "must satisfy regular expression pattern: "+patternQueueARN)
	}
	return nil
}

func (s *Service) findQueue(arn *string, now time.Time) (*queue, *APIError) {
	if e := checkQueueARN(arn); e != nil {
		return nil, e
	}
	s.queues.mu.Lock()
	q := s.queues.byARN[*arn]
	s.queues.mu.Unlock()
	if q == nil {
		return nil, errNotFound("Queue %s under account %s not found.", *arn, s.cfg.AccountID)
	}
	q.mu.Lock()
	gone := q.deleting && !now.Before(q.goneAt)
	q.mu.Unlock()
	if gone {
		return nil, errNotFound("Queue %s under account %s not found.", *arn, s.cfg.AccountID)
	}
	return q, nil
}

func (s *Service) opCreateQueue(c *call) (any, error) {
	var req createQueueReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.QueueName == nil {
		return nil, errMissing("queueName")
	}
	if e := checkName(*req.QueueName, "queueName"); e != nil {
		return nil, e
	}
	if req.StreamConfigurationList == nil {
		return nil, errMissing("streamConfigurationList")
	}
	if n := len(req.StreamConfigurationList); n != 1 {
		return nil, errLenRange("list", n, "streamConfigurationList", 1, 1)
	}
	cfg := req.StreamConfigurationList[0]
	if cfg.StreamARN == nil {
		return nil, errMissing("streamConfigurationList.1.member.streamARN")
	}
	start, startTs := "LATEST", time.Time{}
	if sp := cfg.StartingPosition; sp != nil {
		if sp.Type == nil {
			return nil, errMissing("streamConfigurationList.1.member.startingPosition.type")
		}
		switch *sp.Type {
		case "LATEST", "TRIM_HORIZON":
			if sp.Timestamp != nil {
				return nil, errValidation(quoteValue(*sp.Type), "streamConfigurationList.1.member.startingPosition.timestamp", "must be null unless type is AT_TIMESTAMP")
			}
		case "AT_TIMESTAMP":
			if sp.Timestamp == nil {
				return nil, errMissing("streamConfigurationList.1.member.startingPosition.timestamp")
			}
			startTs = sp.Timestamp.Time
		default:
			return nil, errValidation(quoteValue(*sp.Type), "streamConfigurationList.1.member.startingPosition.type", "must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_TIMESTAMP]")
		}
		start = *sp.Type
	}
	if e := checkQueueAttributes(req.QueueAttributes); e != nil {
		return nil, e
	}
	if e := checkTags(req.Tags); e != nil {
		return nil, e
	}
	if len(req.Tags) > maxTags {
		return nil, errInvalid("A queue cannot have more than %d tags.", maxTags)
	}
	name, e := s.resolveName(streamRef{StreamARN: cfg.StreamARN}, true)
	if e != nil {
		return nil, e
	}
	st, e := s.lookup(name, c.now)
	if e != nil {
		return nil, e
	}

	s.queues.mu.Lock()
	defer s.queues.mu.Unlock()
	if s.queues.byARN == nil {
		s.queues.byARN = make(map[string]*queue)
		s.queues.byName = make(map[string]*queue)
	}
	if old := s.queues.byName[*req.QueueName]; old != nil {
		old.mu.Lock()
		gone := old.deleting && !c.now.Before(old.goneAt)
		old.mu.Unlock()
		if !gone {
			return nil, errInUse("Queue %s under account %s already exists.", *req.QueueName, s.cfg.AccountID)
		}
	}
	st.mu.Lock()
	switch {
	case st.mode != modeOnDemand:
		st.mu.Unlock()
		return nil, errInvalid("Queues can only be created on ON_DEMAND streams; stream %s under account %s is %s.", st.name, s.cfg.AccountID, st.mode)
	case st.statusAt(c.now) != statusActive:
		status := st.statusAt(c.now)
		st.mu.Unlock()
		return nil, errInUse("Stream %s under account %s is not ACTIVE, instead in state %s.", st.name, s.cfg.AccountID, status)
	case len(st.consumers)+st.queues >= s.cfg.ConsumerLimit:
		st.mu.Unlock()
		return nil, errLimit("Consumer limit of %d for stream %s under account %s exceeded (queues count as consumers).", s.cfg.ConsumerLimit, st.name, s.cfg.AccountID)
	}
	st.queues++
	st.mu.Unlock()

	s.queues.nextID++
	q := &queue{
		name: *req.QueueName, id: s.queues.nextID, created: c.now, activeAt: c.now.Add(s.cfg.CreateDelay),
		st: st, start: start, startTs: startTs, tags: make(map[string]string, len(req.Tags)),
		visibility: defaultQueueVisibility, dlq: true, maxReceive: defaultMaxReceiveCount,
		cursors: make(map[int]*queueCursor), entries: make(map[uint64]*queueEntry),
	}
	q.arn = s.queueARN(q.id)
	for k, v := range req.Tags {
		q.tags[k] = v
	}
	q.mu.Lock()
	q.applyAttributes(req.QueueAttributes)
	q.initCursors(c.now)
	out := s.describeQueueLocked(q, c.now)
	q.mu.Unlock()
	s.queues.byARN[q.arn] = q
	s.queues.byName[q.name] = q
	return struct {
		QueueDescription queueDescriptionOut `json:"QueueDescription"`
	}{out}, nil
}

// describeQueueLocked describes q. The caller holds q.mu.
func (s *Service) describeQueueLocked(q *queue, now time.Time) queueDescriptionOut {
	status := q.statusAt(now)
	sp := queueStartOut{Type: q.start}
	switch {
	case q.start == "AT_TIMESTAMP":
		sp.Timestamp = &epochTime{q.startTs}
	case status != statusCreating:
		sp.Timestamp = &epochTime{q.created}
	}
	attrs := queueAttributesOut{VisibilityTimeoutSeconds: int32(q.visibility / time.Second),
		DeadLetterConfiguration: deadLetterOut{TargetType: queueTargetNone}}
	if q.dlq {
		attrs.DeadLetterConfiguration = deadLetterOut{TargetType: queueTargetBuiltIn, MaxReceiveCount: &q.maxReceive}
	}
	return queueDescriptionOut{
		QueueARN: q.arn, QueueCreationTimestamp: epochTime{q.created}, QueueName: q.name, QueueStatus: status,
		StreamConfigurationList: []queueStreamConfigOut{{StreamARN: q.st.arn, StartingPosition: sp}},
		QueueAttributes:         attrs,
	}
}

type queueARNReq struct {
	QueueARN *string `json:"QueueARN"`
}

func (s *Service) opDescribeQueue(c *call) (any, error) {
	var req queueARNReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	q, e := s.findQueue(req.QueueARN, c.now)
	if e != nil {
		return nil, e
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return struct {
		QueueDescription queueDescriptionOut `json:"QueueDescription"`
	}{s.describeQueueLocked(q, c.now)}, nil
}

type updateQueueReq struct {
	QueueARN        *string            `json:"QueueARN"`
	QueueAttributes *queueAttributesIn `json:"QueueAttributes"`
}

func (s *Service) opUpdateQueue(c *call) (any, error) {
	var req updateQueueReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if e := checkQueueARN(req.QueueARN); e != nil {
		return nil, e
	}
	if req.QueueAttributes == nil {
		return nil, errMissing("queueAttributes")
	}
	if e := checkQueueAttributes(req.QueueAttributes); e != nil {
		return nil, e
	}
	q, e := s.findQueue(req.QueueARN, c.now)
	if e != nil {
		return nil, e
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if status := q.statusAt(c.now); status != statusActive {
		return nil, errInUse("Queue %s is not ACTIVE, instead in state %s.", q.arn, status)
	}
	q.applyAttributes(req.QueueAttributes)
	q.updatingUntil = c.now.Add(s.cfg.UpdateDelay)
	return struct {
		QueueDescription queueDescriptionOut `json:"QueueDescription"`
	}{s.describeQueueLocked(q, c.now)}, nil
}

func (s *Service) opDeleteQueue(c *call) (any, error) {
	var req queueARNReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	q, e := s.findQueue(req.QueueARN, c.now)
	if e != nil {
		return nil, e
	}
	q.mu.Lock()
	if q.deleting {
		q.mu.Unlock()
		return nil, errInUse("Queue %s is already being deleted.", q.arn)
	}
	q.deleting = true
	q.goneAt = c.now.Add(s.cfg.DeleteDelay)
	q.entries, q.ready, q.dead, q.flight = map[uint64]*queueEntry{}, entryList{}, entryList{}, nil
	q.wakeLocked()
	q.mu.Unlock()
	q.st.mu.Lock()
	q.st.queues--
	q.st.mu.Unlock()
	if s.cfg.DeleteDelay == 0 {
		s.dropQueue(q)
	}
	return nil, nil
}

func (s *Service) dropQueue(q *queue) {
	s.queues.mu.Lock()
	defer s.queues.mu.Unlock()
	if s.queues.byARN[q.arn] == q {
		delete(s.queues.byARN, q.arn)
	}
	if s.queues.byName[q.name] == q {
		delete(s.queues.byName, q.name)
	}
}

// maintainQueues drops deleted queues and records that retention took from the stream.
func (s *Service) maintainQueues(now time.Time) {
	s.queues.mu.Lock()
	qs := make([]*queue, 0, len(s.queues.byARN))
	for _, q := range s.queues.byARN {
		qs = append(qs, q)
	}
	s.queues.mu.Unlock()
	for _, q := range qs {
		q.mu.Lock()
		gone := q.deleting && !now.Before(q.goneAt)
		if !q.deleting {
			q.expireLocked(now)
			q.st.mu.RLock()
			cutoff := now.Add(-q.st.retention).UnixNano()
			q.st.mu.RUnlock()
			for _, e := range q.entries {
				if e.ts < cutoff {
					q.forget(e)
				}
			}
		}
		q.mu.Unlock()
		if gone {
			s.dropQueue(q)
		}
	}
}

type listQueuesReq struct {
	MaxResults   *int64  `json:"MaxResults"`
	NextToken    *string `json:"NextToken"`
	StreamFilter []struct {
		StreamARN               *string    `json:"StreamARN"`
		StreamCreationTimestamp *epochTime `json:"StreamCreationTimestamp"`
	} `json:"StreamFilter"`
}

type queueStreamIDOut struct {
	StreamARN               string    `json:"StreamARN"`
	StreamCreationTimestamp epochTime `json:"StreamCreationTimestamp"`
}

type queueSummaryOut struct {
	QueueARN               string             `json:"QueueARN"`
	QueueCreationTimestamp epochTime          `json:"QueueCreationTimestamp"`
	QueueName              string             `json:"QueueName"`
	QueueStatus            string             `json:"QueueStatus"`
	Streams                []queueStreamIDOut `json:"Streams"`
}

func (s *Service) opListQueues(c *call) (any, error) {
	var req listQueuesReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	limit, e := intInRange(req.MaxResults, "maxResults", 1, maxListQueues, maxListQueues)
	if e != nil {
		return nil, e
	}
	if len(req.StreamFilter) > 1 {
		return nil, errLenRange("list", len(req.StreamFilter), "streamFilter", 0, 1)
	}
	var filterARN *string
	var filterTs *epochTime
	if len(req.StreamFilter) == 1 {
		f := req.StreamFilter[0]
		if f.StreamARN == nil {
			return nil, errMissing("streamFilter.1.member.streamARN")
		}
		if _, e := s.resolveName(streamRef{StreamARN: f.StreamARN}, true); e != nil {
			return nil, e
		}
		filterARN, filterTs = f.StreamARN, f.StreamCreationTimestamp
	}
	after := ""
	if req.NextToken != nil {
		b, err := base64.RawURLEncoding.DecodeString(*req.NextToken)
		if err != nil || !strings.HasPrefix(string(b), "lq:") {
			return nil, errInvalid("Invalid NextToken.")
		}
		after = string(b[3:])
	}
	s.queues.mu.Lock()
	qs := make([]*queue, 0, len(s.queues.byName))
	for _, q := range s.queues.byName {
		qs = append(qs, q)
	}
	s.queues.mu.Unlock()
	sort.Slice(qs, func(i, j int) bool { return qs[i].name < qs[j].name })
	out := struct {
		QueueSummaries []queueSummaryOut `json:"QueueSummaries"`
		NextToken      *string           `json:"NextToken,omitempty"`
	}{QueueSummaries: []queueSummaryOut{}}
	for _, q := range qs {
		if q.name <= after {
			continue
		}
		if filterARN != nil && (q.st.arn != *filterARN || (filterTs != nil && !filterTs.Equal(q.st.created.Truncate(time.Millisecond)) && !filterTs.Equal(q.st.created))) {
			continue
		}
		q.mu.Lock()
		gone := q.deleting && !c.now.Before(q.goneAt)
		status := q.statusAt(c.now)
		q.mu.Unlock()
		if gone {
			continue
		}
		if len(out.QueueSummaries) == limit {
			tok := base64.RawURLEncoding.EncodeToString([]byte("lq:" + out.QueueSummaries[limit-1].QueueName))
			out.NextToken = &tok
			break
		}
		out.QueueSummaries = append(out.QueueSummaries, queueSummaryOut{QueueARN: q.arn, QueueCreationTimestamp: epochTime{q.created},
			QueueName: q.name, QueueStatus: status, Streams: []queueStreamIDOut{{StreamARN: q.st.arn, StreamCreationTimestamp: epochTime{q.st.created}}}})
	}
	return out, nil
}

type receiveQueueReq struct {
	QueueARN                 *string `json:"QueueARN"`
	Limit                    *int64  `json:"Limit"`
	VisibilityTimeoutSeconds *int64  `json:"VisibilityTimeoutSeconds"`
	WaitTimeSeconds          *int64  `json:"WaitTimeSeconds"`
}

type queueRecordOut struct {
	ApproximateArrivalTimestamp epochTime `json:"ApproximateArrivalTimestamp"`
	Data                        []byte    `json:"Data"`
	FirstReceiveTimestamp       epochTime `json:"FirstReceiveTimestamp"`
	ReceiptHandle               string    `json:"ReceiptHandle"`
	ReceiveCount                int32     `json:"ReceiveCount"`
	RecordID                    string    `json:"RecordId"`
	PartitionKey                *string   `json:"PartitionKey,omitempty"`
}

// queuePoll is how often a waiting receive looks for records that became visible
// without a wake-up (new records in the stream).
const queuePoll = 10 * time.Millisecond

// receiveQueue serves ReceiveQueueRecords (dead false) and ReceiveDeadLetterQueueRecords.
func (s *Service) receiveQueue(c *call, dead bool) (any, error) {
	var req receiveQueueReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if e := checkQueueARN(req.QueueARN); e != nil {
		return nil, e
	}
	if e := checkIntRange(req.Limit, "limit", 1, maxQueueReceive); e != nil {
		return nil, e
	}
	if e := checkIntRange(req.VisibilityTimeoutSeconds, "visibilityTimeoutSeconds", 0, maxQueueVisibility); e != nil {
		return nil, e
	}
	if e := checkIntRange(req.WaitTimeSeconds, "waitTimeSeconds", 0, maxQueueWait); e != nil {
		return nil, e
	}
	limit, wait := maxQueueReceive, time.Duration(defaultQueueWait)*time.Second
	if req.Limit != nil {
		limit = int(*req.Limit)
	}
	if req.WaitTimeSeconds != nil {
		wait = time.Duration(*req.WaitTimeSeconds) * time.Second
	}
	q, e := s.findQueue(req.QueueARN, c.now)
	if e != nil {
		return nil, e
	}
	var deadline <-chan time.Time
	if wait > 0 {
		deadline = s.clock.After(wait)
	}
	var poll *time.Timer
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for {
		recs, woken, e := s.receiveOnce(q, dead, limit, req.VisibilityTimeoutSeconds, s.clock.Now())
		if e != nil {
			return nil, e
		}
		if len(recs) > 0 || wait == 0 {
			return struct {
				QueueRecords []queueRecordOut `json:"QueueRecords"`
			}{recs}, nil
		}
		if poll == nil {
			poll = time.NewTimer(queuePoll)
		} else {
			poll.Reset(queuePoll)
		}
		select {
		case <-woken:
		case <-poll.C:
		case <-deadline:
			return struct {
				QueueRecords []queueRecordOut `json:"QueueRecords"`
			}{[]queueRecordOut{}}, nil
		case <-c.r.Context().Done():
			// The caller is gone and reads no answer; records stay where they were.
			return nil, apiErr("RequestCanceled", 499, "The client closed the request.")
		case <-s.ctx.Done():
			return nil, apiErr("InternalFailure", http.StatusInternalServerError, "The service is shutting down.")
		}
	}
}

// receiveOnce delivers up to limit visible records, or returns a channel closed when
// some may have become visible.
func (s *Service) receiveOnce(q *queue, dead bool, limit int, vis *int64, now time.Time) ([]queueRecordOut, <-chan struct{}, *APIError) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if status := q.statusAt(now); status == statusCreating || status == statusDeleting {
		return nil, nil, errInUse("Queue %s is not ACTIVE, instead in state %s.", q.arn, status)
	}
	q.expireLocked(now)
	if !dead {
		q.loadLocked(s.cfg.QueueMaxRecords, now)
	}
	list := &q.ready
	if dead {
		list = &q.dead
	}
	visibility := q.visibility
	if vis != nil {
		visibility = time.Duration(*vis) * time.Second
	}
	var out []queueRecordOut
	for len(out) < limit && list.head != nil {
		e := list.head
		list.remove(e)
		pk, data, ok := q.recordOf(e, now)
		if !ok {
			delete(q.entries, e.seq)
			continue
		}
		e.receives++
		if e.first.IsZero() {
			e.first = now
		}
		q.deliveries++
		e.delivery = q.deliveries
		e.state = entryInFlight
		if dead {
			e.state = entryDeadInFlight
		}
		e.deadline = now.Add(visibility)
		heap.Push(&q.flight, e)
		r := queueRecordOut{
			ApproximateArrivalTimestamp: epochTime{time.Unix(0, e.ts)}, Data: data,
			FirstReceiveTimestamp: epochTime{e.first}, ReceiptHandle: string(appendReceipt(nil, q.id, e.seq, e.delivery)),
			ReceiveCount: e.receives, RecordID: formatSeq(e.seq, e.shardNum),
		}
		if len(pk) > 0 {
			r.PartitionKey = strPtr(string(pk))
		}
		out = append(out, r)
	}
	if out == nil {
		out = []queueRecordOut{}
	}
	return out, q.waitChanLocked(), nil
}

// What a batch of receipt handles asks for.
const (
	entryAck = iota
	entryVisibility
	entryRestore
)

type queueEntriesReq struct {
	QueueARN *string `json:"QueueARN"`
	Entries  []struct {
		ReceiptHandle            *string `json:"ReceiptHandle"`
		VisibilityTimeoutSeconds *int64  `json:"VisibilityTimeoutSeconds"`
	} `json:"Entries"`
}

type entryOKOut struct {
	ReceiptHandle string `json:"ReceiptHandle"`
}

type entryFailedOut struct {
	ReceiptHandle string `json:"ReceiptHandle"`
	ErrorCode     string `json:"ErrorCode"`
	ErrorMessage  string `json:"ErrorMessage"`
}

// queueEntries serves the batch operations on receipt handles: acknowledge, change
// visibility and restore, on the queue's records (dead false) or its dead-letter
// records. Each entry succeeds or fails on its own.
func (s *Service) queueEntries(c *call, kind int, dead bool) (any, error) {
	var req queueEntriesReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if e := checkQueueARN(req.QueueARN); e != nil {
		return nil, e
	}
	if req.Entries == nil {
		return nil, errMissing("entries")
	}
	if n := len(req.Entries); n < 1 || n > maxQueueEntries {
		return nil, errLenRange("list", n, "entries", 1, maxQueueEntries)
	}
	for i, en := range req.Entries {
		member := "entries." + strconv.Itoa(i+1) + ".member."
		if en.ReceiptHandle == nil {
			return nil, errMissing(member + "receiptHandle")
		}
		if n := len(*en.ReceiptHandle); n < 1 || n > maxReceiptLen {
			return nil, errLenRange(quoteValue(*en.ReceiptHandle), n, member+"receiptHandle", 1, maxReceiptLen)
		}
		if kind == entryVisibility {
			if en.VisibilityTimeoutSeconds == nil {
				return nil, errMissing(member + "visibilityTimeoutSeconds")
			}
			if e := checkIntRange(en.VisibilityTimeoutSeconds, member+"visibilityTimeoutSeconds", 0, maxQueueVisibility); e != nil {
				return nil, e
			}
		}
	}
	q, e := s.findQueue(req.QueueARN, c.now)
	if e != nil {
		return nil, e
	}
	out := struct {
		Successful []entryOKOut     `json:"Successful"`
		Failed     []entryFailedOut `json:"Failed"`
	}{Successful: []entryOKOut{}, Failed: []entryFailedOut{}}
	q.mu.Lock()
	defer q.mu.Unlock()
	if status := q.statusAt(c.now); status == statusCreating || status == statusDeleting {
		return nil, errInUse("Queue %s is not ACTIVE, instead in state %s.", q.arn, status)
	}
	q.expireLocked(c.now)
	for _, en := range req.Entries {
		h := *en.ReceiptHandle
		code, msg := q.applyEntry(h, kind, dead, en.VisibilityTimeoutSeconds, c.now)
		if code == "" {
			out.Successful = append(out.Successful, entryOKOut{h})
		} else {
			out.Failed = append(out.Failed, entryFailedOut{h, code, msg})
		}
	}
	return out, nil
}

// applyEntry applies one receipt handle; it returns an error code and message, or ""
// on success. The caller holds q.mu.
func (q *queue) applyEntry(h string, kind int, dead bool, vis *int64, now time.Time) (string, string) {
	qid, seq, delivery, ok := parseReceipt(h)
	if !ok || qid != q.id {
		return "InvalidArgumentException", "The receipt handle is not valid for queue " + q.arn + "."
	}
	e := q.entries[seq]
	if e == nil || e.delivery != delivery {
		return "ResourceNotFoundException", "The receipt handle is no longer valid: the record was acknowledged, received again or left the stream."
	}
	if e.dead() != dead {
		if dead {
			return "InvalidArgumentException", "The record is not a dead-letter record; use the queue's record operations."
		}
		return "ResourceNotFoundException", "The record became a dead-letter record after " + strconv.Itoa(int(e.receives)) + " receives; use the dead-letter operations."
	}
	switch kind {
	case entryAck:
		q.forget(e)
	case entryRestore:
		q.detach(e)
		e.receives = 0
		e.state = entryReady
		q.ready.push(e)
		q.wakeLocked()
	case entryVisibility:
		if e.state != entryInFlight && e.state != entryDeadInFlight {
			return "InvalidArgumentException", fmt.Sprintf("The record is not in flight: its visibility timeout ended %s ago.", now.Sub(e.deadline).Round(time.Millisecond))
		}
		q.setVisibility(e, time.Duration(*vis)*time.Second, now)
	}
	return "", ""
}
