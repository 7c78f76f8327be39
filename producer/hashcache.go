package producer

import (
	"hash/maphash"
	"sync"

	"github.com/freshet/freshet/internal/hashkey"
)

// hashCache remembers the MD5 hash keys of recently seen partition keys, so a producer
// writing a bounded set of keys hashes each once. It is striped to keep concurrent Puts
// apart, and each stripe is emptied when it reaches its share of the bound.
type hashCache struct {
	seed    maphash.Seed
	per     int
	stripes [16]hashStripe
}

type hashStripe struct {
	mu sync.Mutex
	m  map[string]hashkey.Key
	_  [40]byte // keep stripes on separate cache lines
}

func newHashCache(size int) *hashCache {
	if size == 0 {
		return nil
	}
	c := &hashCache{seed: maphash.MakeSeed(), per: max(size/16, 1)}
	for i := range c.stripes {
		c.stripes[i].m = make(map[string]hashkey.Key)
	}
	return c
}

// get returns the hash key of partition key pk.
func (c *hashCache) get(pk string) hashkey.Key {
	if c == nil {
		return hashkey.FromPartitionKey(pk)
	}
	s := &c.stripes[maphash.String(c.seed, pk)&15]
	s.mu.Lock()
	k, ok := s.m[pk]
	s.mu.Unlock()
	if ok {
		return k
	}
	k = hashkey.FromPartitionKey(pk)
	s.mu.Lock()
	if len(s.m) >= c.per {
		clear(s.m)
	}
	s.m[pk] = k
	s.mu.Unlock()
	return k
}
