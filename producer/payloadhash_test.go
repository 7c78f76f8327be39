package producer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"

	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/internal/kinesiswire"
	"github.com/freshet/freshet/internal/lanehash"
)

func TestWaveHashesEveryMember(t *testing.T) {
	for _, n := range []int{2, 3, 16, 17} {
		w := newWave(n, new(atomic.Int64), time.Minute)
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = bytes.Repeat([]byte{byte(i)}, 1000*i+7)
		}
		got := make([][sha256.Size]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := &waveMember{w: w, i: i}
				sum, err := m.arrive(context.Background(), bodies[i])
				if err != nil {
					t.Errorf("member %d: %v", i, err)
				}
				got[i] = sum
				m.arriveEmpty() // a member that arrived is not counted twice
			}()
		}
		wg.Wait()
		for i := range n {
			if want := sha256.Sum256(bodies[i]); got[i] != want {
				t.Fatalf("n=%d member %d: hash %x, want %x", n, i, got[i], want)
			}
		}
	}
}

func TestWaveMemberThatNeverSignsReleasesTheOthers(t *testing.T) {
	w := newWave(3, new(atomic.Int64), time.Minute)
	done := make(chan [sha256.Size]byte, 2)
	for i := range 2 {
		go func() {
			m := &waveMember{w: w, i: i}
			sum, err := m.arrive(context.Background(), []byte{byte(i)})
			if err != nil {
				t.Error(err)
			}
			done <- sum
		}()
	}
	(&waveMember{w: w, i: 2}).arriveEmpty()
	for range 2 {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("members still waiting after the third ended without a body")
		}
	}
	var nilMember *waveMember
	nilMember.arriveEmpty()
}

func TestWaveWaitEndsWithContext(t *testing.T) {
	w := newWave(2, new(atomic.Int64), time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := (&waveMember{w: w, i: 0}).arrive(ctx, []byte("a"))
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("arrive did not return when its context ended")
	}
	(&waveMember{w: w, i: 1}).arriveEmpty()
}

// signatureProbe is an HTTP client that checks the SigV4 signature of every
// PutRecords call against its body: it signs a copy of the request again, with
// the body's own SHA-256, the same credentials and the same signing time, and
// compares the Authorization headers.
type signatureProbe struct {
	inner     *awshttp.BuildableClient
	creds     aws.Credentials
	puts, bad atomic.Int64
	mu        sync.Mutex
	firstBad  string
}

func (c *signatureProbe) Do(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") == kinesiswire.PutRecordsTarget {
		c.puts.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if msg := c.check(r, body); msg != "" {
			c.bad.Add(1)
			c.mu.Lock()
			if c.firstBad == "" {
				c.firstBad = msg
			}
			c.mu.Unlock()
		}
	}
	return c.inner.Do(r)
}

func (c *signatureProbe) check(r *http.Request, body []byte) string {
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Sprintf("X-Amz-Date: %v", err)
	}
	cp := r.Clone(context.Background())
	cp.Header.Del("Authorization")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), c.creds, cp, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", at); err != nil {
		return fmt.Sprintf("sign: %v", err)
	}
	if got, want := r.Header.Get("Authorization"), cp.Header.Get("Authorization"); got != want {
		return fmt.Sprintf("body of %d bytes: Authorization %q, signing its SHA-256 gives %q", len(body), got, want)
	}
	return ""
}

