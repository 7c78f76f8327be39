// Package cli holds what the command-line tools under cmd/ share about their command
// lines: the usage error that makes a tool exit with status 2, and the exit status and
// message of a run's outcome. It sits beside the data flow, used only by the tools.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// ErrUsage marks errors caused by the command line; a tool exits with status 2 for them.
var ErrUsage = errors.New("usage")

// usageError is a command-line error with its message.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return ErrUsage }

// Usagef returns a command-line error with the formatted message; it wraps ErrUsage.
func Usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// ExitCode reports a tool's run outcome on stderr and returns its exit status: 0 for
// success or a help request (flag.ErrHelp), 2 with a pointer to the usage for a
// command-line error (ErrUsage), 1 for any other error.
func ExitCode(tool string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintln(stderr, tool+":", err)
		fmt.Fprintf(stderr, "run '%s -h' for usage\n", tool)
		return 2
	default:
		fmt.Fprintln(stderr, tool+":", err)
		return 1
	}
}
