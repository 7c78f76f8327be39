package lanehash

import "crypto/md5"

// md5Path selects how MD5 hashes a batch; tests override the automatic
// choice through md5Force to check both paths on one machine.
type md5Path int

const (
	md5Auto         md5Path = iota // lanes when available and worth it
	md5ForceGeneric                // crypto/md5 per message
	md5ForceLanes                  // md5Lanes16 with this build's kernel, even for tiny batches
)

// md5Force is the test hook that overrides the choice of path. Only tests
// write it; MD5 reads it once per call.
var md5Force = md5Auto

// MD5 sets sums[i] to the MD5 digest of msgs[i] for every i. It panics if
// len(sums) != len(msgs). Results equal crypto/md5.Sum bit for bit.
//
// With AVX-512 or AVX2, messages share 16 lanes: each lane hashes one message at a
// time, reading its full 64-byte blocks where they lie, and takes the next
// message of the batch as soon as its current one is done, so the caller
// need not sort or group msgs. Batches too small for lanes to pay off, and
// CPUs without AVX-512 or AVX2, use crypto/md5 per message. MD5 does not allocate,
// start goroutines or keep state between calls, and it may be called
// concurrently. Messages may alias each other; sums must not overlap them.
func MD5(sums [][16]byte, msgs [][]byte) {
	if len(sums) != len(msgs) {
		panic("lanehash: MD5 called with len(sums) != len(msgs)")
	}
	switch {
	case md5Force == md5ForceLanes,
		md5Force == md5Auto && md5HasLanes && md5WorthLanes(msgs):
		md5Lanes16(sums, msgs)
	default:
		md5Generic(sums, msgs)
	}
}

// MD5Lanes reports how many messages MD5 advances together on this CPU:
// 16 with AVX-512 or AVX2, 1 otherwise.
func MD5Lanes() int {
	if md5HasLanes {
		return 16
	}
	return 1
}

// md5Generic is the fallback: crypto/md5 one message at a time.
func md5Generic(sums [][16]byte, msgs [][]byte) {
	for i, m := range msgs {
		sums[i] = md5.Sum(m)
	}
}
