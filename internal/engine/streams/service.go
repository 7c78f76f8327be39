package streams

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/freshet/freshet/internal/clock"
	"github.com/freshet/freshet/internal/engine/fault"
	"github.com/freshet/freshet/internal/kinesiswire"
)

const (
	contentJSON = "application/x-amz-json-1.1"
	contentCBOR = "application/x-amz-cbor-1.1"
)

var (
	headerJSON = []string{contentJSON}
	headerCBOR = []string{contentCBOR}
)

// Service serves the Kinesis operations. It is safe for concurrent use.
type Service struct {
	cfg    Config
	clock  clock.Clock
	faults *fault.Injector

	mu      sync.RWMutex
	streams map[string]*stream
	queues  queueRegistry

	counters    counters
	entryFaults atomic.Pointer[EntryFaults]
	// openShards counts the open shards of all streams not being deleted: creation adds
	// a stream's shards, a split one, a merge takes one away, deletion takes the
	// stream's open shards away.
	openShards atomic.Int64
	// storedBytes counts the partition-key and data bytes of stored records until
	// retention or deletion drops them; a put reserves its bytes first (MaxStoredBytes).
	storedBytes atomic.Int64
	requestID   atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
}

// New returns a Kinesis service driven by clk; faults supplies the random draws for
// per-entry faults. It starts the background maintenance unless
// cfg.MaintenanceInterval is negative.
func New(cfg Config, clk clock.Clock, faults *fault.Injector) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.Real
	}
	if faults == nil {
		faults = fault.New(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, clock: clk, faults: faults, streams: make(map[string]*stream), ctx: ctx, cancel: cancel}
	if cfg.MaintenanceInterval > 0 {
		s.wg.Add(1)
		go s.maintainLoop()
	}
	return s, nil
}

// Close ends open subscriptions and stops the background work. It is idempotent.
func (s *Service) Close() {
	s.closed.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
}

func (s *Service) maintainLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.Maintain()
		}
	}
}

// call is one request being served.
type call struct {
	r    *http.Request
	body []byte
	cbor bool
	now  time.Time
}

// decode reads the request into v (a struct with json tags), from JSON or CBOR.
func (c *call) decode(v any) error {
	body := c.body
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	var err error
	if c.cbor {
		err = cbor.Unmarshal(body, v)
	} else {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			return apiErr
		}
		return errSerialization("%s", describeDecodeError(err))
	}
	return nil
}

func describeDecodeError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "Unexpected value type for field " + te.Field
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return "Malformed request: " + msg
}

// rawBody is a response already encoded in the call's format.
type rawBody []byte

// pooledBody is a response encoded into a pooled buffer, returned to the pool once
// written.
type pooledBody struct{ buf *[]byte }

type opFunc func(s *Service, c *call) (any, error)

var operations map[string]opFunc

