// Package metrics is the bundled engine's CloudWatch: PutMetricData, ListMetrics and
// GetMetricData over the Smithy RPC v2 CBOR protocol that the aws-sdk-go-v2
// cloudwatch.Client speaks.
//
// In Freshet's data flow it is the metrics sink: producer/ and consumer/ publish their
// KPL/KCL-style metrics (UserRecordsPut, BufferingTime, MillisBehindLatest, ...) through
// a CloudWatch publisher that batches PutMetricData calls, and when they run against the
// engine those calls land here. The service checks each call as CloudWatch does (at most
// 1,000 datums, at most 30 dimensions per datum, Value, Values/Counts and
// StatisticValues exclusive and well formed, timestamps within two weeks past and two
// hours ahead, units from the service's list) and keeps every accepted datum, so tests
// read back what a component published through Datums, Snapshot and Stats, without
// going through the SDK.
//
// Stored datums are bounded by Config.MaxDatums; past it the oldest are dropped.
package metrics

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/freshet/freshet/clock"
)

// ErrInvalidOption reports a Config value out of range.
var ErrInvalidOption = errors.New("metrics: invalid option")

// Config configures the CloudWatch service. The zero value keeps up to 1,000,000 datums.
type Config struct {
	// MaxDatums bounds the datums kept; when a call would exceed it, the oldest datums are
	// dropped. 1,000,000 when zero.
	MaxDatums int
	// MaxRequestBytes bounds a request body; 1 MiB when zero (the service's limit).
	MaxRequestBytes int64
}

func (c *Config) setDefaults() error {
	if c.MaxDatums < 0 {
		return fmt.Errorf("%w: MaxDatums %d is negative", ErrInvalidOption, c.MaxDatums)
	}
	if c.MaxRequestBytes < 0 {
		return fmt.Errorf("%w: MaxRequestBytes %d is negative", ErrInvalidOption, c.MaxRequestBytes)
	}
	if c.MaxDatums == 0 {
		c.MaxDatums = 1_000_000
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 1 << 20
	}
	return nil
}

// Dimension is one name/value pair of a metric's identity.
type Dimension struct {
	// Name is the dimension name, e.g. "ShardId".
	Name string
	// Value is the dimension value.
	Value string
}

// StatisticSet is a pre-aggregated set of samples.
type StatisticSet struct {
	// SampleCount is the number of samples.
	SampleCount float64
	// Sum is the sum of the samples.
	Sum float64
	// Minimum is the smallest sample.
	Minimum float64
	// Maximum is the largest sample.
	Maximum float64
}

// Datum is one accepted metric datum as it was sent, with the time the engine received it.
type Datum struct {
	// Namespace is the call's namespace.
	Namespace string
	// MetricName names the metric.
	MetricName string
	// Dimensions are the datum's dimensions, in the order sent.
	Dimensions []Dimension
	// Timestamp is the datum's timestamp; the receive time when none was sent.
	Timestamp time.Time
	// Value is the single value, when one was sent.
	Value *float64
	// Values and Counts are the value distribution, when sent (Counts defaults to ones).
	Values []float64
	// Counts gives how many times each of Values occurred.
	Counts []float64
	// StatisticValues is the pre-aggregated set, when sent.
	StatisticValues *StatisticSet
	// Unit is the unit, "None" when none was sent.
	Unit string
	// StorageResolution is 1 (high resolution) or 60.
	StorageResolution int32
	// Received is when the engine accepted the datum.
	Received time.Time
}

// Stats folds the datum into a statistic set.
func (d Datum) Stats() StatisticSet {
	switch {
	case d.StatisticValues != nil:
		return *d.StatisticValues
	case d.Value != nil:
		return StatisticSet{SampleCount: 1, Sum: *d.Value, Minimum: *d.Value, Maximum: *d.Value}
	}
	s := StatisticSet{Minimum: math.Inf(1), Maximum: math.Inf(-1)}
	for i, v := range d.Values {
		c := 1.0
		if i < len(d.Counts) {
			c = d.Counts[i]
		}
		s.SampleCount += c
		s.Sum += v * c
		s.Minimum = math.Min(s.Minimum, v)
		s.Maximum = math.Max(s.Maximum, v)
	}
	if s.SampleCount == 0 {
		return StatisticSet{}
	}
	return s
}

