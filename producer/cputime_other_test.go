//go:build !unix

package producer

import "time"

// processCPU is unknown on this platform; benchmarks then report 0 CPU time.
func processCPU() time.Duration { return 0 }
