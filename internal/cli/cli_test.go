package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
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

func TestCommand(t *testing.T) {
	parse := func(args ...string) (string, []string, string, error) {
		var region string
		var stderr bytes.Buffer
		name, rest, err := Command("tool", "usage: tool [flags] <command>\n", "a or b", args, &stderr,
			func(fs *flag.FlagSet) { fs.StringVar(&region, "region", "", "the region") })
		if region != "" && err == nil {
			rest = append([]string{"region=" + region}, rest...)
		}
		return name, rest, stderr.String(), err
	}
	name, rest, _, err := parse("-region", "eu-west-1", "a", "-x", "y")
	if err != nil || name != "a" || strings.Join(rest, " ") != "region=eu-west-1 -x y" {
		t.Fatalf("got %q %q %v, want command a with its arguments after the global flag", name, rest, err)
	}
	if _, _, out, err := parse(); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "want a or b") || !strings.Contains(out, "usage: tool") {
		t.Fatalf("no command: %v, usage %q", err, out)
	}
	if name, _, out, err := parse("help"); err != nil || name != "" || !strings.Contains(out, "-region") {
		t.Fatalf("help: %q %v, usage %q", name, err, out)
	}
	if _, _, _, err := parse("-h"); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	if _, _, _, err := parse("-nosuch", "a"); !errors.Is(err, ErrUsage) {
		t.Fatalf("bad flag: %v, want ErrUsage", err)
	}
	if err := UnknownCommand("c", "a or b"); !errors.Is(err, ErrUsage) || err.Error() != `unknown command "c" (want a or b)` {
		t.Fatalf("UnknownCommand: %v", err)
	}
}

func TestParseCommand(t *testing.T) {
	parse := func(args ...string) (int, error) {
		fs := flag.NewFlagSet("tool list", flag.ContinueOnError)
		fs.SetOutput(new(bytes.Buffer))
		n := fs.Int("n", 1, "how many")
		err := ParseCommand(fs, "list", args)
		return *n, err
	}
	if n, err := parse("-n", "3"); err != nil || n != 3 {
		t.Fatalf("ParseCommand(-n 3) = %d, %v; want 3, nil", n, err)
	}
	if _, err := parse("-h"); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("ParseCommand(-h) = %v, want flag.ErrHelp", err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-n", "x"}, `list: invalid value "x" for flag -n: parse error`},
		{[]string{"-m"}, "list: flag provided but not defined: -m"},
		{[]string{"-n", "2", "extra"}, `list: unexpected argument "extra"`},
	} {
		_, err := parse(tc.args...)
		if !errors.Is(err, ErrUsage) || err.Error() != tc.msg {
			t.Errorf("ParseCommand(%q) = %v, want a usage error %q", tc.args, err, tc.msg)
		}
	}
}

func TestCheckConnection(t *testing.T) {
	if err := CheckConnection("", time.Second); err != nil {
		t.Errorf("no endpoint, 1s: %v", err)
	}
	if err := CheckConnection("http://127.0.0.1:4566", time.Second); err != nil {
		t.Errorf("loopback endpoint: %v", err)
	}
	for _, tc := range []struct {
		endpoint string
		timeout  time.Duration
		want     string
	}{
		{"", 0, "--timeout 0s: must be positive"},
		{"", -time.Second, "--timeout -1s: must be positive"},
		{"127.0.0.1:4566", time.Second, "--endpoint"},
	} {
		err := CheckConnection(tc.endpoint, tc.timeout)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckConnection(%q, %v) = %v; want a usage error with %q", tc.endpoint, tc.timeout, err, tc.want)
		}
	}
}
