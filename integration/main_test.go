package integration

import (
	"os"
	"testing"

	"github.com/freshet/freshet/internal/engine/sinkproc"
)

// TestMain lets the test binary serve as the child engine process of benchmarks that
// measure a client's CPU apart from the engine's (sinkproc).
func TestMain(m *testing.M) {
	sinkproc.MaybeServe()
	os.Exit(m.Run())
}
