package aggregation

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math"
	"slices"
	"sync"
)

// DeaggregatorOption configures a Deaggregator.
type DeaggregatorOption func(*deaggregatorConfig) error

type deaggregatorConfig struct {
	verify          bool
	filter          bool
	shardRange      HashKeyRange
	maxDecompressed int
	md5Lanes        bool
}

func defaultDeaggregatorConfig() deaggregatorConfig {
	return deaggregatorConfig{verify: true, maxDecompressed: DefaultMaxDecompressedSize, md5Lanes: md5LanesSupported}
}

// WithShardHashKeyRange makes de-aggregation drop the whole of an aggregate
// that holds a user record whose effective hash key (explicit hash key, or
// MD5 of the partition key) lies outside r, the hash key range of the shard
// the aggregate was read from: its records in r too. An aggregate whose
// records all lie in r is delivered whole, with its sub-sequence numbers.
// Plain records are never dropped. A malformed aggregate is still returned as
// one plain record, as without the filter.
//
// The Java KCL always does this, because the KPL, when it learns that an
// aggregate landed on a shard other than the one it predicted (its shard map
// was stale during a reshard), puts all of its user records again, as the
// Freshet producer does; the copies in the wrong shard are then duplicates.
// Dropping the whole aggregate, as the KCL does, makes a Freshet and a Java
// consumer deliver the same records. Freshet does not filter by default:
// producers that do not re-put (aws-kinesis-agg, or any producer that
// aggregates without shard prediction) would lose records to the filter.
// Enable it when every producer of the stream re-puts misrouted aggregates.
func WithShardHashKeyRange(r HashKeyRange) DeaggregatorOption {
	return func(c *deaggregatorConfig) error {
		if !r.Valid() {
			return fmt.Errorf("%w: empty hash key range [%v, %v]", ErrInvalidOption, r.Start, r.End)
		}
		c.filter, c.shardRange = true, r
		return nil
	}
}

// WithChecksumVerification turns the MD5 check of aggregates on (the default,
// as in the KCL) or off. Off saves the MD5 cost on trusted streams; a corrupt
// aggregate may then decode to wrong user records instead of one plain record.
func WithChecksumVerification(verify bool) DeaggregatorOption {
	return func(c *deaggregatorConfig) error {
		c.verify = verify
		return nil
	}
}

// WithSIMDChecksums lets AppendBatch compute the MD5s of a batch's
// aggregates together, in the SIMD lanes of the calling goroutine's core
// (16 lanes with AVX-512, through internal/lanehash), when the CPU has them:
// the default. false makes AppendBatch use crypto/md5 one aggregate at a
// time, as Append does. The results are the same either way; only the CPU
// cost differs. On CPUs without AVX-512, true has no effect.
func WithSIMDChecksums(on bool) DeaggregatorOption {
	return func(c *deaggregatorConfig) error {
		c.md5Lanes = on && md5LanesSupported
		return nil
	}
}

// WithMaxDecompressedSize bounds the decompressed size of a compressed
// aggregate, in [1, 256 MiB]; a frame declaring or producing more is
// malformed and returned whole as a plain record. Default
// DefaultMaxDecompressedSize (10 MiB, the largest Kinesis record).
func WithMaxDecompressedSize(n int) DeaggregatorOption {
	return func(c *deaggregatorConfig) error {
		if n < 1 || n > maxMaxDecompressed {
			return fmt.Errorf("%w: max decompressed size %d not in [1, %d]", ErrInvalidOption, n, maxMaxDecompressed)
		}
		c.maxDecompressed = n
		return nil
	}
}

// Deaggregator turns Kinesis records back into user records. It keeps scratch
// space between calls, so it is not safe for concurrent use: use one per
// shard consumer, or the package-level Deaggregate.
type Deaggregator struct {
	cfg    deaggregatorConfig
	pk     []span
	ehk    []span
	recs   []span
	keys   []string  // partition keys, then explicit hash keys, of the current aggregate
	hashes []keyHash // the keys' hash keys, filled lazily by the hash-range filter

	// AppendBatch scratch, bounded by batchChunk entries.
	items     []batchItem
	bodies    [][]byte         // aggregate bodies whose MD5s are computed together
	bodyItems []int32          // the index in items of each body
	sums      [][md5.Size]byte // the bodies' MD5s
}

