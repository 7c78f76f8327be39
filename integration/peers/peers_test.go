package peers

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// TestPeersStartAnswerAndStop starts each peer, makes real SDK calls against it, and
// checks that after the test's cleanup its process group is gone and its port closed.
func TestPeersStartAnswerAndStop(t *testing.T) {
	ctx := context.Background()
	kinesisCalls := func(t *testing.T, p *Peer) {
		c := kinesis.NewFromConfig(p.AWSConfig())
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("peer-check"), ShardCount: aws.Int32(2)}); err != nil {
			t.Fatalf("CreateStream: %v", err)
		}
		waitFor(t, func() error {
			out, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
			if err != nil {
				return err
			}
			if len(out.StreamNames) != 1 || out.StreamNames[0] != "peer-check" {
				return fmt.Errorf("ListStreams = %v, want [peer-check]", out.StreamNames)
			}
			return nil
		})
	}
	tests := []struct {
		name  string
		start func(testing.TB) *Peer
		calls func(*testing.T, *Peer)
	}{
		{"kinesalite", Kinesalite, kinesisCalls},
		{"kinesis-local", KinesisLocal, kinesisCalls},
		{"dynalite", Dynalite, func(t *testing.T, p *Peer) {
			c := dynamodb.NewFromConfig(p.AWSConfig())
			if _, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
				TableName:            aws.String("peer-check"),
				AttributeDefinitions: []dtypes.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: dtypes.ScalarAttributeTypeS}},
				KeySchema:            []dtypes.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: dtypes.KeyTypeHash}},
				BillingMode:          dtypes.BillingModePayPerRequest,
			}); err != nil {
				t.Fatalf("CreateTable: %v", err)
			}
			out, err := c.ListTables(ctx, &dynamodb.ListTablesInput{})
			if err != nil {
				t.Fatalf("ListTables: %v", err)
			}
			if len(out.TableNames) != 1 || out.TableNames[0] != "peer-check" {
				t.Fatalf("ListTables = %v, want [peer-check]", out.TableNames)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p *Peer
			t.Run("run", func(t *testing.T) {
				p = tc.start(t)
				if p.Name != tc.name {
					t.Errorf("Name = %q, want %q", p.Name, tc.name)
				}
				if !strings.HasPrefix(p.URL, "http://127.0.0.1:") {
					t.Errorf("URL = %q, want http://127.0.0.1:<port>", p.URL)
				}
				if !p.Alive() {
					t.Fatalf("peer not alive after start")
				}
				tc.calls(t, p)
			})
			if p == nil || p.cmd == nil {
				return // skipped (PEER MISSING) or failed to start
			}
			if p.Alive() {
				t.Errorf("%s (pid %d) still alive after cleanup", tc.name, p.Pid())
			}
			if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(p.URL, "http://"), time.Second); err == nil {
				_ = conn.Close()
				t.Errorf("%s still accepts connections at %s after cleanup", tc.name, p.URL)
			}
		})
	}
}

// TestPeersBindLoopbackOnly checks that kinesalite and kinesis-local, which would bind
// every interface on their own, listen on 127.0.0.1 only.
func TestPeersBindLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *Peer
	}{
		{"kinesalite", Kinesalite},
		{"kinesis-local", KinesisLocal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.start(t)
			_, port, _ := strings.Cut(strings.TrimPrefix(p.URL, "http://127.0.0.1"), ":")
			addrs, err := net.InterfaceAddrs()
			if err != nil {
				t.Fatalf("InterfaceAddrs: %v", err)
			}
			for _, a := range addrs {
				ipn, ok := a.(*net.IPNet)
				if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
					continue
				}
				conn, err := net.DialTimeout("tcp", net.JoinHostPort(ipn.IP.String(), port), time.Second)
				if err == nil {
					_ = conn.Close()
					t.Errorf("%s accepts connections on %s:%s", tc.name, ipn.IP, port)
				}
			}
		})
	}
}

func TestTwoPeersAtOnce(t *testing.T) {
	a, b := Kinesalite(t), Dynalite(t)
	if a.URL == b.URL {
		t.Fatalf("kinesalite and dynalite share %s", a.URL)
	}
}

