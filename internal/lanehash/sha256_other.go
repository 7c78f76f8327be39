//go:build !amd64 || purego

package lanehash

// sha256Kernel reports whether the 16-lane kernel can run: never without
// amd64 assembly.
const sha256Kernel = false

// sha256UseLanes reports whether SHA256 uses the kernel for wide batches.
const sha256UseLanes = false

// sha256Lanes is never called where sha256Kernel is false.
func sha256Lanes(sums [][32]byte, msgs [][]byte) {
	panic("lanehash: no SHA-256 lanes on this platform")
}
