// Package cli holds what the command-line tools under cmd/ share about their command
// lines: parsing the global flags and finding the command, the usage error that makes a
// tool exit with status 2, and the exit status and message of a run's outcome. It sits beside the data flow, used only by the tools.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/freshet/freshet/internal/awsconfig"
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

// Command parses a tool's global flags (registered by register) from args and returns
// the command named after them and that command's arguments. The usage, written to
// stderr for -h, help or a missing command, is usage followed by the flags' defaults;
// want lists the commands for the error messages ("list or replay"). It returns an
// empty command and a nil error after printing the usage for help, flag.ErrHelp for
// -h, and an error wrapping ErrUsage for a bad flag or a missing command.
func Command(tool, usage, want string, args []string, stderr io.Writer, register func(*flag.FlagSet)) (string, []string, error) {
	fs := flag.NewFlagSet(tool, flag.ContinueOnError)
	fs.SetOutput(stderr)
	register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nRun '%s <command> -h' for the flags of a command.\n", tool)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", nil, err
		}
		return "", nil, Usagef("%v", err)
	}
	rest := fs.Args()
	switch {
	case len(rest) == 0:
		fs.Usage()
		return "", nil, Usagef("no command given (want %s)", want)
	case rest[0] == "help":
		fs.Usage()
		return "", nil, nil
	}
	return rest[0], rest[1:], nil
}

// ParseCommand parses the flags of the command name (registered on fs) from args,
// which must hold flags only. It returns flag.ErrHelp for -h and an error wrapping
// ErrUsage, prefixed with name, for a bad flag or a positional argument.
func ParseCommand(fs *flag.FlagSet, name string, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return Usagef("%s: %v", name, err)
	}
	if fs.NArg() > 0 {
		return Usagef("%s: unexpected argument %q", name, fs.Arg(0))
	}
	return nil
}

// UnknownCommand returns the usage error for a command the tool does not have.
func UnknownCommand(name, want string) error {
	return Usagef("unknown command %q (want %s)", name, want)
}

// CheckConnection checks the --endpoint and --timeout flags the AWS tools share; its
// errors wrap ErrUsage.
func CheckConnection(endpoint string, timeout time.Duration) error {
	if err := awsconfig.ValidateEndpoint(endpoint); err != nil {
		return Usagef("--%v", err)
	}
	if timeout <= 0 {
		return Usagef("--timeout %v: must be positive", timeout)
	}
	return nil
}
