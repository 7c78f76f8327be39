//go:build !unix

package main

// cpuSeconds is unknown on this platform: the benchmarks report 0.
func cpuSeconds() float64 { return 0 }

// peakRSSMB is unknown on this platform: the benchmarks report 0.
func peakRSSMB() float64 { return 0 }

// loadAverage is unknown on this platform.
func loadAverage() string { return "" }
