package lanehash

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// md5Paths are the paths every equality test runs: the automatic choice,
// the lanes forced even for small batches, and crypto/md5 forced.
var md5Paths = []struct {
	name string
	path md5Path
}{
	{"auto", md5Auto},
	{"lanes", md5ForceLanes},
	{"generic", md5ForceGeneric},
}

// withMD5Path runs f with md5Force set to path and restores it afterwards.
func withMD5Path(t testing.TB, path md5Path, f func()) {
	t.Helper()
	old := md5Force
	md5Force = path
	defer func() { md5Force = old }()
	f()
}

// checkMD5 hashes msgs on every path and fails on any digest that differs
// from crypto/md5.Sum.
func checkMD5(t *testing.T, msgs [][]byte) {
	t.Helper()
	want := make([][16]byte, len(msgs))
	for i, m := range msgs {
		want[i] = md5.Sum(m)
	}
	for _, p := range md5Paths {
		got := make([][16]byte, len(msgs))
		for i := range got {
			got[i] = [16]byte{0xde, 0xad} // must be overwritten
		}
		withMD5Path(t, p.path, func() { MD5(got, msgs) })
		for i := range msgs {
			if got[i] != want[i] {
				t.Fatalf("%s: message %d of %d (len %d): got %x, want %x",
					p.name, i, len(msgs), len(msgs[i]), got[i], want[i])
			}
		}
	}
}

// randMsg returns n pseudo-random bytes.
func randMsg(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestMD5Lanes(t *testing.T) {
	got := MD5Lanes()
	want := 1
	if md5HasLanes {
		want = 16
	}
	if got != want {
		t.Fatalf("MD5Lanes() = %d, want %d (md5HasLanes %v)", got, want, md5HasLanes)
	}
}

func TestMD5EveryLength(t *testing.T) {
	const maxLen = 1100
	r := rand.New(rand.NewPCG(1, 2))
	msgs := make([][]byte, maxLen+1)
	for n := range msgs {
		msgs[n] = randMsg(r, n)
	}
	// In order of length, in batches of several sizes, so every length
	// meets every lane and a variety of neighbours.
	for _, batch := range []int{1, 2, 7, 16, 17, 33, 64} {
		t.Run(fmt.Sprintf("sorted/batch%d", batch), func(t *testing.T) {
			for i := 0; i < len(msgs); i += batch {
				checkMD5(t, msgs[i:min(i+batch, len(msgs))])
			}
		})
	}
	// Shuffled, so short and long messages share a call.
	shuffled := append([][]byte(nil), msgs...)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, batch := range []int{16, 40, len(shuffled)} {
		t.Run(fmt.Sprintf("shuffled/batch%d", batch), func(t *testing.T) {
			for i := 0; i < len(shuffled); i += batch {
				checkMD5(t, shuffled[i:min(i+batch, len(shuffled))])
			}
		})
	}
}

func TestMD5RandomBatches(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	for range rounds {
		msgs := make([][]byte, 1+r.IntN(40))
		for i := range msgs {
			// Mostly any length up to 70 KiB, sometimes a short one.
			if r.IntN(4) == 0 {
				msgs[i] = randMsg(r, r.IntN(200))
			} else {
				msgs[i] = randMsg(r, r.IntN(70<<10+1))
			}
		}
		checkMD5(t, msgs)
	}
}

func TestMD5Shapes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	equal := func(count, n int) [][]byte {
		msgs := make([][]byte, count)
		for i := range msgs {
			msgs[i] = randMsg(r, n)
		}
		return msgs
	}
	shared := randMsg(r, 5000)
	tests := []struct {
		name string
		msgs [][]byte
	}{
		{"empty batch", [][]byte{}},
		{"nil batch", nil},
		{"one nil", [][]byte{nil}},
		{"nils and empties", [][]byte{nil, {}, nil, shared[:0], shared[10:10], nil, {}, nil, nil, {}, nil, {}, nil, nil, {}, nil, {}}},
		{"16 x 0", equal(16, 0)},
		{"16 x 55", equal(16, 55)},
		{"16 x 56", equal(16, 56)},
		{"16 x 64", equal(16, 64)},
		{"16 x 119", equal(16, 119)},
		{"16 x 120", equal(16, 120)},
		{"16 x 1000", equal(16, 1000)},
		{"17 x 1024", equal(17, 1024)},
		{"32 x 4096", equal(32, 4096)},
		{"33 x 333", equal(33, 333)},
		{"15 x 65536", equal(15, 65536)},
		{"same slice 20 times", func() [][]byte {
			msgs := make([][]byte, 20)
			for i := range msgs {
				msgs[i] = shared
			}
			return msgs
		}()},
		{"overlapping views", func() [][]byte {
			var msgs [][]byte
			for i := 0; i < 40; i++ {
				msgs = append(msgs, shared[i*7:i*7+64*i+i])
			}
			return msgs
		}()},
		{"one huge then many tiny", append([][]byte{randMsg(r, 300<<10)}, equal(100, 3)...)},
		{"many tiny then one huge", append(equal(100, 3), randMsg(r, 300<<10))},
		{"huge among nils", [][]byte{nil, randMsg(r, 100<<10), nil, {}, randMsg(r, 70), nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkMD5(t, tt.msgs) })
	}
}

