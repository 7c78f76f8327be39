package retrypolicy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/aws/smithy-go"
)

func TestClassifyTable(t *testing.T) {
	tests := []struct {
		code string
		want Class
	}{
		{"ProvisionedThroughputExceededException", Throttled},
		{"KMSThrottlingException", Throttled},
		{"LimitExceededException", Throttled},
		{"SlowDown", Throttled},
		{"InternalFailure", Transient},
		{"ServiceUnavailable", Transient},
		{"KMSInternalException", Transient},
		{"ExpiredIteratorException", ExpiredIterator},
		{"ResourceNotFoundException", Fatal},
		{"AccessDeniedException", Fatal},
		{"KMSDisabledException", Fatal},
		{"ValidationException", Fatal},
		{"ResourceInUseException", Unknown},
		{"SomethingNew", Unknown},
		{"", Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := Classify(tt.code); got != tt.want {
				t.Fatalf("Classify(%q) = %v, want %v", tt.code, got, tt.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return false }

type statusErr struct{ code int }

func (e statusErr) Error() string       { return fmt.Sprintf("status %d", e.code) }
func (e statusErr) HTTPStatusCode() int { return e.code }

func TestErrorClass(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, Unknown},
		{"throttling code", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}, Throttled},
		{"wrapped code", fmt.Errorf("op: %w", &smithy.GenericAPIError{Code: "ExpiredIteratorException"}), ExpiredIterator},
		{"unknown server fault", &smithy.GenericAPIError{Code: "Weird", Fault: smithy.FaultServer}, Transient},
		{"unknown client fault", &smithy.GenericAPIError{Code: "Weird", Fault: smithy.FaultClient}, Unknown},
		{"fatal code", &smithy.GenericAPIError{Code: "ResourceNotFoundException"}, Fatal},
		{"net error", &net.OpError{Op: "dial", Err: timeoutErr{}}, Transient},
		{"deadline", context.DeadlineExceeded, Transient},
		{"canceled", context.Canceled, Fatal},
		{"5xx", statusErr{503}, Transient},
		{"4xx", statusErr{400}, Unknown},
		{"EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), Transient},
		{"other", errors.New("boom"), Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorClass(tt.err); got != tt.want {
				t.Fatalf("ErrorClass(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		p    Policy
		c    Class
		want Action
	}{
		{Policy{}, Transient, Retry},
		{Policy{}, Throttled, Retry},
		{Policy{FailThrottled: true}, Throttled, FailThrottled},
		{Policy{FailThrottled: true}, Transient, Retry},
		{Policy{}, ExpiredIterator, NewIterator},
		{Policy{}, Fatal, Fail},
		{Policy{RetryUnknown: true}, Fatal, Fail},
		{Policy{}, Unknown, Fail},
		{Policy{RetryUnknown: true}, Unknown, Retry},
	}
	for _, tt := range tests {
		if got := tt.p.Decide(tt.c); got != tt.want {
			t.Errorf("%+v.Decide(%v) = %v, want %v", tt.p, tt.c, got, tt.want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for n := 0; n < 40; n++ {
		lo := min(10*time.Millisecond<<min(n, 3), 80*time.Millisecond) / 2
		for i := 0; i < 50; i++ {
			d := b.Delay(n)
			if d < lo || d > 80*time.Millisecond {
				t.Fatalf("Delay(%d) = %v outside [%v, 80ms]", n, d, lo)
			}
		}
	}
	if d := (Backoff{}).Delay(3); d != 0 {
		t.Fatalf("zero backoff waits %v", d)
	}
	p := Policy{Backoff: Backoff{Min: time.Millisecond, Max: time.Millisecond}, ThrottleBackoff: Backoff{Min: time.Second, Max: time.Second}}
	if d := p.Delay(Throttled, 0); d < 500*time.Millisecond {
		t.Fatalf("throttled delay %v does not use the throttle backoff", d)
	}
	if d := p.Delay(Transient, 0); d > time.Millisecond {
		t.Fatalf("transient delay %v does not use the backoff", d)
	}
}

func TestSaturated(t *testing.T) {
	p := Policy{SaturatedShare: 0.5}
	tests := []struct {
		sent, failed int
		want         bool
	}{
		{0, 0, false},
		{1, 1, false}, // one failure is never sustained
		{2, 2, false},
		{3, 3, true},
		{100, 5, false}, // 5% at random
		{100, 49, false},
		{100, 50, true},
		{500, 450, true},
	}
	for _, tt := range tests {
		if got := p.Saturated(tt.sent, tt.failed); got != tt.want {
			t.Errorf("Saturated(%d, %d) = %v, want %v", tt.sent, tt.failed, got, tt.want)
		}
	}
	if (Policy{}).Saturated(10, 9) || !(Policy{}).Saturated(10, 10) {
		t.Error("a zero share must mean all entries")
	}
}
