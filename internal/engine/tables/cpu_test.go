package tables_test

import (
	"testing"

	"github.com/freshet/freshet/internal/cputime"
)

// reportCPU starts counting the process's CPU time; the returned function reports it
// per op as cpu-ns/op, which a machine shared with other work distorts less than ns/op.
func reportCPU(b *testing.B) func() {
	start := cputime.Process()
	return func() { b.ReportMetric(float64(cputime.Process()-start)/float64(b.N), "cpu-ns/op") }
}
