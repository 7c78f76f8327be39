package kinesiswire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrMalformed is wrapped by every error of Reader about a body that is not well-formed
// CBOR or does not have the expected shape.
var ErrMalformed = errors.New("kinesiswire: malformed CBOR")

// maxDepth bounds the nesting Reader.Skip follows.
const maxDepth = 32

// Reader reads CBOR data items from a byte slice, definite and indefinite lengths alike
// (Kinesis may send either). It never allocates; strings it returns alias the body.
type Reader struct {
	b []byte
	i int
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Done reports whether every byte was read.
func (r *Reader) Done() bool { return r.i == len(r.b) }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Major types.
const (
	MajorUint   = 0
	MajorNegInt = 1
	MajorBytes  = 2
	MajorText   = 3
	MajorArray  = 4
	MajorMap    = 5
	MajorTag    = 6
	MajorSimple = 7
)

// Indefinite is the argument Head returns for an indefinite-length string, array or map.
const Indefinite = math.MaxUint64

// Head reads the head of the next data item: its major type and argument (a length, a
// count, a value, or Indefinite).
func (r *Reader) Head() (major byte, arg uint64, err error) {
	if r.i >= len(r.b) {
		return 0, 0, malformed("unexpected end at %d", r.i)
	}
	ib := r.b[r.i]
	r.i++
	major, ai := ib>>5, ib&0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), nil
	case ai <= 27:
		n := 1 << (ai - 24)
		if len(r.b)-r.i < n {
			return 0, 0, malformed("truncated head at %d", r.i-1)
		}
		switch n {
		case 1:
			arg = uint64(r.b[r.i])
		case 2:
			arg = uint64(binary.BigEndian.Uint16(r.b[r.i:]))
		case 4:
			arg = uint64(binary.BigEndian.Uint32(r.b[r.i:]))
		default:
			arg = binary.BigEndian.Uint64(r.b[r.i:])
		}
		r.i += n
		return major, arg, nil
	case ai == 31 && (major >= MajorBytes && major <= MajorMap || major == MajorSimple):
		return major, Indefinite, nil
	}
	return 0, 0, malformed("reserved additional information %d at %d", ai, r.i-1)
}

// untag consumes the tags in front of the next item (Reader reads items whatever
// their tags).
func (r *Reader) untag() error {
	for r.i < len(r.b) && r.b[r.i]>>5 == MajorTag {
		if _, _, err := r.Head(); err != nil {
			return err
		}
	}
	return nil
}

// IsBreak reports, without consuming anything else, whether the next byte is the break
// that ends an indefinite-length item, and consumes it if so.
func (r *Reader) IsBreak() bool {
	if r.i < len(r.b) && r.b[r.i] == 0xff {
		r.i++
		return true
	}
	return false
}

// IsNull reports whether the next item is null or undefined, and consumes it if so.
func (r *Reader) IsNull() bool {
	save := r.i
	if r.untag() != nil {
		r.i = save
		return false
	}
	if r.i < len(r.b) && (r.b[r.i] == 0xf6 || r.b[r.i] == 0xf7) {
		r.i++
		return true
	}
	r.i = save
	return false
}

// take returns the next n bytes.
func (r *Reader) take(arg uint64) ([]byte, error) {
	if arg > uint64(len(r.b)-r.i) {
		return nil, malformed("string of %d bytes past the end at %d", arg, r.i)
	}
	s := r.b[r.i : r.i+int(arg)]
	r.i += int(arg)
	return s, nil
}