type span struct{ start, end int }

// keyHash caches the hash key of one table key while the hash-range filter
// looks at an aggregate.
type keyHash struct {
	hash  HashKey
	state uint8 // 0 unknown, 1 hashed, 2 not parsable
}

// NewDeaggregator returns a Deaggregator. Bad options fail with an error
// wrapping ErrInvalidOption.
func NewDeaggregator(opts ...DeaggregatorOption) (*Deaggregator, error) {
	cfg := defaultDeaggregatorConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	return &Deaggregator{cfg: cfg}, nil
}

var deaggregatorPool = sync.Pool{New: func() any {
	d, _ := NewDeaggregator()
	return d
}}

// Deaggregate decodes the data of one Kinesis record with default settings
// (MD5 verified, no hash-range filter). See Deaggregator.Append.
func Deaggregate(r Record) ([]UserRecord, error) {
	d := deaggregatorPool.Get().(*Deaggregator)
	out, err := d.Append(nil, r)
	deaggregatorPool.Put(d)
	return out, err
}

// Deaggregate is Append to a new slice.
func (d *Deaggregator) Deaggregate(r Record) ([]UserRecord, error) {
	return d.Append(nil, r)
}

// Append decodes the data of one Kinesis record r (its partition key and data
// as GetRecords returns them) and appends its user records to dst.
//
// A KPL aggregate yields its user records with sub-sequence numbers 0..n-1,
// their own partition keys and explicit hash keys, and data sub-slicing
// r.Data (no copy). A Freshet compressed frame is decompressed and yields
// the records of the aggregate inside it. Anything else is a plain record,
// appended as one UserRecord with sub-sequence number 0.
//
// When r.Data starts with a magic number but cannot be decoded (bad MD5,
// invalid protobuf, bad frame, a decompressed size above the limit), Append
// still appends r as one plain record, as the KCL does, and also returns a
// *MalformedError; errors.Is(err, ErrMalformed) tells that case apart. Nothing
// of a malformed aggregate is ever delivered partially. Records in dst are
// never modified.
func (d *Deaggregator) Append(dst []UserRecord, r Record) ([]UserRecord, error) {
	kind, agg, err := d.locate(r.Data)
	return d.appendLocated(dst, r, kind, agg, err, sumUnchecked)
}

// recordKind tells how a Kinesis record's data is to be read.
type recordKind uint8

const (
	kindPlain recordKind = iota
	kindKPL
	kindFrame
)

// sumState is what is known about an aggregate's MD5 before it is decoded.
type sumState uint8

const (
	sumUnchecked  sumState = iota // not computed yet: appendKPL computes it when verifying
	sumMatched                    // computed ahead (AppendBatch) and equal to the trailer
	sumMismatched                 // computed ahead and different from the trailer
)

// locate classifies data and finds the KPL aggregate in it: data itself, or
// the decompressed content of a Freshet frame. err is a *MalformedError for
// a frame that cannot be decompressed or does not hold a KPL aggregate.
func (d *Deaggregator) locate(data []byte) (kind recordKind, agg []byte, err error) {
	switch {
	case hasPrefix(data, Magic[:]):
		return kindKPL, data, nil
	case hasPrefix(data, CompressedMagic[:]):
		inner, err := d.decompress(data)
		if err != nil {
			return kindFrame, nil, err
		}
		if !hasPrefix(inner, Magic[:]) {
			return kindFrame, nil, malformed(ErrFraming, "decompressed payload is not a KPL aggregate")
		}
		return kindFrame, inner, nil
	}
	return kindPlain, nil, nil
}

