package aggregation

import (
	"crypto/md5"
	"fmt"
)

// Magic is the 4-byte prefix of a KPL aggregated record.
var Magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

const (
	// DefaultMaxRecords is the KPL's default AggregationMaxCount.
	DefaultMaxRecords = 4294967295
	// DefaultMaxBytes is the KPL's default AggregationMaxSize.
	DefaultMaxBytes = 51200
	// MaxMaxBytes is the largest accepted byte limit: the largest record a
	// Kinesis stream can be configured to accept (10 MiB).
	MaxMaxBytes = 10 << 20
	// MinMaxBytes is the smallest accepted byte limit.
	MinMaxBytes = 64

	// overhead is the size of an aggregate holding nothing: magic and MD5.
	overhead = len(Magic) + md5.Size

	// AggregatePartitionKey is the partition key of a drained aggregate of
	// two or more records, as the KPL writes it. The aggregate is routed by
	// its explicit hash key, so this key does not choose the shard.
	AggregatePartitionKey = "a"
)

// AggregatorOption configures an Aggregator.
type AggregatorOption func(*aggregatorConfig) error

type aggregatorConfig struct {
	maxRecords  uint64
	maxBytes    int
	codec       Codec
	level       int
	minCompress int
}

func defaultAggregatorConfig() aggregatorConfig {
	return aggregatorConfig{
		maxRecords:  DefaultMaxRecords,
		maxBytes:    DefaultMaxBytes,
		codec:       CodecNone,
		minCompress: DefaultMinCompressSize,
	}
}

func (c *aggregatorConfig) validate() error {
	if c.maxRecords < 1 || c.maxRecords > DefaultMaxRecords {
		return fmt.Errorf("%w: max records %d not in [1, %d]", ErrInvalidOption, c.maxRecords, uint64(DefaultMaxRecords))
	}
	if c.maxBytes < MinMaxBytes || c.maxBytes > MaxMaxBytes {
		return fmt.Errorf("%w: max bytes %d not in [%d, %d]", ErrInvalidOption, c.maxBytes, MinMaxBytes, MaxMaxBytes)
	}
	if c.codec != CodecNone {
		return validLevel(c.codec, c.level)
	}
	return nil
}

// WithMaxRecords limits the number of user records in one aggregate (the
// KPL's AggregationMaxCount), in [1, 4294967295]. Default 4294967295.
func WithMaxRecords(n uint64) AggregatorOption {
	return func(c *aggregatorConfig) error {
		if n < 1 || n > DefaultMaxRecords {
			return fmt.Errorf("%w: max records %d not in [1, %d]", ErrInvalidOption, n, uint64(DefaultMaxRecords))
		}
		c.maxRecords = n
		return nil
	}
}

// WithMaxBytes limits the encoded size of one aggregate, magic and MD5
// included, before any compression (the KPL's AggregationMaxSize), in
// [64, 10 MiB]. Default 51200.
func WithMaxBytes(n int) AggregatorOption {
	return func(c *aggregatorConfig) error {
		if n < MinMaxBytes || n > MaxMaxBytes {
			return fmt.Errorf("%w: max bytes %d not in [%d, %d]", ErrInvalidOption, n, MinMaxBytes, MaxMaxBytes)
		}
		c.maxBytes = n
		return nil
	}
}

// Aggregator packs user records into one Kinesis record in the KPL
// aggregated format. It copies each added record's data into its own reusable
// buffers, so the caller may reuse its buffers once Add returns, and it keeps
// the running encoded size exact at every step. An Aggregator is not safe for
// concurrent use; the producer keeps one per shard.
type Aggregator struct {
	cfg aggregatorConfig

	pkIndex  map[string]uint64
	ehkIndex map[string]uint64
	pkTable  []byte // encoded partition_key_table fields
	ehkTable []byte // encoded explicit_hash_key_table fields
	recs     []byte // encoded records fields
	n        uint64

	// The first record routes the whole aggregate and is drained alone
	// when it is the only one.
	firstPK, firstEHK   string
	firstHash           HashKey
	firstHashed         bool
	firstData, firstEnd int
	// tagged is set when a record carries tags: the aggregate then never drains as
	// a plain record, which has no place for them.
	tagged bool

	comp *compressor
}

