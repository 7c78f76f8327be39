//go:build unix

package producer

import (
	"syscall"
	"time"
)

// processCPU returns the user+system CPU time of the process so far, or 0 when
// it is unknown.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
