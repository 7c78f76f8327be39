package cputime

import (
	"runtime"
	"testing"
	"time"
)

// TestProcessGrowsWithWork checks that the CPU time read grows by about the work done.
func TestProcessGrowsWithWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("CPU time is not read on this platform")
	}
	before := Process()
	x := 0
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x++
	}
	if got := Process() - before; got <= 0 {
		t.Fatalf("CPU time grew by %v over 50 ms of work (%d loops)", got, x)
	}
}