// NewAggregator returns an empty Aggregator. Bad options fail with an error
// wrapping ErrInvalidOption.
func NewAggregator(opts ...AggregatorOption) (*Aggregator, error) {
	cfg := defaultAggregatorConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Aggregator{
		cfg:      cfg,
		pkIndex:  make(map[string]uint64),
		ehkIndex: make(map[string]uint64),
	}
	if cfg.codec != CodecNone {
		c, err := newCompressor(cfg.codec, cfg.level)
		if err != nil {
			return nil, err
		}
		a.comp = c
	}
	return a, nil
}

// Len returns the number of user records in the aggregate.
func (a *Aggregator) Len() int { return int(a.n) }

// Size returns the exact encoded size of the aggregate as it stands (magic,
// protobuf body and MD5), or 0 when it is empty. It is an upper bound of the
// data Drain returns: a single record drains as its own data, and a
// compressed aggregate is used only when it is smaller.
func (a *Aggregator) Size() int {
	if a.n == 0 {
		return 0
	}
	return overhead + len(a.pkTable) + len(a.ehkTable) + len(a.recs)
}

// plan computes what adding r would cost without changing anything: the
// growth of the encoded size and r's table indices.
func (a *Aggregator) plan(r *Record) (delta int, pkIdx, ehkIdx uint64, newPK, newEHK bool) {
	var ok bool
	if pkIdx, ok = a.pkIndex[r.PartitionKey]; !ok {
		pkIdx = uint64(len(a.pkIndex))
		newPK = true
		delta += bytesFieldSize(len(r.PartitionKey))
	}
	inner := 1 + varintSize(pkIdx) + bytesFieldSize(len(r.Data))
	if r.ExplicitHashKey != "" {
		if ehkIdx, ok = a.ehkIndex[r.ExplicitHashKey]; !ok {
			ehkIdx = uint64(len(a.ehkIndex))
			newEHK = true
			delta += bytesFieldSize(len(r.ExplicitHashKey))
		}
		inner += 1 + varintSize(ehkIdx)
	}
	if len(r.Tags) > 0 {
		inner += TagsSize(r.Tags)
	}
	delta += bytesFieldSize(inner)
	return
}

// SizeWith returns the exact encoded size the aggregate would have if r were
// added, without encoding anything. It does not validate r.
func (a *Aggregator) SizeWith(r Record) int {
	delta, _, _, _, _ := a.plan(&r)
	if a.n == 0 {
		return overhead + delta
	}
	return a.Size() + delta
}

// Fits reports whether Add would accept r as far as the limits go: the
// aggregate is empty (any single record is accepted), or adding r keeps it
// within both the record-count and byte limits.
func (a *Aggregator) Fits(r Record) bool {
	if a.n == 0 {
		return true
	}
	return a.n < a.cfg.maxRecords && a.SizeWith(r) <= a.cfg.maxBytes
}

// Add appends a user record. It fails with ErrFull, and changes nothing, when
// the aggregate is not empty and r would exceed the record-count or byte
// limit: drain, then add r again. An empty aggregator accepts any valid
// record, however large, so that a record too big to share an aggregate
// drains alone as a plain record; checking it against the stream's record
// size limit is the caller's job. A record Kinesis would reject fails with an
// error wrapping ErrInvalidRecord. Add copies r.Data.
func (a *Aggregator) Add(r Record) error {
	return a.add(&r, HashKey{}, false)
}

// AddWithHashKey is Add for a caller that already knows r's effective hash
// key (see Record.HashKey), typically from predicting its shard: the
// aggregator then never hashes r's partition key. The key must be r's real
// hash key, or the drained aggregate is routed to the wrong shard.
func (a *Aggregator) AddWithHashKey(r Record, key HashKey) error {
	return a.add(&r, key, true)
}

