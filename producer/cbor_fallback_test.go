package producer

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/internal/engine/streams"
	"github.com/freshet/freshet/internal/kinesiswire"
)

// TestCBORFallbackToJSON: an endpoint that cuts CBOR responses short (as kinesalite does
// past 16 KiB) makes the producer switch to JSON after the first undecodable response.
// Every record succeeds; the records of that one call are stored twice, and exactly they
// show the failed CBOR attempt.
func TestCBORFallbackToJSON(t *testing.T) {
	e := startEngine(t, streams.Config{}, 2)
	target, err := url.Parse(e.URL())
	if err != nil {
		t.Fatal(err)
	}
	var cborCalls, jsonPuts atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Request.Header.Get("X-Amz-Target") != kinesiswire.PutRecordsTarget {
			return nil
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), kinesiswire.ContentType) {
			jsonPuts.Add(1)
			return nil
		}
		cborCalls.Add(1)
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		_ = r.Body.Close()
		b = b[:len(b)/2]
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	cfg := e.AWSConfig()
	cfg.BaseEndpoint = aws.String(srv.URL)
	p, err := New(kinesis.NewFromConfig(cfg), WithStream(testStream), WithLinger(time.Hour), WithMaxInFlight(1), WithCollectionMaxCount(2),
		WithBackoff(time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close(context.Background()) }()
	n := 3000
	o := putAll(t, p, n, 300)
	if failed := o.check(t, n); len(failed) > 0 {
		t.Fatalf("%d failed: %v", len(failed), failed[0].Err)
	}
	if c := cborCalls.Load(); c != 1 {
		t.Fatalf("%d CBOR PutRecords calls, want 1 before the switch to JSON", c)
	}
	if jsonPuts.Load() == 0 {
		t.Fatal("no JSON PutRecords call after the switch")
	}
	recs, _ := readEngine(t, e)
	count := map[string]int{}
	for _, r := range recs {
		count[r.data]++
	}
	// A record is stored twice exactly when its first attempt was the CBOR call whose
	// response could not be read.
	dups := 0
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := 0; i < n; i++ {
		a := o.res[i].Attempts
		failedCBOR := len(a) == 2 && strings.Contains(a[0].ErrorMessage, "decode PutRecords response") && a[1].ErrorCode == ""
		switch c := count[string(recordData(i))]; {
		case c == 1 && len(a) == 1 && a[0].ErrorCode == "":
		case c == 2 && failedCBOR:
			dups++
		default:
			t.Fatalf("record %d stored %d times with attempts %+v", i, c, a)
		}
	}
	if dups == 0 {
		t.Fatal("no record went through the failed CBOR call")
	}
	t.Logf("%d of %d records stored twice (the one CBOR call's)", dups, n)
}

// TestCBORRejectedSwitchesToJSON: an endpoint that rejects CBOR requests outright
// (415) makes the producer switch to JSON at its first call; the records of that call
// are retried in JSON, and every record is stored once. Without aggregation the records
// put before the switch were encoded in CBOR as they were put, and are sent in JSON.
func TestCBORRejectedSwitchesToJSON(t *testing.T) {
	for _, aggregate := range []bool{true, false} {
		t.Run("aggregate="+strconv.FormatBool(aggregate), func(t *testing.T) {
			e := startEngine(t, streams.Config{}, 2)
			target, err := url.Parse(e.URL())
			if err != nil {
				t.Fatal(err)
			}
			var rejected atomic.Int64
			proxy := httputil.NewSingleHostReverseProxy(target)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Amz-Target") == kinesiswire.PutRecordsTarget && strings.HasPrefix(r.Header.Get("Content-Type"), kinesiswire.ContentType) {
					rejected.Add(1)
					_, _ = io.Copy(io.Discard, r.Body)
					w.Header().Set("Content-Type", "text/plain")
					w.WriteHeader(http.StatusUnsupportedMediaType)
					_, _ = io.WriteString(w, "unsupported media type")
					return
				}
				proxy.ServeHTTP(w, r)
			}))
			defer srv.Close()
			cfg := e.AWSConfig()
			cfg.BaseEndpoint = aws.String(srv.URL)
			p, err := New(kinesis.NewFromConfig(cfg), WithStream(testStream), WithLinger(time.Millisecond), WithMaxInFlight(1),
				WithBackoff(time.Millisecond, 10*time.Millisecond), WithAggregation(aggregate))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = p.Close(context.Background()) }()
			n := 1000
			o := putAll(t, p, n, 100)
			if failed := o.check(t, n); len(failed) > 0 {
				t.Fatalf("%d failed: %v", len(failed), failed[0].Err)
			}
			if c := rejected.Load(); c != 1 {
				t.Fatalf("%d CBOR PutRecords calls rejected, want 1 before the switch to JSON", c)
			}
			recs, _ := readEngine(t, e)
			assertEngineExactlyOnce(t, recs, n)
		})
	}
}