// appendLocated appends the user records of r, whose data locate classified
// as kind with aggregate agg (or error err), to dst. Append and AppendBatch
// both end here, so they decode identically.
func (d *Deaggregator) appendLocated(dst []UserRecord, r Record, kind recordKind, agg []byte, err error, sum sumState) ([]UserRecord, error) {
	if kind == kindPlain {
		return append(dst, plain(r)), nil
	}
	if err == nil {
		n := len(dst)
		dst, err = d.appendKPL(dst, agg, sum)
		if err != nil {
			clear(dst[n:])
			dst = dst[:n]
		}
	}
	if err != nil {
		return append(dst, plain(r)), err
	}
	return dst, nil
}

func plain(r Record) UserRecord {
	return UserRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data}
}

func hasPrefix(b, p []byte) bool { return len(b) >= len(p) && bytes.Equal(b[:len(p)], p) }

// appendKPL decodes a KPL aggregate b (magic, body, MD5) into dst. sum says
// whether the MD5 is still to be checked. On error dst is returned with its
// original length.
func (d *Deaggregator) appendKPL(dst []UserRecord, b []byte, sum sumState) ([]UserRecord, error) {
	if len(b) < overhead {
		return dst, malformed(ErrTooShort, "")
	}
	body := b[len(Magic) : len(b)-md5.Size]
	if d.cfg.verify {
		ok := sum == sumMatched
		if sum == sumUnchecked {
			s := md5.Sum(body)
			ok = bytes.Equal(s[:], b[len(b)-md5.Size:])
		}
		if !ok {
			return dst, malformed(ErrChecksum, "")
		}
	}
	defer d.release()
	if out, ok := d.decodeInOrder(dst, body); ok {
		return out, nil
	}
	return d.decodeAnyOrder(dst, body)
}

// decodeInOrder decodes body in one pass when it has the layout every known
// encoder writes: the key tables, then the records, with table indices in
// range. It returns false, with dst as it came in, for anything else (fields
// out of that order, unknown fields, a record that does not decode against
// the tables read so far); decodeAnyOrder then decodes or rejects body, so
// both paths give the same result for every input this one accepts.
func (d *Deaggregator) decodeInOrder(dst []UserRecord, body []byte) ([]UserRecord, bool) {
	// The tables: body[:i]. keys gets the partition keys' spans, then the
	// explicit hash keys'.
	keys, ehks := d.pk[:0], d.ehk[:0]
	i := 0
	for i < len(body) {
		tag := body[i]
		if tag != tagPartitionKeyTable && tag != tagExplicitHashKeyTable {
			break
		}
		var s, e int
		if j := i + 1; j < len(body) && body[j] < 0x80 {
			s, e = j+1, j+1+int(body[j])
			if e > len(body) {
				return dst, false
			}
		} else if s, e = readBytes(body, j); e < 0 {
			return dst, false
		}
		if tag == tagPartitionKeyTable {
			keys = append(keys, span{s, e})
		} else {
			ehks = append(ehks, span{s, e})
		}
		i = e
	}
	npk := len(keys)
	keys = append(keys, ehks...)
	d.pk, d.ehk = keys, ehks
	// One string of body[:i] holds every key, and a key's span in body is
	// its span in that string. It wastes only the tags and lengths between
	// the keys.
	region := ""
	if i > 0 {
		region = string(body[:i])
	}
	filter := d.cfg.filter
	if filter {
		d.resetHashes(len(keys))
	}

	base, straddles := len(dst), false
	for sub := 0; i < len(body); sub++ {
		if !filter {
			// Runs of records in the usual layout, in a tight loop.
			if dst, i, sub = appendUsual(dst, body, i, sub, region, keys, npk); i == len(body) {
				break
			}
		}
		// One record in any layout.
		if len(body)-i < 2 || body[i] != tagRecords {
			goto bail
		}
		s, e := readBytes(body, i+1)
		if e < 0 {
			goto bail
		}
		i = e
		pki, ehki, data, tagBytes, err := parseRecord(body[s:e], npk, len(keys)-npk)
		if err != nil {
			goto bail
		}
		pk := keys[pki]
		ehk := ""
		if ehki >= 0 {
			sp := keys[npk+ehki]
			ehk = region[sp.start:sp.end]
		}
		if filter && (straddles || !d.inRange(pki, npk, ehki, region[pk.start:pk.end], ehk)) {
			straddles = true
			continue
		}
		dst = append(dst, UserRecord{
			PartitionKey:      region[pk.start:pk.end],
			ExplicitHashKey:   ehk,
			Data:              data,
			SubSequenceNumber: int64(sub),
			Aggregated:        true,
			tagBytes:          tagBytes,
		})
	}
	if straddles {
		clear(dst[base:])
		return dst[:base], true
	}
	return dst, true

bail:
	clear(dst[base:])
	return dst[:base], false
}

