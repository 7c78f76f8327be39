package lanehash

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
)

// sha256TestModes are the paths the tests run every batch through: the
// automatic choice, crypto/sha256 alone, and the kernel for every batch
// where the CPU can run it.
func sha256TestModes() []sha256Mode {
	modes := []sha256Mode{sha256Auto, sha256Scalar}
	if sha256Kernel {
		modes = append(modes, sha256Forced)
	}
	return modes
}

func (m sha256Mode) String() string {
	switch m {
	case sha256Auto:
		return "auto"
	case sha256Scalar:
		return "scalar"
	case sha256Forced:
		return "lanes"
	}
	return fmt.Sprintf("sha256Mode(%d)", int(m))
}

// checkSHA256 hashes msgs in every mode and compares each sum with
// crypto/sha256. Sums start as garbage so that a sum left unwritten shows.
func checkSHA256(t *testing.T, msgs [][]byte) {
	t.Helper()
	for _, mode := range sha256TestModes() {
		sums := make([][32]byte, len(msgs))
		for i := range sums {
			sums[i] = [32]byte{0: 0xde, 1: 0xad, 31: byte(i)}
		}
		sha256Batch(sums, msgs, mode)
		for i, m := range msgs {
			if want := sha256.Sum256(m); sums[i] != want {
				t.Fatalf("%v: batch of %d, message %d (%d bytes): got %x, want %x",
					mode, len(msgs), i, len(m), sums[i], want)
			}
		}
	}
}

// randomBytes returns n pseudo-random bytes from r.
func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestSHA256EveryLength(t *testing.T) {
	const maxLen = 1100
	r := rand.New(rand.NewPCG(1, 2))
	data := randomBytes(r, 2*maxLen)
	lengths := r.Perm(maxLen + 1)
	for len(lengths) > 0 {
		n := min(1+r.IntN(40), len(lengths))
		batch := make([][]byte, n)
		for i, l := range lengths[:n] {
			off := r.IntN(len(data) - l + 1) // any alignment
			batch[i] = data[off : off+l]
		}
		lengths = lengths[n:]
		checkSHA256(t, batch)
	}
}

func TestSHA256RandomBatches(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	data := randomBytes(r, 300<<10)
	batches := 40
	if testing.Short() {
		batches = 10
	}
	for range batches {
		batch := make([][]byte, 1+r.IntN(40))
		for i := range batch {
			l := r.IntN(len(data) + 1)
			if r.IntN(2) == 0 {
				l %= 4096 // short ones too
			}
			off := r.IntN(len(data) - l + 1)
			batch[i] = data[off : off+l]
		}
		checkSHA256(t, batch)
	}
}

func TestSHA256EqualLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, count := range []int{1, 2, 15, 16, 17, 32, 33} {
		for _, size := range []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 4096, 65536 + 7} {
			t.Run(fmt.Sprintf("%dx%d", count, size), func(t *testing.T) {
				batch := make([][]byte, count)
				for i := range batch {
					batch[i] = randomBytes(r, size)
				}
				checkSHA256(t, batch)
			})
		}
	}
}

func TestSHA256OneHugeManyTiny(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, hugeAt := range []int{0, 50, 100} {
		batch := make([][]byte, 101)
		for i := range batch {
			batch[i] = randomBytes(r, r.IntN(100))
		}
		batch[hugeAt] = randomBytes(r, 1<<20+13)
		checkSHA256(t, batch)
	}
}

func TestSHA256Aliasing(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	buf := randomBytes(r, 5000)
	t.Run("same message", func(t *testing.T) {
		batch := make([][]byte, 20)
		for i := range batch {
			batch[i] = buf
		}
		checkSHA256(t, batch)
	})
	t.Run("overlapping", func(t *testing.T) {
		batch := make([][]byte, 30)
		for i := range batch {
			batch[i] = buf[i*7 : len(buf)-i*100]
		}
		checkSHA256(t, batch)
	})
}

func TestSHA256NilAndEmpty(t *testing.T) {
	checkSHA256(t, [][]byte{nil})
	checkSHA256(t, [][]byte{{}})
	checkSHA256(t, [][]byte{nil, {}, []byte("abc"), nil, make([]byte, 0, 64)})
	batch := make([][]byte, 40)
	for i := range batch {
		if i%3 == 0 {
			batch[i] = bytes.Repeat([]byte{byte(i)}, 70*i)
		}
	}
	checkSHA256(t, batch)
	for _, mode := range sha256TestModes() {
		sha256Batch(nil, nil, mode)
		sha256Batch([][32]byte{}, [][]byte{}, mode)
	}
	SHA256(nil, nil)
}

func TestSHA256KnownAnswer(t *testing.T) {
	// FIPS 180-4 examples, independent of crypto/sha256.
	msgs := [][]byte{
		[]byte("abc"),
		[]byte("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
		nil,
	}
	want := []string{
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	}
	for _, mode := range sha256TestModes() {
		sums := make([][32]byte, len(msgs))
		sha256Batch(sums, msgs, mode)
		for i := range msgs {
			if got := fmt.Sprintf("%x", sums[i]); got != want[i] {
				t.Errorf("%v: SHA-256(%q) = %s, want %s", mode, msgs[i], got, want[i])
			}
		}
	}
}

func TestSHA256PanicsOnLengthMismatch(t *testing.T) {
	for _, c := range []struct{ sums, msgs int }{{0, 1}, {1, 0}, {3, 2}, {16, 17}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SHA256 with %d sums and %d messages did not panic", c.sums, c.msgs)
				}
			}()
			SHA256(make([][32]byte, c.sums), make([][]byte, c.msgs))
		}()
	}
}

