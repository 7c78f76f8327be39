package tables

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/freshet/freshet/internal/kinesiswire"
)

// Type is a DynamoDB attribute type.
type Type uint8

// The attribute types, named as on the wire.
const (
	TypeInvalid Type = iota
	TypeS
	TypeN
	TypeB
	TypeBOOL
	TypeNULL
	TypeL
	TypeM
	TypeSS
	TypeNS
	TypeBS
)

var typeNames = [...]string{"", "S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"}

// String returns the wire name of t ("S", "NS", ...).
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "?"
}

func typeFromName(s string) Type {
	for i, n := range typeNames {
		if n == s && i != 0 {
			return Type(i)
		}
	}
	return TypeInvalid
}

// Value is one attribute value. Values held by the store are never modified in place:
// writes build new values, so readers may share them without locks.
type Value struct {
	// T is the value's type.
	T Type
	// S holds an S value, an N value in canonical text, or a B value's raw bytes.
	S string
	// Bool holds a BOOL value (NULL values are always true on the wire).
	Bool bool
	// L holds an L value.
	L []Value
	// M holds an M value.
	M map[string]Value
	// Set holds SS and NS members (NS in canonical text) and BS members as raw bytes.
	Set []string
}

// Item is a DynamoDB item: attribute names to values.
type Item map[string]Value

func (v Value) isScalarKeyType() bool { return v.T == TypeS || v.T == TypeN || v.T == TypeB }

// equalValues reports whether a and b are equal as DynamoDB compares them (sets ignore
// order, numbers compare by value since they are held canonically).
func equalValues(a, b Value) bool {
	if a.T != b.T {
		return false
	}
	switch a.T {
	case TypeS, TypeN, TypeB:
		return a.S == b.S
	case TypeBOOL:
		return a.Bool == b.Bool
	case TypeNULL:
		return true
	case TypeL:
		if len(a.L) != len(b.L) {
			return false
		}
		for i := range a.L {
			if !equalValues(a.L[i], b.L[i]) {
				return false
			}
		}
		return true
	case TypeM:
		if len(a.M) != len(b.M) {
			return false
		}
		for k, av := range a.M {
			bv, ok := b.M[k]
			if !ok || !equalValues(av, bv) {
				return false
			}
		}
		return true
	case TypeSS, TypeNS, TypeBS:
		if len(a.Set) != len(b.Set) {
			return false
		}
		for _, m := range a.Set {
			if !setHas(b.Set, m) {
				return false
			}
		}
		return true
	}
	return false
}

func setHas(set []string, m string) bool {
	for _, s := range set {
		if s == m {
			return true
		}
	}
	return false
}

// compareScalars orders two values of the same scalar type (S, N or B). ok is false when
// the values cannot be ordered.
func compareScalars(a, b Value) (c int, ok bool) {
	if a.T != b.T {
		return 0, false
	}
	switch a.T {
	case TypeS, TypeB:
		return bytesCompare(a.S, b.S), true
	case TypeN:
		da, err1 := parseNumber(a.S)
		db, err2 := parseNumber(b.S)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return cmpDecimal(da, db), true
	}
	return 0, false
}

func bytesCompare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// size returns the value's size as DynamoDB bills it (approximately: names, values and
// a small per-container overhead).
func (v Value) size() int {
	switch v.T {
	case TypeS, TypeB:
		return len(v.S)
	case TypeN:
		return (len(v.S)+1)/2 + 1
	case TypeBOOL, TypeNULL:
		return 1
	case TypeL:
		n := 3
		for _, e := range v.L {
			n += e.size() + 1
		}
		return n
	case TypeM:
		n := 3
		for k, e := range v.M {
			n += len(k) + e.size() + 1
		}
		return n
	case TypeSS, TypeBS:
		n := 0
		for _, m := range v.Set {
			n += len(m)
		}
		return n
	case TypeNS:
		n := 0
		for _, m := range v.Set {
			n += (len(m)+1)/2 + 1
		}
		return n
	}
	return 0
}

func itemSize(it Item) int {
	n := 0
	for k, v := range it {
		n += len(k) + v.size()
	}
	return n
}

// wireValue is the JSON shape of an AttributeValue.
type wireValue struct {
	S    *string           `json:"S"`
	N    *string           `json:"N"`
	B    *string           `json:"B"`
	BOOL *bool             `json:"BOOL"`
	NULL *bool             `json:"NULL"`
	L    *[]Value          `json:"L"`
	M    *map[string]Value `json:"M"`
	SS   *[]string         `json:"SS"`
	NS   *[]string         `json:"NS"`
	BS   *[]string         `json:"BS"`
}

// UnmarshalJSON decodes and validates a DynamoDB JSON AttributeValue.
func (v *Value) UnmarshalJSON(b []byte) error {
	if t, str, ok := compactScalar(b); ok {
		if t == TypeN {
			c, err := canonicalNumber(str)
			if err != nil {
				return err
			}
			str = c
		}
		*v = Value{T: t, S: str}
		return nil
	}
	return v.unmarshalWire(b)
}

