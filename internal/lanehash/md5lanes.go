package lanehash

import (
	"crypto/md5"
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// md5BlockSize is the size of one MD5 block: a kernel call advances every
// busy lane by whole blocks.
const md5BlockSize = 64

// md5Init is the MD5 initial state (RFC 1321, section 3.3), words a to d.
var md5Init = [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}

// md5Lanes16 hashes msgs 16 lanes at a time with md5Blocks.
//
// Each lane streams one message: first its full blocks, read in place, then
// its padding blocks (the last partial block, the 0x80 byte, zeros and the
// bit length), built in the lane's 128-byte scratch. One call of the kernel
// advances every busy lane by as many blocks as the busy lane with the
// fewest left in its current stretch (message or scratch) has, and by at
// most md5MaxCallBlocks. A lane whose padding is hashed yields its digest
// and takes the next message of the batch at once, so lanes stay busy
// without sorting the batch; a lane with no message left is idle: its
// pointer is nil, and the kernel neither reads for it nor changes its
// state.
//
// When the batch is used up and a single lane is left busy, with at least
// md5LoneRestart times as many blocks ahead as behind it, its message is
// hashed again from the start with crypto/md5, which is faster than a lone
// lane.
//
// Everything lives in this frame, and the kernel's pointer arguments point
// to these locals; a lane's pointer only ever advances within its stretch.
func md5Lanes16(sums [][16]byte, msgs [][]byte) {
	var (
		state   [4][16]uint32 // word w of lane i's chaining value is state[w][i]
		ptrs    [16]*byte     // next block of each lane; nil for an idle lane
		left    [16]int       // blocks left in the lane's stretch from ptrs[lane]
		padding [16]int       // padding blocks to hash once the stretch is done
		owner   [16]int       // index in msgs of the lane's message
		scratch [16][2 * md5BlockSize]byte
	)
	busy, next := 0, 0
	blocks := int(^uint(0) >> 1)
	for lane := 0; lane < 16 && next < len(msgs); lane++ {
		ptrs[lane], left[lane], padding[lane] = md5Start(&scratch[lane], msgs[next])
		md5SetLane(&state, lane, md5Init)
		owner[lane] = next
		blocks = min(blocks, left[lane])
		busy++
		next++
	}
	for busy > 0 {
		done := min(blocks, md5MaxCallBlocks)
		md5Blocks(&state, &ptrs, done)
		blocks = int(^uint(0) >> 1)
		lastBusy := 0
		for lane := range 16 {
			if ptrs[lane] == nil {
				continue
			}
			left[lane] -= done
			switch {
			case left[lane] > 0:
				ptrs[lane] = (*byte)(unsafe.Add(unsafe.Pointer(ptrs[lane]), done*md5BlockSize))
			case padding[lane] > 0:
				ptrs[lane], left[lane], padding[lane] = &scratch[lane][0], padding[lane], 0
			default:
				md5LaneSum(&sums[owner[lane]], &state, lane)
				if next == len(msgs) {
					ptrs[lane] = nil
					busy--
					continue
				}
				ptrs[lane], left[lane], padding[lane] = md5Start(&scratch[lane], msgs[next])
				md5SetLane(&state, lane, md5Init)
				owner[lane] = next
				next++
			}
			lastBusy = lane
			blocks = min(blocks, left[lane])
		}
		if busy == 1 && next == len(msgs) {
			msg := msgs[owner[lastBusy]]
			ahead := left[lastBusy] + padding[lastBusy]
			behind := (len(msg)+8)/md5BlockSize + 1 - ahead
			if ahead >= md5LoneRestart*(behind+1) {
				sums[owner[lastBusy]] = md5.Sum(msg)
				return
			}
		}
	}
}

// md5MaxCallBlocks bounds the blocks one kernel call hashes per lane.
// Assembly cannot be preempted, so a long call would hold off a
// stop-the-world pause for every goroutine: 256 blocks take about 30 us on
// 16 lanes (Xeon @ 2.5GHz), while the call itself costs well under 1% of
// that.
const md5MaxCallBlocks = 256

// md5LoneRestart is how many times more blocks than it has hashed a lone
// busy lane must have ahead for md5Lanes16 to start its message over with
// crypto/md5: a lone lane hashes a block in about 1.15 times crypto/md5's
// time (one 16 KiB message, BenchmarkMD5Crossover), so starting over pays
// when fewer than about 15% of the blocks are done; 8 leaves a margin.
const md5LoneRestart = 8

// md5Start prepares a lane for msg: it writes the padding blocks of msg
// (its last partial block, 0x80, zeros and the bit length) into scratch
// and returns the lane's first stretch: the full blocks of msg, read in
// place, followed by padding blocks from scratch; or, for a message shorter
// than a block, the padding blocks alone and no more.
func md5Start(scratch *[2 * md5BlockSize]byte, msg []byte) (first *byte, blocks, padding int) {
	full := len(msg) &^ (md5BlockSize - 1)
	tail := msg[full:]
	padding = 1
	if len(tail) >= md5BlockSize-8 {
		padding = 2
	}
	end := padding * md5BlockSize
	n := copy(scratch[:], tail)
	scratch[n] = 0x80
	clear(scratch[n+1 : end-8])
	binary.LittleEndian.PutUint64(scratch[end-8:end], uint64(len(msg))<<3)
	if full == 0 {
		return &scratch[0], padding, 0
	}
	return &msg[0], full / md5BlockSize, padding
}

// md5SetLane sets the chaining value of lane.
func md5SetLane(state *[4][16]uint32, lane int, v [4]uint32) {
	for w := range v {
		state[w][lane] = v[w]
	}
}

// md5LaneSum writes the digest held by lane: words a to d, little-endian.
func md5LaneSum(sum *[16]byte, state *[4][16]uint32, lane int) {
	for w := range 4 {
		binary.LittleEndian.PutUint32(sum[4*w:], state[w][lane])
	}
}

// md5Shift is the left rotation of each of the 64 MD5 steps.
var md5Shift = [4][4]int{{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}}

// md5K are the 64 step constants, floor(abs(sin(i+1)) * 2^32).
var md5K = [64]uint32{
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
}

// md5BlocksGeneric is the portable kernel with the contract of the
// assembly one: for every lane whose pointer is not nil, it hashes blocks
// consecutive 64-byte blocks from that pointer into the lane's chaining
// value; lanes with a nil pointer are left alone. It serves builds without
// the assembly and is the reference the kernel tests compare against.
func md5BlocksGeneric(state *[4][16]uint32, ptrs *[16]*byte, blocks int) {
	for lane, p := range ptrs {
		if p == nil || blocks <= 0 {
			continue
		}
		data := unsafe.Slice(p, blocks*md5BlockSize)
		a, b, c, d := state[0][lane], state[1][lane], state[2][lane], state[3][lane]
		for len(data) >= md5BlockSize {
			var m [16]uint32
			for j := range m {
				m[j] = binary.LittleEndian.Uint32(data[4*j:])
			}
			a0, b0, c0, d0 := a, b, c, d
			for i := range 64 {
				var f uint32
				var g int
				switch i / 16 {
				case 0:
					f, g = (b&c)|(^b&d), i
				case 1:
					f, g = (b&d)|(c&^d), (5*i+1)%16
				case 2:
					f, g = b^c^d, (3*i+5)%16
				default:
					f, g = c^(b|^d), (7*i)%16
				}
				a, d, c, b = d, c, b, b+bits.RotateLeft32(a+f+md5K[i]+m[g], md5Shift[i/16][i%4])
			}
			a, b, c, d = a+a0, b+b0, c+c0, d+d0
			data = data[md5BlockSize:]
		}
		state[0][lane], state[1][lane], state[2][lane], state[3][lane] = a, b, c, d
	}
}
