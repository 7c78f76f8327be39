// Package fault injects failures into the bundled engine's request handling so tests can
// prove that Freshet survives them: service errors at a given rate, added latency, and
// connections dropped before or after the operation took effect.
//
// Rules are keyed by "<Service>.<Operation>" (for example "Kinesis.PutRecords" or
// "DynamoDB.UpdateItem"), by "<Service>.*", or by "*". The most specific rule wins.
package fault

import (
	"math/rand"
	"sync"
	"time"
)

// Rule describes the faults applied to one operation.
type Rule struct {
	// ErrorRate is the probability in [0, 1] that a call fails with ErrorCode before it
	// takes effect.
	ErrorRate float64
	// ErrorCode is the service error type returned (the "__type"), for example
	// "InternalFailure" or "ProvisionedThroughputExceededException".
	ErrorCode string
	// ErrorMessage is the message sent with ErrorCode; a generic one is used when empty.
	ErrorMessage string
	// StatusCode is the HTTP status sent with ErrorCode; 400 when zero, except for
	// internal errors, which default to 500.
	StatusCode int
	// Latency is added before the call is handled.
	Latency time.Duration
	// DropRate is the probability that the connection is closed without a response
	// before the call takes effect.
	DropRate float64
	// DropAfterRate is the probability that the call takes effect and then the connection
	// is closed without a response, the case that makes clients retry a call that succeeded.
	DropAfterRate float64
}

// Action is what the engine does for one call.
type Action struct {
	Latency    time.Duration
	Drop       bool
	DropAfter  bool
	ErrorCode  string
	ErrMessage string
	StatusCode int
}

// Failing reports whether the call must fail with a service error.
func (a Action) Failing() bool { return a.ErrorCode != "" }

// Injector holds the rules and draws the random decisions. The zero value is not usable;
// call New. It is safe for concurrent use.
type Injector struct {
	mu    sync.Mutex
	rules map[string]Rule
	rng   *rand.Rand
}

// New returns an injector with no rules whose decisions are drawn from seed.
func New(seed int64) *Injector {
	return &Injector{rules: make(map[string]Rule), rng: rand.New(rand.NewSource(seed))}
}

// Set installs rule for key ("Kinesis.PutRecords", "Kinesis.*" or "*").
func (in *Injector) Set(key string, rule Rule) {
	in.mu.Lock()
	in.rules[key] = rule
	in.mu.Unlock()
}

// Clear removes the rule for key.
func (in *Injector) Clear(key string) {
	in.mu.Lock()
	delete(in.rules, key)
	in.mu.Unlock()
}

// Reset removes every rule.
func (in *Injector) Reset() {
	in.mu.Lock()
	in.rules = make(map[string]Rule)
	in.mu.Unlock()
}

// Float64 draws a number in [0, 1) from the injector's source, for services that make
// their own per-entry decisions.
func (in *Injector) Float64() float64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rng.Float64()
}

// Decide returns the action for one call of operation op of service svc.
func (in *Injector) Decide(svc, op string) Action {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.rules) == 0 {
		return Action{}
	}
	rule, ok := in.rules[svc+"."+op]
	if !ok {
		rule, ok = in.rules[svc+".*"]
	}
	if !ok {
		rule, ok = in.rules["*"]
	}
	if !ok {
		return Action{}
	}
	a := Action{Latency: rule.Latency}
	if rule.DropRate > 0 && in.rng.Float64() < rule.DropRate {
		a.Drop = true
		return a
	}
	if rule.ErrorRate > 0 && in.rng.Float64() < rule.ErrorRate {
		a.ErrorCode = rule.ErrorCode
		if a.ErrorCode == "" {
			a.ErrorCode = "InternalFailure"
		}
		a.ErrMessage = rule.ErrorMessage
		if a.ErrMessage == "" {
			a.ErrMessage = "Injected fault: " + a.ErrorCode
		}
		a.StatusCode = rule.StatusCode
		if a.StatusCode == 0 {
			a.StatusCode = 400
			if a.ErrorCode == "InternalFailure" || a.ErrorCode == "InternalServerError" || a.ErrorCode == "ServiceUnavailable" {
				a.StatusCode = 500
			}
		}
		return a
	}
	if rule.DropAfterRate > 0 && in.rng.Float64() < rule.DropAfterRate {
		a.DropAfter = true
	}
	return a
}
