package lanehash

import "crypto/sha256"

// SHA256 sets sums[i] to the SHA-256 digest of msgs[i] for every i. It panics
// if len(sums) != len(msgs). Results equal crypto/sha256.Sum256 bit for bit.
//
// Where SHA256Lanes reports 16, the messages share the sixteen lanes of an
// AVX-512 kernel: each lane hashes one message at a time and takes the next
// pending message as soon as its current one is done, so messages of
// unequal lengths keep the lanes busy without being sorted. The kernel reads
// every message where it lies; only the last partial block and the padding
// of each message are copied, into scratch on the stack. A batch whose
// messages cannot keep enough lanes busy (see minSHA256Parallelism) is
// hashed with crypto/sha256 one message at a time, as is every batch on a
// CPU without lanes.
//
// The kernel runs 512-bit instructions, which on Intel CPUs of that
// generation lower the core's clock for a short while; the speed-ups quoted
// in this package are measured with that effect.
//
// Messages may overlap one another; sums must not overlap any message.
// SHA256 does not allocate, starts no goroutines and keeps no state between
// calls.
func SHA256(sums [][32]byte, msgs [][]byte) {
	sha256Batch(sums, msgs, sha256Auto)
}

// SHA256Lanes reports how many messages SHA256 advances together on this
// CPU: 16 with AVX-512 (and no SHA extensions), 1 otherwise.
//
// A CPU with the SHA extensions gets 1 even when it has AVX-512:
// crypto/sha256 uses those instructions there and hashes one message faster
// than a lane does, so there is nothing to gain from batching. The purego
// build tag and every architecture but amd64 get 1 as well.
//
// With 16 lanes a batch pays off once it keeps three lanes busy, for
// example three bodies of similar size (1.5x crypto/sha256's throughput on
// the reference machine); sixteen bodies of 16 KiB or more run about 8x
// faster. SHA256 hashes narrower batches with crypto/sha256 by itself, so
// callers may batch whatever they have.
func SHA256Lanes() int {
	if sha256UseLanes {
		return 16
	}
	return 1
}

// sha256Mode chooses how sha256Batch hashes a batch. Only SHA256's own
// sha256Auto is used outside tests; the other two let the tests and
// benchmarks run both paths on one machine.
type sha256Mode int

const (
	// sha256Auto uses the lanes when SHA256Lanes reports 16 and the batch
	// is wide enough for them to win (sha256Wins).
	sha256Auto sha256Mode = iota
	// sha256Scalar hashes every message with crypto/sha256.
	sha256Scalar
	// sha256Forced uses the lanes whenever the kernel can run on this CPU,
	// even for a batch of one message or on a CPU with SHA extensions.
	sha256Forced
)

// minSHA256Parallelism is how many lanes a batch must keep busy on average
// for the lanes to beat crypto/sha256 one message at a time.
//
// Measured on the reference machine (2-core Xeon Cascade Lake @ 2.5 GHz,
// AVX-512, no SHA-NI, Go 1.26), in thread CPU time, best of ten runs: a
// kernel block advances all sixteen lanes in 352 ns, while crypto/sha256
// hashes 64 KiB at 350 MB/s, 183 ns a block. Equal messages of 64 KiB:
// one lane runs at 0.52x crypto/sha256, two at 0.96x-1.03x (break-even),
// three at 1.45x-1.55x, sixteen at 8.1x. Equal messages of 1 KiB: two
// 0.98x, three 1.46x; of 100 bytes: two 0.82x, three 1.18x. So the lanes
// win from three busy lanes on.
const minSHA256Parallelism = 3

// sha256Batch is SHA256 with the choice of path made by mode.
func sha256Batch(sums [][32]byte, msgs [][]byte, mode sha256Mode) {
	if len(sums) != len(msgs) {
		panic("lanehash: SHA256 called with len(sums) != len(msgs)")
	}
	switch {
	case mode == sha256Forced && sha256Kernel,
		mode == sha256Auto && sha256UseLanes && sha256Wins(msgs):
		sha256Lanes(sums, msgs)
	default:
		for i, m := range msgs {
			sums[i] = sha256.Sum256(m)
		}
	}
}

// sha256Blocks returns how many 64-byte blocks SHA-256 compresses for a
// message of n bytes: the message, the 0x80 byte and the 64-bit length,
// rounded up to whole blocks.
func sha256Blocks(n int) int {
	return (n+8)/64 + 1
}

// sha256Wins reports whether msgs keep at least minSHA256Parallelism lanes
// busy on average. The lanes need at least max(longest message,
// total/16) kernel blocks to hash the batch, so total blocks over that span
// is the average number of busy lanes: the message count for equal
// lengths, close to one for one long message among short ones.
func sha256Wins(msgs [][]byte) bool {
	if len(msgs) < minSHA256Parallelism {
		return false
	}
	total, longest := 0, 0
	for _, m := range msgs {
		b := sha256Blocks(len(m))
		total += b
		longest = max(longest, b)
	}
	span := max(longest, (total+15)/16)
	return total >= minSHA256Parallelism*span
}
