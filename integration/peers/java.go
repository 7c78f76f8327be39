package peers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Java peers are our own small programs on the real Java KCL 3.x and KPL, built from
// integration/java by `make java` (Maven, dependencies from Maven Central in
// integration/java/.m2). StartKCL runs a KCL application worker and RunKPL a KPL
// producer, each as a process of its own process group, stopped when the test ends. A
// missing JDK or build fails the test when CI is set, and skips it loudly otherwise.

// JavaDir returns the absolute path of integration/java.
func JavaDir() string { return filepath.Join(filepath.Dir(Dir()), "java") }

// javaOptions keep the JVMs' stderr (kept in the tail buffer for failure messages) to
// warnings and errors, but for the shard detector's debug lines, which name a shard its
// cache lacks (shardUnknown).
var javaOptions = []string{"-Xmx768m", "-XX:+UseParallelGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
	"-Dorg.slf4j.simpleLogger.log.software.amazon.kinesis.leases.KinesisShardDetector=debug",
	"-Daws.java.v1.disableDeprecationAnnouncement=true"}

// shardUnknown starts the line Java KCL's shard detector logs when a ProcessTask asks it
// for a shard its cached shard list lacks. The task then de-aggregates its batch without
// the shard's hash key range, so an aggregate straddling the range is delivered whole.
// The cache is refreshed on such a miss only once it is older than
// listShardsCacheAllowedAgeInSeconds (30 s) or after maxCacheMissesBeforeReload (1,000)
// misses, so a worker that listed shards shortly before a split reads the new children
// unfiltered for a while.
const shardUnknown = "Cannot find the shard given the shardId "

// requireJava returns java's path and the classpath of module (kcl or kpl), or fails or
// skips the test.
func requireJava(t testing.TB, module string) (string, string) {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		missingJava(t, "java is not on PATH")
	}
	dir := filepath.Join(JavaDir(), module, "target")
	cp, err := os.ReadFile(filepath.Join(dir, "classpath.txt"))
	if err != nil {
		missingJava(t, "integration/java is not built ("+err.Error()+")")
	}
	return java, filepath.Join(dir, "classes") + string(os.PathListSeparator) + strings.TrimSpace(string(cp))
}

func missingJava(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("PEER MISSING: Java KCL/KPL: %s; CI is set, so this is a failure. Fix: install a JDK (17+) and Maven, then run `make java`", why)
	}
	t.Skipf("PEER MISSING: Java KCL/KPL: %s. This test did NOT run; install a JDK (17+) and Maven and run `make java` to enable it", why)
}

// KCLConfig configures one Java KCL worker (dev.freshet.javapeers.KclApp).
type KCLConfig struct {
	// WorkerID and App are the KCL worker identifier and application name.
	WorkerID, App string
	// Stream is the stream name; Endpoint the engine's HTTPS URL (Engine.TLSURL).
	Stream, Endpoint string
	// ThreeTable selects the three-table layout of KCL 3.0-3.4 (the app creates
	// app-CoordinatorState and app-WorkerMetricStats first); single-table otherwise.
	ThreeTable bool
	// FanOut selects enhanced fan-out (SubscribeToShard over HTTP/2); polling otherwise.
	FanOut bool
	// FailoverTime, LeaderLease and MetricsReport set KCL's failoverTimeMillis, the leader
	// lock's lease duration and workerMetricsReporterFreqInMillis; 10 s, 10 s and 30 s (KCL's
	// report default) when zero.
	FailoverTime, LeaderLease, MetricsReport time.Duration
	// LeaderPoll, when positive, has the worker ask its leader decider that often whether
	// it leads and report "leader" and "leader-end" events (Shard "-") as the answer
	// changes.
	LeaderPoll time.Duration
	// RefreshShardsOnMiss sets KCL's maxCacheMissesBeforeReload to 0: the worker lists
	// the shards again the first time it reads a shard its cached list lacks, and so
	// filters a new child shard's aggregates by the child's hash key range from its first
	// batch (docs/java-migration.md recommends it for a mixed fleet). KCL's default, 1,000
	// misses, otherwise.
	RefreshShardsOnMiss bool
}

// JavaRecord is one user record a Java KCL worker delivered.
type JavaRecord struct {
	Worker, Shard, Sequence string
	SubSequence             int64
	PartitionKey            string
	Data                    []byte
}

