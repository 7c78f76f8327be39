// Package examples_test builds the example programs and runs them against the bundled
// engine, so the README's samples keep compiling and working.
package examples_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
)

func build(t *testing.T, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// TestProducerAndConsumerExamples writes lines with examples/producer and reads them
// back with examples/consumer through the engine.
func TestProducerAndConsumerExamples(t *testing.T) {
	dir := t.TempDir()
	prodBin := build(t, dir, "github.com/freshet/freshet/examples/producer")
	consBin := build(t, dir, "github.com/freshet/freshet/examples/consumer")

	e := enginetest.Start(t, engine.Config{})
	if err := e.Streams.CreateStream("lines", 2); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	lines := []string{"alice hello", "bob hi there", "carol good morning", "alice again", " leading space"}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prod := exec.CommandContext(ctx, prodBin, "--stream", "lines", "--endpoint", e.URL())
	prod.Env = env
	prod.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := prod.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "stored 5 records, 0 failed") {
		t.Fatalf("producer: %v\n%s", err, out)
	}

	cons := exec.CommandContext(ctx, consBin, "--stream", "lines", "--app", "lines-app", "--endpoint", e.URL())
	cons.Env = env
	stdout, err := cons.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cons.Stderr = os.Stderr
	if err := cons.Start(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for len(seen) < len(lines) && sc.Scan() {
		_, data, ok := strings.Cut(sc.Text(), ": ")
		if ok {
			seen[data] = true
		}
	}
	_ = cons.Process.Signal(os.Interrupt)
	if err := cons.Wait(); err != nil {
		t.Errorf("consumer after interrupt: %v", err)
	}
	for _, l := range lines {
		if !seen[l] {
			t.Errorf("consumer did not print %q (saw %v)", l, seen)
		}
	}
}

// TestPoisonExample runs examples/poison: the poison order is the only record in the
// destination stream, with its metadata, and every other order is handled once.
func TestPoisonExample(t *testing.T) {
	bin := build(t, t.TempDir(), "github.com/freshet/freshet/examples/poison")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-orders", "300", "-poison", "42", "-lanes", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("poison: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		"wrote 300 orders to stream orders; order-42 is poison",
		"handled 299 orders (0 more than once)",
		"1 records sent to the destination",
		"destination stream orders-dlq holds 1 record(s):",
		"order-42 amount=twelve from orders/shardId-",
		"reason MaxAttempts after ",
		`bad amount: strconv.Atoi: parsing \"twelve\"`,
		`"reason":"MaxAttempts"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "document: ") != 1 {
		t.Errorf("want exactly one dead letter:\n%s", s)
	}
}
