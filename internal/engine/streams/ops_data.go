package streams

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/freshet/freshet/internal/hashkey"
	"github.com/freshet/freshet/internal/kinesiswire"
)

const (
	maxPutRecordsEntries = 500
	// maxPutRecordsBytes is the service's limit on a PutRecords call's partition keys
	// plus data: 10 MiB since large-record support (it was 5 MiB), for every stream
	// whatever its maximum record size.
	maxPutRecordsBytes = 10 << 20
	// maxDataBytes is the model's bound on one record's data blob; a stream's own
	// maximum record size (1 MiB by default) is checked after it.
	maxDataBytes         = 10 << 20
	maxGetRecords        = 10000
	maxGetRecordsBytes   = 10 << 20
	maxPartitionKeyRunes = 256
)

// putEntry is one record of a put request. Its slices alias the request body or the
// request's decode arena.
type putEntry struct {
	data    []byte
	pk      []byte
	ehk     []byte
	hasData bool
	hasPK   bool
	hasEHK  bool
	key     hashkey.Key
}

// putRequest is a decoded PutRecord or PutRecords call.
type putRequest struct {
	ref     streamRef
	dryRun  bool
	entries []putEntry
	arena   []byte
	results []putResult
	refs    []recRef
}

type putResult struct {
	shard *shard
	seq   uint64
	code  uint8
}

const (
	resultOK uint8 = iota
	resultThrottled
	resultInternal
)

var putPool = sync.Pool{New: func() any { return &putRequest{} }}

func getPutRequest(bodyLen int) *putRequest {
	p := putPool.Get().(*putRequest)
	p.ref = streamRef{}
	p.dryRun = false
	p.entries = p.entries[:0]
	p.results = p.results[:0]
	p.refs = p.refs[:0]
	if cap(p.arena) < bodyLen {
		p.arena = make([]byte, 0, bodyLen)
	}
	p.arena = p.arena[:0]
	return p
}

func releasePutRequest(p *putRequest) {
	if cap(p.arena) > 16<<20 {
		return
	}
	for i := range p.entries {
		p.entries[i] = putEntry{}
	}
	for i := range p.results {
		p.results[i] = putResult{}
	}
	for i := range p.refs {
		p.refs[i] = recRef{}
	}
	putPool.Put(p)
}

// keep copies b into the arena, which was sized so that it never grows.
func (p *putRequest) keep(b []byte) []byte {
	start := len(p.arena)
	p.arena = append(p.arena, b...)
	return p.arena[start:len(p.arena):len(p.arena)]
}

// decodeData base64-decodes a JSON string value into the arena.
func (p *putRequest) decodeData(raw []byte) ([]byte, bool) {
	start := len(p.arena)
	n := base64.StdEncoding.DecodedLen(len(raw))
	if cap(p.arena)-start < n {
		return nil, false
	}
	buf := p.arena[start : start+n]
	m, err := base64.StdEncoding.Decode(buf, raw)
	if err != nil {
		return nil, false
	}
	p.arena = p.arena[:start+m]
	return p.arena[start : start+m : start+m], true
}

func refString(b []byte, ok bool) *string {
	if !ok {
		return nil
	}
	s := string(b)
	return &s
}

// parseEntryMember reads one member of a record object.
func (p *putRequest) parseEntryMember(l *lexer, key []byte, e *putEntry) bool {
	switch string(key) {
	case "Data":
		raw, ok := l.strOrNull()
		if ok && l.err == nil {
			d, ok := p.decodeData(raw)
			if !ok {
				return false
			}
			e.data, e.hasData = d, true
		}
	case "PartitionKey":
		raw, ok := l.strOrNull()
		if ok {
			e.pk, e.hasPK = p.keep(raw), true
		}
	case "ExplicitHashKey":
		raw, ok := l.strOrNull()
		if ok {
			e.ehk, e.hasEHK = p.keep(raw), true
		}
	default:
		return false
	}
	return true
}

func (p *putRequest) parseRefMember(l *lexer, key []byte) bool {
	switch string(key) {
	case "StreamName":
		p.ref.StreamName = refString(l.strOrNull())
	case "StreamARN":
		p.ref.StreamARN = refString(l.strOrNull())
	case "StreamId":
		p.ref.StreamID = refString(l.strOrNull())
	case "DryRun":
		p.dryRun = l.boolean()
	default:
		return false
	}
	return true
}

var errBadData = errSerialization("Data must be a base64-encoded string.")

