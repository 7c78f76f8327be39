// Package streams is the bundled engine's Amazon Kinesis Data Streams service: streams,
// shards, records, iterators and stream consumers, served over the Kinesis JSON 1.1 (and
// CBOR 1.1) protocol.
package streams

import (
	"fmt"
	"net/http"

	"github.com/freshet/freshet/internal/clock"
	"github.com/freshet/freshet/internal/engine/fault"
)

// Config configures the Kinesis service.
type Config struct{}

// Service serves the Kinesis operations.
type Service struct {
	clock  clock.Clock
	faults *fault.Injector
}

// New returns a Kinesis service driven by clk; faults supplies per-entry fault decisions.
func New(cfg Config, clk clock.Clock, faults *fault.Injector) (*Service, error) {
	return &Service{clock: clk, faults: faults}, nil
}

// ServeOperation handles one Kinesis call.
func (s *Service) ServeOperation(w http.ResponseWriter, r *http.Request, op string) {
	s.WriteError(w, r, "UnknownOperationException", fmt.Sprintf("Unsupported operation %s", op), http.StatusBadRequest)
}

// WriteError writes a Kinesis error.
func (s *Service) WriteError(w http.ResponseWriter, r *http.Request, code, message string, status int) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"__type":%q,"message":%q}`, code, message)
}

// Close releases the service's background work.
func (s *Service) Close() {}