// appendUsual appends the records at body[i:] to dst, numbering them from
// sub, for as long as they have the layout every known encoder writes:
// 1A len 08 pk [10 ehk] 1A len data, each varint of one or two bytes, pk
// and ehk valid indices. keys holds the spans in region of the npk
// partition keys, then of the explicit hash keys. It returns the index of
// the first record it did not decode and that record's sub-sequence number.
//
// This loop is most of the cost of de-aggregating small records, so it is
// kept short: indices into body rather than sub-slices; the key index
// decoded without a branch (whether it takes one byte or two varies from
// record to record, and a mispredicted branch costs about as much as the
// rest of the record); the fields of each UserRecord set in place (a struct
// literal is built aside and copied with a bulk write barrier while the GC
// marks), and a pointer stored only where it changes (each pointer store
// goes through the write barrier while the GC marks).
func appendUsual(dst []UserRecord, body []byte, i, sub int, region string, keys []span, npk int) ([]UserRecord, int, int) {
	for len(body)-i >= 6 && body[i] == tagRecords {
		// The record's length, and the record at body[h:e].
		n, h := int(body[i+1]), i+2
		if n >= 0x80 {
			c := body[i+2]
			if c >= 0x80 {
				break
			}
			n, h = n&0x7f|int(c)<<7, i+3
		}
		e := h + n
		if n < 4 || e > len(body) || body[h] != tagPartitionKeyIndex {
			break
		}
		// The partition key index, one or two bytes.
		p1, p2 := uint(body[h+1]), uint(body[h+2])
		two := p1 >> 7
		pk, j := p1&0x7f|p2<<7&-two, h+2+int(two)
		if two&(p2>>7) != 0 || pk >= uint(npk) || j+1 >= e {
			break
		}
		// The explicit hash key index, if any, one or two bytes.
		ehk := ""
		if body[j] == tagExplicitHashKeyIndex {
			if j+3 >= e {
				break
			}
			x1, x2 := uint(body[j+1]), uint(body[j+2])
			two := x1 >> 7
			x := x1&0x7f | x2<<7&-two
			if two&(x2>>7) != 0 || x >= uint(len(keys)-npk) {
				break
			}
			sp := keys[npk+int(x)]
			ehk, j = region[sp.start:sp.end], j+2+int(two)
			if j+1 >= e {
				break
			}
		}
		if body[j] != tagData {
			break
		}
		// The data, to the end of the record.
		dl, s := int(body[j+1]), j+2
		if dl >= 0x80 {
			if s >= e || body[s] >= 0x80 {
				break
			}
			dl, s = dl&0x7f|int(body[s])<<7, s+1
		}
		if s+dl != e {
			break
		}
		key := keys[pk]
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, 1)
		}
		dst = dst[:len(dst)+1]
		u := &dst[len(dst)-1]
		u.PartitionKey = region[key.start:key.end]
		if len(ehk) != 0 || len(u.ExplicitHashKey) != 0 {
			u.ExplicitHashKey = ehk
		}
		u.Data = body[s:e:e]
		u.SubSequenceNumber = int64(sub)
		u.Aggregated = true
		i = e
		sub++
	}
	return dst, i, sub
}

