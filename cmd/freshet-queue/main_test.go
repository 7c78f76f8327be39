package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/cli"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
)

// TestMain gives the default credentials chain static credentials and keeps it away
// from the machine's AWS files and instance metadata.
// With FRESHET_QUEUE_MAIN=1 the test binary runs main instead, for exit-status tests.
func TestMain(m *testing.M) {
	if os.Getenv("FRESHET_QUEUE_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "freshet",
		"AWS_SECRET_ACCESS_KEY":       "freshet",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "us-east-1",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
	}
	os.Exit(m.Run())
}

// fixture is an engine with an AUTO stream and a queue on it whose records become dead
// letters after one receive.
type fixture struct {
	t    *testing.T
	e    *engine.Engine
	k    *kinesis.Client
	ctx  context.Context
	sarn string
	qarn string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := enginetest.Start(t, engine.Config{Streams: streams.Config{OnDemandShards: 2, OnDemandWindow: -1}})
	f := &fixture{t: t, e: e, k: enginetest.Kinesis(e), ctx: context.Background()}
	if _, err := f.k.CreateStream(f.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), RecordDistributionStrategy: types.RecordDistributionStrategyAuto,
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	f.sarn = e.Streams.StreamARN("s")
	out, err := f.k.CreateQueue(f.ctx, &kinesis.CreateQueueInput{QueueName: aws.String("orders"),
		StreamConfigurationList: []types.QueueStreamConfiguration{{StreamARN: aws.String(f.sarn),
			StartingPosition: &types.QueueStartingPosition{Type: types.QueueStartingPositionTypeTrimHorizon}}},
		QueueAttributes: &types.QueueAttributes{VisibilityTimeoutSeconds: aws.Int32(45),
			DeadLetterConfiguration: &types.DeadLetterConfiguration{TargetType: types.TargetTypeBuiltIn, MaxReceiveCount: aws.Int32(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	f.qarn = *out.QueueDescription.QueueARN
	return f
}

// deadLetters writes n records ("r0", "r1", ...; every third without a partition key)
// and makes them dead letters: received once, then made visible again.
func (f *fixture) deadLetters(n int) {
	f.t.Helper()
	var entries []types.PutRecordsRequestEntry
	for i := 0; i < n; i++ {
		en := types.PutRecordsRequestEntry{Data: []byte("r" + strconv.Itoa(i))}
		if i%3 != 0 {
			en.PartitionKey = aws.String("k" + strconv.Itoa(i))
		}
		entries = append(entries, en)
	}
	if out, err := f.k.PutRecords(f.ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(f.sarn), Records: entries}); err != nil || *out.FailedRecordCount != 0 {
		f.t.Fatalf("put: %v %+v", err, out)
	}
	for got := 0; got < n; {
		out, err := f.k.ReceiveQueueRecords(f.ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(f.qarn), WaitTimeSeconds: aws.Int32(1)})
		if err != nil {
			f.t.Fatal(err)
		}
		var vis []types.UpdateQueueRecordsVisibilityRequestEntry
		for _, r := range out.QueueRecords {
			vis = append(vis, types.UpdateQueueRecordsVisibilityRequestEntry{ReceiptHandle: r.ReceiptHandle, VisibilityTimeoutSeconds: aws.Int32(0)})
		}
		if len(vis) > 0 {
			if _, err := f.k.UpdateQueueRecordsVisibility(f.ctx, &kinesis.UpdateQueueRecordsVisibilityInput{QueueARN: aws.String(f.qarn), Entries: vis}); err != nil {
				f.t.Fatal(err)
			}
		}
		got += len(vis)
	}
	f.waitStats("dead letters", func(s streams.QueueStats) bool { return s.DeadLetter == n })
}

func (f *fixture) stats() streams.QueueStats {
	f.t.Helper()
	st, err := f.e.Streams.QueueStats(f.qarn)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) waitStats(what string, ok func(streams.QueueStats) bool) streams.QueueStats {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := f.stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s: queue %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type result struct {
	stdout, stderr string
	err            error
}

// run runs the command against the fixture's queue.
func (f *fixture) run(stdin string, args ...string) result {
	f.t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--endpoint", f.e.URL(), "--queue", f.qarn}, args...)
	err := run(context.Background(), full, env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut})
	return result{stdout: out.String(), stderr: errOut.String(), err: err}
}

// peekJSON returns the dead-letter records peek --json prints.
func (f *fixture) peekJSON(args ...string) []jsonRecord {
	f.t.Helper()
	r := f.run("", append([]string{"peek", "--json"}, args...)...)
	if r.err != nil {
		f.t.Fatalf("peek: %v\n%s", r.err, r.stderr)
	}
	var recs []jsonRecord
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var j jsonRecord
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			f.t.Fatalf("peek line %q: %v", sc.Text(), err)
		}
		recs = append(recs, j)
	}
	return recs
}

func TestDescribe(t *testing.T) {
	f := newFixture(t)
	r := f.run("", "describe")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, want := range []string{f.qarn, "orders", "ACTIVE", f.sarn + " (from TRIM_HORIZON", "45s", "BUILT_IN, after 1 receives"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = f.run("", "describe", "--json")
	var d types.QueueDescription
	if err := json.Unmarshal([]byte(r.stdout), &d); r.err != nil || err != nil || aws.ToString(d.QueueARN) != f.qarn || d.QueueStatus != types.QueueStatusActive {
		t.Fatalf("describe --json: %v %v\n%s", r.err, err, r.stdout)
	}
}

// TestPeekLeavesRecordsDeadLetters: peek prints dead-letter records (keyless ones
// marked) and leaves every one visible as a dead letter, with its data intact.
func TestPeekLeavesRecordsDeadLetters(t *testing.T) {
	f := newFixture(t)
	f.deadLetters(12)
	r := f.run("", "peek", "--max", "5")
	if r.err != nil {
		t.Fatal(r.err)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "RECORD ID") {
		t.Fatalf("peek --max 5 printed %d lines:\n%s", len(lines), r.stdout)
	}
	if st := f.stats(); st.DeadLetter != 12 || st.DeadLetterInFlight != 0 {
		t.Fatalf("queue %+v after peek, want 12 visible dead letters", st)
	}
	recs := f.peekJSON("--max", "100")
	if len(recs) != 12 {
		t.Fatalf("peek --json printed %d records, want 12", len(recs))
	}
	seen := map[string]bool{}
	for _, j := range recs {
		i, err := strconv.Atoi(strings.TrimPrefix(string(j.Data), "r"))
		if err != nil || seen[j.ID] || j.ReceiveCount < 1 || j.Size != len(j.Data) {
			t.Fatalf("record %+v", j)
		}
		seen[j.ID] = true
		if keyless := j.PartitionKey == nil; keyless != (i%3 == 0) {
			t.Fatalf("record %d: partition key %v", i, j.PartitionKey)
		}
	}
	r = f.run("", "peek", "--max", "100", "--data", "hex", "--data-limit", "1")
	if r.err != nil || !strings.Contains(r.stdout, "72...") || !strings.Contains(r.stdout, "(none)") {
		t.Fatalf("peek --data hex --data-limit 1: %v\n%s", r.err, r.stdout)
	}
	if st := f.stats(); st.DeadLetter != 12 {
		t.Fatalf("queue %+v after three peeks", st)
	}
}

// TestRestoreByID: the chosen records return to delivery with fresh receive counts;
// the others stay visible dead letters; an unknown ID fails the command.
func TestRestoreByID(t *testing.T) {
	f := newFixture(t)
	f.deadLetters(30)
	recs := f.peekJSON("--max", "100")
	chosen := []string{recs[3].ID, recs[17].ID, recs[29].ID}
	r := f.run("", "restore", "--id", chosen[0]+","+chosen[1], "--id", chosen[2])
	if r.err != nil {
		t.Fatalf("restore: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stdout, "3 dead-letter record(s) restored") {
		t.Fatalf("restore output:\n%s", r.stdout)
	}
	if st := f.stats(); st.DeadLetter != 27 || st.Visible != 3 || st.DeadLetterInFlight != 0 {
		t.Fatalf("queue %+v after restoring 3 of 30", st)
	}
	out, err := f.k.ReceiveQueueRecords(f.ctx, &kinesis.ReceiveQueueRecordsInput{QueueARN: aws.String(f.qarn), WaitTimeSeconds: aws.Int32(0)})
	if err != nil || len(out.QueueRecords) != 3 {
		t.Fatalf("receive after restore: %v, %d records", err, len(out.QueueRecords))
	}
	for _, q := range out.QueueRecords {
		if id := aws.ToString(q.RecordId); id != chosen[0] && id != chosen[1] && id != chosen[2] || aws.ToInt32(q.ReceiveCount) != 1 {
			t.Fatalf("restored record %s, receive count %d", id, aws.ToInt32(q.ReceiveCount))
		}
	}
	r = f.run("", "restore", "--id", "no-such-record")
	if r.err == nil || !strings.Contains(r.stderr, "not found: no-such-record") {
		t.Fatalf("unknown ID: %v\n%s", r.err, r.stderr)
	}
	if st := f.stats(); st.DeadLetter != 27 || st.DeadLetterInFlight != 0 {
		t.Fatalf("queue %+v after a restore that found nothing: the scanned records must be visible again", st)
	}
}

// TestAcknowledgeAsksFirst: without --yes, anything but "y" changes nothing; "y" (or
// --yes) discards the dead letters.
func TestAcknowledgeAsksFirst(t *testing.T) {
	f := newFixture(t)
	f.deadLetters(15)
	r := f.run("n\n", "acknowledge", "--all")
	if r.err == nil || !strings.Contains(r.err.Error(), "not confirmed") || !strings.Contains(r.stdout, "acknowledge (discard) 15") {
		t.Fatalf("declined: %v\n%s", r.err, r.stdout)
	}
	if st := f.stats(); st.DeadLetter != 15 || st.DeadLetterInFlight != 0 {
		t.Fatalf("queue %+v after a declined acknowledge", st)
	}
	recs := f.peekJSON("--max", "100")
	if r := f.run("y\n", "acknowledge", "--id", recs[0].ID); r.err != nil {
		t.Fatalf("acknowledge one: %v\n%s", r.err, r.stderr)
	}
	if st := f.stats(); st.Loaded != 14 || st.DeadLetter != 14 {
		t.Fatalf("queue %+v after acknowledging one of 15", st)
	}
	if r := f.run("", "acknowledge", "--all", "--max", "10", "--yes"); r.err != nil || !strings.Contains(r.stdout, "10 dead-letter record(s) acknowledged") {
		t.Fatalf("acknowledge --all --max 10: %v\n%s", r.err, r.stdout)
	}
	if st := f.stats(); st.Loaded != 4 || st.DeadLetter != 4 {
		t.Fatalf("queue %+v after acknowledging 10 more", st)
	}
	if r := f.run("", "acknowledge", "--all", "--yes"); r.err != nil {
		t.Fatal(r.err)
	}
	if st := f.stats(); st.Loaded != 0 {
		t.Fatalf("queue %+v after acknowledging all", st)
	}
	if r := f.run("", "acknowledge", "--all", "--yes"); r.err != nil || !strings.Contains(r.stdout, "no dead-letter records acknowledged") {
		t.Fatalf("nothing to acknowledge: %v\n%s", r.err, r.stdout)
	}
}

// TestVisibilityHidesRecords: visibility --for hides the chosen dead letters from other
// dead-letter receivers and leaves the rest visible.
func TestVisibilityHidesRecords(t *testing.T) {
	f := newFixture(t)
	f.deadLetters(8)
	recs := f.peekJSON("--max", "100")
	r := f.run("", "visibility", "--for", "1h", "--id", recs[2].ID)
	if r.err != nil || !strings.Contains(r.stdout, "hidden "+recs[2].ID) {
		t.Fatalf("visibility: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if st := f.stats(); st.DeadLetter != 7 || st.DeadLetterInFlight != 1 {
		t.Fatalf("queue %+v, want one dead letter hidden", st)
	}
	for _, j := range f.peekJSON("--max", "100") {
		if j.ID == recs[2].ID {
			t.Fatal("the hidden record was received")
		}
	}
	if r := f.run("", "visibility", "--for", "2s", "--all"); r.err != nil || !strings.Contains(r.stdout, "7 dead-letter record(s) hidden") {
		t.Fatalf("visibility --all: %v\n%s", r.err, r.stdout)
	}
	f.waitStats("the 2 s visibility to pass", func(s streams.QueueStats) bool { return s.DeadLetter == 7 && s.DeadLetterInFlight == 1 })
}

func TestUsageErrors(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		args []string // after --endpoint URL
		want string
	}{
		{"no queue", []string{"peek"}, "--queue is required"},
		{"stream ARN", []string{"--queue", "arn:aws:kinesis:us-east-1:000000000000:stream/s", "peek"}, "want a queue ARN"},
		{"no command", []string{"--queue", f.qarn}, "no command"},
		{"unknown command", []string{"--queue", f.qarn, "purge"}, "unknown command"},
		{"bad endpoint", []string{"--queue", f.qarn, "--endpoint", "localhost:1", "peek"}, "http://"},
		{"timeout 0", []string{"--queue", f.qarn, "--timeout", "0s", "peek"}, "--timeout"},
		{"peek max 0", []string{"--queue", f.qarn, "peek", "--max", "0"}, "--max 0"},
		{"peek data", []string{"--queue", f.qarn, "peek", "--data", "octal"}, "want text, base64, hex or none"},
		{"peek data limit", []string{"--queue", f.qarn, "peek", "--data-limit", "-1"}, "--data-limit"},
		{"extra argument", []string{"--queue", f.qarn, "peek", "x"}, "unexpected argument"},
		{"neither all nor id", []string{"--queue", f.qarn, "restore"}, "--all or at least one --id"},
		{"both all and id", []string{"--queue", f.qarn, "restore", "--all", "--id", "a"}, "--all or at least one --id"},
		{"empty id", []string{"--queue", f.qarn, "restore", "--id", "a,,b"}, "empty record ID"},
		{"act max 0", []string{"--queue", f.qarn, "restore", "--all", "--max", "0"}, "--max 0"},
		{"visibility without for", []string{"--queue", f.qarn, "visibility", "--all"}, "--for is required"},
		{"visibility fraction", []string{"--queue", f.qarn, "visibility", "--all", "--for", "1500ms"}, "whole seconds"},
		{"visibility 13h", []string{"--queue", f.qarn, "visibility", "--all", "--for", "13h"}, "whole seconds"},
		{"restore --yes", []string{"--queue", f.qarn, "restore", "--all", "--yes"}, "-yes"},
		{"acknowledge --for", []string{"--queue", f.qarn, "acknowledge", "--all", "--for", "1s"}, "-for"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"--endpoint", f.e.URL()}, c.args...), env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut})
			if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want a usage error containing %q", err, c.want)
			}
		})
	}
}

// TestExitStatus runs the binary: 0 on success, 2 for usage errors, 1 when the service
// refuses (an unknown queue).
func TestExitStatus(t *testing.T) {
	f := newFixture(t)
	unknown := strings.Replace(f.qarn, ":queue/", ":queue/zz", 1)
	for _, c := range []struct {
		args   []string
		status int
		stderr string
	}{
		{[]string{"--endpoint", f.e.URL(), "--queue", f.qarn, "describe"}, 0, ""},
		{[]string{"--endpoint", f.e.URL(), "--queue", f.qarn, "restore"}, 2, "--all or at least one --id"},
		{[]string{"--endpoint", f.e.URL(), "--queue", unknown, "peek"}, 1, "ResourceNotFoundException"},
	} {
		cmd := exec.Command(os.Args[0], c.args...)
		cmd.Env = append(os.Environ(), "FRESHET_QUEUE_MAIN=1")
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		err := cmd.Run()
		status := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			status = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if status != c.status || !strings.Contains(errOut.String(), c.stderr) {
			t.Errorf("%v: status %d, stderr %q; want %d and %q", c.args, status, errOut.String(), c.status, c.stderr)
		}
	}
}