// parsePutRecordsJSON decodes a PutRecords body.
func (p *putRequest) parsePutRecordsJSON(body []byte) *APIError {
	l := lexer{b: body}
	var bad *APIError
	l.object(func(key []byte) {
		if p.parseRefMember(&l, key) {
			return
		}
		if string(key) != "Records" {
			l.skip()
			return
		}
		l.array(func() {
			p.entries = append(p.entries, putEntry{})
			e := &p.entries[len(p.entries)-1]
			l.object(func(key []byte) {
				if string(key) == "Data" || string(key) == "PartitionKey" || string(key) == "ExplicitHashKey" {
					if !p.parseEntryMember(&l, key, e) && bad == nil {
						bad = errBadData
						l.fail()
					}
					return
				}
				l.skip()
			})
		})
	})
	l.end()
	if bad != nil {
		return bad
	}
	if l.err != nil {
		return errSerialization("Malformed request body: could not parse JSON near byte %d.", l.i)
	}
	return nil
}

// parsePutRecordJSON decodes a PutRecord body.
func (p *putRequest) parsePutRecordJSON(body []byte) *APIError {
	l := lexer{b: body}
	p.entries = append(p.entries, putEntry{})
	e := &p.entries[0]
	var bad *APIError
	l.object(func(key []byte) {
		if p.parseRefMember(&l, key) {
			return
		}
		switch string(key) {
		case "Data", "PartitionKey", "ExplicitHashKey":
			if !p.parseEntryMember(&l, key, e) && bad == nil {
				bad = errBadData
				l.fail()
			}
		case "SequenceNumberForOrdering":
			if s, ok := l.strOrNull(); ok && !validSeqSyntax(string(s)) && bad == nil {
				bad = errValidation(quoteValue(string(s)), "sequenceNumberForOrdering", "must satisfy regular expression pattern: "+patternSequence)
			}
		default:
			l.skip()
		}
	})
	l.end()
	if bad != nil {
		return bad
	}
	if l.err != nil {
		return errSerialization("Malformed request body: could not parse JSON near byte %d.", l.i)
	}
	return nil
}

type cborEntry struct {
	Data            []byte  `json:"Data"`
	PartitionKey    *string `json:"PartitionKey"`
	ExplicitHashKey *string `json:"ExplicitHashKey"`
}

type cborPutRecords struct {
	streamRef
	Records []cborEntry `json:"Records"`
	cborEntry
	SequenceNumberForOrdering *string `json:"SequenceNumberForOrdering"`
	DryRun                    *bool   `json:"DryRun"`
}

func (p *putRequest) fromCBOR(body []byte, multi bool) *APIError {
	var req cborPutRecords
	if err := cbor.Unmarshal(body, &req); err != nil {
		return errSerialization("Malformed request body: %s", err)
	}
	p.ref = req.streamRef
	p.dryRun = req.DryRun != nil && *req.DryRun
	add := func(e cborEntry) {
		pe := putEntry{data: e.Data, hasData: e.Data != nil}
		if e.PartitionKey != nil {
			pe.pk, pe.hasPK = []byte(*e.PartitionKey), true
		}
		if e.ExplicitHashKey != nil {
			pe.ehk, pe.hasEHK = []byte(*e.ExplicitHashKey), true
		}
		p.entries = append(p.entries, pe)
	}
	if multi {
		for _, e := range req.Records {
			add(e)
		}
	} else {
		add(req.cborEntry)
	}
	return nil
}

// validateModel checks the entries against the service's model constraints (the
// checks that answer ValidationException): records present and at most 500, data and
// partition key present, partition key length, data length and explicit hash key
// pattern. The stream need not exist for these.
func validateModel(p *putRequest, multi bool) *APIError {
	if multi {
		if len(p.entries) < 1 {
			return errValidation("'[]'", "records", "must have length greater than or equal to 1")
		}
		if len(p.entries) > maxPutRecordsEntries {
			return errValidation("list", "records", "must have length less than or equal to 500")
		}
	}
	for i := range p.entries {
		e := &p.entries[i]
		member := func(f string) string {
			if multi {
				return "records." + strconv.Itoa(i+1) + ".member." + f
			}
			return f
		}
		if !e.hasData {
			return errMissing(member("data"))
		}
		if e.hasPK && len(e.pk) == 0 {
			return errValidation("''", member("partitionKey"), "must have length greater than or equal to 1")
		}
		if len(e.pk) > maxPartitionKeyRunes && utf8.RuneCount(e.pk) > maxPartitionKeyRunes {
			return errValidation(quoteValue(string(e.pk)), member("partitionKey"), "must have length less than or equal to 256")
		}
		if len(e.data) > maxDataBytes {
			return errValidation(heapBuffer(len(e.data)), member("data"), "must have length less than or equal to "+strconv.Itoa(maxDataBytes))
		}
		if e.hasEHK && !validDecimal(e.ehk, 39) {
			return errValidation(quoteValue(string(e.ehk)), member("explicitHashKey"), "must satisfy regular expression pattern: "+patternHashKey)
		}
	}
	return nil
}

