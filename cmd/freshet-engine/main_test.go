package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
)

// syncBuffer is an io.Writer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunServesAllThreeServices starts the command on a free port with flags,
// talks to Kinesis, DynamoDB and CloudWatch through the SDK, and stops it the
// way a signal does.
func TestRunServesAllThreeServices(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	ready := make(chan *engine.Engine, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-region", "eu-west-3", "-account", "123456789012", "-limits=false"}, &out, func(e *engine.Engine) { ready <- e })
	}()
	var e *engine.Engine
	select {
	case e = <-ready:
	case err := <-errc:
		t.Fatalf("run returned before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("engine did not start")
	}
	if s := out.String(); !strings.Contains(s, e.URL()) || !strings.Contains(s, "limits false") {
		t.Fatalf("start line %q does not name %s and the limits", s, e.URL())
	}
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	kc := enginetest.Kinesis(e)
	if _, err := kc.CreateStream(cctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	d, err := kc.DescribeStreamSummary(cctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	if arn := aws.ToString(d.StreamDescriptionSummary.StreamARN); !strings.HasPrefix(arn, "arn:aws:kinesis:eu-west-3:123456789012:stream/s") {
		t.Fatalf("stream ARN %q does not use the -region and -account flags", arn)
	}
	if _, err := enginetest.DynamoDB(e).ListTables(cctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := enginetest.CloudWatch(e).PutMetricData(cctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("ns"),
		MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}}}); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run after stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-no-such-flag"}, {"-addr", "not an address"}, {"serve"}, {"-limits=false", "extra"}} {
		var out syncBuffer
		if err := run(context.Background(), args, &out, nil); err == nil {
			t.Fatalf("run %v: no error", args)
		}
	}
}

func TestRunHelp(t *testing.T) {
	var out syncBuffer
	if err := run(context.Background(), []string{"-h"}, &out, nil); err != nil {
		t.Fatalf("-h: %v", err)
	}
	if !strings.Contains(out.String(), "-addr") {
		t.Fatalf("-h printed %q, want the flags", out.String())
	}
}

func TestRunTLSListener(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	ready := make(chan *engine.Engine, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-tls", "-tls-addr", "127.0.0.1:0"}, &out, func(e *engine.Engine) { ready <- e })
	}()
	var e *engine.Engine
	select {
	case e = <-ready:
	case err := <-errc:
		t.Fatalf("run returned before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("engine did not start")
	}
	if e.TLSURL() == "" || !strings.Contains(out.String(), e.TLSURL()) {
		t.Fatalf("start lines %q do not name the TLS listener %q", out.String(), e.TLSURL())
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-tls-cert", "c.pem"}, {"-tls", "-tls-addr", "127.0.0.1:0", "-tls-cert", "c.pem"}} {
		if err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, args...), &out, nil); err == nil {
			t.Fatalf("run %v: no error", args)
		}
	}
}
