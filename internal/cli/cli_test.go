package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
)

func TestUsagefWrapsErrUsage(t *testing.T) {
	err := Usagef("--max %d: must be positive", -1)
	if !errors.Is(err, ErrUsage) || err.Error() != "--max -1: must be positive" {
		t.Fatalf("Usagef gave %q (wraps ErrUsage: %v)", err, errors.Is(err, ErrUsage))
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{fmt.Errorf("parse: %w", Usagef("--app is required")), 2, "tool: parse: --app is required\nrun 'tool -h' for usage\n"},
		{errors.New("table not found"), 1, "tool: table not found\n"},
	} {
		var b strings.Builder
		if code := ExitCode("tool", tc.err, &b); code != tc.code || b.String() != tc.stderr {
			t.Errorf("ExitCode(%v) = %d, stderr %q; want %d, %q", tc.err, code, b.String(), tc.code, tc.stderr)
		}
	}
}
