//go:build unix

package queue

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The test binary runs as a queue consumer process when these are set (see
// consumerProcess).
const (
	envChild    = "FRESHET_QUEUE_CONSUMER"
	envEndpoint = "FRESHET_QUEUE_ENDPOINT"
	envQueue    = "FRESHET_QUEUE_ARN"
	envLog      = "FRESHET_QUEUE_LOG"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(consumerProcess())
	}
	os.Exit(m.Run())
}

// failingRecord is the 1% of records the processes' handler always fails.
func failingRecord(data []byte) bool {
	n, _ := strconv.Atoi(string(data))
	return n%100 == 42
}

// consumerProcess consumes the queue until SIGTERM, writing the data of every record
// its handler processed successfully to the log file, one line each, before returning
// (so before the acknowledgement).
func consumerProcess() int {
	f, err := os.OpenFile(os.Getenv(envLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	k := kinesis.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(os.Getenv(envEndpoint)),
		Credentials: credentials.NewStaticCredentialsProvider("freshet", "freshet", "")})
	c, err := New(k, os.Getenv(envQueue), WithWaitTime(time.Second), WithVisibilityTimeout(2*time.Second),
		WithMaxInFlight(100), WithHandlers(16), WithReceivers(8), WithShutdownTimeout(10*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err = c.Run(ctx, func(_ context.Context, r *Record) error {
		if failingRecord(r.Data) {
			return errors.New("this record always fails")
		}
		_, err := f.Write(append(append([]byte(nil), r.Data...), '\n'))
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// logTail reads a process's log as it grows, counting records per data.
type logTail struct {
	path string
	f    *os.File
	rest []byte
}

// read adds the complete lines written since the last read to into.
func (l *logTail) read(t *testing.T, into map[string]int) {
	t.Helper()
	if l.f == nil {
		f, err := os.Open(l.path)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		l.f = f
		t.Cleanup(func() { f.Close() })
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := l.f.Read(buf)
		l.rest = append(l.rest, buf[:n]...)
		if n == 0 || err != nil {
			break
		}
	}
	for {
		i := bytes.IndexByte(l.rest, '\n')
		if i < 0 {
			break
		}
		if i > 0 {
			into[string(l.rest[:i])]++
		}
		l.rest = l.rest[i+1:]
	}
}

// readLog counts the records of a process's log.
func readLog(t *testing.T, path string, into map[string]int) {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			into[line]++
		}
	}
}

// TestThreeProcessesOneKilled: 100,000 records consumed by three consumer processes
// (this test binary re-executed), one of them killed with SIGKILL mid-run. Every record
// is processed at least once; a record is processed twice only if the killed process
// had it in flight. The 1% of records the handler always fails end, exactly, as
// dead-letter records after MaxReceiveCount receives; restored, they are processed again.
func TestThreeProcessesOneKilled(t *testing.T) {
	const n = 100_000
	f := newFixture(t, 4, &types.QueueAttributes{VisibilityTimeoutSeconds: aws.Int32(2),
		DeadLetterConfiguration: &types.DeadLetterConfiguration{TargetType: types.TargetTypeBuiltIn, MaxReceiveCount: aws.Int32(3)}})
	f.put(t, n)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logs := make([]string, 3)
	procs := make([]*exec.Cmd, 3)
	for i := range procs {
		logs[i] = filepath.Join(dir, "consumer"+strconv.Itoa(i)+".log")
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), envChild+"=1", envEndpoint+"="+f.e.URL(), envQueue+"="+f.arn, envLog+"="+logs[i])
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = cmd
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	tails := make([]*logTail, len(logs))
	for i, l := range logs {
		tails[i] = &logTail{path: l}
	}
	processed := make(map[string]int, n)
	count := func() map[string]int {
		for _, tl := range tails {
			tl.read(t, processed)
		}
		time.Sleep(100 * time.Millisecond) // poll the logs ten times a second at most
		return processed
	}
	// Kill process 0 once the three have processed a fifth of the records.
	waitFor(t, "20,000 records processed", 5*time.Minute, func() bool { return len(count()) >= n/5 })
	if err := procs[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = procs[0].Wait()
	killed := map[string]int{}
	readLog(t, logs[0], killed)
	// Everything else is processed by the survivors; the failing 1% become dead letters.
	const failing = n / 100
	waitFor(t, "all records processed and the failing ones dead-lettered", 5*time.Minute, func() bool {
		q := f.stats(t)
		return len(count()) == n-failing && q.DeadLetter == failing && q.Loaded == failing
	})
	for _, p := range procs[1:] {
		if err := p.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range procs[1:] {
		if err := p.Wait(); err != nil {
			t.Fatalf("consumer %d exited with %v after SIGTERM", i+1, err)
		}
	}
	all := count()
	dups := 0
	for i := 0; i < n; i++ {
		d := strconv.Itoa(i)
		c := all[d]
		switch {
		case failingRecord([]byte(d)):
			if c != 0 {
				t.Fatalf("failing record %s was logged as processed", d)
			}
		case c == 0:
			t.Fatalf("record %s never processed", d)
		case c > 1:
			dups++
			if killed[d] == 0 {
				t.Fatalf("record %s processed %d times but never by the killed process: a duplicate outside the kill", d, c)
			}
		}
	}
	// The killed process held at most 100 records (WithMaxInFlight) and processed
	// at most that many without their acknowledgement reaching the queue.
	if dups > 100 {
		t.Fatalf("%d duplicates, more than the killed process could hold in flight", dups)
	}
	t.Logf("%d records processed by the killed process before the kill, %d processed again after it", len(killed), dups)

	dl, err := NewDeadLetters(f.k, f.arn)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := dl.Receive(f.ctx, 10*failing, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range recs {
		if !failingRecord(r.Data) {
			t.Fatalf("dead letter %q is not a failing record", r.Data)
		}
		got[string(r.Data)] = true
	}
	if len(got) != failing || len(recs) != failing {
		t.Fatalf("%d dead letters (%d distinct), want exactly the %d failing records", len(recs), len(got), failing)
	}
	if refused, err := dl.Restore(f.ctx, recs); err != nil || len(refused) != 0 {
		t.Fatalf("restore: %v, %d refused", err, len(refused))
	}
	fixed, err := New(f.k, f.arn, WithWaitTime(0))
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	stop := runConsumer(t, fixed, func(_ context.Context, r *Record) error {
		if !failingRecord(r.Data) {
			return fmt.Errorf("record %s delivered again after it was acknowledged", r.Data)
		}
		s.add(r)
		return nil
	})
	waitFor(t, "restored records processed", time.Minute, func() bool { return fixed.Stats().Acknowledged == failing })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s.distinct() != failing || fixed.Stats().Failed != 0 {
		t.Fatalf("restored: %d processed, %+v", s.distinct(), fixed.Stats())
	}
	if q := f.stats(t); q.Loaded != 0 {
		t.Fatalf("queue still holds %+v", q)
	}
}