// heapBuffer is how the service shows a blob in a validation message.
func heapBuffer(n int) string {
	l := strconv.Itoa(n)
	return "'java.nio.HeapByteBuffer[pos=0 lim=" + l + " cap=" + l + "]'"
}

// validateEntries checks the constraints that depend on the stream and on values
// (InvalidArgumentException): each record within the stream's maximum record size,
// explicit hash keys below 2^128, a partition key unless the stream is AUTO, and the
// call's total size. It computes hash keys (none on AUTO streams, which ignore them).
// validateModel has passed.
func (s *Service) validateEntries(st *stream, p *putRequest, multi bool, maxRecord int, auto bool) *APIError {
	total := 0
	for i := range p.entries {
		e := &p.entries[i]
		if !e.hasPK && !auto {
			return errInvalid("Record %d has no PartitionKey: stream %s under account %s places records by partition key; only AUTO streams accept records without one.",
				i+1, st.name, s.cfg.AccountID)
		}
		size := len(e.data) + len(e.pk)
		if size > maxRecord {
			return errInvalid("The size of record %d (%d bytes including its partition key) exceeds the maximum record size of %d KiB of stream %s under account %s.",
				i+1, size, maxRecord/1024, st.name, s.cfg.AccountID)
		}
		total += size
		if auto {
			continue
		}
		if e.hasEHK {
			k, err := hashkey.Parse(string(e.ehk))
			if err != nil {
				return errInvalid("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", string(e.ehk))
			}
			e.key = k
		} else {
			e.key = hashkey.FromPartitionKey(string(e.pk))
		}
	}
	if multi && total > maxPutRecordsBytes {
		return errInvalid("Records size exceeds 10 MB limit")
	}
	return nil
}

// writableStream finds the stream of a put and checks its status.
func (s *Service) writableStream(ref streamRef, now time.Time) (*stream, *APIError) {
	st, e := s.lookupRef(ref, now)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	e = s.readableLocked(st, now)
	st.mu.RUnlock()
	return st, e
}

// reserveStored counts the call's record bytes as stored before they are, and refuses
// the call when that passes Config.MaxStoredBytes. The caller settles with the bytes
// actually stored: s.storedBytes.Add(stored - reserved).
func (s *Service) reserveStored(p *putRequest) (int64, *APIError) {
	var n int64
	for i := range p.entries {
		n += int64(len(p.entries[i].pk) + len(p.entries[i].data))
	}
	total := s.storedBytes.Add(n)
	if max := s.cfg.MaxStoredBytes; max > 0 && total > max {
		s.storedBytes.Add(-n)
		return 0, errLimit("The engine holds %d bytes of records and this call adds %d: that passes its MaxStoredBytes of %d. Space is freed as records pass their stream's retention period or streams are deleted.",
			total-n, n, max)
	}
	return n, nil
}

