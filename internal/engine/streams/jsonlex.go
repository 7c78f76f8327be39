package streams

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// errJSON is the one error the lexer reports; callers turn it into a SerializationException.
var errJSON = errors.New("malformed JSON")

// lexer reads the JSON of the data-plane requests without reflection or per-value
// allocation: strings without escapes are returned as slices of the input.
type lexer struct {
	b   []byte
	i   int
	err error
	// scratch holds unescaped strings; it grows only for strings with escapes.
	scratch []byte
}

const maxDepth = 64

func (l *lexer) fail() {
	if l.err == nil {
		l.err = errJSON
	}
	l.i = len(l.b)
}

func (l *lexer) ws() {
	for l.i < len(l.b) {
		switch l.b[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

func (l *lexer) peek() byte {
	l.ws()
	if l.i >= len(l.b) {
		return 0
	}
	return l.b[l.i]
}

func (l *lexer) expect(c byte) bool {
	if l.peek() != c {
		l.fail()
		return false
	}
	l.i++
	return true
}

// null consumes a literal null if one is next.
func (l *lexer) null() bool {
	if l.peek() == 'n' && l.i+4 <= len(l.b) && string(l.b[l.i:l.i+4]) == "null" {
		l.i += 4
		return true
	}
	return false
}

// object calls member for each key; member must consume the value. A null object is
// accepted and calls nothing.
func (l *lexer) object(member func(key []byte)) {
	if l.null() {
		return
	}
	if !l.expect('{') {
		return
	}
	if l.peek() == '}' {
		l.i++
		return
	}
	for l.err == nil {
		key := l.str()
		if !l.expect(':') {
			return
		}
		member(key)
		switch l.peek() {
		case ',':
			l.i++
		case '}':
			l.i++
			return
		default:
			l.fail()
			return
		}
	}
}

// array calls elem for each element; elem must consume it. A null array calls nothing.
func (l *lexer) array(elem func()) {
	if l.null() {
		return
	}
	if !l.expect('[') {
		return
	}
	if l.peek() == ']' {
		l.i++
		return
	}
	for l.err == nil {
		elem()
		switch l.peek() {
		case ',':
			l.i++
		case ']':
			l.i++
			return
		default:
			l.fail()
			return
		}
	}
}

// str reads a string. The result aliases the input or the lexer's scratch space and is
// valid until the next str call that meets an escape.
func (l *lexer) str() []byte {
	if !l.expect('"') {
		return nil
	}
	start := l.i
	j := bytes.IndexByte(l.b[start:], '"')
	if j < 0 {
		l.fail()
		return nil
	}
	s := l.b[start : start+j]
	if k := bytes.IndexByte(s, '\\'); k >= 0 {
		l.i = start + k
		return l.strEscaped(start)
	}
	l.i = start + j + 1
	return s
}

func (l *lexer) strEscaped(start int) []byte {
	out := append(l.scratch[:0], l.b[start:l.i]...)
	for l.i < len(l.b) {
		c := l.b[l.i]
		switch {
		case c == '"':
			l.i++
			l.scratch = out
			return out
		case c < 0x20:
			l.fail()
			return nil
		case c != '\\':
			out = append(out, c)
			l.i++
			continue
		}
		if l.i+1 >= len(l.b) {
			l.fail()
			return nil
		}
		e := l.b[l.i+1]
		l.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := l.hex4()
			if !ok {
				return nil
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if l.i+1 < len(l.b) && l.b[l.i] == '\\' && l.b[l.i+1] == 'u' {
					save := l.i
					l.i += 2
					if v, ok := l.hex4(); ok {
						r2 = v
					} else {
						return nil
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
					} else {
						l.i = save
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			l.fail()
			return nil
		}
	}
	l.fail()
	return nil
}

func (l *lexer) hex4() (rune, bool) {
	if l.i+4 > len(l.b) {
		l.fail()
		return 0, false
	}
	var r rune
	for _, c := range l.b[l.i : l.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			l.fail()
			return 0, false
		}
	}
	l.i += 4
	return r, true
}

// strOrNull reads a string or null; ok is false for null.
func (l *lexer) strOrNull() (s []byte, ok bool) {
	if l.null() {
		return nil, false
	}
	return l.str(), true
}

func (l *lexer) numberToken() []byte {
	l.ws()
	start := l.i
	for l.i < len(l.b) {
		c := l.b[l.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			l.i++
			continue
		}
		break
	}
	if start == l.i {
		l.fail()
		return nil
	}
	return l.b[start:l.i]
}

// int reads an integer number; present is false for null.
func (l *lexer) int() (v int64, present bool) {
	if l.null() {
		return 0, false
	}
	tok := l.numberToken()
	if l.err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(tok), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(tok), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
			l.fail()
			return 0, false
		}
		n = int64(f)
	}
	return n, true
}

// boolean reads true, false or null (false).
func (l *lexer) boolean() bool {
	switch l.peek() {
	case 't':
		if l.i+4 <= len(l.b) && string(l.b[l.i:l.i+4]) == "true" {
			l.i += 4
			return true
		}
	case 'f':
		if l.i+5 <= len(l.b) && string(l.b[l.i:l.i+5]) == "false" {
			l.i += 5
			return false
		}
	case 'n':
		if l.null() {
			return false
		}
	}
	l.fail()
	return false
}

// skip consumes one value of any kind, iteratively and with bounded nesting so that deep
// input cannot exhaust the stack.
func (l *lexer) skip() {
	var stack [maxDepth]byte
	depth := 0
	for l.err == nil {
		switch l.peek() {
		case '{':
			l.i++
			if l.peek() == '}' {
				l.i++
				break
			}
			if depth == maxDepth {
				l.fail()
				return
			}
			stack[depth] = '}'
			depth++
			l.str()
			l.expect(':')
			continue
		case '[':
			l.i++
			if l.peek() == ']' {
				l.i++
				break
			}
			if depth == maxDepth {
				l.fail()
				return
			}
			stack[depth] = ']'
			depth++
			continue
		case '"':
			l.str()
		case 't', 'f':
			l.boolean()
		case 'n':
			if !l.null() {
				l.fail()
			}
		default:
			l.numberToken()
		}
		for {
			if l.err != nil || depth == 0 {
				return
			}
			c := l.peek()
			if c == ',' {
				l.i++
				if stack[depth-1] == '}' {
					l.str()
					l.expect(':')
				}
				break
			}
			if c == stack[depth-1] {
				l.i++
				depth--
				continue
			}
			l.fail()
			return
		}
	}
}

// end checks that only whitespace remains.
func (l *lexer) end() {
	l.ws()
	if l.i != len(l.b) {
		l.fail()
	}
}

// appendEpoch appends t (Unix nanoseconds) as epoch seconds with millisecond precision,
// the form the SDK's JSON timestamps take.
func appendEpoch(dst []byte, unixNano int64) []byte {
	ms := unixNano / 1e6
	dst = strconv.AppendInt(dst, ms/1000, 10)
	frac := ms % 1000
	if frac < 0 {
		frac = -frac
	}
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}