func (a *Aggregator) add(r *Record, key HashKey, hashed bool) error {
	delta, pkIdx, ehkIdx, newPK, newEHK := a.plan(r)
	// A partition key already in the table was checked when it entered it.
	if newPK {
		if err := validatePartitionKey(r.PartitionKey); err != nil {
			return err
		}
	}
	if r.ExplicitHashKey != "" {
		ehk, err := ParseHashKey(r.ExplicitHashKey)
		if err != nil {
			return fmt.Errorf("%w: explicit hash key %q: %w", ErrInvalidRecord, r.ExplicitHashKey, err)
		}
		key, hashed = ehk, true
	}
	if len(r.Tags) > 0 {
		if err := ValidateTags(r.Tags); err != nil {
			return err
		}
	}
	if a.n > 0 && (a.n >= a.cfg.maxRecords || a.Size()+delta > a.cfg.maxBytes) {
		return ErrFull
	}
	if newPK {
		a.pkIndex[r.PartitionKey] = pkIdx
		a.pkTable = append(a.pkTable, tagPartitionKeyTable)
		a.pkTable = appendVarint(a.pkTable, uint64(len(r.PartitionKey)))
		a.pkTable = append(a.pkTable, r.PartitionKey...)
	}
	inner := 1 + varintSize(pkIdx) + bytesFieldSize(len(r.Data))
	if r.ExplicitHashKey != "" {
		if newEHK {
			a.ehkIndex[r.ExplicitHashKey] = ehkIdx
			a.ehkTable = append(a.ehkTable, tagExplicitHashKeyTable)
			a.ehkTable = appendVarint(a.ehkTable, uint64(len(r.ExplicitHashKey)))
			a.ehkTable = append(a.ehkTable, r.ExplicitHashKey...)
		}
		inner += 1 + varintSize(ehkIdx)
	}
	if len(r.Tags) > 0 {
		inner += TagsSize(r.Tags)
	}
	b := a.recs
	b = append(b, tagRecords)
	b = appendVarint(b, uint64(inner))
	b = append(b, tagPartitionKeyIndex)
	b = appendVarint(b, pkIdx)
	if r.ExplicitHashKey != "" {
		b = append(b, tagExplicitHashKeyIndex)
		b = appendVarint(b, ehkIdx)
	}
	b = append(b, tagData)
	b = appendVarint(b, uint64(len(r.Data)))
	start := len(b)
	b = append(b, r.Data...)
	end := len(b)
	for _, t := range r.Tags {
		b = append(b, tagTags)
		b = appendVarint(b, uint64(tagMessageSize(t)))
		b = append(b, tagTagKey)
		b = appendVarint(b, uint64(len(t.Key)))
		b = append(b, t.Key...)
		if t.Value != "" {
			b = append(b, tagTagValue)
			b = appendVarint(b, uint64(len(t.Value)))
			b = append(b, t.Value...)
		}
		a.tagged = true
	}
	a.recs = b
	if a.n == 0 {
		a.firstPK, a.firstEHK = r.PartitionKey, r.ExplicitHashKey
		a.firstHash, a.firstHashed = key, hashed
		a.firstData, a.firstEnd = start, end
	}
	a.n++
	return nil
}

// Reset discards every record in the aggregate, keeping its buffers.
func (a *Aggregator) Reset() {
	clear(a.pkIndex)
	clear(a.ehkIndex)
	a.pkTable = a.pkTable[:0]
	a.ehkTable = a.ehkTable[:0]
	a.recs = a.recs[:0]
	a.n = 0
	a.firstPK, a.firstEHK = "", ""
	a.firstHash, a.firstHashed = HashKey{}, false
	a.firstData, a.firstEnd = 0, 0
	a.tagged = false
}