// tableKeys sets d.keys to the partition keys, then the explicit hash keys,
// of d.pk and d.ehk, and prepares d.hashes when the hash-range filter is on.
// The keys share one string of body[lo:hi] when that region is not much
// larger than the keys; otherwise each key gets its own.
func (d *Deaggregator) tableKeys(body []byte, lo, hi int) []string {
	npk, nehk := len(d.pk), len(d.ehk)
	keys := slices.Grow(d.keys[:0], npk+nehk)[:npk+nehk]
	d.keys = keys
	keyBytes := 0
	for _, sp := range d.pk {
		keyBytes += sp.end - sp.start
	}
	for _, sp := range d.ehk {
		keyBytes += sp.end - sp.start
	}
	if hi > lo && hi-lo <= 2*keyBytes+16 {
		region := string(body[lo:hi])
		for k, sp := range d.pk {
			keys[k] = region[sp.start-lo : sp.end-lo]
		}
		for k, sp := range d.ehk {
			keys[npk+k] = region[sp.start-lo : sp.end-lo]
		}
	} else {
		for k, sp := range d.pk {
			keys[k] = string(body[sp.start:sp.end])
		}
		for k, sp := range d.ehk {
			keys[npk+k] = string(body[sp.start:sp.end])
		}
	}
	if d.cfg.filter {
		d.resetHashes(npk + nehk)
	}
	return keys
}

// resetHashes sizes d.hashes for n table keys, all unknown.
func (d *Deaggregator) resetHashes(n int) {
	d.hashes = slices.Grow(d.hashes[:0], n)[:n]
	clear(d.hashes)
}

// decodeAnyOrder decodes body whatever the order of its fields, in two
// passes: the first finds the key tables and the records, the second
// decodes the records. It reports every malformation.
func (d *Deaggregator) decodeAnyOrder(dst []UserRecord, body []byte) ([]UserRecord, error) {
	d.pk, d.ehk, d.recs = d.pk[:0], d.ehk[:0], d.recs[:0]
	lo, hi := len(body), 0
	for i := 0; i < len(body); {
		field, wire, j := readTag(body, i)
		if j < 0 {
			return dst, malformed(ErrProtobuf, fmt.Sprintf("bad tag at offset %d", i))
		}
		if wire != wireBytes || field > 3 {
			if i = skipField(body, j, wire); i < 0 {
				return dst, malformed(ErrProtobuf, fmt.Sprintf("bad field %d at offset %d", field, j))
			}
			continue
		}
		s, e := readBytes(body, j)
		if e < 0 {
			return dst, malformed(ErrProtobuf, fmt.Sprintf("field %d overruns at offset %d", field, i))
		}
		switch field {
		case 1:
			d.pk = append(d.pk, span{s, e})
		case 2:
			d.ehk = append(d.ehk, span{s, e})
		case 3:
			d.recs = append(d.recs, span{s, e})
		}
		if field != 3 {
			lo, hi = min(lo, s), max(hi, e)
		}
		i = e
	}
	keys := d.tableKeys(body, lo, hi)
	npk, nehk := len(d.pk), len(d.ehk)

	base, straddles := len(dst), false
	dst = slices.Grow(dst, len(d.recs))
	for n, sp := range d.recs {
		pki, ehki, data, tagBytes, err := parseRecord(body[sp.start:sp.end], npk, nehk)
		if err != nil {
			clear(dst[base:])
			return dst[:base], malformed(ErrProtobuf, fmt.Sprintf("record %d: %s", n, err))
		}
		ehk := ""
		if ehki >= 0 {
			ehk = keys[npk+ehki]
		}
		if d.cfg.filter && (straddles || !d.inRange(pki, npk, ehki, keys[pki], ehk)) {
			straddles = true
			continue
		}
		dst = append(dst, UserRecord{
			PartitionKey:      keys[pki],
			ExplicitHashKey:   ehk,
			Data:              data,
			SubSequenceNumber: int64(n),
			Aggregated:        true,
			tagBytes:          tagBytes,
		})
	}
	if straddles {
		clear(dst[base:])
		return dst[:base], nil
	}
	return dst, nil
}

