package aggregation

import "math/bits"

// Protobuf wire constants of the KPL AggregatedRecord message. Tags are
// (field number << 3) | wire type, and every tag used here fits one byte.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireStart   = 3
	wireEnd     = 4
	wireFixed32 = 5

	tagPartitionKeyTable    = 1<<3 | wireBytes  // AggregatedRecord.partition_key_table
	tagExplicitHashKeyTable = 2<<3 | wireBytes  // AggregatedRecord.explicit_hash_key_table
	tagRecords              = 3<<3 | wireBytes  // AggregatedRecord.records
	tagPartitionKeyIndex    = 1<<3 | wireVarint // Record.partition_key_index
	tagExplicitHashKeyIndex = 2<<3 | wireVarint // Record.explicit_hash_key_index
	tagData                 = 3<<3 | wireBytes  // Record.data
	tagTags                 = 4<<3 | wireBytes  // Record.tags
	tagTagKey               = 1<<3 | wireBytes  // Tag.key
	tagTagValue             = 2<<3 | wireBytes  // Tag.value
)

// varintSize returns the number of bytes of v as a protobuf varint.
func varintSize(v uint64) int {
	// (bits*9 + 64) / 64 == ceil(bits/7) for bits in 1..64, and 1 for 0.
	return (bits.Len64(v|1)*9 + 64) / 64
}

// appendVarint appends v as a protobuf varint.
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// bytesFieldSize is the encoded size of a length-delimited field with a
// one-byte tag and n bytes of content.
func bytesFieldSize(n int) int {
	return 1 + varintSize(uint64(n)) + n
}

// readVarint decodes a varint at b[i:]. It returns the value and the index
// after it, or n < 0 when the varint is truncated or longer than 10 bytes.
// The one-byte case is inlined at call sites.
func readVarint(b []byte, i int) (v uint64, n int) {
	if uint(i) < uint(len(b)) && b[i] < 0x80 {
		return uint64(b[i]), i + 1
	}
	return readVarintSlow(b, i)
}

// readVarintSlow is kept out of line so that readVarint inlines.
//
//go:noinline
func readVarintSlow(b []byte, i int) (v uint64, n int) {
	if i < 0 {
		return 0, -1
	}
	var shift uint
	for j := 0; j < 10; j++ {
		if i >= len(b) {
			return 0, -1
		}
		c := b[i]
		i++
		if j == 9 && c > 1 {
			return 0, -1
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i
		}
		shift += 7
	}
	return 0, -1
}

// readBytes decodes a length prefix at b[i:] and returns the field's content
// bounds [start, end), or end < 0 when it overruns b.
func readBytes(b []byte, i int) (start, end int) {
	n, i := readVarint(b, i)
	if i < 0 || n > uint64(len(b)-i) {
		return 0, -1
	}
	return i, i + int(n)
}

// skipField skips the value of a field of the given wire type at b[i:] and
// returns the index after it, or -1 when it is malformed. Groups are not
// accepted: the KPL schema has none.
func skipField(b []byte, i int, wire byte) int {
	switch wire {
	case wireVarint:
		_, i = readVarint(b, i)
		return i
	case wireFixed64:
		if len(b)-i < 8 {
			return -1
		}
		return i + 8
	case wireBytes:
		_, end := readBytes(b, i)
		return end
	case wireFixed32:
		if len(b)-i < 4 {
			return -1
		}
		return i + 4
	}
	return -1
}

// readTag decodes a field tag at b[i:]. It returns the field number, wire type
// and the index after the tag, or n < 0 when it is malformed.
func readTag(b []byte, i int) (field uint64, wire byte, n int) {
	v, n := readVarint(b, i)
	if n < 0 || v>>3 == 0 || v>>3 > 1<<29-1 {
		return 0, 0, -1
	}
	return v >> 3, byte(v & 7), n
}
