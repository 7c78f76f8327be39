package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/kinesiswire"
)

// cborMangler is an HTTP client that passes JSON calls through and answers every CBOR
// GetRecords call with what mangle makes of the engine's response, counting the
// GetRecords calls of each protocol.
type cborMangler struct {
	inner       aws.HTTPClient
	mangle      func(*http.Response) (*http.Response, error)
	cbor, jsonN atomic.Int64
}

func (c *cborMangler) Do(r *http.Request) (*http.Response, error) {
	isGet := r.Header.Get("X-Amz-Target") == kinesiswire.GetRecordsTarget
	resp, err := c.inner.Do(r)
	if err != nil || !isGet {
		return resp, err
	}
	if r.Header.Get("Content-Type") != kinesiswire.ContentType {
		c.jsonN.Add(1)
		return resp, nil
	}
	c.cbor.Add(1)
	return c.mangle(resp)
}

// cutAt16KiB cuts a response body off at 16 KiB, as kinesalite 3.3.3 does to CBOR.
func cutAt16KiB(resp *http.Response) (*http.Response, error) {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(body) > 16<<10 {
		body = body[:16<<10]
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// rejectWith answers with an error response of the given status, content type and body.
func rejectWith(status int, contentType, body string) func(*http.Response) (*http.Response, error) {
	return func(resp *http.Response) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		h := http.Header{}
		h.Set("Content-Type", contentType)
		return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: resp.Request, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
	}
}

// TestPollerFallsBackToJSON: a CBOR call the endpoint does not answer in CBOR (a body
// that cannot be decoded, or an error that rejects CBOR itself) turns CBOR off for every
// poller sharing the switch, and the same read is made again in JSON, so no record is
// skipped.
func TestPollerFallsBackToJSON(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mangle func(*http.Response) (*http.Response, error)
	}{
		{"body cut at 16 KiB", cutAt16KiB},
		{"415", rejectWith(http.StatusUnsupportedMediaType, "text/plain", "unsupported media type")},
		{"JSON SerializationException", rejectWith(http.StatusBadRequest, "application/x-amz-json-1.1", `{"__type":"SerializationException","message":"bad body"}`)},
		{"UnknownOperationException in CBOR", rejectWith(http.StatusBadRequest, kinesiswire.ContentType, "\xa1\x66__type\x78\x19UnknownOperationException")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := enginetest.Start(t, engine.Config{})
			if err := e.Streams.CreateStream("s", 1); err != nil {
				t.Fatal(err)
			}
			cfg := e.AWSConfig()
			probe := &cborMangler{inner: cfg.HTTPClient, mangle: tc.mangle}
			cfg.HTTPClient = probe
			kin := kinesis.NewFromConfig(cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const n = 200
			var entries []types.PutRecordsRequestEntry
			for i := 0; i < n; i++ {
				entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i)), Data: bytes.Repeat([]byte{byte(i)}, 1000)})
			}
			if _, err := kin.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries}); err != nil {
				t.Fatal(err)
			}
			var on atomic.Bool
			on.Store(true)
			pc := fastConfig(Position{Type: types.ShardIteratorTypeTrimHorizon})
			pc.MaxRecords, pc.CBOR = n, &on
			p, err := NewPoller(ctx, kin, pc)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var got int
			for got < n {
				b, err := p.Next(ctx)
				if err != nil {
					t.Fatalf("after %d records: %v", got, err)
				}
				for _, r := range b.Records {
					if len(r.Data) != 1000 || r.Data[0] != byte(got) {
						t.Fatalf("record %d has data %x...", got, r.Data[:min(4, len(r.Data))])
					}
					got++
				}
			}
			if on.Load() {
				t.Fatal("CBOR still on")
			}
			if probe.cbor.Load() != 1 || probe.jsonN.Load() == 0 {
				t.Fatalf("GetRecords calls: %d in CBOR, %d in JSON; want 1 and some", probe.cbor.Load(), probe.jsonN.Load())
			}
		})
	}
}

// TestPollerKeepsCBORForServiceErrors: an error the service sends in CBOR (here an
// expired iterator, which the poller handles by asking for a new one) is an error of
// the call, not a sign that CBOR is unsupported.
func TestPollerKeepsCBORForServiceErrors(t *testing.T) {
	err := kinesiswire.DecodeCBORError(http.StatusBadRequest, "", []byte("\xa1\x66__type\x78\x18ExpiredIteratorException"))
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ExpiredIteratorException" {
		t.Fatalf("decoded error %v", err)
	}
	if kinesiswire.Rejected(http.StatusBadRequest, kinesiswire.ContentType, err) {
		t.Fatalf("%v in CBOR taken for a rejection of CBOR", err)
	}
}
