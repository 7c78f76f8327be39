package tables

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// numShards is the number of lock shards per table. Items hash to a shard by partition
// key, so every write locks exactly one shard and a Query on the table locks one.
const numShards = 32

// keySchema names a table's or index's key attributes and their types.
type keySchema struct {
	hash, rng   string
	hashT, rngT Type
}

func (k keySchema) hasRange() bool { return k.rng != "" }

// index is a global secondary index. Its entries change with the table's items under
// the items' shard locks, so an index is always as fresh as its table.
type index struct {
	name       string
	key        keySchema
	projection string
	nonKey     []string
	rcu, wcu   int64
	createdAt  time.Time
	activeAt   time.Time
	// entries is shared by the copies UpdateTable makes of an index to change its
	// throughput.
	entries *ixEntries
}

type partition struct {
	hash  Value
	items []Item // sorted by range key; one item when the table has no range key
}

type shard struct {
	mu    sync.RWMutex
	parts map[string]*partition
}

// table is one DynamoDB table. Item values are immutable once stored: writers replace an
// item, never change it, so readers may use what they read after releasing a lock.
type table struct {
	// readMilli and writeMilli count the capacity units consumed, in thousandths.
	readMilli, writeMilli atomic.Uint64

	name      string
	arn       string
	id        string
	key       keySchema
	attrDefs  map[string]Type
	createdAt time.Time
	activeAt  time.Time

	meta    sync.RWMutex
	billing string
	rcu     int64
	wcu     int64
	gsis    []*index
	tags    []tag
	pitr    bool
	deleted bool
	// protected is DeletionProtectionEnabled: DeleteTable refuses while it is set.
	protected bool

	shards    [numShards]shard
	itemCount atomic.Int64
	sizeBytes atomic.Int64

	// live is the list of indexes writers maintain: gsis as of the last CreateTable or
	// UpdateTable, read without the meta lock, so a writer holding a shard lock never
	// waits for it.
	live atomic.Pointer[[]*index]

	// partsVersion counts additions and removals of partitions; order is the scan
	// order built at some version, rebuilt by the first scan after it changes.
	partsVersion atomic.Uint64
	orderMu      sync.Mutex
	order        *scanOrder
}

// scanOrder is the order of a table's partitions in a Scan: by a hash of the partition
// key, then the key.
type scanOrder struct {
	version uint64
	parts   []partRef
}

type partRef struct {
	order uint32
	hk    string
}

type tag struct{ key, value string }

func newTable(name string) *table {
	t := &table{name: name}
	for i := range t.shards {
		t.shards[i].parts = make(map[string]*partition)
	}
	return t
}

// keyString encodes a key value so distinct values give distinct strings.
func keyString(v Value) string {
	return string(rune('0'+v.T)) + v.S
}

func shardOf(hashKey string) int {
	return int(hashOrder(hashKey) % numShards)
}

// FNV-1a, 32 bits.
const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

// hashOrder is the FNV-1a hash of a key string: the order of partitions in a scan.
func hashOrder(hashKey string) uint32 {
	h := uint32(fnvOffset)
	for i := 0; i < len(hashKey); i++ {
		h = (h ^ uint32(hashKey[i])) * fnvPrime
	}
	return h
}

// valueOrder is hashOrder(keyString(v)), computed without building the string.
func valueOrder(v Value) uint32 {
	h := (uint32(fnvOffset) ^ uint32('0'+v.T)) * fnvPrime
	for i := 0; i < len(v.S); i++ {
		h = (h ^ uint32(v.S[i])) * fnvPrime
	}
	return h
}

// compareKeyValues orders two range-key values of one type.
func compareKeyValues(a, b Value) int {
	c, _ := compareScalars(a, b)
	return c
}

// find returns the position of the item with range key rk in p (or where it would go).
func (p *partition) find(k keySchema, rk Value) (int, bool) {
	if !k.hasRange() {
		return 0, len(p.items) > 0
	}
	i := sort.Search(len(p.items), func(i int) bool {
		return compareKeyValues(p.items[i][k.rng], rk) >= 0
	})
	return i, i < len(p.items) && compareKeyValues(p.items[i][k.rng], rk) == 0
}

// lockedItem is an item slot under its shard's write lock.
type lockedItem struct {
	t   *table
	sh  *shard
	hk  string
	key Item
}

// lockItem locks the shard of key's item for writing.
func (t *table) lockItem(key Item) lockedItem {
	hk := keyString(key[t.key.hash])
	sh := &t.shards[shardOf(hk)]
	sh.mu.Lock()
	return lockedItem{t: t, sh: sh, hk: hk, key: key}
}

