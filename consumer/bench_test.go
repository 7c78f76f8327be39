package consumer

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/checkpoint"
)

// BenchmarkConvertAggregated measures de-aggregation of a GetRecords batch into processor
// records: 100 Kinesis records of 100 user records of ~14 bytes each.
func BenchmarkConvertAggregated(b *testing.B) {
	var batch []types.Record
	bytes := 0
	for i := 0; i < 100; i++ {
		r := aggregate(b, sq(i), 100)
		bytes += len(r.Data)
		batch = append(batch, r)
	}
	h := benchConsumer(b)
	b.ReportAllocs()
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	var scratch []aggregation.UserRecord
	for i := 0; i < b.N; i++ {
		var out []Record
		out, scratch = h.convert(batch, scratch)
		if len(out) != 10000 {
			b.Fatal(len(out))
		}
	}
	b.ReportMetric(float64(b.N)*10000/b.Elapsed().Seconds(), "records/s")
}

func benchConsumer(b *testing.B) *shardConsumer {
	cfg := defaultConfig()
	cp, err := checkpoint.New(newMemStore("w"), "k", "w", checkpoint.TrimHorizon)
	if err != nil {
		b.Fatal(err)
	}
	sc, err := newShardConsumer(context.Background(), shardEnv{cfg: &cfg}, ShardInfo{ShardID: "s", LeaseKey: "s"}, &recProc{}, cp, checkpoint.TrimHorizon)
	if err != nil {
		b.Fatal(err)
	}
	return sc
}
