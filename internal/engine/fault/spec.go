package fault

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidRule reports a rule or rule specification outside its allowed range.
var ErrInvalidRule = errors.New("fault: invalid rule")

// Validate checks that rates are probabilities in [0, 1], that the error code is
// printable ASCII without spaces, and that latency and status are in range.
func (r Rule) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"error rate", r.ErrorRate}, {"drop rate", r.DropRate}, {"drop-after rate", r.DropAfterRate}} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("%w: %s %v outside [0, 1]", ErrInvalidRule, p.name, p.v)
		}
	}
	if r.Latency < 0 {
		return fmt.Errorf("%w: negative latency %v", ErrInvalidRule, r.Latency)
	}
	if r.StatusCode != 0 && (r.StatusCode < 400 || r.StatusCode > 599) {
		return fmt.Errorf("%w: status %d is no error status (400-599)", ErrInvalidRule, r.StatusCode)
	}
	for _, c := range r.ErrorCode {
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: error code %q has characters outside printable ASCII", ErrInvalidRule, r.ErrorCode)
		}
	}
	return nil
}

// ParseSpec reads a rule written as "KEY:FIELD=VALUE,FIELD=VALUE...", the form of
// freshet-engine's -fault flag, for example
//
//	Kinesis.PutRecords:error=0.1,code=ProvisionedThroughputExceededException
//	DynamoDB.*:latency=20ms
//	*:drop=0.01,drop-after=0.01
//
// Fields: error (ErrorRate), code (ErrorCode), message (ErrorMessage, the rest of the
// spec, so it comes last and may hold commas), status (StatusCode), latency (a Go
// duration), drop (DropRate), drop-after (DropAfterRate). The key is not checked
// against the served operations here; the engine does that.
func ParseSpec(spec string) (key string, rule Rule, err error) {
	key, fields, ok := strings.Cut(spec, ":")
	if !ok || key == "" || fields == "" {
		return "", Rule{}, fmt.Errorf("%w: %q is not KEY:FIELD=VALUE[,FIELD=VALUE]", ErrInvalidRule, spec)
	}
	for fields != "" {
		var field string
		if strings.HasPrefix(fields, "message=") {
			field, fields = fields, ""
		} else {
			field, fields, _ = strings.Cut(fields, ",")
		}
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return "", Rule{}, fmt.Errorf("%w: field %q of %q is not NAME=VALUE", ErrInvalidRule, field, spec)
		}
		var perr error
		switch name {
		case "error":
			rule.ErrorRate, perr = strconv.ParseFloat(value, 64)
		case "code":
			rule.ErrorCode = value
		case "message":
			rule.ErrorMessage = value
		case "status":
			rule.StatusCode, perr = strconv.Atoi(value)
		case "latency":
			rule.Latency, perr = time.ParseDuration(value)
		case "drop":
			rule.DropRate, perr = strconv.ParseFloat(value, 64)
		case "drop-after":
			rule.DropAfterRate, perr = strconv.ParseFloat(value, 64)
		default:
			return "", Rule{}, fmt.Errorf("%w: unknown field %q in %q (error, code, message, status, latency, drop, drop-after)", ErrInvalidRule, name, spec)
		}
		if perr != nil {
			return "", Rule{}, fmt.Errorf("%w: field %q of %q: %v", ErrInvalidRule, name, spec, perr)
		}
	}
	if rule.ErrorRate == 0 && (rule.ErrorCode != "" || rule.ErrorMessage != "" || rule.StatusCode != 0) {
		return "", Rule{}, fmt.Errorf("%w: %q sets an error code, message or status but no error rate", ErrInvalidRule, spec)
	}
	if err := rule.Validate(); err != nil {
		return "", Rule{}, err
	}
	return key, rule, nil
}
