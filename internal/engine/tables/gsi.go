package tables

import (
	"sort"
	"sync"
)

// ixEntries is what a global secondary index holds: every item of its table that carries
// the index's key attributes, reduced to the attributes the index projects, by index
// partition, each partition in the index's order (range key, then the table's order). Writers keep it current under their item's shard
// lock, so a Query of the index reads one partition instead of the whole table.
type ixEntries struct {
	mu    sync.RWMutex
	parts map[string][]Item // by keyString of the index hash key
}

func newIxEntries() *ixEntries { return &ixEntries{parts: make(map[string][]Item)} }

// member reports whether it appears in index ix (GSIs are sparse).
func (ix *index) member(it Item) bool {
	if it == nil {
		return false
	}
	if _, ok := it[ix.key.hash]; !ok {
		return false
	}
	if ix.key.hasRange() {
		if _, ok := it[ix.key.rng]; !ok {
			return false
		}
	}
	return true
}

// project reduces table item it to the attributes the index projects: the table's and
// the index's keys and, for INCLUDE, the attributes named.
func (ix *index) project(tk keySchema, it Item) Item {
	if ix.projection == "ALL" {
		return it
	}
	out := make(Item, 4+len(ix.nonKey))
	for _, n := range [...]string{tk.hash, tk.rng, ix.key.hash, ix.key.rng} {
		if n != "" {
			out[n] = it[n]
		}
	}
	for _, n := range ix.nonKey {
		if v, ok := it[n]; ok {
			out[n] = v
		}
	}
	return out
}

// sameProjection reports whether the index holds the same entry for a and b, two
// versions of one table item in the index: true when the index does not project all
// attributes and none of those it projects changed (a lease renewal, for the owner index).
func (ix *index) sameProjection(tk keySchema, a, b Item) bool {
	if ix.projection == "ALL" {
		return false
	}
	same := func(n string) bool {
		if n == "" {
			return true
		}
		av, aok := a[n]
		bv, bok := b[n]
		return aok == bok && equalValues(av, bv)
	}
	for _, n := range [...]string{tk.hash, tk.rng, ix.key.hash, ix.key.rng} {
		if !same(n) {
			return false
		}
	}
	for _, n := range ix.nonKey {
		if !same(n) {
			return false
		}
	}
	return true
}

// ixCompare orders two items of one index partition: by the index range key, then by
// the table's order.
func ixCompare(ix, tk keySchema, a, b Item) int {
	if ix.hasRange() {
		if c := compareKeyValues(a[ix.rng], b[ix.rng]); c != 0 {
			return c
		}
	}
	return tableOrder(tk, a, b)
}

// replace puts nw (nil: none) in the index in place of old (nil: none), two versions of
// one table item.
func (ix *index) replace(tk keySchema, old, nw Item) {
	e := ix.entries
	inOld, inNew := ix.member(old), ix.member(nw)
	if !inOld && !inNew || inOld && inNew && ix.sameProjection(tk, old, nw) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if inOld {
		hk := keyString(old[ix.key.hash])
		items := e.parts[hk]
		i := sort.Search(len(items), func(i int) bool { return ixCompare(ix.key, tk, items[i], old) >= 0 })
		if i < len(items) && ixCompare(ix.key, tk, items[i], old) == 0 {
			if inNew && keyString(nw[ix.key.hash]) == hk && ixCompare(ix.key, tk, old, nw) == 0 {
				items[i] = ix.project(tk, nw)
				return
			}
			items = append(items[:i:i], items[i+1:]...)
			if len(items) == 0 {
				delete(e.parts, hk)
			} else {
				e.parts[hk] = items
			}
		}
	}
	if inNew {
		hk := keyString(nw[ix.key.hash])
		items := e.parts[hk]
		i := sort.Search(len(items), func(i int) bool { return ixCompare(ix.key, tk, items[i], nw) >= 0 })
		grown := make([]Item, 0, len(items)+1)
		grown = append(append(append(grown, items[:i]...), ix.project(tk, nw)), items[i:]...)
		e.parts[hk] = grown
	}
}

// partition returns a copy of the items of one index partition, in the index's order.
func (ix *index) partition(hash Value) []Item {
	e := ix.entries
	e.mu.RLock()
	defer e.mu.RUnlock()
	return append([]Item(nil), e.parts[keyString(hash)]...)
}

// backfill builds the entries of a new index from the table's items; the caller holds
// every shard's write lock, so no write runs meanwhile.
func (ix *index) backfill(t *table) {
	e := newIxEntries()
	for i := range t.shards {
		for _, p := range t.shards[i].parts {
			for _, it := range p.items {
				if ix.member(it) {
					hk := keyString(it[ix.key.hash])
					e.parts[hk] = append(e.parts[hk], ix.project(t.key, it))
				}
			}
		}
	}
	for _, items := range e.parts {
		sort.Slice(items, func(i, j int) bool { return ixCompare(ix.key, t.key, items[i], items[j]) < 0 })
	}
	ix.entries = e
}

// setLive makes gsis the indexes writers maintain.
func (t *table) setLive(gsis []*index) {
	live := append([]*index(nil), gsis...)
	t.live.Store(&live)
}

// maintain makes gsis the indexes writers maintain, after building the entries of those
// that have none (new indexes) with every write stopped.
func (t *table) maintain(gsis []*index) {
	for i := range t.shards {
		t.shards[i].mu.Lock()
	}
	defer func() {
		for i := range t.shards {
			t.shards[i].mu.Unlock()
		}
	}()
	for _, ix := range gsis {
		if ix.entries == nil {
			ix.backfill(t)
		}
	}
	t.setLive(gsis)
}
