package lease

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
)

// NewWorkerID returns a worker ID unique to this process start: the host name (or
// "worker" when unknown) followed by 12 random hexadecimal digits, e.g.
// "ip-10-0-0-7-3f9a0c21b4de". Use a fresh ID for every start of a worker; see the package
// documentation for why a fixed ID is unsafe.
func NewWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	host = strings.ReplaceAll(host, ":", "-")
	var b [6]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
