package streams

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/freshet/freshet/internal/hashkey"
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

// errIntRange is the validation error of an integer member outside [lo, hi]: the
// service names the bound that was crossed.
func errIntRange(v int64, member string, lo, hi int64) *APIError {
	value := quoteValue(strconv.FormatInt(v, 10))
	if v < lo {
		return errValidation(value, member, "must have value greater than or equal to "+strconv.FormatInt(lo, 10))
	}
	return errValidation(value, member, "must have value less than or equal to "+strconv.FormatInt(hi, 10))
}

// checkIntRange returns errIntRange when v is set and outside [lo, hi].
func checkIntRange(v *int64, member string, lo, hi int64) *APIError {
	if v != nil && (*v < lo || *v > hi) {
		return errIntRange(*v, member, lo, hi)
	}
	return nil
}

// intInRange is an optional integer member's value, def when it is absent, or the
// validation error of a value outside [lo, hi].
func intInRange(v *int64, member string, lo, hi int64, def int) (int, *APIError) {
	if e := checkIntRange(v, member, lo, hi); e != nil {
		return 0, e
	}
	if v == nil {
		return def, nil
	}
	return int(*v), nil
}

// errLenRange is the validation error of a value whose length n is outside [lo, hi].
func errLenRange(value string, n int, member string, lo, hi int) *APIError {
	if n < lo {
		return errValidation(value, member, "must have length greater than or equal to "+strconv.Itoa(lo))
	}
	return errValidation(value, member, "must have length less than or equal to "+strconv.Itoa(hi))
}

// Patterns of the service's model, as its validation messages quote them.
const (
	patternName      = "[a-zA-Z0-9_.-]+"
	patternHashKey   = `0|([1-9]\d{0,38})`
	patternSequence  = `0|([1-9]\d{0,128})`
	patternStreamARN = `arn:aws.*:kinesis:.*:\d{12}:stream/\S+`
)

// validDecimal reports whether s matches 0|([1-9]\d{0,maxDigits-1}).
func validDecimal(s []byte, maxDigits int) bool {
	if len(s) == 0 || len(s) > maxDigits || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// checkName validates a stream, consumer or shard name member: length 1 to 128 and
// the pattern [a-zA-Z0-9_.-]+.
func checkName(n, member string) *APIError {
	if len(n) < 1 || len(n) > 128 {
		return errLenRange(quoteValue(n), len(n), member, 1, 128)
	}
	if !validStreamName(n) {
		return errValidation(quoteValue(n), member, "must satisfy regular expression pattern: "+patternName)
	}
	return nil
}

// checkOptName is checkName for an optional member.
func checkOptName(n *string, member string) *APIError {
	if n == nil {
		return nil
	}
	return checkName(*n, member)
}

// parseHashKey reads a hash-key member: a value outside the model's pattern is a
// ValidationException, a value in the pattern but at or above 2^128 an
// InvalidArgumentException with invalid's message.
func parseHashKey(raw []byte, member string, invalid func(string) *APIError) (hashkey.Key, *APIError) {
	if !validDecimal(raw, 39) {
		return hashkey.Key{}, errValidation(quoteValue(string(raw)), member, "must satisfy regular expression pattern: "+patternHashKey)
	}
	k, err := hashkey.Parse(string(raw))
	if err != nil {
		return hashkey.Key{}, invalid(string(raw))
	}
	return k, nil
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
