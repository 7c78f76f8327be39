package peers

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestProcessCPU: /proc's CPU time of this process grows with work done and agrees
// with getrusage's to within a few clock ticks.
func TestProcessCPU(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
	}
	after, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	rusage := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if after-before < 100*time.Millisecond {
		t.Fatalf("CPU grew by %v over 300 ms of spinning", after-before)
	}
	if d := rusage - after; d < -5*clockTick || d > 20*clockTick {
		t.Fatalf("/proc says %v, getrusage %v", after, rusage)
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
