//go:build !unix

package main

// peakRSSMB is unknown on this platform: the benchmarks report 0.
func peakRSSMB() float64 { return 0 }

// loadAverage is unknown on this platform.
func loadAverage() string { return "" }
