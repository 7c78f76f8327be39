//go:build !unix

package peers

import (
	"errors"
	"os/exec"
	"time"
)

// setProcessGroup does nothing where process groups do not exist.
func setProcessGroup(*exec.Cmd) {}

// killGroup kills the peer process itself where process groups do not exist.
func killGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }

// groupAlive reports false once the peer process has been waited for.
func groupAlive(*exec.Cmd) bool { return false }

// processCPU is not available where /proc does not exist.
func processCPU(int) (time.Duration, error) {
	return 0, errors.New("process CPU time needs Linux's /proc")
}