// Merge adds o's samples to s.
func (s StatisticSet) Merge(o StatisticSet) StatisticSet {
	if o.SampleCount == 0 {
		return s
	}
	if s.SampleCount == 0 {
		return o
	}
	return StatisticSet{SampleCount: s.SampleCount + o.SampleCount, Sum: s.Sum + o.Sum,
		Minimum: math.Min(s.Minimum, o.Minimum), Maximum: math.Max(s.Maximum, o.Maximum)}
}

// Service serves the CloudWatch operations and keeps the data. It is safe for
// concurrent use.
type Service struct {
	cfg   Config
	clock clock.Clock
	dec   cbor.DecMode
	enc   cbor.EncMode

	mu     sync.RWMutex
	datums []Datum
}

// New returns a CloudWatch service driven by clk (clock.Real() when nil).
func New(cfg Config, clk clock.Clock) (*Service, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.Real()
	}
	dec, err := cbor.DecOptions{
		MaxNestedLevels:  16,
		MaxArrayElements: 100_000,
		MaxMapPairs:      1_000,
		TimeTag:          cbor.DecTagOptional,
	}.DecMode()
	if err != nil {
		return nil, fmt.Errorf("metrics: cbor decoder: %w", err)
	}
	enc, err := cbor.EncOptions{Time: cbor.TimeUnixDynamic, TimeTag: cbor.EncTagRequired}.EncMode()
	if err != nil {
		return nil, fmt.Errorf("metrics: cbor encoder: %w", err)
	}
	return &Service{cfg: cfg, clock: clk, dec: dec, enc: enc}, nil
}

// Close releases the service. The kept data stays readable.
func (s *Service) Close() {}

// Datums returns the accepted datums of one metric, oldest first.
func (s *Service) Datums(namespace, metricName string) []Datum {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Datum
	for _, d := range s.datums {
		if d.Namespace == namespace && d.MetricName == metricName {
			out = append(out, d)
		}
	}
	return out
}

// Snapshot returns every kept datum, oldest first.
func (s *Service) Snapshot() []Datum {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]Datum(nil), s.datums...)
}

// Stats folds every datum of one metric (all dimensions) into one statistic set.
func (s *Service) Stats(namespace, metricName string) StatisticSet {
	var st StatisticSet
	for _, d := range s.Datums(namespace, metricName) {
		st = st.Merge(d.Stats())
	}
	return st
}

// Reset forgets every datum.
func (s *Service) Reset() {
	s.mu.Lock()
	s.datums = nil
	s.mu.Unlock()
}

func (s *Service) store(ds []Datum) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if over := len(s.datums) + len(ds) - s.cfg.MaxDatums; over > 0 {
		if over >= len(s.datums) {
			s.datums = s.datums[:0]
		} else {
			s.datums = append(s.datums[:0], s.datums[over:]...)
		}
		if len(ds) > s.cfg.MaxDatums {
			ds = ds[len(ds)-s.cfg.MaxDatums:]
		}
	}
	s.datums = append(s.datums, ds...)
}

// serviceError is a CloudWatch error: the modeled error shape, the query-compatible code
// the SDK reports through ErrorCode(), and the fault.
type serviceError struct {
	shape   string
	query   string
	fault   string
	message string
	status  int
}

func (e *serviceError) Error() string { return e.query + ": " + e.message }

func invalidValue(format string, args ...any) *serviceError {
	return &serviceError{"InvalidParameterValueException", "InvalidParameterValue", "Sender", fmt.Sprintf(format, args...), http.StatusBadRequest}
}

