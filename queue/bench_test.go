package queue

import (
	"context"
	"testing"
	"time"
)

// BenchmarkConsumer consumes b.N records of 100 bytes from a queue on the in-process
// engine with an empty handler: records per second and CPU per record (engine
// included, as both run in this process).
func BenchmarkConsumer(b *testing.B) {
	f := newFixture(b, 4, nil)
	f.put(b, b.N)
	c, err := New(f.k, f.arn, WithWaitTime(0))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	stop := runConsumer(b, c, func(context.Context, *Record) error { return nil })
	waitFor(b, "records acknowledged", 10*time.Minute, func() bool { return c.Stats().Acknowledged >= int64(b.N) })
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if err := stop(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
}
