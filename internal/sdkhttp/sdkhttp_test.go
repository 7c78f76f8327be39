package sdkhttp

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type closedWriterToBody struct {
	*bytes.Reader
	closed bool
}

func (b *closedWriterToBody) Close() error { b.closed = true; return nil }

// WriteTo answers as the SDK's body does once closed.
func (b *closedWriterToBody) WriteTo(w io.Writer) (int64, error) {
	if b.closed {
		return 0, io.EOF
	}
	return b.Reader.WriteTo(w)
}

type recordingClient struct{ body io.ReadCloser }

func (c *recordingClient) Do(r *http.Request) (*http.Response, error) {
	c.body = r.Body
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

func TestBodyLosesWriterTo(t *testing.T) {
	rc := &recordingClient{}
	c := ReadOnlyBodies(rc)
	body := &closedWriterToBody{Reader: bytes.NewReader([]byte("payload"))}
	req, _ := http.NewRequest(http.MethodPost, "http://example.invalid/", body)
	if _, err := c.Do(req); err != nil {
		t.Fatal(err)
	}
	if _, ok := rc.body.(io.WriterTo); ok {
		t.Fatal("wrapped body still offers WriteTo")
	}
	_ = rc.body.Close()
	if !body.closed {
		t.Fatal("Close did not reach the SDK's body")
	}
	// The transport's extra-bytes check: io.Copy of a drained, closed body must end
	// cleanly through Read, where the raw body's WriteTo reports io.EOF as an error.
	if _, err := io.Copy(io.Discard, body); err != io.EOF {
		t.Fatalf("raw closed body: io.Copy error %v, want io.EOF (the defect)", err)
	}
	if _, err := io.Copy(io.Discard, rc.body); err != nil {
		t.Fatalf("wrapped closed body: io.Copy error %v", err)
	}
}

func TestWrappingIsIdempotent(t *testing.T) {
	c := ReadOnlyBodies(nil)
	if ReadOnlyBodies(c) != c {
		t.Fatal("double wrap")
	}
}

func TestRoundTripThroughServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(bytes.ToUpper(b))
	}))
	defer srv.Close()
	c := ReadOnlyBodies(srv.Client())
	payload := strings.Repeat("x", 64<<10)
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(payload))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if string(got) != strings.ToUpper(payload) {
		t.Fatalf("got %d bytes back", len(got))
	}
}
