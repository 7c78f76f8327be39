//go:build amd64 && !purego

package lanehash

// md5HasLanes reports whether MD5 has its 16-lane kernel on this CPU.
var md5HasLanes = hasAVX512

// md5WorthLanes reports whether lanes beat crypto/md5 on a batch.
func md5WorthLanes(msgs [][]byte) bool {
	return len(msgs) >= 2
}

// md5Blocks is the kernel md5Lanes16 drives: the assembly with AVX-512,
// the portable kernel otherwise (only tests get there, through
// md5ForceLanes).
func md5Blocks(state *[4][16]uint32, ptrs *[16]*byte, blocks int) {
	if hasAVX512 {
		md5BlocksAVX512(state, ptrs, blocks)
		return
	}
	md5BlocksGeneric(state, ptrs, blocks)
}

// md5BlocksAVX512 has the contract of md5BlocksGeneric: for every lane
// whose pointer is not nil it hashes blocks consecutive 64-byte blocks from
// that pointer into the lane's chaining value (state[w][lane] is word w),
// and it neither reads for nor changes the lanes whose pointer is nil.
//
//go:noescape
func md5BlocksAVX512(state *[4][16]uint32, ptrs *[16]*byte, blocks int)
