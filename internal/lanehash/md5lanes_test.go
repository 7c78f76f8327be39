package lanehash

import (
	"crypto/md5"
	"math/rand/v2"
	"testing"
)

// TestMD5BlocksKernel drives this build's kernel directly with random
// chaining values, random sets of idle lanes and block counts, and compares
// every lane with the portable kernel; idle lanes must keep their state.
func TestMD5BlocksKernel(t *testing.T) { checkMD5Kernel(t, md5Blocks) }

// checkMD5Kernel compares kernel with the portable one, as TestMD5BlocksKernel
// describes.
func checkMD5Kernel(t *testing.T, kernel func(*[4][16]uint32, *[16]*byte, int)) {
	r := rand.New(rand.NewPCG(17, 18))
	for round := range 300 {
		blocks := r.IntN(6)
		var state [4][16]uint32
		for w := range state {
			for lane := range state[w] {
				state[w][lane] = r.Uint32()
			}
		}
		var ptrs [16]*byte
		idle := r.Uint32() & 0xffff
		if round%50 == 0 {
			idle = 0
		}
		for lane := range ptrs {
			if idle&(1<<lane) == 0 {
				ptrs[lane] = &randMsg(r, max(blocks, 1)*md5BlockSize)[0]
			}
		}
		want := state
		md5BlocksGeneric(&want, &ptrs, blocks)
		got := state
		kernel(&got, &ptrs, blocks)
		if got != want {
			t.Fatalf("round %d, %d blocks, idle lanes %016b:\ngot  %x\nwant %x", round, blocks, idle, got, want)
		}
		for lane := range ptrs {
			for w := range state {
				if ptrs[lane] == nil && got[w][lane] != state[w][lane] {
					t.Fatalf("round %d: idle lane %d changed", round, lane)
				}
			}
		}
	}
}

// TestMD5Start checks the stretches a lane hashes for a message: the full
// blocks in place, then one padding block when the tail leaves room for
// the length, two otherwise. Hashed from the initial state they must give
// crypto/md5's digest.
func TestMD5Start(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for n := range 300 {
		msg := randMsg(r, n)
		var scratch [2 * md5BlockSize]byte
		for i := range scratch {
			scratch[i] = 0xff // stale bytes must not leak into the padding
		}
		first, blocks, padding := md5Start(&scratch, msg)
		wantPadding := 1 + n%md5BlockSize/56
		switch {
		case n < md5BlockSize:
			if first != &scratch[0] || blocks != wantPadding || padding != 0 {
				t.Fatalf("len %d: stretch %p of %d blocks then %d padding blocks, want scratch %p of %d blocks alone",
					n, first, blocks, padding, &scratch[0], wantPadding)
			}
		case first != &msg[0] || blocks != n/md5BlockSize || padding != wantPadding:
			t.Fatalf("len %d: stretch %p of %d blocks then %d padding blocks, want message %p of %d blocks then %d",
				n, first, blocks, padding, &msg[0], n/md5BlockSize, wantPadding)
		}
		var state [4][16]uint32
		md5SetLane(&state, 3, md5Init)
		var ptrs [16]*byte
		ptrs[3] = first
		md5BlocksGeneric(&state, &ptrs, blocks)
		ptrs[3] = &scratch[0]
		md5BlocksGeneric(&state, &ptrs, padding)
		var sum [16]byte
		md5LaneSum(&sum, &state, 3)
		if want := md5.Sum(msg); sum != want {
			t.Fatalf("len %d: got %x, want %x", n, sum, want)
		}
	}
}
