//go:build !amd64 || purego

package lanehash

// md5HasLanes reports whether MD5 has a 16-lane kernel on this build: not
// without the amd64 assembly, so MD5 uses crypto/md5.
const md5HasLanes = false

// md5WorthLanes reports whether a batch should go to the lanes: never
// here, since the portable kernel is slower than crypto/md5.
func md5WorthLanes([][]byte) bool { return false }

// md5Blocks is the kernel md5Lanes16 drives: the portable one here, which
// only tests reach (through md5ForceLanes).
func md5Blocks(state *[4][16]uint32, ptrs *[16]*byte, blocks int) {
	md5BlocksGeneric(state, ptrs, blocks)
}