func TestPutRecordsSignedWithBodyHashInWaves(t *testing.T) {
	for _, cbor := range []bool{true, false} {
		e := startEngine(t, streams.Config{}, 8)
		cfg := e.AWSConfig()
		creds, err := cfg.Credentials.Retrieve(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		probe := &signatureProbe{inner: awshttp.NewBuildableClient(), creds: creds}
		cfg.HTTPClient = probe
		// A long linger lets several calls' worth of records wait, so that the
		// flush starts them as waves.
		p, err := New(kinesis.NewFromConfig(cfg), WithStream(testStream), WithCBOR(cbor), WithLinger(time.Minute), WithMaxInFlight(8), withWaveGrace(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		const n = 40000
		var failed atomic.Int64
		for i := range n {
			if err := p.Put(ctx, Record{PartitionKey: keyOf(i, 1000), Data: recordData(i)}, func(r Result) {
				if r.Err != nil {
					failed.Add(1)
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if f := failed.Load(); f != 0 {
			t.Fatalf("cbor=%v: %d records failed", cbor, f)
		}
		if probe.puts.Load() == 0 {
			t.Fatalf("cbor=%v: no PutRecords call reached the probe", cbor)
		}
		if b := probe.bad.Load(); b != 0 {
			t.Fatalf("cbor=%v: %d of %d calls not signed with their body's hash; first: %s", cbor, b, probe.puts.Load(), probe.firstBad)
		}
		if p.waveLanes > 1 && (p.waves.Load() == 0 || p.waveSigned.Load() < 2) {
			t.Fatalf("cbor=%v: %d calls, %d waves and %d bodies hashed in waves with %d SHA-256 lanes", cbor, probe.puts.Load(), p.waves.Load(), p.waveSigned.Load(), lanehash.SHA256Lanes())
		}
		recs, _ := readEngine(t, e)
		assertEngineExactlyOnce(t, recs, n)
	}
}

// wrappedClient is a user's Client around the SDK's.
type wrappedClient struct{ *kinesis.Client }

func TestWavesOnlyWithTheSDKClient(t *testing.T) {
	e := startEngine(t, streams.Config{}, 2)
	sdk := kinesis.NewFromConfig(e.AWSConfig())
	for _, tc := range []struct {
		name   string
		client Client
		lanes  int
	}{
		{"sdk", sdk, lanehash.SHA256Lanes()},
		{"wrapped", wrappedClient{sdk}, 1},
	} {
		p, err := New(tc.client, WithStream(testStream))
		if err != nil {
			t.Fatal(err)
		}
		if p.waveLanes != tc.lanes {
			t.Errorf("%s client: %d wave lanes, want %d", tc.name, p.waveLanes, tc.lanes)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}

// TestWaveWithACallHeldBack: a user's middleware on the SDK client lets one
// PutRecords through at a time, so the calls of a wave cannot all reach the hash
// together. The calls that wait hash their own bodies after the grace period:
// every call succeeds, well before its request timeout, and nothing races on a
// body buffer (run with -race).
func TestWaveWithACallHeldBack(t *testing.T) {
	e := startEngine(t, streams.Config{}, 8)
	cfg := e.AWSConfig()
	one := make(chan struct{}, 1)
	var calls, failedCalls atomic.Int64
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("one-at-a-time", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if _, ok := in.Parameters.(*kinesis.PutRecordsInput); !ok {
				return next.HandleInitialize(ctx, in)
			}
			select {
			case one <- struct{}{}:
			case <-ctx.Done():
				return middleware.InitializeOutput{}, middleware.Metadata{}, ctx.Err()
			}
			defer func() { <-one }()
			calls.Add(1)
			out, md, err := next.HandleInitialize(ctx, in)
			if err != nil {
				failedCalls.Add(1)
			}
			return out, md, err
		}), middleware.After)
	})
	p, err := New(kinesis.NewFromConfig(cfg), WithStream(testStream), WithLinger(time.Minute), WithRequestTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 30000
	o := newOutcomes(n)
	for i := range n {
		if err := p.Put(ctx, Record{PartitionKey: keyOf(i, 1000), Data: recordData(i)}, o.cb(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if failed := o.check(t, n); len(failed) > 0 {
		t.Fatalf("%d records failed, first: %v", len(failed), failed[0].Err)
	}
	if f := failedCalls.Load(); f != 0 {
		t.Fatalf("%d of %d PutRecords calls failed", f, calls.Load())
	}
	if p.waveLanes > 1 && p.waves.Load() == 0 {
		t.Fatalf("%d calls and no wave", calls.Load())
	}
	recs, _ := readEngine(t, e)
	assertEngineExactlyOnce(t, recs, n)
}

// TestWaveMemberHashesAloneAfterGrace: a member whose wave does not complete within
// the grace period hashes its own body and leaves; the wave no longer holds that
// body when the last member hashes the rest.
func TestWaveMemberHashesAloneAfterGrace(t *testing.T) {
	signed := new(atomic.Int64)
	w := newWave(2, signed, 10*time.Millisecond)
	body := []byte("a body that must not be read after arrive returns")
	sum, err := (&waveMember{w: w, i: 0}).arrive(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	if sum != sha256.Sum256(body) {
		t.Fatalf("hash %x, want the body's", sum)
	}
	w.mu.Lock()
	held := w.bodies[0] != nil
	w.mu.Unlock()
	if held {
		t.Fatal("the wave still holds the body of a member that left")
	}
	late := []byte("late")
	sum, err = (&waveMember{w: w, i: 1}).arrive(context.Background(), late)
	if err != nil || sum != sha256.Sum256(late) {
		t.Fatalf("last member: %x, %v", sum, err)
	}
	if n := signed.Load(); n != 1 {
		t.Fatalf("%d bodies counted as hashed in the wave, want 1", n)
	}
}

// TestFreeBodiesBounded: the request bodies kept for reuse between calls stay under
// maxFreeBodyBytes, and the gauge matches what the free list holds.
func TestFreeBodiesBounded(t *testing.T) {
	e := startEngine(t, streams.Config{}, 4)
	p := newEngineProducer(t, e, WithMaxInFlight(16), WithLinger(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 200000
	o := putAll(t, p, n, 1000)
	if failed := o.check(t, n); len(failed) > 0 {
		t.Fatalf("%d records failed", len(failed))
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var held int64
	for len(p.bodyFree) > 0 {
		held += int64(cap(*<-p.bodyFree))
	}
	if got := p.bodyFreeBytes.Load(); got != held || held > maxFreeBodyBytes || held == 0 {
		t.Fatalf("free bodies hold %d bytes, gauge %d, bound %d", held, got, maxFreeBodyBytes)
	}
}

// TestFreeBodiesGaugeWithOversizedBody: a body too large to keep leaves the gauge as
// it was (it once went negative, lifting the bound).
func TestFreeBodiesGaugeWithOversizedBody(t *testing.T) {
	p := &Producer{bodyFree: make(chan *[]byte, 16)}
	big := make([]byte, 0, 2*MaxPutRecordsBytes+1)
	p.recycleBody(&big)
	if g := p.bodyFreeBytes.Load(); g != 0 || len(p.bodyFree) != 0 {
		t.Fatalf("after an oversized body: gauge %d, %d bodies kept", g, len(p.bodyFree))
	}
	small := make([]byte, 0, 1000)
	p.recycleBody(&small)
	if g := p.bodyFreeBytes.Load(); g != 1000 || len(p.bodyFree) != 1 {
		t.Fatalf("after a small body: gauge %d, %d bodies kept", g, len(p.bodyFree))
	}
	const eight = 8 << 20
	for i := 0; i < 8; i++ {
		b := make([]byte, 0, eight)
		p.recycleBody(&b)
	}
	if g := p.bodyFreeBytes.Load(); g > maxFreeBodyBytes || g != 1000+3*eight || len(p.bodyFree) != 4 {
		t.Fatalf("gauge %d, %d bodies kept after offering more than the bound (%d)", g, len(p.bodyFree), maxFreeBodyBytes)
	}
}