// compactScalar reads the compact forms {"S":"..."} and {"N":"..."} of a value whose
// text has no escapes and is valid UTF-8, as SDKs send most values, without a second
// JSON decoding; ok is false for every other form, which unmarshalWire reads.
func compactScalar(b []byte) (t Type, s string, ok bool) {
	const head = len(`{"S":"`)
	if len(b) < head+2 || string(b[:2]) != `{"` || string(b[3:head]) != `":"` || string(b[len(b)-2:]) != `"}` {
		return 0, "", false
	}
	switch b[2] {
	case 'S':
		t = TypeS
	case 'N':
		t = TypeN
	default:
		return 0, "", false
	}
	text := b[head : len(b)-2]
	for _, c := range text {
		if c == '"' || c == '\\' || c < 0x20 {
			return 0, "", false
		}
	}
	if !utf8.Valid(text) {
		return 0, "", false
	}
	return t, string(text), true
}

// unmarshalWire reads any form of a value through its wire struct.
func (v *Value) unmarshalWire(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return validationf("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
	}
	var w wireValue
	if err := json.Unmarshal(b, &w); err != nil {
		if ve, ok := asValidation(err); ok {
			return ve
		}
		return serializationf("Unexpected value type in payload")
	}
	n := 0
	for _, set := range []bool{w.S != nil, w.N != nil, w.B != nil, w.BOOL != nil, w.NULL != nil, w.L != nil, w.M != nil, w.SS != nil, w.NS != nil, w.BS != nil} {
		if set {
			n++
		}
	}
	if n == 0 {
		return validationf("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
	}
	if n > 1 {
		return validationf("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes")
	}
	*v = Value{}
	switch {
	case w.S != nil:
		v.T, v.S = TypeS, *w.S
	case w.N != nil:
		c, err := canonicalNumber(*w.N)
		if err != nil {
			return err
		}
		v.T, v.S = TypeN, c
	case w.B != nil:
		raw, err := base64.StdEncoding.DecodeString(*w.B)
		if err != nil {
			return serializationf("Base64 encoded length is expected a multiple of 4 bytes but found: %d", len(*w.B))
		}
		v.T, v.S = TypeB, string(raw)
	case w.BOOL != nil:
		v.T, v.Bool = TypeBOOL, *w.BOOL
	case w.NULL != nil:
		if !*w.NULL {
			return validationf("One or more parameter values were invalid: Null attribute value types must have the value of true")
		}
		v.T, v.Bool = TypeNULL, true
	case w.L != nil:
		v.T, v.L = TypeL, *w.L
		if v.L == nil {
			v.L = []Value{}
		}
	case w.M != nil:
		v.T, v.M = TypeM, *w.M
		if v.M == nil {
			v.M = map[string]Value{}
		}
	case w.SS != nil:
		v.T, v.Set = TypeSS, *w.SS
	case w.NS != nil:
		v.T = TypeNS
		v.Set = make([]string, len(*w.NS))
		for i, s := range *w.NS {
			c, err := canonicalNumber(s)
			if err != nil {
				return err
			}
			v.Set[i] = c
		}
	case w.BS != nil:
		v.T = TypeBS
		v.Set = make([]string, len(*w.BS))
		for i, s := range *w.BS {
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return serializationf("Base64 encoded length is expected a multiple of 4 bytes but found: %d", len(s))
			}
			v.Set[i] = string(raw)
		}
	}
	if v.T == TypeSS || v.T == TypeNS || v.T == TypeBS {
		if len(v.Set) == 0 {
			return validationf("One or more parameter values were invalid: An %s may not be empty", setTypeWords(v.T))
		}
		seen := make(map[string]struct{}, len(v.Set))
		for _, m := range v.Set {
			if _, dup := seen[m]; dup {
				return validationf("One or more parameter values were invalid: Input collection contains duplicates")
			}
			seen[m] = struct{}{}
		}
	}
	return nil
}

func setTypeWords(t Type) string {
	switch t {
	case TypeSS:
		return "string set "
	case TypeNS:
		return "number set "
	}
	return "binary set "
}

// MarshalJSON encodes v as a DynamoDB JSON AttributeValue.
func (v Value) MarshalJSON() ([]byte, error) { return appendValue(nil, v), nil }

// MarshalJSON encodes it as a DynamoDB JSON attribute map, keys sorted.
func (it Item) MarshalJSON() ([]byte, error) { return appendItem(nil, it), nil }

func appendItem(b []byte, it Item) []byte {
	if it == nil {
		return append(b, "null"...)
	}
	var buf [24]string
	keys := buf[:0]
	for k := range it {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = kinesiswire.AppendString(b, k)
		b = append(b, ':')
		b = appendValue(b, it[k])
	}
	return append(b, '}')
}

func appendValue(b []byte, v Value) []byte {
	b = append(b, `{"`...)
	b = append(b, v.T.String()...)
	b = append(b, `":`...)
	switch v.T {
	case TypeS, TypeN:
		b = kinesiswire.AppendString(b, v.S)
	case TypeB:
		b = appendBase64(b, v.S)
	case TypeBOOL, TypeNULL:
		b = strconv.AppendBool(b, v.Bool)
	case TypeL:
		b = append(b, '[')
		for i, e := range v.L {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, e)
		}
		b = append(b, ']')
	case TypeM:
		b = appendItem(b, v.M)
	case TypeSS, TypeNS, TypeBS:
		b = append(b, '[')
		for i, m := range v.Set {
			if i > 0 {
				b = append(b, ',')
			}
			if v.T == TypeBS {
				b = appendBase64(b, m)
			} else {
				b = kinesiswire.AppendString(b, m)
			}
		}
		b = append(b, ']')
	default:
		b = append(b, "null"...)
	}
	return append(b, '}')
}

func appendBase64(b []byte, raw string) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, []byte(raw))
	return append(b, '"')
}
