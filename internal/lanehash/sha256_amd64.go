//go:build !purego

package lanehash

import (
	"encoding/binary"
	"unsafe"

	"github.com/klauspost/cpuid/v2"
)

// sha256Kernel reports whether sha256Block16 can run on this CPU.
var sha256Kernel = hasAVX512

// sha256UseLanes reports whether SHA256 uses the kernel for wide batches:
// not where the CPU has the SHA extensions, because crypto/sha256 uses them
// and hashes one message faster than a lane does.
var sha256UseLanes = sha256Kernel && !cpuid.CPU.Supports(cpuid.SHA)

// sha256Block16 compresses blocks consecutive 64-byte blocks into each lane
// l whose bit is set in mask: lane l reads them from ptrs[l] on and updates
// column l of state, where state[w][l] is word w of lane l's hash value.
// Lanes whose bit is clear read no memory and keep their column unchanged;
// their pointers may be nil. blocks must be at least 1.
//
//go:noescape
func sha256Block16(state *[8][16]uint32, ptrs *[16]unsafe.Pointer, blocks int, mask uint16)

// sha256MaxCallBlocks bounds the blocks of one kernel call. Assembly is
// not preempted, so a call delays a stop-the-world (for GC) until it
// returns: 256 blocks take about 90 µs on the reference machine, and the
// scheduling between two calls well under a microsecond.
const sha256MaxCallBlocks = 256

// sha256IV is the SHA-256 initial hash value (FIPS 180-4, 5.3.3).
var sha256IV = [8]uint32{
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
}

// sha256Lane is what the scheduler knows about the message one lane is
// hashing.
type sha256Lane struct {
	msg   []byte // the message
	index int    // its index in the batch, -1 before the lane's first one
	left  int    // blocks left in the current segment
	tail  bool   // the current segment is the padded tail in scratch
}

// sha256Lanes hashes msgs into sums with the 16-lane kernel.
//
// Each lane hashes one message at a time in two segments: the message's
// full blocks, read where they lie, then its padded tail in the lane's
// scratch. Every kernel call runs the busy lanes to the end of the
// shortest segment among them (at most sha256MaxCallBlocks); a lane whose
// tail is done writes its sum and takes the next pending message, and
// idles when there is none.
//
// Everything lives in this frame. ptrs holds real pointers, into the
// messages or into scratch, so the runtime updates the ones into scratch
// if the stack moves between kernel calls.
func sha256Lanes(sums [][32]byte, msgs [][]byte) {
	var (
		state   [8][16]uint32
		ptrs    [16]unsafe.Pointer
		scratch [16][128]byte
		lanes   [16]sha256Lane
		mask    uint16 = 0xffff
		next    int
	)
	for l := range lanes {
		lanes[l] = sha256Lane{index: -1, tail: true}
	}
	for {
		for l := range lanes {
			ln := &lanes[l]
			if mask&(1<<l) == 0 || ln.left > 0 {
				continue
			}
			if ln.tail {
				if ln.index >= 0 {
					sum := &sums[ln.index]
					for w := range state {
						binary.BigEndian.PutUint32(sum[4*w:], state[w][l])
					}
				}
				if next == len(msgs) {
					mask &^= 1 << l
					ptrs[l] = nil
					*ln = sha256Lane{}
					continue
				}
				*ln = sha256Lane{msg: msgs[next], index: next, left: len(msgs[next]) / 64}
				next++
				for w, h := range sha256IV {
					state[w][l] = h
				}
				if ln.left > 0 {
					ptrs[l] = unsafe.Pointer(unsafe.SliceData(ln.msg))
					continue
				}
			}
			ln.left = sha256Pad(&scratch[l], ln.msg)
			ln.tail = true
			ptrs[l] = unsafe.Pointer(&scratch[l])
		}
		if mask == 0 {
			return
		}
		n := sha256MaxCallBlocks
		for l := range lanes {
			if mask&(1<<l) != 0 {
				n = min(n, lanes[l].left)
			}
		}
		sha256Block16(&state, &ptrs, n, mask)
		for l := range lanes {
			if mask&(1<<l) != 0 {
				if lanes[l].left -= n; lanes[l].left > 0 {
					ptrs[l] = unsafe.Add(ptrs[l], n*64)
				}
			}
		}
	}
}

// sha256Pad writes into pad the last partial block of msg followed by the
// padding (the 0x80 byte, zeros and the message length in bits) and
// returns how many blocks that makes: one, or two when fewer than 9 bytes
// of the last block are free.
func sha256Pad(pad *[128]byte, msg []byte) int {
	r := copy(pad[:], msg[len(msg)&^63:])
	pad[r] = 0x80
	n := 64
	if r >= 56 {
		n = 128
	}
	clear(pad[r+1 : n-8])
	binary.BigEndian.PutUint64(pad[n-8:n], uint64(len(msg))<<3)
	return n / 64
}