func TestMD5LengthMismatchPanics(t *testing.T) {
	for _, tt := range []struct{ sums, msgs int }{{0, 1}, {1, 0}, {16, 17}, {17, 16}} {
		t.Run(fmt.Sprintf("%d sums %d msgs", tt.sums, tt.msgs), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("MD5 did not panic")
				}
			}()
			MD5(make([][16]byte, tt.sums), make([][]byte, tt.msgs))
		})
	}
}

func TestMD5DoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	msgs := make([][]byte, 50)
	for i := range msgs {
		msgs[i] = randMsg(r, r.IntN(3000))
	}
	sums := make([][16]byte, len(msgs))
	for _, p := range md5Paths {
		withMD5Path(t, p.path, func() {
			if n := testing.AllocsPerRun(20, func() { MD5(sums, msgs) }); n != 0 {
				t.Errorf("%s: %v allocations per call, want 0", p.name, n)
			}
		})
	}
}

// splitFuzzInput cuts data into messages: each starts with a two-byte
// length (modulo what is left), and a length with the top bit set repeats
// the previous message instead, so batches also alias.
func splitFuzzInput(data []byte) [][]byte {
	var msgs [][]byte
	for len(data) >= 2 && len(msgs) < 200 {
		h := binary.LittleEndian.Uint16(data)
		data = data[2:]
		if h&0x8000 != 0 && len(msgs) > 0 {
			msgs = append(msgs, msgs[len(msgs)-1])
			continue
		}
		n := int(h&0x7fff) % (len(data) + 1)
		msgs = append(msgs, data[:n])
		data = data[n:]
	}
	return append(msgs, data)
}

func FuzzMD5(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x03\x00abc\x00\x80\x40\x00" + string(make([]byte, 64))))
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{55, 56, 64, 119, 1000, 5000} {
		seed := randMsg(r, n)
		binary.LittleEndian.PutUint16(seed, uint16(n/3))
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkMD5(t, splitFuzzInput(data))
	})
}

// benchMD5Batch is one batch shape of BenchmarkMD5.
type benchMD5Batch struct {
	name string
	msgs [][]byte
}

func benchMD5Batches() []benchMD5Batch {
	r := rand.New(rand.NewPCG(11, 12))
	equal := func(count, n int) [][]byte {
		msgs := make([][]byte, count)
		for i := range msgs {
			msgs[i] = randMsg(r, n)
		}
		return msgs
	}
	mixed := make([][]byte, 200)
	for i := range mixed {
		mixed[i] = randMsg(r, 1+r.IntN(64<<10))
	}
	return []benchMD5Batch{
		{"16x100B", equal(16, 100)},
		{"16x1KiB", equal(16, 1<<10)},
		{"16x16KiB", equal(16, 16<<10)},
		{"16x64KiB", equal(16, 64<<10)},
		{"200x1-64KiB", mixed},
	}
}

// BenchmarkMD5 compares MD5 (lanes where available) with crypto/md5 on the
// same batches; MB/s counts message bytes.
func BenchmarkMD5(b *testing.B) {
	for _, bt := range benchMD5Batches() {
		total := 0
		for _, m := range bt.msgs {
			total += len(m)
		}
		sums := make([][16]byte, len(bt.msgs))
		b.Run(bt.name+"/lanehash", func(b *testing.B) {
			b.SetBytes(int64(total))
			b.ReportAllocs()
			for b.Loop() {
				MD5(sums, bt.msgs)
			}
		})
		b.Run(bt.name+"/crypto-md5", func(b *testing.B) {
			b.SetBytes(int64(total))
			b.ReportAllocs()
			for b.Loop() {
				for i, m := range bt.msgs {
					sums[i] = md5.Sum(m)
				}
			}
		})
	}
}

// BenchmarkMD5Crossover measures forced lanes against crypto/md5 on small
// batches, to place md5WorthLanes' threshold.
func BenchmarkMD5Crossover(b *testing.B) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, count := range []int{1, 2, 3, 4, 8} {
		for _, n := range []int{0, 50, 100, 200, 1 << 10, 16 << 10} {
			msgs := make([][]byte, count)
			for i := range msgs {
				msgs[i] = randMsg(r, n)
			}
			sums := make([][16]byte, count)
			for _, p := range md5Paths[1:] {
				b.Run(fmt.Sprintf("%dx%dB/%s", count, n, p.name), func(b *testing.B) {
					b.SetBytes(int64(count * n))
					b.ReportAllocs()
					withMD5Path(b, p.path, func() {
						for b.Loop() {
							MD5(sums, msgs)
						}
					})
				})
			}
		}
	}
}