// Drain encodes the aggregate into one Kinesis record and empties the
// aggregator. The record's data is written to dst[:0], reusing its capacity
// and growing it only when needed; pass nil to allocate. The aggregator keeps
// no reference to the returned data.
//
// A single record without tags drains as itself: its own partition key,
// explicit hash key and data, exactly as if it had never been aggregated (a
// single tagged record drains as a KPL aggregate of one, with its own keys). Two or more drain as
// a KPL aggregate with partition key "a" (AggregatePartitionKey) and, as
// explicit hash key, the first user record's hash key in decimal, so the
// aggregate lands on the shard the first record belongs to. With compression
// configured, the data may instead be a compressed frame (see the package
// documentation). Drain fails with ErrEmpty when there is nothing to drain.
func (a *Aggregator) Drain(dst []byte) (Record, error) {
	rec, _, err := a.drain(dst, true)
	return rec, err
}

// DrainUnsealed is Drain for a caller that computes the MD5 trailers of many
// aggregates at once with Seal or a Sealer, which costs a fraction of one
// MD5 per aggregate. When Drain would return a KPL aggregate, DrainUnsealed
// returns the same bytes except that the last 16, the MD5 trailer, are zero,
// and sealed is false: the data must go through Seal before it is sent, or
// every consumer rejects it as malformed. Anything else comes back exactly
// as Drain returns it, with sealed true: a single record drained as a plain
// record, and a compressed frame (whose inner aggregate's MD5 is computed
// before compressing). Drain's other rules (dst reuse, keys, ErrEmpty)
// apply unchanged.
func (a *Aggregator) DrainUnsealed(dst []byte) (rec Record, sealed bool, err error) {
	return a.drain(dst, false)
}

// drain is Drain when seal is true, DrainUnsealed otherwise; sealed reports
// whether the returned data is complete.
func (a *Aggregator) drain(dst []byte, seal bool) (out Record, sealed bool, err error) {
	if a.n == 0 {
		return Record{}, true, ErrEmpty
	}
	plain := a.n == 1 && !a.tagged
	if plain && a.comp == nil {
		out = Record{
			PartitionKey:    a.firstPK,
			ExplicitHashKey: a.firstEHK,
			Data:            append(dst[:0], a.recs[a.firstData:a.firstEnd]...),
		}
		a.Reset()
		return out, true, nil
	}
	if a.n == 1 {
		out.PartitionKey, out.ExplicitHashKey = a.firstPK, a.firstEHK
	} else {
		out.PartitionKey = AggregatePartitionKey
		out.ExplicitHashKey = a.firstEHK
		if out.ExplicitHashKey == "" {
			if !a.firstHashed {
				a.firstHash = PartitionKeyHash(a.firstPK)
			}
			out.ExplicitHashKey = a.firstHash.String()
		}
	}
	if a.comp != nil && a.Size() >= a.cfg.minCompress {
		data, ok := a.comp.frame(dst[:0], a)
		if ok {
			out.Data = data
			a.Reset()
			return out, true, nil
		}
		dst = data
	}
	sealed = true
	if plain {
		out.Data = append(dst[:0], a.recs[a.firstData:a.firstEnd]...)
	} else {
		out.Data = a.encode(dst[:0], seal)
		sealed = seal
	}
	a.Reset()
	return out, sealed, nil
}

// encode appends the KPL aggregate (magic, protobuf body, MD5) to dst. With
// seal false the MD5 trailer is left zero, for Seal to fill in.
func (a *Aggregator) encode(dst []byte, seal bool) []byte {
	size := a.Size()
	if cap(dst)-len(dst) < size {
		grown := make([]byte, len(dst), len(dst)+size)
		copy(grown, dst)
		dst = grown
	}
	start := len(dst)
	dst = append(dst, Magic[:]...)
	dst = append(dst, a.pkTable...)
	dst = append(dst, a.ehkTable...)
	dst = append(dst, a.recs...)
	if !seal {
		var zero [md5.Size]byte
		return append(dst, zero[:]...)
	}
	sum := md5.Sum(dst[start+len(Magic):])
	return append(dst, sum[:]...)
}
