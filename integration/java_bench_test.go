//go:build unix

package integration

import (
	"bufio"
	"context"
	"encoding/base64"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/consumer"
	"github.com/freshet/freshet/integration/peers"
	"github.com/freshet/freshet/internal/engine/sinkproc"
	"github.com/freshet/freshet/producer"
)

// BenchmarkJavaSideBySide measures the Java KPL and KCL 3.x beside Freshet's producer
// and consumer, one after the other in one run, against the bundled engine in a child
// process (sinkproc), so each client's CPU is its own: the KPL's is its JVM's and its
// native daemon's, the Java KCL's its JVM's (from /proc), Freshet's this process's. The
// records are the generator's of the Java programs (100 bytes, 1,000 keys), aggregated.
//
//	go test -run '^$' -bench JavaSideBySide -benchtime 1x ./integration/
//
// FRESHET_JAVA_BENCH_RECORDS sets the record count (1,000,000 by default; a fifth of it
// in the limits-on run).
//   - producer: limits off, 4 shards; user records per CPU-second of each producer.
//   - producer-limits: limits on, 4 shards; the share of the shards' byte limit each
//     producer used (its records' bytes over its wall time).
//   - consumer: one worker drains the records from 4 shards; records per second and CPU
//     per record from its first delivered record to its last (startup left out), each
//     doing the Java app's per-record work (one line with shard, sequence, sub-sequence,
//     key and base64 data, written out).
func BenchmarkJavaSideBySide(b *testing.B) {
	records := 1_000_000
	if v := os.Getenv("FRESHET_JAVA_BENCH_RECORDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("FRESHET_JAVA_BENCH_RECORDS=%q: want a number of at least 1000", v)
		}
		records = n
	}
	b.Run("producer", func(b *testing.B) {
		for range b.N {
			benchProducers(b, records, false)
		}
	})
	b.Run("producer-limits", func(b *testing.B) {
		for range b.N {
			benchProducers(b, records/5, true)
		}
	})
	b.Run("consumer", func(b *testing.B) {
		for range b.N {
			benchConsumers(b, records)
		}
	})
}

const benchShards, benchKeys, benchSize = 4, 1000, 100