func TestNodeScript(t *testing.T) {
	// The script lives outside Dir, so requiring aws-kinesis-agg works only via NODE_PATH.
	script := filepath.Join(t.TempDir(), "echo.js")
	src := `
var agg = require('aws-kinesis-agg')
var chunks = []
process.stdin.on('data', function(c) { chunks.push(c) })
process.stdin.on('end', function() {
  process.stdout.write(typeof agg.aggregate + ' ' + typeof agg.deaggregateSync + ' ' +
    process.argv.slice(2).join(',') + ' ' + Buffer.concat(chunks).toString('hex'))
})
`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := string(NodeScript(t, script, []byte{0xf3, 0x89, 0x9a, 0xc2}, "a", "b c"))
	if want := "function function a,b c f3899ac2"; got != want {
		t.Fatalf("NodeScript output = %q, want %q", got, want)
	}
}

func TestNodeScriptFailureFailsTest(t *testing.T) {
	requireNode(t, "node script")
	script := filepath.Join(t.TempDir(), "fail.js")
	if err := os.WriteFile(script, []byte("process.stderr.write('boom'); process.exit(3)"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runFake(t, func(tb testing.TB) { NodeScript(tb, script, nil) })
	if !r.fatal || !strings.Contains(r.msg, "boom") {
		t.Fatalf("NodeScript of a failing script: fatal=%v msg=%q, want a fatal naming its stderr", r.fatal, r.msg)
	}
}

func TestMissingPeer(t *testing.T) {
	starters := []struct {
		name string
		run  func(testing.TB)
	}{
		{"kinesalite", func(tb testing.TB) { Kinesalite(tb) }},
		{"dynalite", func(tb testing.TB) { Dynalite(tb) }},
		{"kinesis-local", func(tb testing.TB) { KinesisLocal(tb) }},
		{"node script", func(tb testing.TB) { NodeScript(tb, "x.js", nil) }},
	}
	for _, ci := range []string{"", "true"} {
		for _, s := range starters {
			t.Run(fmt.Sprintf("CI=%q/%s", ci, s.name), func(t *testing.T) {
				t.Setenv("CI", ci)
				t.Setenv("PATH", t.TempDir()) // no node here
				r := runFake(t, s.run)
				if ci != "" && (!r.fatal || r.skipped) {
					t.Errorf("with CI set: fatal=%v skipped=%v, want a failure", r.fatal, r.skipped)
				}
				if ci == "" && (!r.skipped || r.fatal) {
					t.Errorf("without CI: fatal=%v skipped=%v, want a skip", r.fatal, r.skipped)
				}
				for _, want := range []string{"PEER MISSING", s.name, "make peers"} {
					if !strings.Contains(r.msg, want) {
						t.Errorf("message %q lacks %q", r.msg, want)
					}
				}
			})
		}
	}
}

func TestAWSConfig(t *testing.T) {
	cfg := (&Peer{Name: "x", URL: "http://127.0.0.1:1"}).AWSConfig()
	if cfg.Region != "us-east-1" || aws.ToString(cfg.BaseEndpoint) != "http://127.0.0.1:1" {
		t.Errorf("Region=%q BaseEndpoint=%q", cfg.Region, aws.ToString(cfg.BaseEndpoint))
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID == "" {
		t.Errorf("credentials: %+v, %v", creds, err)
	}
	if got := cfg.Retryer().MaxAttempts(); got != 3 {
		t.Errorf("MaxAttempts = %d, want 3", got)
	}
}

func TestDir(t *testing.T) {
	d := Dir()
	if !filepath.IsAbs(d) {
		t.Fatalf("Dir() = %q, not absolute", d)
	}
	for _, f := range []string{"package.json", "kinesalite.js", "dynalite.js", "loopback.js", "lifeline.js"} {
		if _, err := os.Stat(filepath.Join(d, f)); err != nil {
			t.Errorf("Dir() lacks %s: %v", f, err)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 4}
	for _, s := range []string{"ab", "cde", "", "fghij"} {
		_, _ = b.Write([]byte(s))
	}
	if got := b.String(); got != "ghij" {
		t.Fatalf("tail = %q, want %q", got, "ghij")
	}
}

// waitFor polls f until it returns nil or 30 s pass.
func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeTB records Fatalf and Skipf instead of ending the real test.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	result   fakeResult
	cleanups []func()
}

type fakeResult struct {
	fatal, skipped bool
	msg            string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.result.fatal, f.result.msg = true, fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.mu.Lock()
	f.result.skipped, f.result.msg = true, fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// runFake runs fn with a fakeTB on its own goroutine, runs its cleanups, and reports how
// fn ended.
func runFake(t *testing.T, fn func(testing.TB)) fakeResult {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.result
}
