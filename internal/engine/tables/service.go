package tables

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"time"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/kinesiswire"
)

// ErrInvalidOption reports a Config value out of range.
var ErrInvalidOption = errors.New("tables: invalid option")

// Config configures the DynamoDB service. The zero value gives tables and indexes that
// are ACTIVE as soon as they are created, in region us-east-1.
type Config struct {
	// TableActivationDelay is how long a new table (and a new index) stays CREATING
	// before it becomes ACTIVE. Item operations on a CREATING table fail with
	// ResourceNotFoundException, as on the service.
	TableActivationDelay time.Duration
	// Region appears in table ARNs; "us-east-1" when empty.
	Region string
	// AccountID appears in table ARNs; "000000000000" when empty.
	AccountID string
	// MaxRequestBytes bounds a request body; 16 MiB when zero.
	MaxRequestBytes int64
}

func (c *Config) setDefaults() error {
	if c.TableActivationDelay < 0 {
		return fmt.Errorf("%w: TableActivationDelay %v is negative", ErrInvalidOption, c.TableActivationDelay)
	}
	if c.MaxRequestBytes < 0 {
		return fmt.Errorf("%w: MaxRequestBytes %d is negative", ErrInvalidOption, c.MaxRequestBytes)
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccountID == "" {
		c.AccountID = "000000000000"
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 16 << 20
	}
	return nil
}

// Service serves the DynamoDB operations. It is safe for concurrent use.
type Service struct {
	cfg   Config
	clock clock.Clock

	mu     sync.RWMutex
	tables map[string]*table

	requestID atomic.Uint64
	closed    atomic.Bool
}

// New returns a DynamoDB service driven by clk (clock.Real() when nil).
func New(cfg Config, clk clock.Clock) (*Service, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.Real()
	}
	return &Service{cfg: cfg, clock: clk, tables: make(map[string]*table)}, nil
}

type handler func(s *Service, body []byte) (any, error)

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"CreateTable":               (*Service).createTable,
		"DescribeTable":             (*Service).describeTable,
		"ListTables":                (*Service).listTables,
		"DeleteTable":               (*Service).deleteTable,
		"UpdateTable":               (*Service).updateTable,
		"UpdateContinuousBackups":   (*Service).updateContinuousBackups,
		"DescribeContinuousBackups": (*Service).describeContinuousBackups,
		"TagResource":               (*Service).tagResource,
		"UntagResource":             (*Service).untagResource,
		"ListTagsOfResource":        (*Service).listTagsOfResource,
		"DescribeTimeToLive":        (*Service).describeTimeToLive,
		"GetItem":                   (*Service).getItemOp,
		"PutItem":                   (*Service).putItemOp,
		"UpdateItem":                (*Service).updateItemOp,
		"DeleteItem":                (*Service).deleteItemOp,
		"BatchGetItem":              (*Service).batchGetItem,
		"BatchWriteItem":            (*Service).batchWriteItem,
		"Query":                     (*Service).query,
		"Scan":                      (*Service).scan,
	}
}

// ServeOperation handles one DynamoDB call; op is the name after "DynamoDB_20120810.".
func (s *Service) ServeOperation(w http.ResponseWriter, r *http.Request, op string) {
	h, ok := handlers[op]
	if !ok {
		s.WriteError(w, r, codeUnknownOperation, "", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxRequestBytes+1))
	if err != nil {
		return
	}
	if int64(len(body)) > s.cfg.MaxRequestBytes {
		s.WriteError(w, r, codeValidation, "Request size has exceeded the maximum allowed size", http.StatusRequestEntityTooLarge)
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if jsonDepth(body) > maxJSONDepth {
		s.writeAPIError(w, validationf("Nesting Levels have exceeded supported limits"))
		return
	}
	out, err := s.call(h, body)
	if err != nil {
		s.writeAPIError(w, err)
		return
	}
	resp, err := marshalOutput(out)
	if err != nil {
		s.WriteError(w, r, "InternalServerError", "Internal server error", http.StatusInternalServerError)
		return
	}
	s.writeJSON(w, http.StatusOK, resp)
}

// maxJSONDepth bounds request nesting: items nest at most 32 levels, and the request
// structure adds a few more.
const maxJSONDepth = 48

// jsonDepth returns the deepest bracket nesting in a JSON text, ignoring strings.
func jsonDepth(b []byte) int {
	depth, max := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				max = depth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return max
}

// call runs a handler, turning a panic on hostile input into an internal error.
func (s *Service) call(h handler, body []byte) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, &APIError{Code: "InternalServerError", Message: "Internal server error", Status: http.StatusInternalServerError}
		}
	}()
	return h(s, body)
}