// JavaEvent is a lifecycle event of a Java KCL worker's shard processor: init,
// checkpoint, checkpoint-failed, lease-lost, shard-ended, shutdown-requested; ready,
// stopped, leader and leader-end for the worker itself (Shard "-"); and shard-unknown,
// from the worker's log, the first time its KCL read a batch of the shard without
// knowing the shard's hash key range (shardUnknown).
type JavaEvent struct {
	Worker, Event, Shard string
	At                   time.Time
	Detail               string
}

// KCLWorker is a running worker process that reports in KclApp's output format: a Java
// KCL worker (StartKCL) or any other worker speaking it (StartWorkerProcess).
type KCLWorker struct {
	Config KCLConfig

	cmd   *exec.Cmd
	stdin io.WriteCloser
	errs  *tailBuffer
	done  chan struct{}
	err   error

	mu      sync.Mutex
	records []JavaRecord
	events  []JavaEvent
	bad     []string
}

func ms(d, def time.Duration) string {
	if d == 0 {
		d = def
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// StartKCL starts a Java KCL worker and returns once it has built its scheduler (its
// "ready" event); the worker is stopped gracefully when the test ends.
func StartKCL(t testing.TB, cfg KCLConfig) *KCLWorker {
	t.Helper()
	java, cp := requireJava(t, "kcl")
	layout, mode := "single-table", "polling"
	if cfg.ThreeTable {
		layout = "three-table"
	}
	if cfg.FanOut {
		mode = "fanout"
	}
	args := append(append([]string{}, javaOptions...), "-cp", cp, "dev.freshet.javapeers.KclApp",
		"--worker-id", cfg.WorkerID, "--app", cfg.App, "--stream", cfg.Stream, "--endpoint", cfg.Endpoint,
		"--layout", layout, "--mode", mode,
		"--failover-ms", ms(cfg.FailoverTime, 10*time.Second),
		"--leader-lease-ms", ms(cfg.LeaderLease, 10*time.Second),
		"--metrics-report-ms", ms(cfg.MetricsReport, 30*time.Second),
		"--leader-poll-ms", strconv.FormatInt(max(0, cfg.LeaderPoll.Milliseconds()), 10),
		"--shard-sync-ms", "1000", "--idle-read-ms", "100", "--exit-on-stdin-eof", "true")
	if cfg.RefreshShardsOnMiss {
		args = append(args, "--max-cache-misses", "0")
	}
	return startWorker(t, cfg, exec.Command(java, args...))
}

// StartWorkerProcess starts cmd as a worker process named id that writes KclApp's output
// lines (REC and EVT, tab-separated, a "ready" event once started) on stdout, stops
// gracefully on SIGTERM and exits when its stdin ends; it returns once the process is
// ready. Integration tests run Freshet workers as processes with it, beside Java ones.
func StartWorkerProcess(t testing.TB, id string, cmd *exec.Cmd) *KCLWorker {
	t.Helper()
	return startWorker(t, KCLConfig{WorkerID: id}, cmd)
}

func startWorker(t testing.TB, cfg KCLConfig, cmd *exec.Cmd) *KCLWorker {
	t.Helper()
	w := &KCLWorker{Config: cfg, cmd: cmd, errs: &tailBuffer{max: logTail}, done: make(chan struct{})}
	setProcessGroup(w.cmd)
	var err error
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.cmd.Stderr = &logLines{tail: w.errs, line: w.logLine}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start worker %s: %v", cfg.WorkerID, err)
	}
	ready := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var once sync.Once
		for sc.Scan() {
			if w.parse(sc.Text()) == "ready" {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() {
		<-copied
		w.err = w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() { w.Stop(t) })
	select {
	case <-ready:
	case <-w.done:
		t.Fatalf("worker %s exited before it was ready: %v\nstderr:\n%s", cfg.WorkerID, w.err, w.Stderr())
	case <-time.After(startTimeout):
		t.Fatalf("worker %s not ready within %v\nstderr:\n%s", cfg.WorkerID, startTimeout, w.Stderr())
	}
	return w
}

// parse records one output line and returns its event name ("" for a record).
func (w *KCLWorker) parse(line string) string {
	f := strings.Split(line, "\t")
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case len(f) == 7 && f[0] == "REC":
		sub, err1 := strconv.ParseInt(f[4], 10, 64)
		data, err2 := base64.StdEncoding.DecodeString(f[6])
		if err1 != nil || err2 != nil {
			w.bad = append(w.bad, line)
			return ""
		}
		w.records = append(w.records, JavaRecord{Worker: f[1], Shard: f[2], Sequence: f[3], SubSequence: sub, PartitionKey: f[5], Data: data})
		return ""
	case len(f) >= 5 && f[0] == "EVT":
		at, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			w.bad = append(w.bad, line)
			return ""
		}
		ev := JavaEvent{Worker: f[1], Event: f[2], Shard: f[3], At: time.UnixMilli(at)}
		if len(f) > 5 {
			ev.Detail = f[5]
		}
		w.events = append(w.events, ev)
		return ev.Event
	}
	w.bad = append(w.bad, line)
	return ""
}

// logLine records a shard-unknown event for the first line of the worker's log that
// names a shard missing from its KCL's shard cache.
func (w *KCLWorker) logLine(line string) {
	_, rest, ok := strings.Cut(line, shardUnknown)
	if !ok {
		return
	}
	shard, _, _ := strings.Cut(rest, ".")
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.events {
		if ev.Event == "shard-unknown" && ev.Shard == shard {
			return
		}
	}
	w.events = append(w.events, JavaEvent{Worker: w.Config.WorkerID, Event: "shard-unknown", Shard: shard, At: time.Now()})
}

// logLines writes a process's log to tail and passes each of its complete lines to line.
type logLines struct {
	tail    io.Writer
	line    func(string)
	partial []byte
}

func (l *logLines) Write(p []byte) (int, error) {
	if _, err := l.tail.Write(p); err != nil {
		return 0, err
	}
	l.partial = append(l.partial, p...)
	rest := l.partial
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		l.line(string(rest[:i]))
		rest = rest[i+1:]
	}
	if len(rest) > logTail {
		rest = rest[len(rest)-logTail:]
	}
	l.partial = append(l.partial[:0], rest...)
	return len(p), nil
}

