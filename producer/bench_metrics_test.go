package producer

import "testing"

// BenchmarkPutMetrics measures the hot path of BenchmarkPut (aggregated, in-memory
// client) with the producer's default metrics (MetricsDetailed, GranularityShard, kept in
// process) and with metrics off, no hooks in either.
func BenchmarkPutMetrics(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []Option
	}{
		{"off", []Option{WithMetrics(MetricsNone, GranularityGlobal)}},
		{"default", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFake(8)
			f.discard = true
			p, err := New(f, append([]Option{WithStream(testStream)}, bc.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			benchPut(b, p)
		})
	}
}