func (l lockedItem) unlock() { l.sh.mu.Unlock() }

// get returns the current item, or nil.
func (l lockedItem) get() Item {
	p := l.sh.parts[l.hk]
	if p == nil {
		return nil
	}
	var rk Value
	if l.t.key.hasRange() {
		rk = l.key[l.t.key.rng]
	}
	if i, ok := p.find(l.t.key, rk); ok {
		return p.items[i]
	}
	return nil
}

// put stores it (nil deletes) in place of the current item.
func (l lockedItem) put(it Item) {
	k := l.t.key
	p := l.sh.parts[l.hk]
	var rk Value
	if k.hasRange() {
		rk = l.key[k.rng]
	}
	if p == nil {
		if it == nil {
			return
		}
		p = &partition{hash: l.key[k.hash]}
		l.sh.parts[l.hk] = p
		l.t.partsVersion.Add(1)
	}
	i, ok := p.find(k, rk)
	var old Item
	switch {
	case ok && it == nil:
		old = p.items[i]
		l.t.sizeBytes.Add(-int64(itemSize(old)))
		l.t.itemCount.Add(-1)
		p.items = append(p.items[:i:i], p.items[i+1:]...)
		if len(p.items) == 0 {
			delete(l.sh.parts, l.hk)
			l.t.partsVersion.Add(1)
		}
	case ok:
		old = p.items[i]
		l.t.sizeBytes.Add(int64(itemSize(it) - itemSize(old)))
		p.items[i] = it
	case it != nil:
		l.t.sizeBytes.Add(int64(itemSize(it)))
		l.t.itemCount.Add(1)
		items := make([]Item, 0, len(p.items)+1)
		items = append(append(append(items, p.items[:i]...), it), p.items[i:]...)
		p.items = items
	}
	if ixs := l.t.live.Load(); ixs != nil {
		for _, ix := range *ixs {
			ix.replace(k, old, it)
		}
	}
}

// getItem reads one item under a read lock.
func (t *table) getItem(key Item) Item {
	hk := keyString(key[t.key.hash])
	sh := &t.shards[shardOf(hk)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	p := sh.parts[hk]
	if p == nil {
		return nil
	}
	var rk Value
	if t.key.hasRange() {
		rk = key[t.key.rng]
	}
	if i, ok := p.find(t.key, rk); ok {
		return p.items[i]
	}
	return nil
}

// partitionItems returns a copy of the item list of one partition, in range-key order.
func (t *table) partitionItems(hash Value) []Item {
	return t.partitionByKey(keyString(hash))
}

// scanOrder returns the table's partitions in scan order: by a hash of the partition
// key, then the key. Scans page through this order with ExclusiveStartKey.
func (t *table) scanOrder() []partRef {
	t.orderMu.Lock()
	defer t.orderMu.Unlock()
	v := t.partsVersion.Load()
	if t.order != nil && t.order.version == v {
		return t.order.parts
	}
	var parts []partRef
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		for hk := range sh.parts {
			parts = append(parts, partRef{hashOrder(hk), hk})
		}
		sh.mu.RUnlock()
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].before(parts[j]) })
	t.order = &scanOrder{version: v, parts: parts}
	return parts
}

func (a partRef) before(b partRef) bool {
	if a.order != b.order {
		return a.order < b.order
	}
	return a.hk < b.hk
}

// partitionByKey returns a copy of the item list of the partition whose key string is
// hk, in range-key order.
func (t *table) partitionByKey(hk string) []Item {
	sh := &t.shards[shardOf(hk)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	p := sh.parts[hk]
	if p == nil {
		return nil
	}
	return append([]Item(nil), p.items...)
}

// allItems returns every item in scan order.
func (t *table) allItems() []Item {
	var out []Item
	for _, ref := range t.scanOrder() {
		out = append(out, t.partitionByKey(ref.hk)...)
	}
	return out
}

func (t *table) status(now time.Time) string {
	if now.Before(t.activeAt) {
		return "CREATING"
	}
	return "ACTIVE"
}

func formatEpoch(t time.Time) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64), 64)
	return f
}

// account adds units of consumed read or write capacity.
func (t *table) account(units float64, write bool) {
	m := uint64(units*1000 + 0.5)
	if write {
		t.writeMilli.Add(m)
	} else {
		t.readMilli.Add(m)
	}
}