func init() {
	operations = map[string]opFunc{
		"CreateStream":                  (*Service).opCreateStream,
		"DeleteStream":                  (*Service).opDeleteStream,
		"DescribeStream":                (*Service).opDescribeStream,
		"DescribeStreamSummary":         (*Service).opDescribeStreamSummary,
		"ListStreams":                   (*Service).opListStreams,
		"UpdateStreamMode":              (*Service).opUpdateStreamMode,
		"IncreaseStreamRetentionPeriod": (*Service).opIncreaseRetention,
		"DecreaseStreamRetentionPeriod": (*Service).opDecreaseRetention,
		"DescribeLimits":                (*Service).opDescribeLimits,
		"AddTagsToStream":               (*Service).opAddTagsToStream,
		"RemoveTagsFromStream":          (*Service).opRemoveTagsFromStream,
		"ListTagsForStream":             (*Service).opListTagsForStream,
		"TagResource":                   (*Service).opTagResource,
		"UntagResource":                 (*Service).opUntagResource,
		"ListTagsForResource":           (*Service).opListTagsForResource,
		"UpdateMaxRecordSize":           (*Service).opUpdateMaxRecordSize,
		"UpdateStreamWarmThroughput":    (*Service).opUpdateStreamWarmThroughput,
		"EnableEnhancedMonitoring":      (*Service).opEnableEnhancedMonitoring,
		"DisableEnhancedMonitoring":     (*Service).opDisableEnhancedMonitoring,
		"StartStreamEncryption":         (*Service).opStartStreamEncryption,
		"StopStreamEncryption":          (*Service).opStopStreamEncryption,
		"ListShards":                    (*Service).opListShards,
		"SplitShard":                    (*Service).opSplitShard,
		"MergeShards":                   (*Service).opMergeShards,
		"UpdateShardCount":              (*Service).opUpdateShardCount,
		"PutRecord":                     (*Service).opPutRecord,
		"PutRecords":                    (*Service).opPutRecords,
		"GetShardIterator":              (*Service).opGetShardIterator,
		"GetRecords":                    (*Service).opGetRecords,
		"RegisterStreamConsumer":        (*Service).opRegisterStreamConsumer,
		"DescribeStreamConsumer":        (*Service).opDescribeStreamConsumer,
		"ListStreamConsumers":           (*Service).opListStreamConsumers,
		"DeregisterStreamConsumer":      (*Service).opDeregisterStreamConsumer,

		"UpdateStreamRecordDistributionStrategy": (*Service).opUpdateStreamRecordDistributionStrategy,
	}
	for op, fn := range queueOperations {
		operations[op] = fn
	}
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuf() *[]byte { return bodyPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 16<<20 {
		return
	}
	*b = (*b)[:0]
	bodyPool.Put(b)
}

// readBody reads the whole request body into a pooled buffer, so the connection stays
// reusable: a handler that leaves body bytes unread makes net/http close the connection
// after the response.
func (s *Service) readBody(r *http.Request, buf *[]byte) ([]byte, *APIError) {
	max := s.cfg.MaxRequestBytes
	if r.ContentLength > max {
		return nil, apiErr("RequestEntityTooLargeException", http.StatusRequestEntityTooLarge,
			"Request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, max)
	}
	b := *buf
	if r.ContentLength > 0 {
		n := int(r.ContentLength)
		if cap(b) < n {
			b = make([]byte, n)
		}
		b = b[:n]
		if _, err := io.ReadFull(r.Body, b); err != nil {
			*buf = b[:0]
			return nil, errSerialization("Could not read request body: %v", err)
		}
		*buf = b
		return b, nil
	}
	lr := io.LimitReader(r.Body, max+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*buf = b[:0]
			return nil, errSerialization("Could not read request body: %v", err)
		}
	}
	*buf = b
	if int64(len(b)) > max {
		return nil, apiErr("RequestEntityTooLargeException", http.StatusRequestEntityTooLarge,
			"Request body exceeds the limit of %d bytes", max)
	}
	return b, nil
}

func isCBOR(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Content-Type"), "cbor")
}

// ServeOperation handles one Kinesis call; op is the part of X-Amz-Target after
// "Kinesis_20131202.". The request body is unread.
func (s *Service) ServeOperation(w http.ResponseWriter, r *http.Request, op string) {
	if op == "SubscribeToShard" {
		s.subscribeToShard(w, r)
		return
	}
	fn, ok := operations[op]
	if !ok {
		s.WriteError(w, r, "UnknownOperationException", "Unknown operation "+sanitizeOp(op), http.StatusBadRequest)
		return
	}
	buf := getBuf()
	defer putBuf(buf)
	body, aerr := s.readBody(r, buf)
	if aerr != nil {
		s.writeAPIError(w, r, aerr)
		return
	}
	c := &call{r: r, body: body, cbor: isCBOR(r), now: s.clock.Now()}
	out, err := s.safeCall(fn, c)
	if err != nil {
		var aerr *APIError
		if !errors.As(err, &aerr) {
			aerr = apiErr("InternalFailure", http.StatusInternalServerError, "%v", err)
		}
		s.writeAPIError(w, r, aerr)
		return
	}
	switch v := out.(type) {
	case rawBody:
		s.writeBody(w, c.cbor, v)
	case pooledBody:
		s.writeBody(w, c.cbor, *v.buf)
		putBuf(v.buf)
	case nil:
		s.writeBody(w, c.cbor, emptyBody(c.cbor))
	default:
		var b []byte
		if c.cbor {
			b, err = cbor.Marshal(v)
		} else {
			b, err = json.Marshal(v)
		}
		if err != nil {
			s.writeAPIError(w, r, apiErr("InternalFailure", http.StatusInternalServerError, "encode response: %v", err))
			return
		}
		s.writeBody(w, c.cbor, b)
	}
}

// safeCall runs an operation and turns a panic into an InternalFailure, so that no
// input can take the engine down.
func (s *Service) safeCall(fn opFunc, c *call) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, apiErr("InternalFailure", http.StatusInternalServerError, "internal error: %v", p)
		}
	}()
	out, err = fn(s, c)
	if ae, ok := err.(*APIError); ok && ae == nil {
		err = nil // operations may return a nil *APIError as error
	}
	return out, err
}