func TestSHA256Lanes(t *testing.T) {
	want := 1
	if sha256UseLanes {
		want = 16
	}
	if got := SHA256Lanes(); got != want {
		t.Errorf("SHA256Lanes() = %d, want %d", got, want)
	}
	if sha256UseLanes && !sha256Kernel {
		t.Error("lanes in use without a kernel")
	}
	t.Logf("SHA256Lanes() = %d (kernel available: %v)", SHA256Lanes(), sha256Kernel)
}

func TestSHA256Wins(t *testing.T) {
	sized := func(sizes ...int) [][]byte {
		msgs := make([][]byte, len(sizes))
		for i, n := range sizes {
			msgs[i] = make([]byte, n)
		}
		return msgs
	}
	many := func(count, size int) [][]byte {
		sizes := make([]int, count)
		for i := range sizes {
			sizes[i] = size
		}
		return sized(sizes...)
	}
	tests := []struct {
		name string
		msgs [][]byte
		want bool
	}{
		{"empty batch", nil, false},
		{"one message", sized(1 << 20), false},
		{"two equal", sized(1<<16, 1<<16), false},
		{"three equal", sized(1<<16, 1<<16, 1<<16), true},
		{"three tiny", sized(0, 10, 20), true},
		{"two unequal", sized(1<<16, 1<<14), false},
		{"sixteen equal", many(16, 1<<16), true},
		{"hundred tiny", many(100, 10), true},
		{"one huge, many tiny", append(sized(1<<20), many(100, 10)...), false},
		{"one long, one half", sized(1000, 500), false},
		{"one long, two halves", sized(1000, 500, 500), false},
		{"one long, four halves", sized(1000, 500, 500, 500, 500), true},
	}
	for _, tt := range tests {
		if got := sha256Wins(tt.msgs); got != tt.want {
			t.Errorf("%s: sha256Wins = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSHA256Blocks(t *testing.T) {
	for n := 0; n < 1000; n++ {
		padded := (n + 1 + 8 + 63) / 64
		if got := sha256Blocks(n); got != padded {
			t.Fatalf("sha256Blocks(%d) = %d, want %d", n, got, padded)
		}
	}
}

func TestSHA256DoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	msgs := make([][]byte, 20)
	for i := range msgs {
		msgs[i] = randomBytes(r, r.IntN(3000))
	}
	sums := make([][32]byte, len(msgs))
	for _, mode := range sha256TestModes() {
		if n := testing.AllocsPerRun(20, func() { sha256Batch(sums, msgs, mode) }); n != 0 {
			t.Errorf("%v: %v allocations per call, want 0", mode, n)
		}
	}
}

func FuzzSHA256(f *testing.F) {
	f.Add([]byte("abc"), []byte{3})
	f.Add(bytes.Repeat([]byte{0xa5}, 600), []byte{0, 11, 12, 13, 25, 26, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		// Each byte of sizes cuts the next message from data (up to 1,275
		// bytes); what is left is one more message.
		var msgs [][]byte
		for _, s := range sizes {
			n := min(int(s)*5, len(data))
			msgs = append(msgs, data[:n:n])
			data = data[n:]
		}
		msgs = append(msgs, data)
		checkSHA256(t, msgs)
	})
}

// sha256BenchCases are the batches BenchmarkSHA256 hashes.
var sha256BenchCases = []struct {
	count, size int
}{
	{1, 64 << 10}, {2, 64 << 10}, {3, 64 << 10}, {4, 64 << 10}, {8, 64 << 10}, {16, 64 << 10},
	{2, 1 << 10}, {3, 1 << 10}, {16, 1 << 10},
	{16, 1 << 20},
	{16, 100},
}

func BenchmarkSHA256(b *testing.B) {
	for _, c := range sha256BenchCases {
		msgs := make([][]byte, c.count)
		for i := range msgs {
			msgs[i] = make([]byte, c.size)
		}
		sums := make([][32]byte, c.count)
		name := fmt.Sprintf("%dx%s", c.count, sizeName(c.size))
		run := func(b *testing.B, hash func()) {
			b.SetBytes(int64(c.count * c.size))
			b.ReportAllocs()
			for b.Loop() {
				hash()
			}
		}
		b.Run(name+"/crypto", func(b *testing.B) {
			run(b, func() {
				for i, m := range msgs {
					sums[i] = sha256.Sum256(m)
				}
			})
		})
		if sha256Kernel {
			b.Run(name+"/lanes", func(b *testing.B) {
				run(b, func() { sha256Batch(sums, msgs, sha256Forced) })
			})
		}
		b.Run(name+"/SHA256", func(b *testing.B) {
			run(b, func() { SHA256(sums, msgs) })
		})
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
