// Package tables is the bundled engine's DynamoDB service: tables, items, conditional
// writes and the expression language, served over the DynamoDB JSON 1.0 protocol.
package tables

import (
	"fmt"
	"net/http"

	"github.com/freshet/freshet/internal/clock"
)

// Config configures the DynamoDB service.
type Config struct{}

// Service serves the DynamoDB operations.
type Service struct {
	clock clock.Clock
}

// New returns a DynamoDB service driven by clk.
func New(cfg Config, clk clock.Clock) (*Service, error) {
	return &Service{clock: clk}, nil
}

// ServeOperation handles one DynamoDB call.
func (s *Service) ServeOperation(w http.ResponseWriter, r *http.Request, op string) {
	s.WriteError(w, r, "UnknownOperationException", fmt.Sprintf("Unsupported operation %s", op), http.StatusBadRequest)
}

// WriteError writes a DynamoDB error.
func (s *Service) WriteError(w http.ResponseWriter, r *http.Request, code, message string, status int) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, code, message)
}

// Close releases the service's background work.
func (s *Service) Close() {}
