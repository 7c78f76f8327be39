//go:build amd64 && !purego

package lanehash

// md5HasLanes reports whether MD5 has a lane kernel on this CPU: 16 lanes in
// one register with AVX-512, two halves of 8 with AVX2.
var md5HasLanes = hasAVX512 || hasAVX2

// The crossover between the lanes and crypto/md5, measured with
// BenchmarkMD5Crossover (forced lanes against crypto/md5 on the same
// batch, -count 3 to 5, on the 2-core Xeon @ 2.5GHz with AVX-512 this
// package was developed on, shared and noisy):
//
//   - one message is 1.15-1.4x slower in a lane at any length (1 KiB:
//     2.3-2.5 us against 1.75 us; 16 KiB: 30-33 us against 26-31 us): a lone
//     lane runs the same dependency chain as crypto/md5 plus the transpose;
//   - two messages of 0, 50 or 100 B are 1.1-1.4x slower in lanes, of 200 B
//     1.2-1.6x faster, of 1 KiB 1.5x, of 16 KiB 1.6x;
//   - three empty messages are slower in lanes, of 50 B even, of 100 B and
//     more faster (200 B 1.5x, 1 KiB 2x);
//   - from four messages on lanes are faster at every length (four empty
//     ones 1.2x, 50 B 1.4x, 1 KiB 3.2x, 16 KiB 3.5x).
const (
	// md5MinLaneBatch is the smallest batch that always goes to the lanes.
	md5MinLaneBatch = 4
	// md5MinLaneBytes is the total length from which a batch of two or
	// three messages goes to the lanes.
	md5MinLaneBytes = 300
)

// md5WorthLanes reports whether lanes beat crypto/md5 on a batch.
func md5WorthLanes(msgs [][]byte) bool {
	switch {
	case len(msgs) >= md5MinLaneBatch:
		return true
	case len(msgs) < 2:
		return false
	}
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	return total >= md5MinLaneBytes
}

// md5Blocks is the kernel md5Lanes16 drives: the assembly with AVX-512 or
// AVX2, the portable kernel otherwise (only tests get there, through
// md5ForceLanes).
func md5Blocks(state *[4][16]uint32, ptrs *[16]*byte, blocks int) {
	switch {
	case hasAVX512:
		md5BlocksAVX512(state, ptrs, blocks)
	case hasAVX2:
		md5BlocksAVX2(state, ptrs, blocks)
	default:
		md5BlocksGeneric(state, ptrs, blocks)
	}
}

// md5BlocksAVX2 has the contract of md5BlocksGeneric, in two calls of the
// 8-lane kernel, one per half of the lanes with a busy lane.
func md5BlocksAVX2(state *[4][16]uint32, ptrs *[16]*byte, blocks int) {
	for half := range 2 {
		for _, p := range ptrs[8*half : 8*half+8] {
			if p != nil {
				md5Blocks8AVX2(state, ptrs, blocks, half)
				break
			}
		}
	}
}

// md5Blocks8AVX2 hashes, for every lane 8*half+i (i < 8) whose pointer is not
// nil, blocks consecutive 64-byte blocks into the lane's chaining value,
// leaving the other lanes alone.
//
//go:noescape
func md5Blocks8AVX2(state *[4][16]uint32, ptrs *[16]*byte, blocks int, half int)

// md5BlocksAVX512 has the contract of md5BlocksGeneric: for every lane
// whose pointer is not nil it hashes blocks consecutive 64-byte blocks from
// that pointer into the lane's chaining value (state[w][lane] is word w),
// and it neither reads for nor changes the lanes whose pointer is nil.
//
//go:noescape
func md5BlocksAVX512(state *[4][16]uint32, ptrs *[16]*byte, blocks int)
