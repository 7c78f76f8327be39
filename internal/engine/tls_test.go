package engine_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
)

// tlsClient trusts only the engine's certificate; h2 selects HTTP/2 through ALPN.
func tlsClient(t *testing.T, e *engine.Engine, h2 bool) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(e.CertificatePEM()) {
		t.Fatalf("CertificatePEM %q is not a PEM certificate", e.CertificatePEM())
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestTLSListenerServesHTTP1AndHTTP2WithAVerifiableCertificate(t *testing.T) {
	e := enginetest.Start(t, engine.Config{TLS: &engine.TLSConfig{}})
	if !strings.HasPrefix(e.TLSURL(), "https://127.0.0.1:") || !strings.HasPrefix(e.URL(), "http://") {
		t.Fatalf("URL %q TLSURL %q", e.URL(), e.TLSURL())
	}
	for _, tc := range []struct {
		name  string
		h2    bool
		proto string
	}{{"http1.1", false, "HTTP/1.1"}, {"http2", true, "HTTP/2.0"}} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.TLSURL(), strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
			resp, err := tlsClient(t, e, tc.h2).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Proto != tc.proto || !strings.Contains(string(body), "StreamNames") {
				t.Fatalf("status %d proto %s body %s", resp.StatusCode, resp.Proto, body)
			}
		})
	}
	// The SDK over HTTPS sees the same state as over the plain listener.
	cfg := e.AWSConfig()
	cfg.BaseEndpoint = aws.String(e.TLSURL())
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CertificatePEM())
	cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kinesis.NewFromConfig(cfg).CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := enginetest.Kinesis(e).DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")}); err != nil {
		t.Fatalf("stream created over TLS not seen over HTTP: %v", err)
	}
}

func TestTLSCertificateFromFiles(t *testing.T) {
	first := enginetest.Start(t, engine.Config{TLS: &engine.TLSConfig{}})
	dir := t.TempDir()
	// A certificate and key written by hand: take the generated pair's certificate and
	// check that a mismatched key is refused, then that a cert without key is refused.
	certFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certFile, first.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Start(engine.Config{TLS: &engine.TLSConfig{CertFile: certFile}}); err == nil {
		t.Fatal("CertFile without KeyFile: no error")
	}
	if _, err := engine.Start(engine.Config{TLS: &engine.TLSConfig{CertFile: certFile, KeyFile: filepath.Join(dir, "missing.pem")}}); err == nil {
		t.Fatal("missing KeyFile: no error")
	}
}

func TestSTSGetCallerIdentity(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	post := func(body string) (int, string) {
		resp, err := http.Post(e.URL(), "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := post("Action=GetCallerIdentity&Version=2011-06-15")
	if status != http.StatusOK || !strings.Contains(body, "<Account>000000000000</Account>") ||
		!strings.Contains(body, "<Arn>arn:aws:iam::000000000000:user/freshet</Arn>") {
		t.Fatalf("GetCallerIdentity: %d %s", status, body)
	}
	if status, body := post("Action=AssumeRole&Version=2011-06-15"); status != http.StatusBadRequest || !strings.Contains(body, "InvalidAction") {
		t.Fatalf("AssumeRole: %d %s", status, body)
	}
}

// The Java SDK's Netty client assumes HTTP/2 on TLS without offering it by ALPN: the
// engine must still answer the HTTP/2 preface with its SETTINGS frame.
func TestTLSListenerServesHTTP2WithoutALPN(t *testing.T) {
	e := enginetest.Start(t, engine.Config{TLS: &engine.TLSConfig{}})
	conn, err := tls.Dial("tcp", e.TLSAddr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "" {
		t.Fatalf("negotiated %q without offering ALPN", p)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// Client preface, then an empty SETTINGS frame (length 0, type 4, flags 0, stream 0).
	if _, err := conn.Write(append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 9)
	if _, err := io.ReadFull(conn, head); err != nil {
		t.Fatal(err)
	}
	if head[3] != 4 {
		t.Fatalf("first frame from the engine has type %d, want SETTINGS (4): % x", head[3], head)
	}
}
