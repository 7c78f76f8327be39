// Package peers starts third-party local AWS look-alikes that nobody on the Freshet team
// wrote, so integration tests can hold Freshet and its bundled engine against them:
// kinesalite (Kinesis), dynalite (DynamoDB), kinesis-local (kinesis-mock built with
// Scala.js) and the aws-kinesis-agg reference aggregation library.
//
// The peers are npm packages pinned in package.json next to this file and installed with
// `make peers` (npm ci here). Each starter launches its peer with node on a free
// 127.0.0.1 port through a small launch script in this directory, waits until it answers a
// real SDK call, and stops the peer's whole process group when the test ends. The launch
// scripts also watch their stdin, so a peer exits on its own when the test binary dies.
//
// A missing peer (node not on PATH, or node_modules not installed) fails the test when the
// CI environment variable is set, and otherwise skips it with a loud "PEER MISSING"
// message: a peer test never passes silently without its peer.
package peers

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

const (
	// startTimeout bounds how long a peer may take to listen and answer its first call.
	startTimeout = 60 * time.Second
	// stopTimeout is how long a peer gets after SIGTERM before it is killed.
	stopTimeout = 5 * time.Second
	// listeningPrefix starts the line a launch script prints once its server listens.
	listeningPrefix = "FRESHET-PEER LISTENING "
	// logTail is how many bytes of a peer's output are kept for failure messages.
	logTail = 16 << 10
)

// Peer is a running third-party server on loopback.
type Peer struct {
	// Name is the npm package name, e.g. "kinesalite".
	Name string
	// URL is the plain-HTTP endpoint, e.g. "http://127.0.0.1:41234", for an SDK client's
	// BaseEndpoint.
	URL string

	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *tailBuffer
	done  chan struct{} // closed when the process has been waited for
	err   error         // the process's exit status, valid after done
}

// AWSConfig returns an aws.Config that points any client at the peer: static credentials,
// region us-east-1, BaseEndpoint = URL, and a retryer suited to tests (three attempts,
// short backoff, no client-side retry quota).
func (p *Peer) AWSConfig() aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("freshet", "freshet", ""),
		BaseEndpoint: aws.String(p.URL),
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 64
			t.MaxIdleConnsPerHost = 64
			// Node closes idle keep-alive connections after 5 s by default; dropping
			// ours first avoids sending a request on a connection being closed.
			t.IdleConnTimeout = 4 * time.Second
		}),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.MaxBackoff = 200 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// Pid returns the peer's process ID (also its process group ID).
func (p *Peer) Pid() int { return p.cmd.Process.Pid }

// Output returns the last bytes the peer wrote to stdout and stderr.
func (p *Peer) Output() string { return p.out.String() }

// Dir returns the absolute path of integration/peers, where the launch scripts,
// package.json and node_modules live.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Dir(file)
}

// ModulesDir returns the absolute path of the peers' node_modules directory.
func ModulesDir() string { return filepath.Join(Dir(), "node_modules") }

// Kinesalite starts kinesalite (Kinesis) with near-zero stream state delays and a shard
// limit of 10,000, and stops it when the test ends.
func Kinesalite(t testing.TB) *Peer {
	t.Helper()
	p := start(t, "kinesalite", []string{filepath.Join(Dir(), "kinesalite.js")}, nil, "http")
	waitReady(t, p, func(ctx context.Context) error {
		_, err := kinesis.NewFromConfig(p.AWSConfig()).ListStreams(ctx, &kinesis.ListStreamsInput{})
		return err
	})
	return p
}

// Dynalite starts dynalite (DynamoDB) with near-zero table state delays, and stops it when
// the test ends.
func Dynalite(t testing.TB) *Peer {
	t.Helper()
	p := start(t, "dynalite", []string{filepath.Join(Dir(), "dynalite.js")}, nil, "http")
	waitReady(t, p, func(ctx context.Context) error {
		_, err := dynamodb.NewFromConfig(p.AWSConfig()).ListTables(ctx, &dynamodb.ListTablesInput{})
		return err
	})
	return p
}

// KinesisLocal starts kinesis-local (kinesis-mock in Scala.js) over plain HTTP with
// near-zero state transition delays, and stops it when the test ends.
func KinesisLocal(t testing.TB) *Peer {
	t.Helper()
	main := filepath.Join(ModulesDir(), "kinesis-local", "main.js")
	// The port numbers only tag the two listeners for loopback.js, which binds each
	// to a free 127.0.0.1 port instead.
	env := []string{
		"KINESIS_MOCK_PLAIN_PORT=1",
		"KINESIS_MOCK_TLS_PORT=2",
		"KINESIS_MOCK_CERT_PATH=" + filepath.Join(ModulesDir(), "kinesis-local", "server.json"),
		"LOG_LEVEL=ERROR",
		"ROOT_LOG_LEVEL=ERROR",
		"SHOULD_PERSIST_DATA=false",
		"LOAD_DATA_IF_EXISTS=false",
		"SHARD_LIMIT=10000",
		"ON_DEMAND_STREAM_COUNT_LIMIT=100",
		"AWS_REGION=us-east-1",
	}
	for _, v := range []string{
		"CREATE_STREAM_DURATION", "DELETE_STREAM_DURATION",
		"REGISTER_STREAM_CONSUMER_DURATION", "DEREGISTER_STREAM_CONSUMER_DURATION",
		"START_STREAM_ENCRYPTION_DURATION", "STOP_STREAM_ENCRYPTION_DURATION",
		"MERGE_SHARDS_DURATION", "SPLIT_SHARD_DURATION",
		"UPDATE_SHARD_COUNT_DURATION", "UPDATE_STREAM_MODE_DURATION",
	} {
		env = append(env, v+"=0ms")
	}
	p := start(t, "kinesis-local",
		[]string{"-r", filepath.Join(Dir(), "loopback.js"), main}, env, "plain")
	waitReady(t, p, func(ctx context.Context) error {
		_, err := kinesis.NewFromConfig(p.AWSConfig()).ListStreams(ctx, &kinesis.ListStreamsInput{})
		return err
	})
	return p
}