// put appends the entries to their shards (by hash key, or in turn over the open shards
// on an AUTO stream), applying limits and entry faults, and fills p.results. It holds the stream lock shared and each shard's lock once per run of
// entries routed to it. It returns the record bytes stored.
func (s *Service) put(st *stream, p *putRequest, now time.Time, entryFaults bool) int64 {
	ts := now.UnixNano()
	limits := s.cfg.Limits
	var ef *EntryFaults
	if entryFaults {
		ef = s.entryFaults.Load()
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	streamThrottled := st.forceThrottle.Load()
	auto := st.distribution == distributionAuto
	var cur *shard
	var stored, storedBytes, throttled, faulted, ghosts int64
	for i := range p.entries {
		e := &p.entries[i]
		var sh *shard
		if auto {
			sh = st.placeAuto()
		} else {
			sh = st.route(e.key)
		}
		if sh != cur {
			if cur != nil {
				cur.wakeLocked()
				cur.mu.Unlock()
			}
			sh.mu.Lock()
			cur = sh
		}
		res := putResult{shard: sh}
		size := len(e.data) + len(e.pk)
		if ef != nil {
			if code, ghost := ef.draw(s.faults.Float64); code != resultOK {
				res.code = code
				faulted++
				if ghost {
					sh.appendLocked(st, ts, e.pk, e.data)
					ghosts++
					stored++
					storedBytes += int64(size)
				}
				p.results = append(p.results, res)
				continue
			}
		}
		if streamThrottled || sh.forceThrottle.Load() ||
			(limits && !(sh.writeRecords.has(ts, 1) && sh.writeBytes.has(ts, float64(size)))) {
			res.code = resultThrottled
			sh.winThrottled++
			throttled++
			p.results = append(p.results, res)
			continue
		}
		if limits {
			sh.writeRecords.take(1)
			sh.writeBytes.take(float64(size))
		}
		res.seq = sh.appendLocked(st, ts, e.pk, e.data)
		stored++
		storedBytes += int64(size)
		p.results = append(p.results, res)
	}
	if cur != nil {
		cur.wakeLocked()
		cur.mu.Unlock()
	}
	s.counters.recordsIn.Add(stored)
	s.counters.bytesIn.Add(storedBytes)
	s.counters.ghostRecords.Add(ghosts)
	s.counters.faultedEntries.Add(faulted)
	if throttled > 0 {
		s.counters.throttledRecords.Add(throttled)
		s.counters.throttledRequests.Add(1)
	}
	return storedBytes
}

func (s *Service) throttleMessage(st *stream, sh *shard) string {
	return "Rate exceeded for shard " + sh.id + " in stream " + st.name + " under account " + s.cfg.AccountID + "."
}

const internalFailureMessage = "Internal service failure."

// applyPut decodes, validates and stores the records of a PutRecords (multi) or
// PutRecord call, returning the stream and its encryption type. Entry results are left in
// p.results; with multi, injected per-entry faults apply.
func (s *Service) applyPut(c *call, p *putRequest, multi bool) (*stream, string, *APIError) {
	var e *APIError
	switch {
	case c.cbor:
		e = p.fromCBOR(c.body, multi)
	case multi:
		e = p.parsePutRecordsJSON(c.body)
	default:
		e = p.parsePutRecordJSON(c.body)
	}
	if e != nil {
		return nil, "", e
	}
	if _, e := s.resolveName(p.ref, false); e != nil {
		return nil, "", e
	}
	if e := validateModel(p, multi); e != nil {
		return nil, "", e
	}
	st, e := s.writableStream(p.ref, c.now)
	if e != nil {
		return nil, "", e
	}
	st.mu.RLock()
	maxRecord := int(st.maxRecordKiB) * 1024
	encryption := st.encryption
	auto := st.distribution == distributionAuto
	st.mu.RUnlock()
	if e := s.validateEntries(st, p, multi, maxRecord, auto); e != nil {
		return nil, "", e
	}
	if p.dryRun {
		return nil, "", errDryRun()
	}
	reserved, e := s.reserveStored(p)
	if e != nil {
		return nil, "", e
	}
	s.storedBytes.Add(s.put(st, p, c.now, multi) - reserved)
	return st, encryption, nil
}

func (s *Service) opPutRecords(c *call) (any, error) {
	p := getPutRequest(len(c.body))
	defer releasePutRequest(p)
	st, encryption, e := s.applyPut(c, p, true)
	if e != nil {
		return nil, e
	}
	failed := 0
	for _, r := range p.results {
		if r.code != resultOK {
			failed++
		}
	}
	if c.cbor {
		type entryOut struct {
			SequenceNumber *string `json:"SequenceNumber,omitempty"`
			ShardID        *string `json:"ShardId,omitempty"`
			ErrorCode      *string `json:"ErrorCode,omitempty"`
			ErrorMessage   *string `json:"ErrorMessage,omitempty"`
		}
		out := struct {
			FailedRecordCount int        `json:"FailedRecordCount"`
			Records           []entryOut `json:"Records"`
			EncryptionType    string     `json:"EncryptionType"`
		}{FailedRecordCount: failed, EncryptionType: encryption}
		for _, r := range p.results {
			switch r.code {
			case resultOK:
				out.Records = append(out.Records, entryOut{SequenceNumber: strPtr(formatSeq(r.seq, r.shard.num)), ShardID: strPtr(r.shard.id)})
			case resultThrottled:
				out.Records = append(out.Records, entryOut{ErrorCode: strPtr("ProvisionedThroughputExceededException"), ErrorMessage: strPtr(s.throttleMessage(st, r.shard))})
			default:
				out.Records = append(out.Records, entryOut{ErrorCode: strPtr("InternalFailure"), ErrorMessage: strPtr(internalFailureMessage)})
			}
		}
		b, err := cbor.Marshal(out)
		if err != nil {
			return nil, err
		}
		return rawBody(b), nil
	}
	buf := getBuf()
	b := (*buf)[:0]
	if need := len(p.results) * 120; cap(b) < need {
		b = make([]byte, 0, need)
	}
	b = append(b, `{"EncryptionType":"`...)
	b = append(b, encryption...)
	b = append(b, `","FailedRecordCount":`...)
	b = strconv.AppendInt(b, int64(failed), 10)
	b = append(b, `,"Records":[`...)
	for i, r := range p.results {
		if i > 0 {
			b = append(b, ',')
		}
		switch r.code {
		case resultOK:
			b = append(b, `{"SequenceNumber":"`...)
			b = appendSeq(b, r.seq, r.shard.suffix)
			b = append(b, `","ShardId":"`...)
			b = append(b, r.shard.id...)
			b = append(b, `"}`...)
		case resultThrottled:
			b = append(b, `{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":`...)
			b = kinesiswire.AppendString(b, s.throttleMessage(st, r.shard))
			b = append(b, '}')
		default:
			b = append(b, `{"ErrorCode":"InternalFailure","ErrorMessage":"`+internalFailureMessage+`"}`...)
		}
	}
	b = append(b, "]}"...)
	*buf = b
	return pooledBody{buf}, nil
}

func (s *Service) opPutRecord(c *call) (any, error) {
	p := getPutRequest(len(c.body))
	defer releasePutRequest(p)
	st, encryption, e := s.applyPut(c, p, false)
	if e != nil {
		return nil, e
	}
	r := p.results[0]
	if r.code == resultThrottled {
		return nil, apiErr("ProvisionedThroughputExceededException", http.StatusBadRequest, "%s", s.throttleMessage(st, r.shard))
	}
	return struct {
		SequenceNumber string `json:"SequenceNumber"`
		ShardID        string `json:"ShardId"`
		EncryptionType string `json:"EncryptionType"`
	}{formatSeq(r.seq, r.shard.num), r.shard.id, encryption}, nil
}

type getIteratorReq struct {
	streamRef
	ShardID                *string    `json:"ShardId"`
	ShardIteratorType      *string    `json:"ShardIteratorType"`
	StartingSequenceNumber *string    `json:"StartingSequenceNumber"`
	Timestamp              *epochTime `json:"Timestamp"`
	DryRun                 *bool      `json:"DryRun"`
}

// startPosition is a parsed starting position of an iterator or subscription.
type startPosition struct {
	typ string
	seq *string
	ts  *epochTime
}

func (s *Service) checkStart(p startPosition, member, seqMember string) *APIError {
	switch p.typ {
	case "TRIM_HORIZON", "LATEST":
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		if p.seq == nil {
			return errInvalid("StartingSequenceNumber must be provided for iterator type %s.", p.typ)
		}
		if !validSeqSyntax(*p.seq) {
			return errValidation(quoteValue(*p.seq), seqMember, "must satisfy regular expression pattern: "+patternSequence)
		}
	case "AT_TIMESTAMP":
		if p.ts == nil {
			return errInvalid("Timestamp must be provided for iterator type AT_TIMESTAMP.")
		}
	default:
		return errValidation(quoteValue(p.typ), member, "must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]")
	}
	return nil
}

// positionOf resolves a starting position in a shard. The caller holds sh.mu.
func (s *Service) positionOf(st *stream, sh *shard, p startPosition, now time.Time, retention time.Duration) (uint64, *APIError) {
	horizon := sh.horizon(now.Add(-retention).UnixNano())
	switch p.typ {
	case "TRIM_HORIZON":
		return horizon, nil
	case "LATEST":
		return sh.total, nil
	case "AT_TIMESTAMP":
		t := p.ts.UnixNano()
		return sh.firstPos(horizon, func(m *recMeta) bool { return m.ts >= t }), nil
	}
	counter, num, ok := parseSeq(*p.seq)
	if !ok || num != sh.num {
		return 0, errInvalid("Invalid StartingSequenceNumber. It encodes a different shard than %s in stream %s under account %s.", sh.id, st.name, s.cfg.AccountID)
	}
	if p.typ == "AT_SEQUENCE_NUMBER" {
		return sh.firstPos(horizon, func(m *recMeta) bool { return m.seq >= counter }), nil
	}
	return sh.firstPos(horizon, func(m *recMeta) bool { return m.seq > counter }), nil
}

func (s *Service) shardNotFound(st *stream, id string) *APIError {
	return errNotFound("Shard %s in stream %s under account %s does not exist", id, st.name, s.cfg.AccountID)
}

func (s *Service) opGetShardIterator(c *call) (any, error) {
	var req getIteratorReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.ShardID == nil {
		return nil, errMissing("shardId")
	}
	if req.ShardIteratorType == nil {
		return nil, errMissing("shardIteratorType")
	}
	if e := checkName(*req.ShardID, "shardId"); e != nil {
		return nil, e
	}
	sp := startPosition{typ: *req.ShardIteratorType, seq: req.StartingSequenceNumber, ts: req.Timestamp}
	if e := s.checkStart(sp, "shardIteratorType", "startingSequenceNumber"); e != nil {
		return nil, e
	}
	if sp.typ == "AT_TIMESTAMP" && sp.ts.UnixMilli() > c.now.UnixMilli() {
		// The service refuses a timestamp after its own clock (SubscribeToShard does not:
		// there a future timestamp starts at the tip, like LATEST).
		return nil, errInvalid("The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: %d, currentTimestampInMillis: %d",
			sp.ts.UnixMilli(), c.now.UnixMilli())
	}
	st, e := s.lookupRef(req.streamRef, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	if e := s.readableLocked(st, c.now); e != nil {
		st.mu.RUnlock()
		return nil, e
	}
	sh := st.shardByID(*req.ShardID)
	if sh != nil && !st.visibleShard(sh, c.now) {
		sh = nil
	}
	retention := st.retention
	st.mu.RUnlock()
	if sh == nil {
		return nil, s.shardNotFound(st, *req.ShardID)
	}
	sh.mu.RLock()
	pos, e := s.positionOf(st, sh, sp, c.now, retention)
	sh.mu.RUnlock()
	if e != nil {
		return nil, e
	}
	if req.DryRun != nil && *req.DryRun {
		return nil, errDryRun()
	}
	it := appendIterator(nil, iterator{issuedMs: c.now.UnixMilli(), epoch: st.epoch, pos: pos, shardNum: sh.num, stream: st.name})
	return struct {
		ShardIterator string `json:"ShardIterator"`
	}{string(it)}, nil
}

// getRecordsReq is a decoded GetRecords call.
type getRecordsReq struct {
	iterator []byte
	hasIter  bool
	limit    int64
	hasLimit bool
	arn      *string
	dryRun   bool
}

func parseGetRecordsJSON(body []byte) (getRecordsReq, *APIError) {
	var req getRecordsReq
	l := lexer{b: body}
	l.object(func(key []byte) {
		switch string(key) {
		case "ShardIterator":
			req.iterator, req.hasIter = l.strOrNull()
			req.iterator = append([]byte(nil), req.iterator...)
		case "Limit":
			req.limit, req.hasLimit = l.int()
		case "StreamARN":
			req.arn = refString(l.strOrNull())
		case "DryRun":
			req.dryRun = l.boolean()
		default:
			l.skip()
		}
	})
	l.end()
	if l.err != nil {
		return req, errSerialization("Malformed request body: could not parse JSON near byte %d.", l.i)
	}
	return req, nil
}

func parseGetRecordsCBOR(body []byte) (getRecordsReq, *APIError) {
	var in struct {
		ShardIterator *string `json:"ShardIterator"`
		Limit         *int64  `json:"Limit"`
		StreamARN     *string `json:"StreamARN"`
		DryRun        *bool   `json:"DryRun"`
	}
	if err := cbor.Unmarshal(body, &in); err != nil {
		return getRecordsReq{}, errSerialization("Malformed request body: %s", err)
	}
	req := getRecordsReq{arn: in.StreamARN, dryRun: in.DryRun != nil && *in.DryRun}
	if in.ShardIterator != nil {
		req.iterator, req.hasIter = []byte(*in.ShardIterator), true
	}
	if in.Limit != nil {
		req.limit, req.hasLimit = *in.Limit, true
	}
	return req, nil
}

// readResult is what one GetRecords or subscription read produced.
type readResult struct {
	refs     []recRef
	next     uint64
	behindMs int64
	ended    bool
	children []childOut
	contSeq  uint64
}

type childOut struct {
	ShardID      string       `json:"ShardId"`
	ParentShards []string     `json:"ParentShards"`
	HashKeyRange hashRangeOut `json:"HashKeyRange"`
}

func childShards(sh *shard) []childOut {
	out := make([]childOut, 0, len(sh.children))
	for _, c := range sh.children {
		parents := []string{c.parent}
		if c.adjacent != "" {
			parents = append(parents, c.adjacent)
		}
		out = append(out, childOut{ShardID: c.id, ParentShards: parents,
			HashKeyRange: hashRangeOut{StartingHashKey: c.rng.Start.String(), EndingHashKey: c.rng.End.String()}})
	}
	return out
}

// read reads from pos under the shard lock. The caller holds sh.mu (exclusively when
// limits are on, since buckets change).
func (s *Service) readLocked(sh *shard, dst []recRef, pos uint64, limit, maxBytes int, now time.Time, retention time.Duration) readResult {
	cutoff := now.Add(-retention).UnixNano()
	if pos < sh.trimmed {
		pos = sh.trimmed
	}
	if pos < sh.total && sh.tsAt(pos) < cutoff {
		pos = sh.horizon(cutoff)
	}
	refs, next := sh.readLocked(dst, pos, limit, maxBytes)
	r := readResult{refs: refs, next: next}
	if next < sh.total {
		r.behindMs = (now.UnixNano() - sh.tsAt(next)) / 1e6
		if r.behindMs < 0 {
			r.behindMs = 0
		}
	}
	if sh.closed() && next >= sh.total {
		r.ended = true
		r.children = childShards(sh)
	}
	r.contSeq = sh.seqBefore(next)
	return r
}

var refsPool = sync.Pool{New: func() any { b := make([]recRef, 0, 1024); return &b }}

func (s *Service) opGetRecords(c *call) (any, error) {
	var req getRecordsReq
	var e *APIError
	if c.cbor {
		req, e = parseGetRecordsCBOR(c.body)
	} else {
		req, e = parseGetRecordsJSON(c.body)
	}
	if e != nil {
		return nil, e
	}
	if !req.hasIter {
		return nil, errMissing("shardIterator")
	}
	limit := maxGetRecords
	if req.hasLimit {
		if req.limit < 1 || req.limit > maxGetRecords {
			return nil, errIntRange(req.limit, "limit", 1, maxGetRecords)
		}
		limit = int(req.limit)
	}
	if len(req.iterator) < 1 || len(req.iterator) > 512 {
		return nil, errLenRange(quoteValue(string(req.iterator)), len(req.iterator), "shardIterator", 1, 512)
	}
	it, ok := parseIterator(req.iterator)
	if !ok {
		return nil, errInvalid("Invalid ShardIterator.")
	}
	if ttl := s.cfg.IteratorTTL; c.now.Sub(time.UnixMilli(it.issuedMs)) > ttl {
		return nil, apiErr("ExpiredIteratorException", http.StatusBadRequest,
			"Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			time.UnixMilli(it.issuedMs).UTC().Format(time.UnixDate), c.now.UTC().Format(time.UnixDate), ttl.Milliseconds())
	}
	st, e := s.lookup(it.stream, c.now)
	if e != nil {
		return nil, e
	}
	if st.epoch != it.epoch {
		return nil, s.notFound(it.stream)
	}
	if req.arn != nil && *req.arn != st.arn {
		return nil, errInvalid("StreamARN %s does not match the shard iterator's stream.", *req.arn)
	}
	st.mu.RLock()
	if e := s.readableLocked(st, c.now); e != nil {
		st.mu.RUnlock()
		return nil, e
	}
	var sh *shard
	if it.shardNum < len(st.shards) {
		sh = st.shards[it.shardNum]
	}
	if sh != nil && !st.visibleShard(sh, c.now) {
		sh = nil
	}
	retention := st.retention
	encryption := st.encryption
	throttledStream := st.forceThrottle.Load()
	st.mu.RUnlock()
	if sh == nil {
		return nil, s.shardNotFound(st, shardID(it.shardNum))
	}
	if req.dryRun {
		return nil, errDryRun()
	}
	refsBuf := refsPool.Get().(*[]recRef)
	defer func() {
		clear(*refsBuf)
		*refsBuf = (*refsBuf)[:0]
		refsPool.Put(refsBuf)
	}()
	ts := c.now.UnixNano()
	var r readResult
	if s.cfg.Limits || throttledStream || sh.forceThrottle.Load() {
		sh.mu.Lock()
		if throttledStream || sh.forceThrottle.Load() ||
			(s.cfg.Limits && !(sh.readCalls.has(ts, 1) && sh.readBytes.positive(ts))) {
			sh.mu.Unlock()
			s.counters.throttledRequests.Add(1)
			return nil, apiErr("ProvisionedThroughputExceededException", http.StatusBadRequest, "%s", s.throttleMessage(st, sh))
		}
		r = s.readLocked(sh, (*refsBuf)[:0], it.pos, limit, maxGetRecordsBytes, c.now, retention)
		if s.cfg.Limits {
			sh.readCalls.take(1)
			n := 0
			for _, ref := range r.refs {
				n += len(ref.data)
			}
			sh.readBytes.take(float64(n))
		}
		sh.mu.Unlock()
	} else {
		sh.mu.RLock()
		r = s.readLocked(sh, (*refsBuf)[:0], it.pos, limit, maxGetRecordsBytes, c.now, retention)
		sh.mu.RUnlock()
	}
	*refsBuf = r.refs
	var bytesOut int64
	for _, ref := range r.refs {
		bytesOut += int64(len(ref.data))
	}
	s.counters.recordsOut.Add(int64(len(r.refs)))
	s.counters.bytesOut.Add(bytesOut)
	var next []byte
	if !r.ended {
		next = appendIterator(nil, iterator{issuedMs: c.now.UnixMilli(), epoch: st.epoch, pos: r.next, shardNum: sh.num, stream: st.name})
	}
	if c.cbor {
		return encodeRecordsCBOR(r, next, encryption, sh.num, false)
	}
	buf := getBuf()
	out := (*buf)[:0]
	if need := recordsJSONSize(r.refs, encryption) + len(next) + 512; cap(out) < need {
		out = make([]byte, 0, need)
	}
	out = append(out, '{')
	out = appendRecordsJSON(out, r.refs, sh.suffix, encryption)
	if next != nil {
		out = append(out, `,"NextShardIterator":"`...)
		out = append(out, next...)
		out = append(out, '"')
	}
	out = append(out, `,"MillisBehindLatest":`...)
	out = strconv.AppendInt(out, r.behindMs, 10)
	if r.ended {
		out = appendChildrenJSON(out, r.children)
	}
	out = append(out, '}')
	*buf = out
	return pooledBody{buf}, nil
}

// recordJSONOverhead is the size of one record's JSON in appendRecordsJSON besides its
// base64 data, partition key and timestamp: member names, quotes, braces, the comma and
// the sequence number.
const recordJSONOverhead = len(`{"SequenceNumber":"","ApproximateArrivalTimestamp":,"Data":"","PartitionKey":""},`) + seqLen

// recordsJSONSize returns the size appendRecordsJSON needs for refs when no partition
// key needs escaping (more is appended if one does), so the response buffer is sized
// once.
func recordsJSONSize(refs []recRef, encryption string) int {
	n := len(`"Records":[]`)
	per := recordJSONOverhead + 24 // epoch seconds with milliseconds
	if encryption != "NONE" {
		per += len(`,"EncryptionType":""`) + len(encryption)
	}
	for i := range refs {
		n += per + base64.StdEncoding.EncodedLen(len(refs[i].data)) + len(refs[i].pk)
	}
	return n
}

// appendRecordsJSON appends `"Records":[...]`.
func appendRecordsJSON(out []byte, refs []recRef, suffix string, encryption string) []byte {
	out = append(out, `"Records":[`...)
	for i := range refs {
		ref := &refs[i]
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"SequenceNumber":"`...)
		out = appendSeq(out, ref.seq, suffix)
		out = append(out, `","ApproximateArrivalTimestamp":`...)
		out = appendEpoch(out, ref.ts)
		out = append(out, `,"Data":"`...)
		out = base64.StdEncoding.AppendEncode(out, ref.data)
		out = append(out, '"')
		if len(ref.pk) > 0 {
			out = append(out, `,"PartitionKey":`...)
			out = kinesiswire.AppendString(out, ref.pk)
		}
		if encryption != "NONE" {
			out = append(out, `,"EncryptionType":"`...)
			out = append(out, encryption...)
			out = append(out, '"')
		}
		out = append(out, '}')
	}
	return append(out, ']')
}

func appendChildrenJSON(out []byte, children []childOut) []byte {
	out = append(out, `,"ChildShards":[`...)
	for i, c := range children {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"ShardId":"`...)
		out = append(out, c.ShardID...)
		out = append(out, `","ParentShards":[`...)
		for j, p := range c.ParentShards {
			if j > 0 {
				out = append(out, ',')
			}
			out = kinesiswire.AppendString(out, p)
		}
		out = append(out, `],"HashKeyRange":{"StartingHashKey":"`...)
		out = append(out, c.HashKeyRange.StartingHashKey...)
		out = append(out, `","EndingHashKey":"`...)
		out = append(out, c.HashKeyRange.EndingHashKey...)
		out = append(out, `"}}`...)
	}
	return append(out, ']')
}

type recordOut struct {
	SequenceNumber              string    `json:"SequenceNumber"`
	ApproximateArrivalTimestamp epochTime `json:"ApproximateArrivalTimestamp"`
	Data                        []byte    `json:"Data"`
	PartitionKey                *string   `json:"PartitionKey,omitempty"`
	EncryptionType              string    `json:"EncryptionType,omitempty"`
}

func recordsOut(refs []recRef, shardNum int, encryption string) []recordOut {
	out := make([]recordOut, 0, len(refs))
	for _, r := range refs {
		o := recordOut{SequenceNumber: formatSeq(r.seq, shardNum), ApproximateArrivalTimestamp: epochTime{time.Unix(0, r.ts)},
			Data: r.data}
		if len(r.pk) > 0 {
			o.PartitionKey = strPtr(string(r.pk))
		}
		if encryption != "NONE" {
			o.EncryptionType = encryption
		}
		out = append(out, o)
	}
	return out
}

func encodeRecordsCBOR(r readResult, next []byte, encryption string, shardNum int, _ bool) (any, error) {
	out := struct {
		Records            []recordOut `json:"Records"`
		NextShardIterator  *string     `json:"NextShardIterator,omitempty"`
		MillisBehindLatest int64       `json:"MillisBehindLatest"`
		ChildShards        []childOut  `json:"ChildShards,omitempty"`
	}{Records: recordsOut(r.refs, shardNum, encryption), MillisBehindLatest: r.behindMs, ChildShards: r.children}
	if next != nil {
		out.NextShardIterator = strPtr(string(next))
	}
	b, err := cbor.Marshal(out)
	if err != nil {
		return nil, err
	}
	return rawBody(b), nil
}
