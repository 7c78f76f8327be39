package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestServesFreshetMetrics runs the example for two seconds and reads its scrape: the
// producer's and the consumer's KPL/KCL metrics are there, in Prometheus' text format.
func TestServesFreshetMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, "127.0.0.1:0", &out, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"UserRecordsPut", "KinesisRecordsPut", "RecordsProcessed", "MillisBehindLatest", `StreamName="orders"`} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("scrape has no %s:\n%.2000s", want, out.String())
		}
	}
}