// NodeScript runs `node script args...` with NODE_PATH set to the peers' node_modules,
// feeds it stdin, and returns its stdout. A relative script path is resolved against the
// test's working directory, then against Dir. The test fails if the script fails.
func NodeScript(t testing.TB, script string, stdin []byte, args ...string) []byte {
	t.Helper()
	node := requireNode(t, "node script "+filepath.Base(script))
	if !filepath.IsAbs(script) {
		if _, err := os.Stat(script); err != nil {
			script = filepath.Join(Dir(), script)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+ModulesDir())
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s %s: %v\nstderr:\n%s", script, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// missing fails (CI) or loudly skips the test because peer cannot run.
func missing(t testing.TB, peer, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("PEER MISSING: %s: %s; CI is set, so this is a failure. Fix: run `make peers` (npm ci in %s) on a machine with Node.js", peer, why, Dir())
	}
	t.Skipf("PEER MISSING: %s: %s. This test did NOT run; run `make peers` (npm ci in %s) to enable it", peer, why, Dir())
}

// requireNode returns node's path, or fails or skips the test when node or the installed
// node_modules are missing.
func requireNode(t testing.TB, peer string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, peer, "node is not on PATH")
	}
	if _, err := os.Stat(ModulesDir()); err != nil {
		missing(t, peer, "node_modules is not installed in integration/peers")
	}
	return node
}

// requirePackage is requireNode plus a check that the npm package is installed.
func requirePackage(t testing.TB, pkg string) string {
	t.Helper()
	node := requireNode(t, pkg)
	if _, err := os.Stat(filepath.Join(ModulesDir(), pkg, "package.json")); err != nil {
		missing(t, pkg, "npm package "+pkg+" is not installed in integration/peers/node_modules")
	}
	return node
}

// start launches node with args in its own process group and waits for the launch
// script's "FRESHET-PEER LISTENING <kind> <port>" line. It registers the cleanup that
// stops the process group.
func start(t testing.TB, name string, args, env []string, kind string) *Peer {
	t.Helper()
	node := requirePackage(t, name)
	cmd := exec.Command(node, args...)
	cmd.Dir = Dir()
	cmd.Env = append(append(os.Environ(), "NODE_PATH="+ModulesDir()), env...)
	setProcessGroup(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Peer{Name: name, cmd: cmd, stdin: stdin, out: &tailBuffer{max: logTail}, done: make(chan struct{})}
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	ports := make(chan int, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, listeningPrefix); ok {
				k, port, _ := strings.Cut(rest, " ")
				if n, err := strconv.Atoi(port); err == nil && k == kind {
					select {
					case ports <- n:
					default:
					}
				}
			}
			_, _ = p.out.Write([]byte(line + "\n"))
		}
		_, _ = io.Copy(p.out, stdout)
	}()
	go func() {
		<-copied
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })

	select {
	case port := <-ports:
		p.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	case <-p.done:
		t.Fatalf("%s exited before listening: %v\noutput:\n%s", name, p.err, p.Output())
	case <-time.After(startTimeout):
		t.Fatalf("%s did not listen within %v\noutput:\n%s", name, startTimeout, p.Output())
	}
	return p
}

// waitReady polls call until it succeeds, the peer exits, or startTimeout passes.
func waitReady(t testing.TB, p *Peer, call func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = call(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited while starting: %v (last call: %v)\noutput:\n%s", p.Name, p.err, err, p.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s at %s did not answer within %v: %v\noutput:\n%s", p.Name, p.URL, startTimeout, err, p.Output())
}

// stop ends the peer's process group: stdin closes (the launch script exits on its own),
// then SIGTERM, then SIGKILL after stopTimeout.
func (p *Peer) stop(t testing.TB) {
	_ = p.stdin.Close()
	select {
	case <-p.done:
		killGroup(p.cmd, true) // reap any stray children in the group
		return
	case <-time.After(500 * time.Millisecond):
	}
	killGroup(p.cmd, false)
	select {
	case <-p.done:
		killGroup(p.cmd, true)
		return
	case <-time.After(stopTimeout):
	}
	killGroup(p.cmd, true)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.Pid())
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	if over := len(b.b) - b.max; over > 0 {
		b.b = append(b.b[:0], b.b[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

// Alive reports whether the peer's process, or any process left in its process group,
// still exists.
func (p *Peer) Alive() bool {
	select {
	case <-p.done:
		return groupAlive(p.cmd)
	default:
		return true
	}
}
