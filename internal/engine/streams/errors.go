package streams

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors matched by errors.Is against an *APIError of the same service error type.
var (
	ErrResourceNotFound   = errors.New("ResourceNotFoundException")
	ErrResourceInUse      = errors.New("ResourceInUseException")
	ErrInvalidArgument    = errors.New("InvalidArgumentException")
	ErrValidation         = errors.New("ValidationException")
	ErrLimitExceeded      = errors.New("LimitExceededException")
	ErrThroughputExceeded = errors.New("ProvisionedThroughputExceededException")
	ErrExpiredIterator    = errors.New("ExpiredIteratorException")
	ErrExpiredNextToken   = errors.New("ExpiredNextTokenException")
	ErrSerialization      = errors.New("SerializationException")
	ErrInternalFailure    = errors.New("InternalFailure")
)

var sentinels = map[string]error{}

func init() {
	for _, e := range []error{ErrResourceNotFound, ErrResourceInUse, ErrInvalidArgument, ErrValidation,
		ErrLimitExceeded, ErrThroughputExceeded, ErrExpiredIterator, ErrExpiredNextToken,
		ErrSerialization, ErrInternalFailure} {
		sentinels[e.Error()] = e
	}
}

// APIError is a Kinesis service error: its type (the wire "__type"), message and HTTP
// status. The Go API returns it too, so tests see the same errors as SDK clients.
type APIError struct {
	Code    string
	Message string
	Status  int
}

// Error returns "Code: Message".
func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the sentinel for the error's type, if there is one.
func (e *APIError) Unwrap() error { return sentinels[e.Code] }

func apiErr(code string, status int, format string, args ...any) *APIError {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &APIError{Code: code, Message: msg, Status: status}
}

func errNotFound(format string, args ...any) *APIError {
	return apiErr("ResourceNotFoundException", http.StatusBadRequest, format, args...)
}

func errInUse(format string, args ...any) *APIError {
	return apiErr("ResourceInUseException", http.StatusBadRequest, format, args...)
}

func errInvalid(format string, args ...any) *APIError {
	return apiErr("InvalidArgumentException", http.StatusBadRequest, format, args...)
}

func errLimit(format string, args ...any) *APIError {
	return apiErr("LimitExceededException", http.StatusBadRequest, format, args...)
}

func errSerialization(format string, args ...any) *APIError {
	return apiErr("SerializationException", http.StatusBadRequest, format, args...)
}

// errValidation formats the service's one-constraint validation message.
func errValidation(value, member, constraint string) *APIError {
	return apiErr("ValidationException", http.StatusBadRequest,
		"1 validation error detected: Value %s at '%s' failed to satisfy constraint: Member %s", value, member, constraint)
}

func errMissing(member string) *APIError {
	return errValidation("null", member, "must not be null")
}

func quoteValue(v string) string {
	if len(v) > 256 {
		v = v[:256]
	}
	return "'" + v + "'"
}
