package producer

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"

	"github.com/freshet/freshet/internal/hashkey"
)

// hashCache remembers the MD5 hash keys of recently seen partition keys, so a producer
// writing a bounded set of keys hashes each once. It is a direct-mapped table of
// immutable entries: a lookup is one cheap hash, one atomic load and one string compare,
// and a miss replaces the slot's entry. Its size is fixed, so memory is bounded.
type hashCache struct {
	seed  maphash.Seed
	mask  uint64
	slots []atomic.Pointer[hashEntry]
}

// hashEntry is one cached key. A key of up to inlineKeyLen bytes is held in the
// entry itself, so a lookup reads one cache line; a longer one in long.
type hashEntry struct {
	hk   hashkey.Key
	n    uint8
	key  [inlineKeyLen]byte
	long string
}

// inlineKeyLen is the longest key held in its entry (entries are 64 bytes).
const inlineKeyLen = 31

func (e *hashEntry) is(pk string) bool {
	if len(pk) <= inlineKeyLen {
		return int(e.n) == len(pk) && string(e.key[:e.n]) == pk
	}
	return e.long == pk
}

func newHashCache(size int) *hashCache {
	if size == 0 {
		return nil
	}
	n := 1 << bits.Len(uint(size-1)) // next power of two
	return &hashCache{seed: maphash.MakeSeed(), mask: uint64(n - 1), slots: make([]atomic.Pointer[hashEntry], n)}
}

// get returns the hash key of partition key pk.
func (c *hashCache) get(pk string) hashkey.Key {
	if c == nil {
		return hashkey.FromPartitionKey(pk)
	}
	slot := &c.slots[maphash.String(c.seed, pk)&c.mask]
	if e := slot.Load(); e != nil && e.is(pk) {
		return e.hk
	}
	k := hashkey.FromPartitionKey(pk)
	// Keep a copy of the key: the caller's string may alias a buffer it reuses.
	e := &hashEntry{hk: k, n: uint8(len(pk))}
	if len(pk) <= inlineKeyLen {
		copy(e.key[:], pk)
	} else {
		// n then matches no key short enough to be compared inline.
		e.n = inlineKeyLen + 1
		e.long = string([]byte(pk))
	}
	slot.Store(e)
	return k
}