func missingParam(format string, args ...any) *serviceError {
	return &serviceError{"MissingRequiredParameterException", "MissingParameter", "Sender", fmt.Sprintf(format, args...), http.StatusBadRequest}
}

func invalidCombination(format string, args ...any) *serviceError {
	return &serviceError{"InvalidParameterCombinationException", "InvalidParameterCombination", "Sender", fmt.Sprintf(format, args...), http.StatusBadRequest}
}

// errorShapes maps bare codes (as fault injection names them) to modeled shapes and
// query codes.
var errorShapes = map[string][2]string{
	"InvalidParameterValueException":       {"InvalidParameterValueException", "InvalidParameterValue"},
	"InvalidParameterValue":                {"InvalidParameterValueException", "InvalidParameterValue"},
	"MissingRequiredParameterException":    {"MissingRequiredParameterException", "MissingParameter"},
	"InvalidParameterCombinationException": {"InvalidParameterCombinationException", "InvalidParameterCombination"},
	"InternalServiceFault":                 {"InternalServiceFault", "InternalServiceError"},
	"InternalServiceError":                 {"InternalServiceFault", "InternalServiceError"},
	"InternalServerError":                  {"InternalServiceFault", "InternalServiceError"},
	"InternalFailure":                      {"InternalServiceFault", "InternalServiceError"},
	"LimitExceededFault":                   {"LimitExceededFault", "LimitExceeded"},
	"ResourceNotFound":                     {"ResourceNotFound", "ResourceNotFound"},
	"InvalidNextToken":                     {"InvalidNextToken", "InvalidNextToken"},
}

// WriteError writes a CloudWatch error of type code (a bare name such as "Throttling",
// "InternalServiceFault" or "InvalidParameterValueException") in the RPC v2 CBOR form
// the SDK parses: a CBOR body with __type and message, and the query-compatible code in
// X-Amzn-Query-Error.
func (s *Service) WriteError(w http.ResponseWriter, r *http.Request, code, message string, status int) {
	e := &serviceError{shape: code, query: code, fault: "Sender", message: message, status: status}
	if m, ok := errorShapes[code]; ok {
		e.shape, e.query = m[0], m[1]
	}
	if status >= 500 {
		e.fault = "Receiver"
	}
	s.writeError(w, e)
}

func (s *Service) writeError(w http.ResponseWriter, e *serviceError) {
	body, err := s.enc.Marshal(map[string]string{"__type": "com.amazonaws.cloudwatch#" + e.shape, "message": e.message})
	if err != nil {
		body = []byte{0xa0}
	}
	h := w.Header()
	h.Set("Content-Type", "application/cbor")
	h.Set("Smithy-Protocol", "rpc-v2-cbor")
	h.Set("X-Amzn-Query-Error", e.query+";"+e.fault)
	status := e.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Service) writeOK(w http.ResponseWriter, out any) {
	body := []byte{0xa0}
	if out != nil {
		b, err := s.enc.Marshal(out)
		if err != nil {
			s.writeError(w, &serviceError{"InternalServiceFault", "InternalServiceError", "Receiver", "Internal error", http.StatusInternalServerError})
			return
		}
		body = b
	}
	h := w.Header()
	h.Set("Content-Type", "application/cbor")
	h.Set("Smithy-Protocol", "rpc-v2-cbor")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// Operations returns the names of the CloudWatch operations the service serves, sorted.
func Operations() []string { return []string{"GetMetricData", "ListMetrics", "PutMetricData"} }

// ServeOperation handles one CloudWatch call; op is the operation name from the path.
func (s *Service) ServeOperation(w http.ResponseWriter, r *http.Request, op string) {
	var h func([]byte) (any, error)
	switch op {
	case "PutMetricData":
		h = s.putMetricData
	case "ListMetrics":
		h = s.listMetrics
	case "GetMetricData":
		h = s.getMetricData
	default:
		s.writeError(w, &serviceError{"UnknownOperationException", "InvalidAction", "Sender", "Unsupported operation " + sanitize(op), http.StatusBadRequest})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxRequestBytes+1))
	if err != nil {
		return
	}
	if int64(len(body)) > s.cfg.MaxRequestBytes {
		s.writeError(w, &serviceError{"RequestEntityTooLarge", "RequestEntityTooLarge", "Sender", fmt.Sprintf("Request size %d exceeded %d bytes", len(body), s.cfg.MaxRequestBytes), http.StatusRequestEntityTooLarge})
		return
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" {
		if body, err = decompress(enc, body); err != nil {
			s.writeError(w, &serviceError{"InvalidParameterValueException", "InvalidParameterValue", "Sender", "Unable to decode the request body: " + err.Error(), http.StatusBadRequest})
			return
		}
	}
	out, err := h(body)
	if err != nil {
		var se *serviceError
		if !errors.As(err, &se) {
			se = &serviceError{"SerializationException", "SerializationException", "Sender", "Malformed request body: " + err.Error(), http.StatusBadRequest}
		}
		s.writeError(w, se)
		return
	}
	s.writeOK(w, out)
}

