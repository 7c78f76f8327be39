// Package retrypolicy is the one place where Freshet decides what a failed Kinesis call
// means and what to do about it, for the producer (PutRecords and its entries) and the
// consumer (GetRecords, GetShardIterator, SubscribeToShard) alike:
//
//   - one table of Kinesis error codes (Classify), and one classification of call
//     errors (ErrorClass: service codes, server faults, timeouts, network errors);
//   - one capped exponential backoff with jitter (Backoff);
//   - one decision per failure (Policy.Decide): retry, fail, or fail as throttled;
//   - one test that tells sporadic throttling (a few entries of a call that otherwise
//     went through, as a busy service answers) from a saturated shard (Policy.Saturated).
//
// The producer and the consumer each expose a Policy through their options; neither
// keeps a table or a backoff of its own.
package retrypolicy

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/aws/smithy-go"
)

// Class is what a failure means.
type Class uint8

const (
	// Unknown is a failure the table does not know: Policy.RetryUnknown decides.
	Unknown Class = iota
	// Transient is an internal error, a timeout or a network failure: retry.
	Transient
	// Throttled is the service saying "slow down": retry, after a longer wait.
	Throttled
	// ExpiredIterator is a shard iterator past its lifetime: get a new one.
	ExpiredIterator
	// Fatal is a failure that retrying cannot fix (bad request, missing stream, no
	// permission, KMS key unusable).
	Fatal
)

// String names the class.
func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Throttled:
		return "throttled"
	case ExpiredIterator:
		return "expired-iterator"
	case Fatal:
		return "fatal"
	}
	return "unknown"
}

// codes is the table: every Kinesis (and AWS common) error code Freshet knows.
var codes = map[string]Class{
	// Throttling.
	"ProvisionedThroughputExceededException": Throttled,
	"ThrottlingException":                    Throttled,
	"Throttling":                             Throttled,
	"LimitExceededException":                 Throttled,
	"RequestLimitExceeded":                   Throttled,
	"SlowDown":                               Throttled,
	"TooManyRequestsException":               Throttled,
	"KMSThrottlingException":                 Throttled,
	"RequestThrottled":                       Throttled,
	"RequestThrottledException":              Throttled,
	// Transient service failures.
	"InternalFailure":             Transient,
	"InternalFailureException":    Transient,
	"InternalError":               Transient,
	"InternalServerError":         Transient,
	"ServiceUnavailable":          Transient,
	"ServiceUnavailableException": Transient,
	"RequestTimeout":              Transient,
	"RequestTimeoutException":     Transient,
	"KMSInternalException":        Transient,
	// Iterators.
	"ExpiredIteratorException": ExpiredIterator,
	// Failures retrying cannot fix.
	"ResourceNotFoundException": Fatal,
	"AccessDeniedException":     Fatal,
	"InvalidArgumentException":  Fatal,
	"ValidationException":       Fatal,
	"KMSAccessDeniedException":  Fatal,
	"KMSDisabledException":      Fatal,
	"KMSNotFoundException":      Fatal,
	"KMSInvalidStateException":  Fatal,
	"KMSOptInRequired":          Fatal,
}

// Classify returns the class of a Kinesis error code ("" and codes not in the table are
// Unknown).
func Classify(code string) Class { return codes[code] }

// ErrorClass classifies the error of a whole call: its service error code when it has
// one the table knows; otherwise a server fault, a timeout of the attempt or a network
// failure is Transient; the caller's own cancellation is Fatal; anything else Unknown.
func ErrorClass(err error) Class {
	if err == nil {
		return Unknown
	}
	if errors.Is(err, context.Canceled) {
		return Fatal
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if c := Classify(ae.ErrorCode()); c != Unknown {
			return c
		}
		if ae.ErrorFault() == smithy.FaultServer {
			return Transient
		}
	}
	var te interface{ Temporary() bool }
	if errors.As(err, &te) && te.Temporary() {
		return Transient
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return Transient
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return Transient
	}
	// Transport failures the SDK wraps without a net.Error (connection reset, EOF).
	msg := err.Error()
	for _, s := range []string{"connection reset", "connection refused", "EOF", "broken pipe", "closed network connection", "send request failed"} {
		if strings.Contains(msg, s) {
			return Transient
		}
	}
	return Unknown
}

// Backoff is a capped exponential backoff with jitter: retry n (0-based) waits a random
// time between half and all of Min*2^n, capped at Max.
type Backoff struct {
	Min, Max time.Duration
}

// Delay returns the wait before retry n (0-based).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Min << min(max(n, 0), 30)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Action is what to do with a failed call or record.
type Action uint8

const (
	// Retry tries again (after a backoff the caller chooses by class).
	Retry Action = iota
	// Fail gives up with the error.
	Fail
	// FailThrottled gives up because the failure was throttling and the policy says so.
	FailThrottled
	// NewIterator gets a new shard iterator and reads on.
	NewIterator
)

// Policy is how failures are retried.
type Policy struct {
	// Backoff is the wait between retries of transient failures.
	Backoff Backoff
	// ThrottleBackoff is the wait between retries of throttled calls; Backoff when zero.
	ThrottleBackoff Backoff
	// FailThrottled fails throttled work at once instead of retrying it.
	FailThrottled bool
	// RetryUnknown retries failures the table does not classify.
	RetryUnknown bool
	// SaturatedShare is the share of a shard's entries in one call that must be throttled
	// for the shard to count as saturated (Saturated), in (0, 1]. Below it, throttled
	// entries are retried at once and the shard's rate is left alone.
	SaturatedShare float64
}

// Decide returns what to do with a failure of class c.
func (p Policy) Decide(c Class) Action {
	switch c {
	case Transient:
		return Retry
	case Throttled:
		if p.FailThrottled {
			return FailThrottled
		}
		return Retry
	case ExpiredIterator:
		return NewIterator
	case Fatal:
		return Fail
	}
	if p.RetryUnknown {
		return Retry
	}
	return Fail
}

// Delay returns the wait before retry n (0-based) of a failure of class c.
func (p Policy) Delay(c Class, n int) time.Duration {
	if c == Throttled && p.ThrottleBackoff != (Backoff{}) {
		return p.ThrottleBackoff.Delay(n)
	}
	return p.Backoff.Delay(n)
}

// MinSustained is the fewest failures of a shard that Saturated counts as sustained:
// below it, failures are retried at once whatever their share.
const MinSustained = 3

// Saturated reports whether a shard that was sent sent entries over a recent window and
// failed failed of them (throttled or otherwise) fails in a sustained way (at its limit,
// or broken) rather than sporadically: whether at least MinSustained failed and the
// failed share reached SaturatedShare (1 when outside (0, 1]).
func (p Policy) Saturated(sent, failed int) bool {
	if failed < MinSustained || sent <= 0 {
		return false
	}
	share := p.SaturatedShare
	if share <= 0 || share > 1 {
		share = 1
	}
	return float64(failed) >= share*float64(sent)
}
