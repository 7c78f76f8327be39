package tables

import (
	"math/big"
	"strconv"
	"strings"
)

// DynamoDB numbers are decimals of up to 38 significant digits with a magnitude between
// 1E-130 and 9.9999999999999999999999999999999999999E+125, compared and added exactly.
const (
	maxNumberDigits = 38
	// maxNumberExp and minNumberExp bound decimal.exp (value = 0.digits x 10^exp).
	maxNumberExp = 126
	minNumberExp = -129
)

// decimal is an exact decimal: value = (-1 if neg) x 0.digits x 10^exp, where digits has
// no leading or trailing zeros. Zero has empty digits.
type decimal struct {
	neg    bool
	digits string
	exp    int
}

// parseNumber parses DynamoDB number text and checks its precision and range.
func parseNumber(s string) (decimal, error) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		d.neg = s[i] == '-'
		i++
	}
	var buf [64]byte
	digits := buf[:0]
	intDigits := 0
	seenDigit, seenDot := false, false
	for ; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			seenDigit = true
			if len(digits) == 0 && c == '0' {
				if seenDot {
					intDigits--
				}
				continue
			}
			digits = append(digits, c)
			if !seenDot {
				intDigits++
			}
			continue
		}
		if c == '.' && !seenDot {
			seenDot = true
			continue
		}
		break
	}
	if !seenDigit {
		return d, errNumberFormat
	}
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return d, errNumberFormat
		}
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || s[i+1:] == "" || s[i+1] == ' ' {
			return d, errNumberFormat
		}
		if e > 10000 || e < -10000 {
			if len(strings.TrimRight(string(digits), "0")) == 0 {
				return decimal{}, nil
			}
			if e > 0 {
				return d, errNumberOverflow
			}
			return d, errNumberUnderflow
		}
		intDigits += e
	}
	trimmed := strings.TrimRight(string(digits), "0")
	if trimmed == "" {
		return decimal{}, nil
	}
	d.digits = trimmed
	d.exp = intDigits
	return d, d.check()
}

func (d decimal) check() error {
	if d.digits == "" {
		return nil
	}
	if len(d.digits) > maxNumberDigits {
		return errNumberPrecision
	}
	if d.exp > maxNumberExp {
		return errNumberOverflow
	}
	if d.exp < minNumberExp {
		return errNumberUnderflow
	}
	return nil
}

// String returns the canonical text: plain notation, no superfluous zeros.
func (d decimal) String() string {
	if d.digits == "" {
		return "0"
	}
	var b strings.Builder
	if d.neg {
		b.WriteByte('-')
	}
	switch {
	case d.exp <= 0:
		b.WriteString("0.")
		for i := 0; i < -d.exp; i++ {
			b.WriteByte('0')
		}
		b.WriteString(d.digits)
	case d.exp >= len(d.digits):
		b.WriteString(d.digits)
		for i := len(d.digits); i < d.exp; i++ {
			b.WriteByte('0')
		}
	default:
		b.WriteString(d.digits[:d.exp])
		b.WriteByte('.')
		b.WriteString(d.digits[d.exp:])
	}
	return b.String()
}

// cmpDecimal returns -1, 0 or 1 as a < b, a == b or a > b.
func cmpDecimal(a, b decimal) int {
	az, bz := a.digits == "", b.digits == ""
	switch {
	case az && bz:
		return 0
	case az:
		if b.neg {
			return 1
		}
		return -1
	case bz:
		if a.neg {
			return -1
		}
		return 1
	}
	if a.neg != b.neg {
		if a.neg {
			return -1
		}
		return 1
	}
	c := 0
	switch {
	case a.exp != b.exp:
		if a.exp < b.exp {
			c = -1
		} else {
			c = 1
		}
	default:
		c = strings.Compare(a.digits, b.digits)
	}
	if a.neg {
		c = -c
	}
	return c
}

// scaled returns d as an integer and the power of ten it is scaled by.
func (d decimal) scaled() (*big.Int, int) {
	n := new(big.Int)
	if d.digits == "" {
		return n, 0
	}
	n.SetString(d.digits, 10)
	if d.neg {
		n.Neg(n)
	}
	return n, d.exp - len(d.digits)
}

// addDecimal returns a + b exactly, failing when the sum exceeds DynamoDB's precision or range.
func addDecimal(a, b decimal) (decimal, error) {
	ai, ae := a.scaled()
	bi, be := b.scaled()
	ten := big.NewInt(10)
	if ae > be {
		ai.Mul(ai, new(big.Int).Exp(ten, big.NewInt(int64(ae-be)), nil))
		ae = be
	} else if be > ae {
		bi.Mul(bi, new(big.Int).Exp(ten, big.NewInt(int64(be-ae)), nil))
	}
	sum := ai.Add(ai, bi)
	var r decimal
	if sum.Sign() == 0 {
		return r, nil
	}
	r.neg = sum.Sign() < 0
	s := sum.Abs(sum).String()
	t := strings.TrimRight(s, "0")
	r.digits = t
	r.exp = ae + len(s)
	return r, r.check()
}

func negDecimal(d decimal) decimal {
	if d.digits != "" {
		d.neg = !d.neg
	}
	return d
}

// canonicalNumber validates s as a DynamoDB number and returns its canonical text.
func canonicalNumber(s string) (string, error) {
	d, err := parseNumber(s)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}
