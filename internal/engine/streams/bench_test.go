package streams_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
)

func benchEntries(n, size int) []types.PutRecordsRequestEntry {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	entries := make([]types.PutRecordsRequestEntry, n)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String("pk-" + strconv.Itoa(i))}
	}
	return entries
}

// BenchmarkEnginePutRecords measures PutRecords of 500 x 100 B records through the SDK
// client, from several goroutines sharing one client.
func BenchmarkEnginePutRecords(b *testing.B) {
	e := enginetest.Start(b, engine.Config{})
	k := enginetest.Kinesis(e)
	ctx := context.Background()
	if err := e.Streams.CreateStream("bench", 8); err != nil {
		b.Fatal(err)
	}
	entries := benchEntries(500, 100)
	b.ReportAllocs()
	b.SetBytes(500 * 100)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			out, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("bench"), Records: entries})
			if err != nil {
				b.Error(err)
				return
			}
			if *out.FailedRecordCount != 0 {
				b.Errorf("%d failed", *out.FailedRecordCount)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*500/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkEngineGetRecords measures GetRecords of up to 10,000 x 100 B records through
// the SDK client.
func BenchmarkEngineGetRecords(b *testing.B) {
	e := enginetest.Start(b, engine.Config{})
	k := enginetest.Kinesis(e)
	ctx := context.Background()
	if err := e.Streams.CreateStream("bench", 1); err != nil {
		b.Fatal(err)
	}
	entries := benchEntries(500, 100)
	for i := 0; i < 20; i++ {
		if _, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("bench"), Records: entries}); err != nil {
			b.Fatal(err)
		}
	}
	it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("bench"),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(10000 * 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			b.Fatal(err)
		}
		if len(out.Records) != 10000 {
			b.Fatal(fmt.Sprint(len(out.Records)))
		}
	}
	b.ReportMetric(float64(b.N)*10000/b.Elapsed().Seconds(), "records/s")
}
