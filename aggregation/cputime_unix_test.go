//go:build unix

package aggregation

import "syscall"

// processCPUTime returns the CPU time (user and system) the process has used
// so far, in nanoseconds, or 0 when it is unknown. Benchmarks report it per
// operation because on a shared machine wall time measures the neighbours
// as much as the code.
func processCPUTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
