//go:build !unix

package aggregation

// processCPUTime is unknown on this platform; benchmarks then omit their
// CPU-time metrics.
func processCPUTime() int64 { return 0 }
