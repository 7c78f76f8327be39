package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/freshet/freshet/internal/engine/sinkproc"
)

func TestMain(m *testing.M) {
	sinkproc.MaybeServe()
	os.Exit(m.Run())
}

func TestQueueBenchDrainsEveryRecord(t *testing.T) {
	sink, err := sinkproc.Start(sinkproc.Config{OnDemandShards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sink.Close() }()
	for _, batch := range []bool{false, true} {
		q := queueBench{records: 3000, size: 32, shards: 2, batch: batch, timeout: 2 * time.Minute}
		r, err := q.run(context.Background(), sink)
		if err != nil {
			t.Fatalf("batch=%v: %v", batch, err)
		}
		if r.Acknowledged < 3000 || r.Receives == 0 || r.CPUS <= 0 || r.EngineCPUS <= 0 {
			t.Fatalf("batch=%v: result %+v: want every record acknowledged and both CPU times measured", batch, r)
		}
	}
}