// Records returns the records delivered so far, in delivery order.
func (w *KCLWorker) Records() []JavaRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]JavaRecord(nil), w.records...)
}

// RecordCount returns how many records the worker has delivered so far.
func (w *KCLWorker) RecordCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.records)
}

// CPU returns the CPU time (user and system) the worker's JVM has used so far.
func (w *KCLWorker) CPU() (time.Duration, error) { return processCPU(w.cmd.Process.Pid) }

// Events returns the lifecycle events so far.
func (w *KCLWorker) Events() []JavaEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]JavaEvent(nil), w.events...)
}

// Malformed returns output lines that were neither records nor events (none expected).
func (w *KCLWorker) Malformed() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.bad...)
}

// Stderr returns the last bytes of the worker's log.
func (w *KCLWorker) Stderr() string { return w.errs.String() }

// Exited reports whether the worker's process has exited.
func (w *KCLWorker) Exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// Stop shuts the worker down gracefully (SIGTERM: KCL's graceful shutdown with final
// checkpoints) and waits for it; it kills the process group if it has not exited within
// 90 s, and fails the test then.
func (w *KCLWorker) Stop(t testing.TB) {
	if w.Exited() {
		killGroup(w.cmd, true)
		return
	}
	killGroup(w.cmd, false)
	select {
	case <-w.done:
		killGroup(w.cmd, true)
		_ = w.stdin.Close()
		return
	case <-time.After(90 * time.Second):
	}
	killGroup(w.cmd, true)
	<-w.done
	_ = w.stdin.Close()
	t.Errorf("Java KCL worker %s did not stop within 90 s of SIGTERM\nstderr:\n%s", w.Config.WorkerID, w.Stderr())
}

// Kill ends the worker at once (SIGKILL of its process group) and waits for it.
func (w *KCLWorker) Kill() {
	killGroup(w.cmd, true)
	<-w.done
	_ = w.stdin.Close()
}

// KPLConfig configures one KPL run (dev.freshet.javapeers.KplProducer).
type KPLConfig struct {
	// Stream is the stream name; Endpoint the engine's HTTPS URL (Engine.TLSURL), used for
	// Kinesis, STS and CloudWatch.
	Stream, Endpoint string
	// Records, Keys and Size drive the generator: record i has partition key
	// "k-(i mod Keys)" and data "i:(per-key index):" padded with 'x' to Size bytes.
	Records, Keys, Size int
	// RateLimit is the KPL's RateLimit (percent of a shard's limit); 150 when zero.
	RateLimit int
	// Quiet reports only the totals, not one line per record.
	Quiet bool
}

