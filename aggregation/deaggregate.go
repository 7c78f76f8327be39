package aggregation

import (
	"bytes"
	"crypto/md5"
	"fmt"
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
}

func defaultDeaggregatorConfig() deaggregatorConfig {
	return deaggregatorConfig{verify: true, maxDecompressed: DefaultMaxDecompressedSize}
}

// WithShardHashKeyRange makes de-aggregation drop the user records of an
// aggregate whose effective hash key (explicit hash key, or MD5 of the
// partition key) lies outside r, the hash key range of the shard the
// aggregate was read from. Plain records are never dropped. The surviving
// records keep their original sub-sequence numbers.
//
// The Java KCL always does this, because the KPL, when it learns that an
// aggregate landed on a shard other than the one it predicted (its shard map
// was stale during a reshard), puts the affected user records again; the copies
// in the wrong shard are then duplicates. Freshet does not filter by default:
// producers that do not re-put (aws-kinesis-agg, or any producer that
// aggregates without shard prediction) would lose records to the filter.
// Enable it when every producer of the stream re-puts misrouted user records.
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
	cfg  deaggregatorConfig
	pk   []span
	ehk  []span
	recs []span
	keys []keyEntry
}

type span struct{ start, end int }

type keyEntry struct {
	s     string
	hash  HashKey
	state uint8 // 0 unknown, 1 hashed, 2 not parsable
	isEHK bool
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
	data := r.Data
	var err error
	switch {
	case hasPrefix(data, Magic[:]):
		n := len(dst)
		dst, err = d.appendKPL(dst, data)
		if err != nil {
			clear(dst[n:])
			dst = dst[:n]
		}
	case hasPrefix(data, CompressedMagic[:]):
		n := len(dst)
		var inner []byte
		inner, err = d.decompress(data)
		if err == nil {
			if !hasPrefix(inner, Magic[:]) {
				err = malformed(ErrFraming, "decompressed payload is not a KPL aggregate")
			} else {
				dst, err = d.appendKPL(dst, inner)
			}
		}
		if err != nil {
			clear(dst[n:])
			dst = dst[:n]
		}
	default:
		return append(dst, plain(r)), nil
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

// appendKPL decodes a KPL aggregate b (magic, body, MD5) into dst. On error
// dst may hold partial records past its original length; the caller trims.
func (d *Deaggregator) appendKPL(dst []UserRecord, b []byte) ([]UserRecord, error) {
	if len(b) < overhead {
		return dst, malformed(ErrTooShort, "")
	}
	body := b[len(Magic) : len(b)-md5.Size]
	if d.cfg.verify {
		sum := md5.Sum(body)
		if !bytes.Equal(sum[:], b[len(b)-md5.Size:]) {
			return dst, malformed(ErrChecksum, "")
		}
	}
	defer d.release()

	// Pass 1: find the key tables and the records. A well-formed aggregate
	// puts the tables first, but protobuf allows fields in any order.
	d.pk, d.ehk, d.recs = d.pk[:0], d.ehk[:0], d.recs[:0]
	lo, hi, keyBytes := len(body), 0, 0
	for i := 0; i < len(body); {
		var field uint64
		var wire byte
		j := i + 1
		switch body[i] {
		case tagRecords:
			field, wire = 3, wireBytes
		case tagPartitionKeyTable:
			field, wire = 1, wireBytes
		case tagExplicitHashKeyTable:
			field, wire = 2, wireBytes
		default:
			if field, wire, j = readTag(body, i); j < 0 {
				return dst, malformed(ErrProtobuf, fmt.Sprintf("bad tag at offset %d", i))
			}
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
			lo, hi, keyBytes = min(lo, s), max(hi, e), keyBytes+e-s
		}
		i = e
	}

	// One string holds every key when the tables are contiguous, as they
	// always are in practice; otherwise each key gets its own.
	d.keys = d.keys[:0]
	var region string
	contiguous := hi > lo && hi-lo <= 2*keyBytes+16
	if contiguous {
		region = string(body[lo:hi])
	}
	for _, sp := range d.pk {
		d.keys = append(d.keys, keyEntry{s: d.key(body, region, lo, contiguous, sp)})
	}
	for _, sp := range d.ehk {
		d.keys = append(d.keys, keyEntry{s: d.key(body, region, lo, contiguous, sp), isEHK: true})
	}
	npk := len(d.pk)
	nehk := len(d.ehk)

	// Pass 2: the records, in order.
	dst = slices.Grow(dst, len(d.recs))
	for n, sp := range d.recs {
		pki, ehki, data, err := parseRecord(body[sp.start:sp.end], npk, nehk)
		if err != nil {
			return dst, malformed(ErrProtobuf, fmt.Sprintf("record %d: %s", n, err))
		}
		if d.cfg.filter && !d.inRange(pki, npk, ehki) {
			continue
		}
		ur := UserRecord{
			PartitionKey:      d.keys[pki].s,
			Data:              data,
			SubSequenceNumber: int64(n),
			Aggregated:        true,
		}
		if ehki >= 0 {
			ur.ExplicitHashKey = d.keys[npk+ehki].s
		}
		dst = append(dst, ur)
	}
	return dst, nil
}

func (d *Deaggregator) key(body []byte, region string, lo int, contiguous bool, sp span) string {
	if contiguous {
		return region[sp.start-lo : sp.end-lo]
	}
	return string(body[sp.start:sp.end])
}

// release drops references to the last input's keys.
func (d *Deaggregator) release() {
	clear(d.keys)
	d.keys = d.keys[:0]
}

// inRange reports whether the record with the given table indices belongs to
// the configured shard range. A record whose explicit hash key does not parse
// is kept: delivering a suspicious record beats dropping a real one.
func (d *Deaggregator) inRange(pki, npk, ehki int) bool {
	idx := pki
	if ehki >= 0 {
		idx = npk + ehki
	}
	k := &d.keys[idx]
	if k.state == 0 {
		k.state = 1
		if k.isEHK {
			h, err := ParseHashKey(k.s)
			if err != nil {
				k.state = 2
			}
			k.hash = h
		} else {
			k.hash = PartitionKeyHash(k.s)
		}
	}
	return k.state == 2 || d.cfg.shardRange.Contains(k.hash)
}

// parseRecord decodes one Record message. ehki is -1 when the record has no
// explicit hash key index.
func parseRecord(b []byte, npk, nehk int) (pki, ehki int, data []byte, err error) {
	// Fast path: the layout every known encoder writes, fields in order
	// and each once: 08 pk [10 ehk] 1A len data.
	if len(b) >= 4 && b[0] == tagPartitionKeyIndex {
		pk, i := readVarint(b, 1)
		ehk := uint64(1<<64 - 1)
		if i > 0 && i < len(b) && b[i] == tagExplicitHashKeyIndex {
			ehk, i = readVarint(b, i+1)
		}
		if i > 0 && i < len(b) && b[i] == tagData {
			if s, e := readBytes(b, i+1); e == len(b) && pk < uint64(npk) && (ehk == 1<<64-1 || ehk < uint64(nehk)) {
				if ehk == 1<<64-1 {
					return int(pk), -1, b[s:e:e], nil
				}
				return int(pk), int(ehk), b[s:e:e], nil
			}
		}
	}
	return parseRecordSlow(b, npk, nehk)
}

func parseRecordSlow(b []byte, npk, nehk int) (pki, ehki int, data []byte, err error) {
	var pk, ehk uint64
	var hasPK, hasEHK, hasData bool
	for i := 0; i < len(b); {
		field, wire, j := readTag(b, i)
		if j < 0 {
			return 0, 0, nil, errString("bad tag")
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
				return 0, 0, nil, errString("data overruns")
			}
			data = b[s:e:e]
			hasData = true
			i = e
		case field == 4 && wire == wireBytes:
			s, e := readBytes(b, j)
			if e < 0 || !validTag(b[s:e]) {
				return 0, 0, nil, errString("bad tag entry")
			}
			i = e
		default:
			i = skipField(b, j, wire)
		}
		if i < 0 {
			return 0, 0, nil, errString("bad field")
		}
	}
	switch {
	case !hasPK:
		return 0, 0, nil, errString("missing partition_key_index")
	case !hasData:
		return 0, 0, nil, errString("missing data")
	case pk >= uint64(npk):
		return 0, 0, nil, errString("partition_key_index out of range")
	case hasEHK && ehk >= uint64(nehk):
		return 0, 0, nil, errString("explicit_hash_key_index out of range")
	}
	ehki = -1
	if hasEHK {
		ehki = int(ehk)
	}
	return int(pk), ehki, data, nil
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
