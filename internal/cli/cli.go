// Package cli holds what the command-line tools under cmd/ share about their command
// lines: the usage error that makes a tool exit with status 2. It sits beside the data
// flow, used only by the tools.
package cli

import (
	"errors"
	"fmt"
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
