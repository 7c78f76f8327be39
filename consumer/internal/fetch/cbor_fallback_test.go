package fetch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
)

// cutCBOR is an HTTP client that cuts every CBOR response body off at 16 KiB, as
// kinesalite 3.3.3 does, and counts the GetRecords calls of each protocol.
type cutCBOR struct {
	inner       aws.HTTPClient
	cbor, jsonN atomic.Int64
}

func (c *cutCBOR) Do(r *http.Request) (*http.Response, error) {
	isGet := r.Header.Get("X-Amz-Target") == getRecordsTarget
	resp, err := c.inner.Do(r)
	if err != nil || !isGet {
		return resp, err
	}
	if r.Header.Get("Content-Type") != contentTypeCBOR {
		c.jsonN.Add(1)
		return resp, nil
	}
	c.cbor.Add(1)
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

// TestPollerFallsBackToJSON: a CBOR response that cannot be decoded turns CBOR off
// for every poller sharing the switch, and the same read is made again in JSON, so
// no record is skipped.
func TestPollerFallsBackToJSON(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	if err := e.Streams.CreateStream("s", 1); err != nil {
		t.Fatal(err)
	}
	cfg := e.AWSConfig()
	probe := &cutCBOR{inner: cfg.HTTPClient}
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
		t.Fatal("CBOR still on after an undecodable response")
	}
	if probe.cbor.Load() == 0 || probe.jsonN.Load() == 0 {
		t.Fatalf("GetRecords calls: %d in CBOR, %d in JSON; want both", probe.cbor.Load(), probe.jsonN.Load())
	}
}
