//go:build !purego

package lanehash

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// sha256State returns the hash value crypto/sha256 holds after hashing
// data, a whole number of blocks, read from its marshaled state ("sha\x03",
// then the eight words big endian).
func sha256State(t *testing.T, data []byte) [8]uint32 {
	t.Helper()
	h := sha256.New()
	h.Write(data)
	m, err := h.(interface{ MarshalBinary() ([]byte, error) }).MarshalBinary()
	if err != nil || len(m) < 36 || string(m[:4]) != "sha\x03" {
		t.Fatalf("unexpected crypto/sha256 state encoding (%v)", err)
	}
	var st [8]uint32
	for w := range st {
		st[w] = binary.BigEndian.Uint32(m[4+4*w:])
	}
	return st
}

// TestSHA256Block16 runs the kernel on its own: busy lanes must reach
// crypto/sha256's intermediate hash value, idle lanes (nil pointers) must
// keep their state word for word.
func TestSHA256Block16(t *testing.T) {
	if !sha256Kernel {
		t.Log("no AVX-512 on this CPU: the kernel is not run")
		return
	}
	r := rand.New(rand.NewPCG(15, 16))
	const blocks = 3
	var data [16][]byte
	for l := range data {
		data[l] = randomBytes(r, 64*blocks)
	}
	for _, mask := range []uint16{0xffff, 0x0001, 0x8000, 0x00ff, 0xff00, 0x5a5a, 0x1234, 0} {
		var state [8][16]uint32
		var ptrs [16]unsafe.Pointer
		for l := range 16 {
			for w := range state {
				state[w][l] = sha256IV[w]
				if mask&(1<<l) == 0 {
					state[w][l] = uint32(0xdead0000 + w<<8 + l)
				}
			}
			if mask&(1<<l) != 0 {
				ptrs[l] = unsafe.Pointer(&data[l][0])
			}
		}
		if mask != 0 {
			sha256Block16(&state, &ptrs, blocks, mask)
		}
		for l := range 16 {
			want := [8]uint32{}
			if mask&(1<<l) != 0 {
				want = sha256State(t, data[l])
			} else {
				for w := range want {
					want[w] = uint32(0xdead0000 + w<<8 + l)
				}
			}
			for w := range want {
				if state[w][l] != want[w] {
					t.Fatalf("mask %#04x, lane %d: word %d = %#08x, want %#08x", mask, l, w, state[w][l], want[w])
				}
			}
		}
	}
}

// TestSHA256Block16NoBlocks: a call for zero blocks reads nothing and leaves
// every lane's state as it was (the pointers here are nil: a read would fault).
func TestSHA256Block16NoBlocks(t *testing.T) {
	if !sha256Kernel {
		t.Log("no AVX-512 on this CPU: the kernel is not run")
		return
	}
	var state [8][16]uint32
	for w := range state {
		for l := range 16 {
			state[w][l] = uint32(w*16 + l)
		}
	}
	want := state
	var ptrs [16]unsafe.Pointer
	sha256Block16(&state, &ptrs, 0, 0xffff)
	if state != want {
		t.Fatal("state changed by a call for zero blocks")
	}
}