// benchSink starts the engine in a child process with its TLS listener.
func benchSink(b *testing.B, limits bool) *sinkproc.Sink {
	b.Helper()
	s, err := sinkproc.Start(sinkproc.Config{Limits: limits, TLS: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// selfCPU is this process's CPU time.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkStored fails b unless the stream holds n user records.
func checkStored(b *testing.B, s *sinkproc.Sink, stream string, n int) {
	b.Helper()
	c, err := s.Check(stream)
	if err != nil {
		b.Fatal(err)
	}
	if c.Stored != int64(n) {
		b.Fatalf("stream %s holds %d user records, want %d", stream, c.Stored, n)
	}
}

func benchProducers(b *testing.B, n int, limits bool) {
	s := benchSink(b, limits)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := s.CreateStream("kpl", benchShards); err != nil {
		b.Fatal(err)
	}
	k := peers.RunKPL(ctx, b, peers.KPLConfig{Stream: "kpl", Endpoint: s.TLSURL(), Records: n, Keys: benchKeys, Size: benchSize, Quiet: true})
	if k.OK != int64(n) {
		b.Fatalf("KPL: %v", k)
	}
	checkStored(b, s, "kpl", n)
	kplCPU := k.JVMCPU + k.NativeCPU

	if err := s.CreateStream("freshet", benchShards); err != nil {
		b.Fatal(err)
	}
	p, err := producer.New(kinesis.NewFromConfig(s.AWSConfig()), producer.WithStream("freshet"))
	if err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	perKey := make([]int64, benchKeys)
	cpu0, start := selfCPU(b), time.Now()
	for id := range int64(n) {
		key := int(id % benchKeys)
		rec := producer.Record{PartitionKey: "k-" + strconv.Itoa(key), Data: genData(id, perKey[key], benchSize)}
		perKey[key]++
		if err := p.Put(ctx, rec, func(r producer.Result) {
			if r.Err != nil {
				failed.Add(1)
			}
		}); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	wall, cpu := time.Since(start), selfCPU(b)-cpu0
	if failed.Load() > 0 {
		b.Fatalf("Freshet: %d records failed", failed.Load())
	}
	checkStored(b, s, "freshet", n)

	if limits {
		// Every record is benchSize bytes of data and a key of about 5 bytes.
		bytes := float64(n) * (benchSize + 5)
		limit := float64(benchShards) * (1 << 20)
		kplShare := 100 * bytes / k.Wall.Seconds() / limit
		freshetShare := 100 * bytes / wall.Seconds() / limit
		b.ReportMetric(kplShare, "kpl-byte-limit-%")
		b.ReportMetric(freshetShare, "freshet-byte-limit-%")
		b.ReportMetric(freshetShare/kplShare, "freshet/kpl")
		b.Logf("limits on, %d records: KPL %.1f%% of the byte limit in %v (CPU %v); Freshet %.1f%% in %v (CPU %v)",
			n, kplShare, k.Wall.Round(time.Millisecond), kplCPU, freshetShare, wall.Round(time.Millisecond), cpu)
		return
	}
	kplRate, freshetRate := float64(n)/kplCPU.Seconds(), float64(n)/cpu.Seconds()
	b.ReportMetric(kplRate, "kpl-records/cpu-s")
	b.ReportMetric(freshetRate, "freshet-records/cpu-s")
	b.ReportMetric(freshetRate/kplRate, "freshet/kpl")
	b.Logf("limits off, %d records: KPL %.0f records/CPU-s (JVM %v + native %v, wall %v); Freshet %.0f records/CPU-s (CPU %v, wall %v)",
		n, kplRate, k.JVMCPU, k.NativeCPU, k.Wall.Round(time.Millisecond), freshetRate, cpu, wall.Round(time.Millisecond))
}

// drainSpan is a consumer's drain from its first delivered record to its last.
type drainSpan struct {
	wall, cpu time.Duration
}

// measureDrain polls count until it reaches n and returns the span between the first
// delivery and the n-th, with the CPU cpu reports over it.
func measureDrain(b *testing.B, n int, d time.Duration, count func() int, cpu func() time.Duration) drainSpan {
	b.Helper()
	deadline := time.Now().Add(d)
	var start time.Time
	var cpu0 time.Duration
	for {
		c := count()
		if c > 0 && start.IsZero() {
			start, cpu0 = time.Now(), cpu()
		}
		if c >= n {
			return drainSpan{wall: time.Since(start), cpu: cpu() - cpu0}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d records delivered within %v", c, n, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func benchConsumers(b *testing.B, n int) {
	s := benchSink(b, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := s.CreateStream("drain", benchShards); err != nil {
		b.Fatal(err)
	}
	kin := kinesis.NewFromConfig(s.AWSConfig())
	produceGen(ctx, b, kin, "drain", 0, int64(n), benchKeys, make([]int64, benchKeys))

	jw := peers.StartKCL(b, peers.KCLConfig{WorkerID: "java-bench", App: "bench-java", Stream: "drain", Endpoint: s.TLSURL()})
	jvmCPU := func() time.Duration {
		c, err := jw.CPU()
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	java := measureDrain(b, n, 20*time.Minute, jw.RecordCount, jvmCPU)
	jw.Stop(b)

	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = null.Close() }()
	var mu sync.Mutex
	out := bufio.NewWriterSize(null, 64<<10)
	var delivered atomic.Int64
	handler := consumer.HandlerFunc(func(_ context.Context, shard consumer.ShardInfo, recs []consumer.Record) error {
		mu.Lock()
		defer mu.Unlock()
		var line []byte
		for _, r := range recs {
			line = append(line[:0], "REC\tfreshet-bench\t"...)
			line = append(line, shard.ShardID...)
			line = append(line, '\t')
			line = append(line, r.SequenceNumber...)
			line = append(line, '\t')
			line = strconv.AppendInt(line, r.SubSequenceNumber, 10)
			line = append(line, '\t')
			line = append(line, r.PartitionKey...)
			line = append(line, '\t')
			line = base64.StdEncoding.AppendEncode(line, r.Data)
			line = append(line, '\n')
			if _, err := out.Write(line); err != nil {
				return err
			}
		}
		delivered.Add(int64(len(recs)))
		return out.Flush()
	})
	w, err := consumer.New("bench-freshet", kin, dynamodb.NewFromConfig(s.AWSConfig()), handler,
		consumer.WithStream("drain", consumer.TrimHorizon()), consumer.WithWorkerID("freshet-bench"))
	if err != nil {
		b.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	fresh := measureDrain(b, n, 20*time.Minute, func() int { return int(delivered.Load()) }, func() time.Duration { return selfCPU(b) })
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}

	javaRate, freshRate := float64(n)/java.wall.Seconds(), float64(n)/fresh.wall.Seconds()
	javaCPU := float64(java.cpu.Microseconds()) / float64(n)
	freshCPU := float64(fresh.cpu.Microseconds()) / float64(n)
	b.ReportMetric(javaRate, "kcl-records/s")
	b.ReportMetric(freshRate, "freshet-records/s")
	b.ReportMetric(javaCPU, "kcl-cpu-us/record")
	b.ReportMetric(freshCPU, "freshet-cpu-us/record")
	b.ReportMetric(javaCPU/freshCPU, "kcl/freshet-cpu")
	b.Logf("drain of %d records: Java KCL %.0f records/s, %.2f us CPU/record (%v in %v); Freshet %.0f records/s, %.2f us CPU/record (%v in %v)",
		n, javaRate, javaCPU, java.cpu, java.wall.Round(time.Millisecond), freshRate, freshCPU, fresh.cpu, fresh.wall.Round(time.Millisecond))
}