// Text reads a text string. A definite one aliases the body; an indefinite one is
// joined into scratch (which it may grow) and the result aliases scratch.
func (r *Reader) Text(scratch *[]byte) ([]byte, error) {
	if err := r.untag(); err != nil {
		return nil, err
	}
	major, arg, err := r.Head()
	if err != nil {
		return nil, err
	}
	if major != MajorText {
		return nil, malformed("major type %d where a text string was expected", major)
	}
	if arg != Indefinite {
		return r.take(arg)
	}
	out := (*scratch)[:0]
	for !r.IsBreak() {
		m, n, err := r.Head()
		if err != nil {
			return nil, err
		}
		if m != MajorText || n == Indefinite {
			return nil, malformed("bad chunk of an indefinite text string")
		}
		c, err := r.take(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	*scratch = out
	return out, nil
}

// Key reads a map key: a text key is returned; any other key is skipped with its value,
// and ok is false.
func (r *Reader) Key(scratch *[]byte) (key []byte, ok bool, err error) {
	if err := r.untag(); err != nil {
		return nil, false, err
	}
	if r.i < len(r.b) && r.b[r.i]>>5 != MajorText {
		if err := r.Skip(); err != nil {
			return nil, false, err
		}
		return nil, false, r.Skip()
	}
	key, err = r.Text(scratch)
	return key, err == nil, err
}

// Int reads an integer (major type 0 or 1) that fits in an int64.
func (r *Reader) Int() (int64, error) {
	if err := r.untag(); err != nil {
		return 0, err
	}
	major, arg, err := r.Head()
	if err != nil {
		return 0, err
	}
	switch {
	case major == MajorUint && arg <= math.MaxInt64:
		return int64(arg), nil
	case major == MajorNegInt && arg <= math.MaxInt64:
		return -1 - int64(arg), nil
	}
	return 0, malformed("major type %d (%d) where an integer was expected", major, arg)
}

// Skip reads past the next data item, whatever it is.
func (r *Reader) Skip() error { return r.skip(0) }

func (r *Reader) skip(depth int) error {
	if depth > maxDepth {
		return malformed("nested deeper than %d", maxDepth)
	}
	major, arg, err := r.Head()
	if err != nil {
		return err
	}
	switch major {
	case MajorUint, MajorNegInt:
		return nil
	case MajorBytes, MajorText:
		if arg != Indefinite {
			_, err := r.take(arg)
			return err
		}
		for !r.IsBreak() {
			m, n, err := r.Head()
			if err != nil {
				return err
			}
			if m != major || n == Indefinite {
				return malformed("bad chunk of an indefinite string")
			}
			if _, err := r.take(n); err != nil {
				return err
			}
		}
		return nil
	case MajorArray, MajorMap:
		per := 1
		if major == MajorMap {
			per = 2
		}
		if arg == Indefinite {
			for !r.IsBreak() {
				for j := 0; j < per; j++ {
					if err := r.skip(depth + 1); err != nil {
						return err
					}
				}
			}
			return nil
		}
		// Each item takes at least one byte: a count beyond what is left is malformed.
		if arg > uint64(len(r.b)-r.i) {
			return malformed("%d items past the end at %d", arg, r.i)
		}
		for k := uint64(0); k < arg*uint64(per); k++ {
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case MajorTag:
		return r.skip(depth + 1)
	default: // simple values and floats: the head carried them whole
		if arg == Indefinite {
			return malformed("break outside an indefinite item at %d", r.i-1)
		}
		return nil
	}
}

// Items iterates over the items (or key-value pairs) of an array or map; see Container.
type Items struct {
	left  int
	indef bool
}

// Count is the number of items announced, or -1 for an indefinite container.
func (it *Items) Count() int {
	if it.indef {
		return -1
	}
	return it.left
}

// Container reads the head of an array (major MajorArray) or map (MajorMap); Next then
// reports whether another item (or key-value pair) follows.
func (r *Reader) Container(want byte) (Items, error) {
	if err := r.untag(); err != nil {
		return Items{}, err
	}
	major, arg, err := r.Head()
	if err != nil {
		return Items{}, err
	}
	if major != want {
		return Items{}, malformed("major type %d where %d was expected", major, want)
	}
	if arg == Indefinite {
		return Items{indef: true}, nil
	}
	if arg > uint64(len(r.b)-r.i) {
		return Items{}, malformed("%d items past the end at %d", arg, r.i)
	}
	return Items{left: int(arg)}, nil
}

// Next reports whether another item of it follows, consuming the break that ends an
// indefinite container. At the end of the body it reports another item of an
// indefinite container, whose read then fails.
func (r *Reader) Next(it *Items) bool {
	if it.indef {
		return !r.IsBreak()
	}
	if it.left == 0 {
		return false
	}
	it.left--
	return true
}

// Bytes reads a byte string. A definite one aliases the body (capacity capped at its
// length, so appending to it never writes into the body); an indefinite one is joined
// into a new slice.
func (r *Reader) Bytes() ([]byte, error) {
	if err := r.untag(); err != nil {
		return nil, err
	}
	major, arg, err := r.Head()
	if err != nil {
		return nil, err
	}
	if major != MajorBytes {
		return nil, malformed("major type %d where a byte string was expected", major)
	}
	if arg != Indefinite {
		b, err := r.take(arg)
		return b[:len(b):len(b)], err
	}
	out := []byte{}
	for !r.IsBreak() {
		m, n, err := r.Head()
		if err != nil {
			return nil, err
		}
		if m != MajorBytes || n == Indefinite {
			return nil, malformed("bad chunk of an indefinite byte string")
		}
		c, err := r.take(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}

// Float reads a number, integer or floating-point (half, single or double), whatever
// its tags (an epoch time under tag 1 reads as its number).
func (r *Reader) Float() (float64, error) {
	if err := r.untag(); err != nil {
		return 0, err
	}
	if r.i >= len(r.b) {
		return 0, malformed("unexpected end at %d", r.i)
	}
	ai := r.b[r.i] & 0x1f
	major, arg, err := r.Head()
	if err != nil {
		return 0, err
	}
	switch {
	case major == MajorUint:
		return float64(arg), nil
	case major == MajorNegInt:
		return -1 - float64(arg), nil
	case major == MajorSimple && ai == 25:
		return float64(halfToFloat(uint16(arg))), nil
	case major == MajorSimple && ai == 26:
		return float64(math.Float32frombits(uint32(arg))), nil
	case major == MajorSimple && ai == 27:
		return math.Float64frombits(arg), nil
	}
	return 0, malformed("major type %d where a number was expected", major)
}

// halfToFloat converts an IEEE 754 half-precision value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h & 0x3ff)
	switch exp {
	case 0: // zero or subnormal: frac * 2^-24
		v := float32(frac) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	case 31:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}
