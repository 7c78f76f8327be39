package aggregation

import "github.com/freshet/freshet/internal/hashkey"

// HashKey is an unsigned 128-bit Kinesis hash key. Its methods include
// String and AppendDecimal (decimal form), Cmp and Less (ordering) and Bytes
// (16 big-endian bytes).
type HashKey = hashkey.Key

// HashKeyRange is an inclusive range of hash keys, as a shard's HashKeyRange.
// Its Contains method tells whether a key belongs to the shard.
type HashKeyRange = hashkey.Range

var (
	// MaxHashKey is the largest hash key, 2^128-1.
	MaxHashKey = hashkey.Max
	// FullHashKeyRange covers every hash key, [0, 2^128-1].
	FullHashKeyRange = hashkey.FullRange
	// ErrHashKeySyntax is wrapped by errors about a hash key that is not a
	// canonical decimal integer in [0, 2^128-1].
	ErrHashKeySyntax = hashkey.ErrSyntax
)

// PartitionKeyHash returns the hash key Kinesis derives from a partition key:
// the MD5 digest of its UTF-8 bytes read as a big-endian 128-bit integer.
func PartitionKeyHash(partitionKey string) HashKey {
	return hashkey.FromPartitionKey(partitionKey)
}

// ParseHashKey reads a decimal hash key as Kinesis accepts it for an explicit
// hash key: "0", or a non-zero digit followed by digits, below 2^128.
func ParseHashKey(s string) (HashKey, error) {
	return hashkey.Parse(s)
}

// ParseHashKeyRange reads a shard's hash key range from its decimal start and
// end (the StartingHashKey and EndingHashKey strings of the Kinesis API).
func ParseHashKeyRange(start, end string) (HashKeyRange, error) {
	return hashkey.ParseRange(start, end)
}

// FormatHashKey returns the decimal form of k, as an explicit hash key.
func FormatHashKey(k HashKey) string { return k.String() }

// AppendHashKey appends the decimal form of k to dst.
func AppendHashKey(dst []byte, k HashKey) []byte { return k.AppendDecimal(dst) }