var cborEmptyMap = []byte{0xa0}

func emptyBody(isCBOR bool) []byte {
	if isCBOR {
		return cborEmptyMap
	}
	return []byte("{}")
}

func (s *Service) writeBody(w http.ResponseWriter, isCBOR bool, body []byte) {
	h := w.Header()
	if isCBOR {
		h["Content-Type"] = headerCBOR
	} else {
		h["Content-Type"] = headerJSON
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["X-Amzn-Requestid"] = []string{strconv.FormatUint(s.requestID.Add(1), 36)}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (s *Service) writeAPIError(w http.ResponseWriter, r *http.Request, e *APIError) {
	s.WriteError(w, r, e.Code, e.Message, e.Status)
}

// WriteError writes a Kinesis error in the request's protocol (JSON 1.1 or CBOR 1.1).
func (s *Service) WriteError(w http.ResponseWriter, r *http.Request, code, message string, status int) {
	if status == 0 {
		status = http.StatusBadRequest
	}
	h := w.Header()
	h.Set("X-Amzn-Errortype", code)
	var body []byte
	if r != nil && isCBOR(r) {
		h["Content-Type"] = headerCBOR
		body, _ = cbor.Marshal(map[string]string{"__type": code, "message": message})
	} else {
		h["Content-Type"] = headerJSON
		body = append(body, `{"__type":`...)
		body = kinesiswire.AppendString(body, code)
		body = append(body, `,"message":`...)
		body = kinesiswire.AppendString(body, message)
		body = append(body, '}')
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func sanitizeOp(op string) string {
	if len(op) > 64 {
		op = op[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, op)
}

// epochTime is a timestamp on the wire: epoch seconds in JSON, tag 1 in CBOR.
type epochTime struct {
	time.Time
}

// UnmarshalJSON reads epoch seconds (a number or a numeric string) or an RFC 3339 string.
func (e *epochTime) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
			e.Time = t
			return nil
		}
		s = str
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e12 {
		return errSerialization("Invalid timestamp %s", quoteValue(s))
	}
	e.Time = epochToTime(f)
	return nil
}

// MarshalJSON writes epoch seconds with millisecond precision.
func (e epochTime) MarshalJSON() ([]byte, error) {
	return appendEpoch(nil, e.UnixNano()), nil
}

// UnmarshalCBOR reads tag 1 (or a bare number) as the Kinesis CBOR protocol writes
// timestamps: epoch milliseconds (the AWS SDKs), or epoch seconds as RFC 8949 has it
// (kinesalite). Magnitudes of 1e11 and more are milliseconds: as seconds they would
// be past the year 5000.
func (e *epochTime) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0] == 0xc1 {
		// Tag 1: decode its number ourselves; the CBOR library would read it as
		// seconds.
		b = b[1:]
	}
	var v any
	if err := cbor.Unmarshal(b, &v); err != nil {
		return err
	}
	var f float64
	switch x := v.(type) {
	case nil:
		return nil
	case float64:
		f = x
	case uint64:
		f = float64(x)
	case int64:
		f = float64(x)
	default:
		return errSerialization("Invalid timestamp")
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return errSerialization("Invalid timestamp")
	}
	if math.Abs(f) >= 1e11 {
		e.Time = time.UnixMilli(int64(math.Round(f)))
		return nil
	}
	e.Time = epochToTime(f)
	return nil
}

// MarshalCBOR writes tag 1 with epoch milliseconds, as Kinesis does (the AWS SDKs
// read CBOR timestamps as milliseconds, not as RFC 8949's seconds).
func (e epochTime) MarshalCBOR() ([]byte, error) {
	return cbor.Marshal(cbor.Tag{Number: 1, Content: e.UnixMilli()})
}

func epochToTime(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6)
}
