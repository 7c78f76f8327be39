package producer

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/streams"
)

// startOnDemand starts an engine with testStream ON_DEMAND on shards shards, AUTO when
// auto is set.
func startOnDemand(t *testing.T, shards int, auto bool) *engine.Engine {
	t.Helper()
	e := enginetest.Start(t, engine.Config{Streams: streams.Config{OnDemandShards: shards, OnDemandWindow: -1}})
	if err := e.Streams.CreateOnDemandStream(testStream, 0); err != nil {
		t.Fatal(err)
	}
	if auto {
		setDistribution(t, e, types.RecordDistributionStrategyAuto)
	}
	return e
}

func setDistribution(t *testing.T, e *engine.Engine, d types.RecordDistributionStrategy) {
	t.Helper()
	_, err := enginetest.Kinesis(e).UpdateStreamRecordDistributionStrategy(context.Background(), &kinesis.UpdateStreamRecordDistributionStrategyInput{
		StreamARN: aws.String(e.Streams.StreamARN(testStream)), RecordDistributionStrategy: d})
	if err != nil {
		t.Fatal(err)
	}
}

func putRec(t *testing.T, p *Producer, o *outcomes, i int, pk string) {
	t.Helper()
	if err := p.Put(context.Background(), Record{PartitionKey: pk, Data: recordData(i)}, o.cb(i)); err != nil {
		t.Fatalf("Put %d: %v", i, err)
	}
}

// wantAllStored checks that every record 0..n-1 succeeded and is in the stream, as a
// KCL reader (which drops aggregated user records outside their shard's range) sees it.
func wantAllStored(t *testing.T, e *engine.Engine, o *outcomes, n int) []stored {
	t.Helper()
	if failed := o.check(t, n); len(failed) > 0 {
		t.Fatalf("%d records failed, the first: %v", len(failed), failed[0].Err)
	}
	recs, _ := readEngine(t, e)
	seen := make(map[string]bool, n)
	for _, r := range recs {
		seen[r.data] = true
	}
	for i := 0; i < n; i++ {
		if !seen[string(recordData(i))] {
			t.Fatalf("record %d reported written (%+v) but not in the stream as a KCL reader sees it", i, o.res[i])
		}
	}
	return recs
}

// TestAutoStreamNeverAggregates: on an AUTO stream the producer (aggregating by
// default) sends 200,000 records, half of them without a partition key, as plain
// records the service spreads over every shard; none is aggregated and none lost.
func TestAutoStreamNeverAggregates(t *testing.T) {
	const n = 200_000
	e := startOnDemand(t, 4, true)
	p := newEngineProducer(t, e, WithCBOR(true))
	o := newOutcomes(n)
	for i := 0; i < n; i++ {
		pk := ""
		if i%2 == 0 {
			pk = "key-" + strconv.Itoa(i%1000)
		}
		putRec(t, p, o, i, pk)
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantAllStored(t, e, o, n)
	for i, r := range o.res {
		if r.Aggregated {
			t.Fatalf("record %d was aggregated on an AUTO stream", i)
		}
	}
	all, err := e.Streams.Records(testStream)
	if err != nil {
		t.Fatal(err)
	}
	perShard := map[string]int{}
	keyless := 0
	for _, r := range all {
		if len(r.Data) >= 4 && string(r.Data[:4]) == string(aggregation.Magic[:]) {
			t.Fatalf("an aggregate reached the AUTO stream in shard %s", r.ShardID)
		}
		perShard[r.ShardID]++
		if r.PartitionKey == "" {
			keyless++
		}
	}
	if len(perShard) != 4 {
		t.Fatalf("records on %d shards, want all 4: %v", len(perShard), perShard)
	}
	for id, c := range perShard {
		if c < len(all)/4-len(all)/20 {
			t.Fatalf("shard %s holds %d of %d records: not spread evenly (%v)", id, c, len(all), perShard)
		}
	}
	if keyless < n/2 {
		t.Fatalf("%d records stored without a key, want at least %d", keyless, n/2)
	}
}

// TestKeylessRecordsOnlyOnAutoStreams: Put refuses a record without a partition key on
// a stream that places records by key, with ErrInvalidRecord.
func TestKeylessRecordsOnlyOnAutoStreams(t *testing.T) {
	e := startOnDemand(t, 2, false)
	p := newEngineProducer(t, e)
	err := p.Put(context.Background(), Record{Data: []byte("x")}, nil)
	if !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("keyless Put on a USER_PARTITION_KEY stream: %v, want ErrInvalidRecord", err)
	}
	if _, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}

// TestSwitchToAutoWhileProducing: a stream switched to AUTO while an aggregating
// producer writes to it loses nothing, and the producer stops aggregating.
func TestSwitchToAutoWhileProducing(t *testing.T) {
	const n = 100_000
	e := startOnDemand(t, 4, false)
	p := newEngineProducer(t, e, WithCBOR(true), WithShardRefreshInterval(time.Hour))
	o := newOutcomes(n)
	for i := 0; i < n; i++ {
		if i == n/3 {
			// Let part of the first third reach the stream, aggregated, then switch.
			for o.pending.Load() > int64(n/6) {
				time.Sleep(time.Millisecond)
			}
			setDistribution(t, e, types.RecordDistributionStrategyAuto)
		}
		putRec(t, p, o, i, "key-"+strconv.Itoa(i%500))
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantAllStored(t, e, o, n)
	aggregatedBefore, aggregatedLate := 0, 0
	for i, r := range o.res {
		if r.Aggregated {
			if i < n/3 {
				aggregatedBefore++
			} else if i > n*9/10 {
				aggregatedLate++
			}
		}
	}
	if aggregatedBefore == 0 {
		t.Fatal("no record was aggregated before the switch: the test did not test a switch")
	}
	if aggregatedLate != 0 {
		t.Fatalf("%d of the last records were still aggregated after the switch to AUTO", aggregatedLate)
	}
}
