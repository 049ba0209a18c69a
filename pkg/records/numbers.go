package records

import (
	"bytes"
	"math"
	"strconv"
	"time"
)

// parseInt parses an optionally signed decimal integer with no
// allocation (strconv wants a string, and the payload is still bytes).
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	n, ok := parseUint(b)
	if !ok || n > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// parseUint parses ASCII digits; false on anything else or overflow.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// pow10 holds the powers of ten float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat parses a decimal like "2.55" or "-0.42". Prices have few
// digits, so the exact fast path applies: with a mantissa below 2^53 and
// a power of ten float64 represents exactly, one IEEE division is
// correctly rounded (Clinger), giving the same bits as strconv. Anything
// else (exponents, long mantissas) goes to strconv.ParseFloat.
func parseFloat(b []byte) (float64, bool) {
	s := b
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var mant uint64
	nd, frac := 0, -1
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			if nd >= 15 {
				return slowFloat(b)
			}
			mant = mant*10 + uint64(c-'0')
			nd++
		case c == '.' && frac < 0:
			frac = i
		default:
			return slowFloat(b)
		}
	}
	if nd == 0 {
		return 0, false
	}
	exp := 0
	if frac >= 0 {
		exp = len(s) - frac - 1
	}
	f := float64(mant) / pow10[exp]
	if neg {
		f = -f
	}
	return f, true
}

func slowFloat(b []byte) (float64, bool) {
	// strconv also takes "Inf", "NaN", hex floats and underscores; a price
	// is none of these.
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+') {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// parseSeconds reads a non-negative decimal number of seconds ("0.002",
// "12", "1.5") with at most nanosecond precision, up to about 290 years.
func parseSeconds(b []byte) (time.Duration, bool) {
	whole, frac := b, []byte(nil)
	if i := bytes.IndexByte(b, '.'); i >= 0 {
		whole, frac = b[:i], b[i+1:]
	}
	if len(whole) == 0 && len(frac) == 0 || len(whole) > 10 || len(frac) > 9 {
		return 0, false
	}
	var d time.Duration
	for _, c := range whole {
		if c < '0' || c > '9' {
			return 0, false
		}
		d = d*10 + time.Duration(c-'0')
	}
	d *= time.Second
	scale := time.Second
	for _, c := range frac {
		if c < '0' || c > '9' {
			return 0, false
		}
		scale /= 10
		d += time.Duration(c-'0') * scale
	}
	return d, true
}
