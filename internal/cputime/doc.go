// Package cputime reads the CPU time the process has used, for benchmarks and bench
// commands that report CPU per operation beside wall time (on a shared machine the two
// differ by the other work it runs). It sits beside the code it measures, outside any
// data flow.
package cputime
