package lanehash

import (
	"crypto/md5"
	"math/rand/v2"
	"testing"
)

// TestMD5BlocksKernel drives this build's kernel directly with random
// chaining values, random sets of idle lanes and block counts, and compares
// every lane with the portable kernel; idle lanes must keep their state.
func TestMD5BlocksKernel(t *testing.T) {
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
		md5Blocks(&got, &ptrs, blocks)
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

// TestMD5Start checks the padding a lane hashes after a message's full
// blocks: hashed from the initial state, the two must give crypto/md5's
// digest, and the padding must be one block when the tail leaves room for
// the length, two otherwise.
func TestMD5Start(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for n := range 300 {
		msg := randMsg(r, n)
		var scratch [2 * md5BlockSize]byte
		for i := range scratch {
			scratch[i] = 0xff // stale bytes must not leak into the padding
		}
		body, padLen := md5Start(&scratch, msg)
		if len(body) != n/md5BlockSize*md5BlockSize {
			t.Fatalf("len %d: body of %d bytes", n, len(body))
		}
		if wantPad := md5BlockSize << (n % md5BlockSize / 56); padLen != wantPad {
			t.Fatalf("len %d: padding of %d bytes, want %d", n, padLen, wantPad)
		}
		var state [4][16]uint32
		md5SetLane(&state, 3, md5Init)
		var ptrs [16]*byte
		if len(body) > 0 {
			ptrs[3] = &body[0]
			md5BlocksGeneric(&state, &ptrs, len(body)/md5BlockSize)
		}
		ptrs[3] = &scratch[0]
		md5BlocksGeneric(&state, &ptrs, padLen/md5BlockSize)
		var sum [16]byte
		md5LaneSum(&sum, &state, 3)
		if want := md5.Sum(msg); sum != want {
			t.Fatalf("len %d: got %x, want %x", n, sum, want)
		}
	}
}
