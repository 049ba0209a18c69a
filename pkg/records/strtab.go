package records

import "unicode/utf8"

// textDec says how a field's raw bytes become its text.
type textDec uint8

const (
	decVerbatim  textDec = iota // bytes as written
	decBackslash                // access log: \" -> ", \\ -> \ (other escapes kept)
	decCSV                      // CSV: "" -> "
	decJSON                     // JSON string escapes
	decPercent                  // CloudFront: percent-decode until stable
	decJoinQuery                // CloudFront: stem + "?" + query
)

// maxTextFields bounds the string fields one record can set.
const maxTextFields = 12

// maxScratch is the scratch capacity kept between records; a rare huge
// record must not pin a megabyte per shard for the rest of the lease.
const maxScratch = 64 << 10

type textSpan struct {
	dst        *string
	start, end int
	// q is the query span for decJoinQuery.
	qStart, qEnd int
	dec          textDec
	field        string // for errors
}

// strtab turns the string fields of one record into Go strings with a
// single allocation. While scanning, a decoder registers where each field
// lies in the payload; flush then either converts the whole payload once
// and slices it (no field needs rewriting: the common case) or writes the
// rewritten fields one after another into a reused scratch buffer and
// converts that once. Either way every string of a record shares one
// backing array, so a record costs one allocation whatever its shape.
type strtab struct {
	spans   [maxTextFields]textSpan
	n       int
	rewrite bool
	scratch []byte
}

func (t *strtab) reset() {
	t.n = 0
	t.rewrite = false
}

// add registers data[start:end] as the text of *dst. Empty spans are
// skipped: the zero string needs no backing array.
func (t *strtab) add(dst *string, start, end int, dec textDec, field string) {
	if start >= end {
		t.drop(dst)
		return
	}
	t.put(textSpan{dst: dst, start: start, end: end, dec: dec, field: field})
}

// put registers sp, replacing an earlier span for the same field (JSON
// with a duplicate key: the last one wins, as in encoding/json).
func (t *strtab) put(sp textSpan) {
	if sp.dec != decVerbatim {
		t.rewrite = true
	}
	for i := 0; i < t.n; i++ {
		if t.spans[i].dst == sp.dst {
			t.spans[i] = sp
			return
		}
	}
	if t.n < maxTextFields {
		t.spans[t.n] = sp
		t.n++
	}
}

// drop forgets the span of *dst, if any.
func (t *strtab) drop(dst *string) {
	for i := 0; i < t.n; i++ {
		if t.spans[i].dst == dst {
			t.n--
			t.spans[i] = t.spans[t.n]
			return
		}
	}
}

// addJoin registers stem + "?" + query as the text of *dst.
func (t *strtab) addJoin(dst *string, start, end, qStart, qEnd int, field string) {
	t.put(textSpan{dst: dst, start: start, end: end, qStart: qStart, qEnd: qEnd, dec: decJoinQuery, field: field})
}

// flush materialises the registered fields. It fails only when a
// percent-decoded field is not valid UTF-8 (the payload itself was
// checked before scanning); the field name is returned with the error.
func (t *strtab) flush(data []byte) (badField string, ok bool) {
	if t.n == 0 {
		return "", true
	}
	spans := t.spans[:t.n]
	if !t.rewrite {
		s := string(data)
		for i := range spans {
			*spans[i].dst = s[spans[i].start:spans[i].end]
		}
		return "", true
	}
	var offs [maxTextFields + 1]int
	buf := t.scratch[:0]
	for i := range spans {
		sp := &spans[i]
		offs[i] = len(buf)
		src := data[sp.start:sp.end]
		switch sp.dec {
		case decVerbatim:
			buf = append(buf, src...)
		case decBackslash:
			buf = appendUnbackslash(buf, src)
		case decCSV:
			buf = appendUnCSV(buf, src)
		case decJSON:
			buf = appendUnJSON(buf, src)
		case decPercent:
			from := len(buf)
			buf = append(buf, src...)
			buf = buf[:from+percentDecodeStable(buf[from:])]
			if !utf8.Valid(buf[from:]) {
				t.keep(buf)
				return sp.field, false
			}
		case decJoinQuery:
			buf = append(buf, src...)
			buf = append(buf, '?')
			buf = append(buf, data[sp.qStart:sp.qEnd]...)
		}
	}
	offs[len(spans)] = len(buf)
	s := string(buf)
	for i := range spans {
		*spans[i].dst = s[offs[i]:offs[i+1]]
	}
	t.keep(buf)
	return "", true
}

func (t *strtab) keep(buf []byte) {
	if cap(buf) > maxScratch {
		buf = nil
	}
	t.scratch = buf
}

// appendUnbackslash undoes Apache's escaping of quote and backslash. Other
// escapes (\xHH from nginx, \n, \t) are kept as written: decoding them
// could yield control bytes or invalid UTF-8 inside an otherwise clean
// field, and nothing downstream needs them decoded.
func appendUnbackslash(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\\' && i+1 < len(src) && (src[i+1] == '"' || src[i+1] == '\\') {
			i++
			c = src[i]
		}
		dst = append(dst, c)
	}
	return dst
}

// appendUnCSV collapses doubled quotes inside a quoted CSV field.
func appendUnCSV(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		dst = append(dst, src[i])
		if src[i] == '"' && i+1 < len(src) && src[i+1] == '"' {
			i++
		}
	}
	return dst
}

// percentDecodeStable percent-decodes b in place, repeating while a round
// changes something (CloudFront encodes user agents twice: %2520 -> %20
// -> space), at most three rounds. '+' is kept: it is literal in user
// agents ("+http://www.bing.com/bingbot.htm"). Invalid escapes are kept
// as written. It returns the new length.
func percentDecodeStable(b []byte) int {
	n := len(b)
	for round := 0; round < 3; round++ {
		m := percentDecode(b[:n])
		if m == n {
			break
		}
		n = m
	}
	return n
}

func percentDecode(b []byte) int {
	w := 0
	for r := 0; r < len(b); r++ {
		c := b[r]
		if c == '%' && r+2 < len(b) {
			if h, ok := unhex(b[r+1]); ok {
				if l, ok := unhex(b[r+2]); ok {
					c = h<<4 | l
					r += 2
				}
			}
		}
		b[w] = c
		w++
	}
	return w
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
