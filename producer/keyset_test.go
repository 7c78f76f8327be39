package producer

import (
	"math/rand/v2"
	"testing"
)

// TestKeySetMatchesMap: through random adds, lookups and removals (with hashes that
// collide in the table's low bits, and the zero hash), the set holds exactly what a
// map holds.
func TestKeySetMatchesMap(t *testing.T) {
	for _, space := range []uint64{8, 300, 1 << 40} {
		rng := rand.New(rand.NewPCG(1, space))
		var s keySet
		m := map[uint64]bool{}
		for i := 0; i < 50000; i++ {
			h := rng.Uint64N(space)
			if space < 1000 {
				// Hashes that share low bits collide in every table size.
				h <<= rng.Uint64N(2) * 20
			}
			switch rng.IntN(3) {
			case 0:
				s.add(h)
				m[h] = true
			case 1:
				s.remove(h)
				delete(m, h)
			}
			if s.has(h) != m[h] {
				t.Fatalf("space %d step %d: has(%d) %v, map %v", space, i, h, s.has(h), m[h])
			}
			if s.len() != len(m) {
				t.Fatalf("space %d step %d: len %d, map %d", space, i, s.len(), len(m))
			}
		}
		for h := range m {
			if !s.has(h) {
				t.Fatalf("space %d: lost %d", space, h)
			}
		}
	}
}

// BenchmarkKeySet: one ordered plain call's keys in a shard (60 of 125 keys), added,
// looked up and removed, against a map.
func BenchmarkKeySet(b *testing.B) {
	keys := make([]uint64, 125)
	for i := range keys {
		keys[i] = rand.Uint64()
	}
	b.Run("keySet", func(b *testing.B) {
		b.ReportAllocs()
		var s keySet
		for b.Loop() {
			for _, k := range keys[:60] {
				s.add(k)
			}
			for _, k := range keys {
				_ = s.has(k)
			}
			for _, k := range keys[:60] {
				s.remove(k)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		m := map[uint64]struct{}{}
		for b.Loop() {
			for _, k := range keys[:60] {
				m[k] = struct{}{}
			}
			for _, k := range keys {
				_ = m[k]
			}
			for _, k := range keys[:60] {
				delete(m, k)
			}
		}
	})
}