// release drops references to the last input's keys.
func (d *Deaggregator) release() {
	clear(d.keys)
	d.keys = d.keys[:0]
}

// inRange reports whether the record with the given table indices and keys
// belongs to the configured shard range. A record whose explicit hash key
// does not parse is kept: delivering a suspicious record beats dropping a
// real one.
func (d *Deaggregator) inRange(pki, npk, ehki int, pk, ehk string) bool {
	idx := pki
	if ehki >= 0 {
		idx = npk + ehki
	}
	k := &d.hashes[idx]
	if k.state == 0 {
		k.state = 1
		if ehki >= 0 {
			h, err := ParseHashKey(ehk)
			if err != nil {
				k.state = 2
			}
			k.hash = h
		} else {
			k.hash = PartitionKeyHash(pk)
		}
	}
	return k.state == 2 || d.cfg.shardRange.Contains(k.hash)
}

// parseRecord decodes one Record message. ehki is -1 when the record has no
// explicit hash key index. A record's tags, tagBytes of them, are left in
// data's spare capacity (see TagsOf).
func parseRecord(b []byte, npk, nehk int) (pki, ehki int, data []byte, tagBytes uint32, err error) {
	// Fast path: the layout every known encoder writes, fields in order
	// and each once: 08 pk [10 ehk] 1A len data, with varints of one or two
	// bytes decoded in line. Anything else, including table indices out of
	// range and records with tags, is left to parseRecordSlow.
	if len(b) >= 4 && b[0] == tagPartitionKeyIndex {
		pk, i := uint64(b[1]), 2
		if pk >= 0x80 {
			if c := b[2]; c < 0x80 {
				pk, i = pk&0x7f|uint64(c)<<7, 3
			} else {
				pk, i = readVarint(b, 1)
			}
		}
		ehk, hasEHK := uint64(0), false
		if i > 0 && i+1 < len(b) && b[i] == tagExplicitHashKeyIndex {
			hasEHK = true
			if c := b[i+1]; c < 0x80 {
				ehk, i = uint64(c), i+2
			} else {
				ehk, i = readVarint(b, i+1)
			}
		}
		if i > 0 && i+1 < len(b) && b[i] == tagData {
			s, e := i+2, i+2+int(b[i+1])
			if b[i+1] >= 0x80 {
				s, e = readBytes(b, i+1)
			}
			if e == len(b) && pk < uint64(npk) && (!hasEHK || ehk < uint64(nehk)) {
				if !hasEHK {
					return int(pk), -1, b[s:e:e], 0, nil
				}
				return int(pk), int(ehk), b[s:e:e], 0, nil
			}
		}
	}
	return parseRecordSlow(b, npk, nehk)
}

