package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServesFreshetMetrics runs the example and scrapes it until the producer's and the
// consumer's KPL/KCL metrics are there, in Prometheus' text format; then the example
// stops cleanly and its last scrape has them too.
func TestServesFreshetMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, &out, true) }()
	want := []string{"UserRecordsPut", "KinesisRecordsPut", "RecordsProcessed", "MillisBehindLatest", `StreamName="orders"`}
	missing := func(scrape string) string {
		for _, w := range want {
			if !strings.Contains(scrape, w) {
				return w
			}
		}
		return ""
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		scrape := get(t, "http://"+ln.Addr().String()+"/metrics")
		m := missing(scrape)
		if m == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s the scrape has no %s:\n%.2000s", m, scrape)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := missing(out.String()); m != "" {
		t.Fatalf("the final scrape has no %s:\n%.2000s", m, out.String())
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