// maxDecompressedBytes bounds a request body after gzip decoding.
const maxDecompressedBytes = 16 << 20

// decompress undoes the request compression the SDK applies to PutMetricData.
func decompress(encoding string, body []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "identity":
		return body, nil
	case "gzip":
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", sanitize(encoding))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxDecompressedBytes+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxDecompressedBytes {
		return nil, fmt.Errorf("decompressed body exceeds %d bytes", maxDecompressedBytes)
	}
	return out, nil
}

func sanitize(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

func (s *Service) decode(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	return s.dec.Unmarshal(body, v)
}

type wireDimension struct {
	Name  *string `cbor:"Name"`
	Value *string `cbor:"Value"`
}

type wireStatisticSet struct {
	SampleCount *float64 `cbor:"SampleCount"`
	Sum         *float64 `cbor:"Sum"`
	Minimum     *float64 `cbor:"Minimum"`
	Maximum     *float64 `cbor:"Maximum"`
}

type wireDatum struct {
	MetricName        *string           `cbor:"MetricName"`
	Dimensions        []wireDimension   `cbor:"Dimensions"`
	Timestamp         *time.Time        `cbor:"Timestamp"`
	Value             *float64          `cbor:"Value"`
	StatisticValues   *wireStatisticSet `cbor:"StatisticValues"`
	Values            []float64         `cbor:"Values"`
	Counts            []float64         `cbor:"Counts"`
	Unit              *string           `cbor:"Unit"`
	StorageResolution *int32            `cbor:"StorageResolution"`
}

type putMetricDataInput struct {
	Namespace              *string     `cbor:"Namespace"`
	MetricData             []wireDatum `cbor:"MetricData"`
	StrictEntityValidation *bool       `cbor:"StrictEntityValidation"`
	EntityMetricData       []struct {
		MetricData []wireDatum `cbor:"MetricData"`
	} `cbor:"EntityMetricData"`
}

// The service's limits.
const (
	maxDatumsPerCall = 1000
	maxDimensions    = 30
	maxValues        = 150
	maxNameLen       = 255
	maxDimValueLen   = 1024
)

var units = map[string]bool{}

func init() {
	for _, u := range strings.Fields(`Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes
		Bits Kilobits Megabits Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second Megabytes/Second
		Gigabytes/Second Terabytes/Second Bits/Second Kilobits/Second Megabits/Second Gigabits/Second
		Terabits/Second Count/Second None`) {
		units[u] = true
	}
}

// validValue reports whether v is a value CloudWatch accepts: finite and within
// 2^-260 .. 2^360 in magnitude (or zero).
func validValue(v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	a := math.Abs(v)
	return a == 0 || (a >= math.Ldexp(1, -260) && a <= math.Ldexp(1, 360))
}

func (s *Service) putMetricData(body []byte) (any, error) {
	var in putMetricDataInput
	if err := s.decode(body, &in); err != nil {
		return nil, err
	}
	if in.Namespace == nil || *in.Namespace == "" {
		return nil, missingParam("The parameter Namespace is required.")
	}
	ns := *in.Namespace
	if len(ns) > maxNameLen {
		return nil, invalidValue("The parameter Namespace must be no longer than %d characters.", maxNameLen)
	}
	if strings.HasPrefix(ns, "AWS/") {
		return nil, invalidValue("The value AWS/ for parameter Namespace is invalid.")
	}
	all := in.MetricData
	for _, e := range in.EntityMetricData {
		all = append(all, e.MetricData...)
	}
	if len(all) == 0 {
		return nil, missingParam("The parameter MetricData is required.")
	}
	if len(all) > maxDatumsPerCall {
		return nil, invalidValue("The collection MetricData must not have a size greater than %d.", maxDatumsPerCall)
	}
	now := s.clock.Now()
	out := make([]Datum, 0, len(all))
	for i, w := range all {
		d, err := checkDatum(fmt.Sprintf("MetricData.member.%d", i+1), w, now)
		if err != nil {
			return nil, err
		}
		d.Namespace = ns
		out = append(out, d)
	}
	s.store(out)
	return nil, nil
}

func checkDatum(field string, w wireDatum, now time.Time) (Datum, error) {
	d := Datum{Received: now, Unit: "None", StorageResolution: 60}
	if w.MetricName == nil || *w.MetricName == "" {
		return d, missingParam("The parameter %s.MetricName is required.", field)
	}
	if len(*w.MetricName) > maxNameLen {
		return d, invalidValue("The parameter %s.MetricName must be no longer than %d characters.", field, maxNameLen)
	}
	d.MetricName = *w.MetricName
	if len(w.Dimensions) > maxDimensions {
		return d, invalidValue("The collection %s.Dimensions must not have a size greater than %d.", field, maxDimensions)
	}
	seen := map[string]bool{}
	for j, dim := range w.Dimensions {
		df := fmt.Sprintf("%s.Dimensions.member.%d", field, j+1)
		if dim.Name == nil || *dim.Name == "" {
			return d, missingParam("The parameter %s.Name is required.", df)
		}
		if dim.Value == nil || *dim.Value == "" {
			return d, missingParam("The parameter %s.Value is required.", df)
		}
		if len(*dim.Name) > maxNameLen || len(*dim.Value) > maxDimValueLen {
			return d, invalidValue("The parameter %s is too long.", df)
		}
		if seen[*dim.Name] {
			return d, invalidParamCombinationDup(field, *dim.Name)
		}
		seen[*dim.Name] = true
		d.Dimensions = append(d.Dimensions, Dimension{Name: *dim.Name, Value: *dim.Value})
	}
	set := 0
	if w.Value != nil {
		set++
	}
	if w.StatisticValues != nil {
		set++
	}
	if w.Values != nil {
		set++
	}
	if set > 1 {
		return d, invalidCombination("The parameters %s.Value, %s.Values and %s.StatisticValues are mutually exclusive and you have specified more than one.", field, field, field)
	}
	if set == 0 {
		return d, missingParam("The parameter %s.Value, %s.Values or %s.StatisticValues is required.", field, field, field)
	}
	if w.Counts != nil && w.Values == nil {
		return d, invalidCombination("The parameter %s.Counts requires %s.Values.", field, field)
	}
	switch {
	case w.Value != nil:
		if !validValue(*w.Value) {
			return d, invalidValue("The value %v for parameter %s.Value is invalid.", *w.Value, field)
		}
		v := *w.Value
		d.Value = &v
	case w.StatisticValues != nil:
		sv := w.StatisticValues
		if sv.SampleCount == nil || sv.Sum == nil || sv.Minimum == nil || sv.Maximum == nil {
			return d, missingParam("The parameters %s.StatisticValues.SampleCount, Sum, Minimum and Maximum are all required.", field)
		}
		for _, v := range []float64{*sv.SampleCount, *sv.Sum, *sv.Minimum, *sv.Maximum} {
			if !validValue(v) {
				return d, invalidValue("The value %v for parameter %s.StatisticValues is invalid.", v, field)
			}
		}
		if *sv.SampleCount <= 0 {
			return d, invalidValue("The parameter %s.StatisticValues.SampleCount must be greater than 0.", field)
		}
		if *sv.Minimum > *sv.Maximum {
			return d, invalidValue("The parameter %s.StatisticValues.Maximum must be greater than %s.StatisticValues.Minimum.", field, field)
		}
		d.StatisticValues = &StatisticSet{SampleCount: *sv.SampleCount, Sum: *sv.Sum, Minimum: *sv.Minimum, Maximum: *sv.Maximum}
	default:
		if len(w.Values) > maxValues {
			return d, invalidValue("The collection %s.Values must not have a size greater than %d.", field, maxValues)
		}
		if w.Counts != nil && len(w.Counts) != len(w.Values) {
			return d, invalidValue("The parameters %s.Values and %s.Counts must be of the same size.", field, field)
		}
		for _, v := range w.Values {
			if !validValue(v) {
				return d, invalidValue("The value %v for parameter %s.Values is invalid.", v, field)
			}
		}
		for _, c := range w.Counts {
			if !validValue(c) || c < 0 {
				return d, invalidValue("The value %v for parameter %s.Counts is invalid.", c, field)
			}
		}
		d.Values = append([]float64(nil), w.Values...)
		if w.Counts != nil {
			d.Counts = append([]float64(nil), w.Counts...)
		} else {
			d.Counts = make([]float64, len(w.Values))
			for i := range d.Counts {
				d.Counts[i] = 1
			}
		}
	}
	if w.Unit != nil && *w.Unit != "" {
		if !units[*w.Unit] {
			return d, invalidValue("The value %s for parameter %s.Unit is invalid.", *w.Unit, field)
		}
		d.Unit = *w.Unit
	}
	if w.StorageResolution != nil {
		if *w.StorageResolution != 1 && *w.StorageResolution != 60 {
			return d, invalidValue("The value %d for parameter %s.StorageResolution is invalid.", *w.StorageResolution, field)
		}
		d.StorageResolution = *w.StorageResolution
	}
	d.Timestamp = now
	if w.Timestamp != nil && !w.Timestamp.IsZero() {
		ts := *w.Timestamp
		if ts.Before(now.Add(-14 * 24 * time.Hour)) {
			return d, invalidValue("The parameter %s.Timestamp must specify a time no more than two weeks in the past.", field)
		}
		if ts.After(now.Add(2 * time.Hour)) {
			return d, invalidValue("The parameter %s.Timestamp must specify a time no more than two hours in the future.", field)
		}
		d.Timestamp = ts
	}
	return d, nil
}

func invalidParamCombinationDup(field, name string) error {
	return invalidValue("The collection %s.Dimensions must not contain duplicate dimension names; duplicate: %s.", field, name)
}

// metricKey identifies a metric: namespace, name and its sorted dimensions.
func metricKey(ns, name string, dims []Dimension) string {
	sorted := append([]Dimension(nil), dims...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var b strings.Builder
	b.WriteString(ns)
	b.WriteByte(0)
	b.WriteString(name)
	for _, d := range sorted {
		b.WriteByte(0)
		b.WriteString(d.Name)
		b.WriteByte(1)
		b.WriteString(d.Value)
	}
	return b.String()
}

type wireMetric struct {
	Namespace  string          `cbor:"Namespace"`
	MetricName string          `cbor:"MetricName"`
	Dimensions []wireDimension `cbor:"Dimensions,omitempty"`
}

type wireDimensionFilter struct {
	Name  string  `cbor:"Name"`
	Value *string `cbor:"Value"`
}

const listMetricsPage = 500

func (s *Service) listMetrics(body []byte) (any, error) {
	var in struct {
		Namespace  *string               `cbor:"Namespace"`
		MetricName *string               `cbor:"MetricName"`
		Dimensions []wireDimensionFilter `cbor:"Dimensions"`
		NextToken  *string               `cbor:"NextToken"`
	}
	if err := s.decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.Dimensions) > maxDimensions {
		return nil, invalidValue("The collection Dimensions must not have a size greater than %d.", maxDimensions)
	}
	metrics := map[string]wireMetric{}
	for _, d := range s.Snapshot() {
		if in.Namespace != nil && *in.Namespace != d.Namespace || in.MetricName != nil && *in.MetricName != d.MetricName {
			continue
		}
		if !matchDimensions(d.Dimensions, in.Dimensions) {
			continue
		}
		k := metricKey(d.Namespace, d.MetricName, d.Dimensions)
		if _, ok := metrics[k]; ok {
			continue
		}
		m := wireMetric{Namespace: d.Namespace, MetricName: d.MetricName}
		for _, dim := range d.Dimensions {
			n, v := dim.Name, dim.Value
			m.Dimensions = append(m.Dimensions, wireDimension{Name: &n, Value: &v})
		}
		metrics[k] = m
	}
	keys := make([]string, 0, len(metrics))
	for k := range metrics {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	start := 0
	if in.NextToken != nil {
		start = sort.SearchStrings(keys, *in.NextToken)
		if start < len(keys) && keys[start] == *in.NextToken {
			start++
		}
	}
	keys = keys[start:]
	out := struct {
		Metrics   []wireMetric `cbor:"Metrics"`
		NextToken *string      `cbor:"NextToken,omitempty"`
	}{Metrics: []wireMetric{}}
	if len(keys) > listMetricsPage {
		keys = keys[:listMetricsPage]
		tok := keys[len(keys)-1]
		out.NextToken = &tok
	}
	for _, k := range keys {
		out.Metrics = append(out.Metrics, metrics[k])
	}
	return out, nil
}

func matchDimensions(have []Dimension, filters []wireDimensionFilter) bool {
	for _, f := range filters {
		ok := false
		for _, d := range have {
			if d.Name == f.Name && (f.Value == nil || *f.Value == d.Value) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

type wireMetricDataQuery struct {
	ID         string  `cbor:"Id"`
	Expression *string `cbor:"Expression"`
	Label      *string `cbor:"Label"`
	ReturnData *bool   `cbor:"ReturnData"`
	MetricStat *struct {
		Metric struct {
			Namespace  string          `cbor:"Namespace"`
			MetricName string          `cbor:"MetricName"`
			Dimensions []wireDimension `cbor:"Dimensions"`
		} `cbor:"Metric"`
		Period int32   `cbor:"Period"`
		Stat   string  `cbor:"Stat"`
		Unit   *string `cbor:"Unit"`
	} `cbor:"MetricStat"`
}

type wireMetricDataResult struct {
	ID         string      `cbor:"Id"`
	Label      string      `cbor:"Label"`
	Timestamps []time.Time `cbor:"Timestamps"`
	Values     []float64   `cbor:"Values"`
	StatusCode string      `cbor:"StatusCode"`
}

func (s *Service) getMetricData(body []byte) (any, error) {
	var in struct {
		MetricDataQueries []wireMetricDataQuery `cbor:"MetricDataQueries"`
		StartTime         *time.Time            `cbor:"StartTime"`
		EndTime           *time.Time            `cbor:"EndTime"`
		ScanBy            *string               `cbor:"ScanBy"`
		MaxDatapoints     *int32                `cbor:"MaxDatapoints"`
	}
	if err := s.decode(body, &in); err != nil {
		return nil, err
	}
	if in.StartTime == nil || in.EndTime == nil {
		return nil, missingParam("The parameters StartTime and EndTime are required.")
	}
	if !in.StartTime.Before(*in.EndTime) {
		return nil, invalidValue("The parameter StartTime must be less than the parameter EndTime.")
	}
	if len(in.MetricDataQueries) == 0 || len(in.MetricDataQueries) > 500 {
		return nil, invalidValue("The collection MetricDataQueries must have between 1 and 500 members.")
	}
	ascending := in.ScanBy != nil && *in.ScanBy == "TimestampAscending"
	snapshot := s.Snapshot()
	results := []wireMetricDataResult{}
	for i, q := range in.MetricDataQueries {
		if q.ID == "" {
			return nil, missingParam("The parameter MetricDataQueries.member.%d.Id is required.", i+1)
		}
		if q.Expression != nil {
			return nil, invalidValue("The parameter MetricDataQueries.member.%d.Expression is not supported by this engine.", i+1)
		}
		if q.MetricStat == nil {
			return nil, missingParam("The parameter MetricDataQueries.member.%d.MetricStat is required.", i+1)
		}
		ms := q.MetricStat
		if ms.Period <= 0 || (ms.Period >= 60 && ms.Period%60 != 0) || (ms.Period < 60 && 60%ms.Period != 0) {
			return nil, invalidValue("The parameter MetricDataQueries.member.%d.MetricStat.Period must be 1, 5, 10, 20, 30, 60 or a multiple of 60.", i+1)
		}
		switch ms.Stat {
		case "SampleCount", "Sum", "Average", "Minimum", "Maximum":
		default:
			return nil, invalidValue("The value %s for parameter MetricDataQueries.member.%d.MetricStat.Stat is not supported by this engine.", sanitize(ms.Stat), i+1)
		}
		var dims []Dimension
		for _, d := range ms.Metric.Dimensions {
			if d.Name != nil && d.Value != nil {
				dims = append(dims, Dimension{Name: *d.Name, Value: *d.Value})
			}
		}
		want := metricKey(ms.Metric.Namespace, ms.Metric.MetricName, dims)
		period := time.Duration(ms.Period) * time.Second
		buckets := map[int64]StatisticSet{}
		for _, d := range snapshot {
			if d.Namespace != ms.Metric.Namespace || d.MetricName != ms.Metric.MetricName {
				continue
			}
			if metricKey(d.Namespace, d.MetricName, d.Dimensions) != want {
				continue
			}
			if ms.Unit != nil && *ms.Unit != d.Unit {
				continue
			}
			if d.Timestamp.Before(*in.StartTime) || !d.Timestamp.Before(*in.EndTime) {
				continue
			}
			b := in.StartTime.Add(d.Timestamp.Sub(*in.StartTime) / period * period).UnixNano()
			buckets[b] = buckets[b].Merge(d.Stats())
		}
		if q.ReturnData != nil && !*q.ReturnData {
			continue
		}
		label := ms.Metric.MetricName
		if q.Label != nil {
			label = *q.Label
		}
		r := wireMetricDataResult{ID: q.ID, Label: label, StatusCode: "Complete", Timestamps: []time.Time{}, Values: []float64{}}
		keys := make([]int64, 0, len(buckets))
		for k := range buckets {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(a, b int) bool {
			if ascending {
				return keys[a] < keys[b]
			}
			return keys[a] > keys[b]
		})
		for _, k := range keys {
			st := buckets[k]
			var v float64
			switch ms.Stat {
			case "SampleCount":
				v = st.SampleCount
			case "Sum":
				v = st.Sum
			case "Average":
				v = st.Sum / st.SampleCount
			case "Minimum":
				v = st.Minimum
			case "Maximum":
				v = st.Maximum
			}
			r.Timestamps = append(r.Timestamps, time.Unix(0, k).UTC())
			r.Values = append(r.Values, v)
		}
		results = append(results, r)
	}
	return struct {
		MetricDataResults []wireMetricDataResult `cbor:"MetricDataResults"`
		Messages          []any                  `cbor:"Messages"`
	}{MetricDataResults: results, Messages: []any{}}, nil
}