// KPLOutcome is one record's outcome as the KPL reported it.
type KPLOutcome struct {
	ID             int64
	Shard, Seq     string
	Attempts       int
	Failed         bool
	FailureMessage string
}

// KPLResult is the result of a KPL run.
type KPLResult struct {
	// Outcomes holds one entry per record unless Quiet, in completion order.
	Outcomes []KPLOutcome
	// OK and Failed count the records by outcome.
	OK, Failed int64
	// Wall is the time from the first put to the end of flushSync.
	Wall time.Duration
	// JVMCPU and NativeCPU are the CPU time of the JVM and of the KPL's native daemon.
	JVMCPU, NativeCPU time.Duration
}

// RunKPL runs the KPL producer to the end and returns every record's outcome. The test
// fails if the producer cannot run or reports no totals; failed records are returned,
// not fatal.
func RunKPL(ctx context.Context, t testing.TB, cfg KPLConfig) KPLResult {
	t.Helper()
	java, cp := requireJava(t, "kpl")
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Scheme != "https" || u.Port() == "" {
		t.Fatalf("RunKPL: endpoint %q is not https://host:port", cfg.Endpoint)
	}
	rate := cfg.RateLimit
	if rate == 0 {
		rate = 150
	}
	args := append(append([]string{}, javaOptions...), "-cp", cp, "dev.freshet.javapeers.KplProducer",
		"--stream", cfg.Stream, "--host", u.Hostname(), "--port", u.Port(),
		"--records", strconv.Itoa(cfg.Records), "--keys", strconv.Itoa(cfg.Keys), "--size", strconv.Itoa(cfg.Size),
		"--rate-limit", strconv.Itoa(rate), "--quiet", strconv.FormatBool(cfg.Quiet),
		// Each run extracts the daemon into its own folder, so parallel runs never race.
		"--temp-dir", t.TempDir())
	cmd := exec.CommandContext(ctx, java, args...)
	setProcessGroup(cmd)
	cmd.Cancel = func() error { killGroup(cmd, true); return nil }
	errs := &tailBuffer{max: logTail}
	cmd.Stderr = errs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start KPL producer: %v", err)
	}
	defer killGroup(cmd, true)
	var res KPLResult
	done := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		switch {
		case len(f) == 5 && f[0] == "OK":
			id, _ := strconv.ParseInt(f[1], 10, 64)
			n, _ := strconv.Atoi(f[4])
			res.Outcomes = append(res.Outcomes, KPLOutcome{ID: id, Shard: f[2], Seq: f[3], Attempts: n})
		case len(f) == 3 && f[0] == "FAIL":
			id, _ := strconv.ParseInt(f[1], 10, 64)
			res.Outcomes = append(res.Outcomes, KPLOutcome{ID: id, Failed: true, FailureMessage: f[2]})
		case len(f) == 4 && f[0] == "DONE":
			res.OK, _ = strconv.ParseInt(f[1], 10, 64)
			res.Failed, _ = strconv.ParseInt(f[2], 10, 64)
			wall, _ := strconv.ParseInt(f[3], 10, 64)
			res.Wall = time.Duration(wall) * time.Millisecond
			done = true
		case len(f) == 3 && f[0] == "CPU":
			j, _ := strconv.ParseInt(f[1], 10, 64)
			n, _ := strconv.ParseInt(f[2], 10, 64)
			res.JVMCPU, res.NativeCPU = time.Duration(j)*time.Millisecond, time.Duration(n)*time.Millisecond
		default:
			t.Errorf("KPL producer: unexpected line %q", sc.Text())
		}
	}
	err = cmd.Wait()
	if !done {
		t.Fatalf("KPL producer ended without totals: %v\nstderr:\n%s", err, errs.String())
	}
	if err != nil && res.Failed == 0 {
		t.Fatalf("KPL producer: %v\nstderr:\n%s", err, errs.String())
	}
	return res
}

// String summarises a KPL result.
func (r KPLResult) String() string {
	return fmt.Sprintf("%d ok, %d failed in %v (JVM CPU %v, native daemon CPU %v)", r.OK, r.Failed, r.Wall, r.JVMCPU, r.NativeCPU)
}
