package cli

import (
	"errors"
	"testing"
)

func TestUsagefWrapsErrUsage(t *testing.T) {
	err := Usagef("--max %d: must be positive", -1)
	if !errors.Is(err, ErrUsage) || err.Error() != "--max -1: must be positive" {
		t.Fatalf("Usagef gave %q (wraps ErrUsage: %v)", err, errors.Is(err, ErrUsage))
	}
}
