// Package hashkey implements Kinesis hash keys: unsigned 128-bit integers that decide which
// shard a record belongs to.
//
// A record's hash key is its explicit hash key when it has one, otherwise the MD5 digest of
// its partition key read as a big-endian integer. Each open shard owns one inclusive range
// of [0, 2^128-1]. The producer predicts shards with these functions, the engine routes
// records with them, and the consumer filters de-aggregated records by shard range.
package hashkey

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"math/big"
	"math/bits"
)

// Key is an unsigned 128-bit hash key.
type Key struct {
	Hi, Lo uint64
}

// Max is the largest hash key, 2^128-1.
var Max = Key{Hi: ^uint64(0), Lo: ^uint64(0)}

// ErrSyntax reports a hash key that is not a decimal integer in [0, 2^128-1] written
// without sign or leading zeros.
var ErrSyntax = errors.New("hashkey: not a decimal integer in [0, 2^128-1]")

// FromPartitionKey returns the MD5 digest of the partition key's UTF-8 bytes as a
// big-endian 128-bit integer, as Kinesis computes it.
func FromPartitionKey(partitionKey string) Key {
	sum := md5.Sum([]byte(partitionKey))
	return FromBytes(sum)
}

// FromBytes reads 16 big-endian bytes as a key.
func FromBytes(b [16]byte) Key {
	return Key{Hi: binary.BigEndian.Uint64(b[:8]), Lo: binary.BigEndian.Uint64(b[8:])}
}

// Bytes returns the key as 16 big-endian bytes.
func (k Key) Bytes() [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.Hi)
	binary.BigEndian.PutUint64(b[8:], k.Lo)
	return b
}

// Parse reads a decimal hash key. It accepts exactly what Kinesis accepts for an explicit
// hash key: "0", or a digit 1-9 followed by at most 38 digits, with a value below 2^128.
func Parse(s string) (Key, error) {
	if len(s) == 0 || len(s) > 39 || (len(s) > 1 && s[0] == '0') {
		return Key{}, ErrSyntax
	}
	var k Key
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return Key{}, ErrSyntax
		}
		hi, lo := bits.Mul64(k.Lo, 10)
		hiHi, hiLo := bits.Mul64(k.Hi, 10)
		if hiHi != 0 {
			return Key{}, ErrSyntax
		}
		hi, carry := bits.Add64(hi, hiLo, 0)
		if carry != 0 {
			return Key{}, ErrSyntax
		}
		lo, carry = bits.Add64(lo, uint64(c-'0'), 0)
		hi, carry = bits.Add64(hi, 0, carry)
		if carry != 0 {
			return Key{}, ErrSyntax
		}
		k = Key{Hi: hi, Lo: lo}
	}
	return k, nil
}

// MustParse is Parse for constants known to be valid; it panics on a bad key.
func MustParse(s string) Key {
	k, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return k
}

const pow19 = 10_000_000_000_000_000_000

// String formats the key in decimal.
func (k Key) String() string {
	var buf [39]byte
	return string(k.AppendDecimal(buf[:0]))
}

// AppendDecimal appends the decimal form of k to dst without allocating beyond dst.
func (k Key) AppendDecimal(dst []byte) []byte {
	if k.Hi == 0 {
		return appendUint(dst, k.Lo, 0)
	}
	// Split k into three base-10^19 digits: k = top*10^38 + mid*10^19 + low.
	q1, r1 := bits.Div64(k.Hi%pow19, k.Lo, pow19)
	q1hi := k.Hi / pow19
	// (q1hi, q1) is k / 10^19 as a 128-bit value; r1 is the lowest 19 digits.
	var top, mid uint64
	if q1hi == 0 {
		top, mid = q1/pow19, q1%pow19
	} else {
		var r uint64
		top, r = bits.Div64(q1hi, q1, pow19)
		mid = r
	}
	if top != 0 {
		dst = appendUint(dst, top, 0)
		dst = appendUint(dst, mid, 19)
	} else {
		dst = appendUint(dst, mid, 0)
	}
	return appendUint(dst, r1, 19)
}

func appendUint(dst []byte, v uint64, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 10 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	i--
	buf[i] = byte('0' + v)
	for len(buf)-i < width {
		i--
		buf[i] = '0'
	}
	return append(dst, buf[i:]...)
}

// Cmp returns -1, 0 or +1 as k is less than, equal to or greater than o.
func (k Key) Cmp(o Key) int {
	switch {
	case k.Hi < o.Hi:
		return -1
	case k.Hi > o.Hi:
		return 1
	case k.Lo < o.Lo:
		return -1
	case k.Lo > o.Lo:
		return 1
	}
	return 0
}

// Less reports whether k < o.
func (k Key) Less(o Key) bool { return k.Cmp(o) < 0 }

// Add1 returns k+1, wrapping at Max.
func (k Key) Add1() Key {
	lo, c := bits.Add64(k.Lo, 1, 0)
	return Key{Hi: k.Hi + c, Lo: lo}
}

// Sub1 returns k-1, wrapping at zero.
func (k Key) Sub1() Key {
	lo, b := bits.Sub64(k.Lo, 1, 0)
	return Key{Hi: k.Hi - b, Lo: lo}
}

// Big returns k as a big.Int.
func (k Key) Big() *big.Int {
	b := k.Bytes()
	return new(big.Int).SetBytes(b[:])
}

// FromBig converts a big.Int in [0, 2^128-1] to a key; ok is false outside that range.
func FromBig(v *big.Int) (k Key, ok bool) {
	if v.Sign() < 0 || v.BitLen() > 128 {
		return Key{}, false
	}
	var b [16]byte
	v.FillBytes(b[:])
	return FromBytes(b), true
}

// Range is an inclusive range of hash keys, as a shard's HashKeyRange.
type Range struct {
	Start, End Key
}

// FullRange covers every hash key.
var FullRange = Range{Start: Key{}, End: Max}

// Contains reports whether k lies in r.
func (r Range) Contains(k Key) bool { return r.Start.Cmp(k) <= 0 && k.Cmp(r.End) <= 0 }

// Valid reports whether the range is non-empty.
func (r Range) Valid() bool { return r.Start.Cmp(r.End) <= 0 }

// ParseRange reads a range from its decimal start and end.
func ParseRange(start, end string) (Range, error) {
	s, err := Parse(start)
	if err != nil {
		return Range{}, err
	}
	e, err := Parse(end)
	if err != nil {
		return Range{}, err
	}
	r := Range{Start: s, End: e}
	if !r.Valid() {
		return Range{}, ErrSyntax
	}
	return r, nil
}

// Uniform divides the whole key space into n contiguous ranges of equal size (the last
// absorbs the remainder), the layout Kinesis gives a new provisioned stream.
func Uniform(n int) []Range {
	if n <= 0 {
		return nil
	}
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(space, big.NewInt(int64(n)))
	out := make([]Range, n)
	start := new(big.Int)
	for i := 0; i < n; i++ {
		end := new(big.Int).Add(start, step)
		end.Sub(end, big.NewInt(1))
		if i == n-1 {
			end = Max.Big()
		}
		s, _ := FromBig(start)
		e, _ := FromBig(end)
		out[i] = Range{Start: s, End: e}
		start = new(big.Int).Add(end, big.NewInt(1))
	}
	return out
}

// Midpoint returns floor((r.Start + r.End) / 2), the key at which Kinesis-style tooling
// splits a shard in half.
func (r Range) Midpoint() Key {
	sum := new(big.Int).Add(r.Start.Big(), r.End.Big())
	sum.Rsh(sum, 1)
	k, _ := FromBig(sum)
	return k
}
