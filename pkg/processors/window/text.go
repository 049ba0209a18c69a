package window

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Clip returns s when it is valid UTF-8 of at most n bytes (DynamoDB
// strings must be UTF-8; items must stay small); otherwise its valid
// prefix followed by "~" and a hash of the whole, so distinct long values
// stay distinct. The result is at most n bytes for n >= 18.
func Clip(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) {
		return s
	}
	h := fnv.New64a()
	h.Write([]byte(s))
	sum := strconv.FormatUint(h.Sum64(), 16)
	v := strings.ToValidUTF8(s, "\uFFFD")
	limit := max(n-1-len(sum), 0)
	if len(v) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return v + "~" + sum
}

// Text rows: results that hold many small rows store them as one string
// attribute, tab-separated fields and one row per line (one allocation
// per item, no per-value DynamoDB type overhead). A field holding a tab
// or newline, or starting with a double quote, is Go-quoted, so a row
// always splits on literal tabs.

// AppendField appends s to a text row, quoted when needed.
func AppendField(b []byte, s string) []byte {
	if strings.ContainsAny(s, "\t\n") || strings.HasPrefix(s, `"`) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// ParseField reads a field written by AppendField.
func ParseField(s string) (string, error) {
	if !strings.HasPrefix(s, `"`) {
		return s, nil
	}
	u, err := strconv.Unquote(s)
	if err != nil {
		return "", fmt.Errorf("%w: bad quoted field", ErrBadItem)
	}
	return u, nil
}