func (s *Service) writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-Requestid", s.nextRequestID())
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Service) nextRequestID() string {
	return fmt.Sprintf("FRESHET%025d", s.requestID.Add(1))
}

func (s *Service) writeAPIError(w http.ResponseWriter, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			ae = serializationf("Start of structure or map found where not expected")
		case errors.As(err, &te):
			ae = serializationf("Unexpected value type in payload")
		default:
			ae = serializationf("%s", err.Error())
		}
	}
	b := []byte(`{"__type":`)
	b = kinesiswire.AppendString(b, "com.amazonaws.dynamodb.v20120810#"+ae.Code)
	b = append(b, `,"message":`...)
	b = kinesiswire.AppendString(b, ae.Message)
	if ae.Item != nil {
		b = append(b, `,"Item":`...)
		b = appendItem(b, ae.Item)
	}
	b = append(b, '}')
	status := ae.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	s.writeJSON(w, status, b)
}

// WriteError writes a DynamoDB error of type code (a bare name such as
// "ProvisionedThroughputExceededException") the way the service does, so the SDK maps it
// to its typed error.
func (s *Service) WriteError(w http.ResponseWriter, r *http.Request, code, message string, status int) {
	if status == 0 {
		status = http.StatusBadRequest
	}
	s.writeAPIError(w, &APIError{Code: code, Message: message, Status: status})
}

// Close releases the service. Tables stay readable through the Go API.
func (s *Service) Close() { s.closed.Store(true) }

// decode unmarshals a request body.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		if ae, ok := asValidation(err); ok {
			return ae
		}
		return err
	}
	return nil
}

// lookup returns an ACTIVE table for item operations.
func (s *Service) lookup(name string) (*table, error) {
	if name == "" {
		return nil, validationf("1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null")
	}
	s.mu.RLock()
	t := s.tables[name]
	s.mu.RUnlock()
	if t == nil || t.status(s.clock.Now()) != "ACTIVE" {
		return nil, notFound()
	}
	return t, nil
}

// lookupAny returns a table in any state, for control-plane operations.
func (s *Service) lookupAny(name string) (*table, error) {
	if name == "" {
		return nil, validationf("1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null")
	}
	if i := strings.LastIndex(name, ":table/"); i >= 0 && strings.HasPrefix(name, "arn:") {
		name = name[i+len(":table/"):]
	}
	s.mu.RLock()
	t := s.tables[name]
	s.mu.RUnlock()
	if t == nil {
		return nil, notFound()
	}
	return t, nil
}

// TableNames returns the names of all tables, sorted.
func (s *Service) TableNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.tables))
	for n := range s.tables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Capacity is the capacity a table consumed since it was created, in DynamoDB's units: a
// read unit is one strongly consistent read of up to 4 KB (half for an eventually
// consistent one; scans and queries round their total size up), a write unit one write
// of up to 1 KB. Successful reads and writes are counted; index writes are not.
type Capacity struct {
	ReadUnits  float64
	WriteUnits float64
}

// Consumed returns the capacity each existing table consumed, by table name, counted
// whether or not the callers asked for ReturnConsumedCapacity.
func (s *Service) Consumed() map[string]Capacity {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]Capacity, len(s.tables))
	for name, t := range s.tables {
		out[name] = Capacity{ReadUnits: float64(t.readMilli.Load()) / 1000, WriteUnits: float64(t.writeMilli.Load()) / 1000}
	}
	return out
}

// Items returns a snapshot of every item of table name in scan order, or false when the
// table does not exist. Tests use it to inspect lease state without the SDK.
func (s *Service) Items(name string) ([]Item, bool) {
	s.mu.RLock()
	t := s.tables[name]
	s.mu.RUnlock()
	if t == nil {
		return nil, false
	}
	return t.allItems(), true
}
