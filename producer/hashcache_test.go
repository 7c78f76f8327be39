package producer

import (
	"fmt"
	"testing"

	"github.com/freshet/freshet/internal/hashkey"
)

func TestHashCache(t *testing.T) {
	for _, size := range []int{0, 1, 3, 1024} {
		c := newHashCache(size)
		for round := 0; round < 3; round++ {
			for i := 0; i < 2000; i++ {
				pk := fmt.Sprintf("key-%d", i%(size+7))
				if i%3 == 0 {
					// Keys beyond what an entry holds inline, some sharing a long prefix.
					pk = fmt.Sprintf("%040d-%d", i%5, i%(size+7))
				} else if i%3 == 1 {
					// Keys of exactly the inline length and one byte more.
					pk = fmt.Sprintf("%0*d", inlineKeyLen+i%2, i%(size+7))
				}
				if got, want := c.get(pk), hashkey.FromPartitionKey(pk); got != want {
					t.Fatalf("size %d: get(%q) = %v, want %v", size, pk, got, want)
				}
			}
		}
		if c != nil && len(c.slots) < size {
			t.Fatalf("size %d: %d slots", size, len(c.slots))
		}
	}
}

// TestHashCacheLongAndZeroKeys: a key of inlineKeyLen zero bytes is not taken for
// a long key cached in the same slot (whose inline bytes are zero).
func TestHashCacheLongAndZeroKeys(t *testing.T) {
	c := newHashCache(1)
	long := fmt.Sprintf("%050d", 7)
	zeros := string(make([]byte, inlineKeyLen))
	for range 2 {
		for _, pk := range []string{long, zeros, long} {
			if got, want := c.get(pk), hashkey.FromPartitionKey(pk); got != want {
				t.Fatalf("get(%q) = %v, want %v", pk, got, want)
			}
		}
	}
}

func BenchmarkHashCache(b *testing.B) {
	c := newHashCache(1 << 16)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.get(keys[i%len(keys)])
	}
}
