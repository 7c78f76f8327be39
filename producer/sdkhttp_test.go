package producer

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/internal/engine/streams"
)

// bodyProbe is an HTTP client that records whether PutRecords bodies reach the
// transport with a WriteTo method, the path on which the SDK resends applied calls.
type bodyProbe struct {
	inner               *awshttp.BuildableClient
	puts, withWriterTos atomic.Int64
}

func (c *bodyProbe) Do(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") == "Kinesis_20131202.PutRecords" {
		c.puts.Add(1)
		if _, ok := r.Body.(io.WriterTo); ok {
			c.withWriterTos.Add(1)
		}
	}
	return c.inner.Do(r)
}

func TestPutRecordsBodiesOfferOnlyRead(t *testing.T) {
	for _, cbor := range []bool{true, false} {
		e := startEngine(t, streams.Config{}, 2)
		cfg := e.AWSConfig()
		probe := &bodyProbe{inner: awshttp.NewBuildableClient()}
		cfg.HTTPClient = probe // a user's client: no engine wrapper underneath
		p, err := New(kinesis.NewFromConfig(cfg), WithStream(testStream), WithCBOR(cbor), WithLinger(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for i := 0; i < 2000; i++ {
			if err := p.Put(ctx, Record{PartitionKey: string(rune('a' + i%26)), Data: make([]byte, 100)}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if probe.puts.Load() == 0 {
			t.Fatalf("cbor=%v: no PutRecords call reached the probe", cbor)
		}
		if n := probe.withWriterTos.Load(); n != 0 {
			t.Fatalf("cbor=%v: %d of %d PutRecords bodies still offer WriteTo", cbor, n, probe.puts.Load())
		}
	}
}