func parseRecordSlow(b []byte, npk, nehk int) (pki, ehki int, data []byte, tagBytes uint32, err error) {
	var pk, ehk uint64
	var hasPK, hasEHK, hasData bool
	// tags counts the bytes of every tag field; run is where the run of tag
	// fields that ends the message begins (-1 while none), and the data is
	// b[dataStart:dataEnd].
	tags, run, dataStart, dataEnd := 0, -1, 0, 0
	for i := 0; i < len(b); {
		field, wire, j := readTag(b, i)
		if j < 0 {
			return 0, 0, nil, 0, errString("bad tag")
		}
		if field == 4 && wire == wireBytes {
			if run < 0 {
				run = i
			}
		} else {
			run = -1
		}
		switch {
		case field == 1 && wire == wireVarint:
			pk, i = readVarint(b, j)
			hasPK = true
		case field == 2 && wire == wireVarint:
			ehk, i = readVarint(b, j)
			hasEHK = true
		case field == 3 && wire == wireBytes:
			s, e := readBytes(b, j)
			if e < 0 {
				return 0, 0, nil, 0, errString("data overruns")
			}
			data = b[s:e:e]
			hasData = true
			dataStart, dataEnd = s, e
			i = e
		case field == 4 && wire == wireBytes:
			s, e := readBytes(b, j)
			if e < 0 || !validTag(b[s:e]) {
				return 0, 0, nil, 0, errString("bad tag entry")
			}
			tags += e - i
			i = e
		default:
			i = skipField(b, j, wire)
		}
		if i < 0 {
			return 0, 0, nil, 0, errString("bad field")
		}
	}
	switch {
	case !hasPK:
		return 0, 0, nil, 0, errString("missing partition_key_index")
	case !hasData:
		return 0, 0, nil, 0, errString("missing data")
	case pk >= uint64(npk):
		return 0, 0, nil, 0, errString("partition_key_index out of range")
	case hasEHK && ehk >= uint64(nehk):
		return 0, 0, nil, 0, errString("explicit_hash_key_index out of range")
	case uint64(tags) > math.MaxUint32:
		return 0, 0, nil, 0, errString("tags too large")
	}
	ehki = -1
	if hasEHK {
		ehki = int(ehk)
	}
	switch {
	case tags == 0:
	case run == dataEnd && len(b)-dataEnd == tags:
		// The layout every encoder writes: the tags right after the data.
		data = b[dataStart:dataEnd:len(b)]
	default:
		data = withTags(data, b, tags)
	}
	return int(pk), ehki, data, uint32(tags), nil
}

// withTags returns a copy of data followed, in its spare capacity, by the tag
// fields (tags bytes) of the valid Record message b, for a record whose tags do
// not lie right after its data.
func withTags(data, b []byte, tags int) []byte {
	out := make([]byte, len(data), len(data)+tags)
	copy(out, data)
	for i := 0; i < len(b); {
		field, wire, j := readTag(b, i)
		e := skipField(b, j, wire)
		if field == 4 && wire == wireBytes {
			out = append(out, b[i:e]...)
		}
		i = e
	}
	return out[:len(data)]
}

// TagsOf returns the KPL tags of a user record from its Data and TagsSize, as a
// Deaggregator returned them (the tags lie in Data's spare capacity, where they
// cost untagged records nothing); nil when size is 0 or data no longer has them
// (replaced, resliced or appended to). They are decoded on each call. It lets a
// copy of a record's Data and TagsSize, such as consumer.Record, read its tags.
func TagsOf(data []byte, size int) []Tag {
	if size <= 0 || cap(data)-len(data) != size {
		return nil
	}
	b := data[len(data):cap(data)]
	n := 0
	for i := 0; i < len(b); n++ {
		field, wire, j := readTag(b, i)
		if j < 0 || field != 4 || wire != wireBytes {
			return nil
		}
		s, e := readBytes(b, j)
		if e < 0 || !validTag(b[s:e]) {
			return nil
		}
		i = e
	}
	// One string holds every key and value.
	region := string(b)
	tags := make([]Tag, 0, n)
	for i := 0; i < len(b); {
		_, _, j := readTag(b, i)
		s, e := readBytes(b, j)
		var t Tag
		for k := s; k < e; {
			f, w, l := readTag(b, k)
			k = skipField(b, l, w)
			if w != wireBytes {
				continue
			}
			vs, ve := readBytes(b, l)
			switch f {
			case 1:
				t.Key = region[vs:ve]
			case 2:
				t.Value = region[vs:ve]
			}
		}
		tags = append(tags, t)
		i = e
	}
	return tags
}

// validTag checks a Tag message: a required key and an optional value.
func validTag(b []byte) bool {
	hasKey := false
	for i := 0; i < len(b); {
		field, wire, j := readTag(b, i)
		if j < 0 {
			return false
		}
		if field == 1 && wire == wireBytes {
			hasKey = true
		}
		if i = skipField(b, j, wire); i < 0 {
			return false
		}
	}
	return hasKey
}

type errString string

func (e errString) Error() string { return string(e) }
