package records

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A hand-written JSON scanner for flat objects. It validates the whole
// payload against the JSON grammar but materialises nothing: values are
// reported as spans of the payload, so the decoders can alias them and
// stay at one allocation per record. goccy/go-json into a struct costs
// several allocations (one per string field); see BenchmarkClickstream*.

type jsonKind uint8

const (
	jsonString jsonKind = iota + 1
	jsonNumber
	jsonTrue
	jsonFalse
	jsonNull
	jsonObject
	jsonArray
)

// jsonVal is one scanned value. For strings start:end is the text
// between the quotes (esc says whether it has escapes); otherwise it is
// the value's whole text.
type jsonVal struct {
	kind       jsonKind
	start, end int
	esc        bool
}

// maxJSONDepth bounds nesting inside ignored values.
const maxJSONDepth = 512

// objIter walks the members of a top-level JSON object:
//
//	var it objIter
//	it.init(b)
//	for it.next() { use it.key, it.val }
//	if it.err != nil { ... }
type objIter struct {
	b      []byte
	i      int
	n      int  // members returned so far
	ctl    bool // b holds control characters (see str)
	done   bool
	key    []byte
	keyEsc bool
	val    jsonVal
	// err is ErrTruncated or ErrMalformed; reason and at say more.
	err    error
	reason string
	at     int
}

func (it *objIter) init(b []byte) {
	*it = objIter{b: b, ctl: hasControl(b)}
	it.ws()
	if it.i == len(b) {
		it.fail(ErrTruncated, "no JSON object")
		return
	}
	if b[it.i] != '{' {
		it.fail(ErrMalformed, "not a JSON object")
		return
	}
	it.i++
}

func (it *objIter) fail(kind error, reason string) {
	if it.err == nil {
		it.err, it.reason, it.at = kind, reason, it.i
	}
	it.done = true
}

// truncOr reports truncation when the input ended, else malformation.
func (it *objIter) truncOr(reason string) {
	if it.i >= len(it.b) {
		it.fail(ErrTruncated, "unexpected end of JSON")
		return
	}
	it.fail(ErrMalformed, reason)
}

func (it *objIter) next() bool {
	if it.done {
		return false
	}
	it.ws()
	if it.i >= len(it.b) {
		it.truncOr("")
		return false
	}
	c := it.b[it.i]
	switch {
	case c == '}':
		it.i++
		it.ws()
		if it.i != len(it.b) {
			it.fail(ErrMalformed, "data after JSON object")
		}
		it.done = true
		return false
	case it.n > 0:
		if c != ',' {
			it.fail(ErrMalformed, "want ',' or '}'")
			return false
		}
		it.i++
		it.ws()
	}
	if it.i >= len(it.b) || it.b[it.i] != '"' {
		it.truncOr("want a member name")
		return false
	}
	ks, ke, esc, ok := it.str()
	if !ok {
		return false
	}
	it.key, it.keyEsc = it.b[ks:ke], esc
	it.ws()
	if it.i >= len(it.b) || it.b[it.i] != ':' {
		it.truncOr("want ':'")
		return false
	}
	it.i++
	it.ws()
	if !it.value(&it.val) {
		return false
	}
	it.n++
	return true
}

func (it *objIter) ws() {
	for it.i < len(it.b) {
		switch it.b[it.i] {
		case ' ', '\t', '\n', '\r':
			it.i++
		default:
			return
		}
	}
}

// value scans any value at it.i.
func (it *objIter) value(v *jsonVal) bool {
	if it.i >= len(it.b) {
		it.truncOr("")
		return false
	}
	start := it.i
	switch c := it.b[it.i]; {
	case c == '"':
		s, e, esc, ok := it.str()
		*v = jsonVal{kind: jsonString, start: s, end: e, esc: esc}
		return ok
	case c == '-' || (c >= '0' && c <= '9'):
		if !it.num() {
			return false
		}
		*v = jsonVal{kind: jsonNumber, start: start, end: it.i}
		return true
	case c == 't':
		return it.lit("true", jsonTrue, v)
	case c == 'f':
		return it.lit("false", jsonFalse, v)
	case c == 'n':
		return it.lit("null", jsonNull, v)
	case c == '{' || c == '[':
		kind := jsonObject
		if c == '[' {
			kind = jsonArray
		}
		if !it.skipNested() {
			return false
		}
		*v = jsonVal{kind: kind, start: start, end: it.i}
		return true
	}
	it.fail(ErrMalformed, "not a JSON value")
	return false
}

func (it *objIter) lit(word string, kind jsonKind, v *jsonVal) bool {
	start := it.i
	for k := 0; k < len(word); k++ {
		if it.i >= len(it.b) {
			it.truncOr("")
			return false
		}
		if it.b[it.i] != word[k] {
			it.fail(ErrMalformed, "not a JSON value")
			return false
		}
		it.i++
	}
	*v = jsonVal{kind: kind, start: start, end: it.i}
	return true
}

// str scans the string starting at the quote at it.i and returns its
// content span. Escapes are checked here so unescaping later cannot fail.
func (it *objIter) str() (start, end int, esc, ok bool) {
	if it.ctl {
		return it.strCareful()
	}
	// No byte of the payload is a control character, so none can be in a
	// string: find the closing quote and any backslash with IndexByte
	// (vectorised), handling escapes one by one. The quote found stays
	// valid until an escape consumes it, which keeps this linear.
	b := it.b
	start = it.i + 1
	i, q := start, -1
	for {
		if q < i {
			q = bytes.IndexByte(b[i:], '"')
			if q < 0 {
				it.i = len(b)
				it.truncOr("")
				return 0, 0, false, false
			}
			q += i
		}
		bs := bytes.IndexByte(b[i:q], '\\')
		if bs < 0 {
			it.i = q + 1
			return start, q, esc, true
		}
		esc = true
		if i, ok = it.escape(i + bs); !ok {
			return 0, 0, false, false
		}
	}
}

// strCareful is str for payloads holding control characters (pretty
// printed JSON, or garbage): it also rejects them inside strings.
func (it *objIter) strCareful() (start, end int, esc, ok bool) {
	b := it.b
	i := it.i + 1
	start = i
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			it.i = i + 1
			return start, i, esc, true
		case c == '\\':
			esc = true
			if i, ok = it.escape(i); !ok {
				return 0, 0, false, false
			}
		case c < 0x20:
			it.i = i
			it.fail(ErrMalformed, "control character in string")
			return 0, 0, false, false
		default:
			i++
		}
	}
	it.i = i
	it.truncOr("")
	return 0, 0, false, false
}

// escape checks the escape sequence at b[i] == '\\' and returns the
// index after it.
func (it *objIter) escape(i int) (int, bool) {
	b := it.b
	if i+1 >= len(b) {
		it.i = len(b)
		it.truncOr("")
		return 0, false
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2, true
	case 'u':
		if i+6 > len(b) {
			it.i = len(b)
			it.truncOr("")
			return 0, false
		}
		for k := i + 2; k < i+6; k++ {
			if _, okh := unhex(b[k]); !okh {
				it.i = k
				it.fail(ErrMalformed, "bad \\u escape")
				return 0, false
			}
		}
		return i + 6, true
	}
	it.i = i
	it.fail(ErrMalformed, "bad escape")
	return 0, false
}

// hasControl reports whether b holds a byte below 0x20, 8 bytes at a
// time (the SWAR "has byte less than n" test, exact for "any").
func hasControl(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if (x-ones*0x20)&^x&highs != 0 {
			return true
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return true
		}
	}
	return false
}

// num scans -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
func (it *objIter) num() bool {
	b := it.b
	i := it.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		it.i = i
		it.truncOr("bad number")
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			it.i = i
			it.truncOr("bad number")
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			it.i = i
			it.truncOr("bad number")
			return false
		}
	}
	it.i = i
	return true
}

// skipNested scans the object or array at it.i without recursion: the
// stack of open containers is a bit set (1 = object).
func (it *objIter) skipNested() bool {
	var stack [maxJSONDepth / 64]uint64
	depth := 0
	isObj := func() bool { return stack[(depth-1)/64]>>((depth-1)%64)&1 == 1 }
	b := it.b
	var scratch jsonVal
	for {
		// At the start of a value.
		if it.i >= len(b) {
			it.truncOr("")
			return false
		}
		c := b[it.i]
		if c == '{' || c == '[' {
			if depth == maxJSONDepth {
				it.fail(ErrMalformed, "JSON nested too deep")
				return false
			}
			w, bit := depth/64, uint64(1)<<(depth%64)
			if c == '{' {
				stack[w] |= bit
			} else {
				stack[w] &^= bit
			}
			depth++
			it.i++
			it.ws()
			if it.i < len(b) && (b[it.i] == '}' || b[it.i] == ']') {
				if (b[it.i] == '}') != isObj() {
					it.fail(ErrMalformed, "mismatched bracket")
					return false
				}
				it.i++
				depth--
			} else {
				if c == '{' && !it.member() {
					return false
				}
				continue
			}
		} else if !it.value(&scratch) {
			return false
		}
		// After a value: close containers or move to the next element.
		for {
			if depth == 0 {
				return true
			}
			it.ws()
			if it.i >= len(b) {
				it.truncOr("")
				return false
			}
			c := b[it.i]
			if c == ',' {
				it.i++
				it.ws()
				if isObj() && !it.member() {
					return false
				}
				break
			}
			if (c == '}' && isObj()) || (c == ']' && !isObj()) {
				it.i++
				depth--
				continue
			}
			it.fail(ErrMalformed, "want ',' or closing bracket")
			return false
		}
	}
}

// member scans `"name" :` inside a nested object, leaving it.i at the value.
func (it *objIter) member() bool {
	if it.i >= len(it.b) || it.b[it.i] != '"' {
		it.truncOr("want a member name")
		return false
	}
	if _, _, _, ok := it.str(); !ok {
		return false
	}
	it.ws()
	if it.i >= len(it.b) || it.b[it.i] != ':' {
		it.truncOr("want ':'")
		return false
	}
	it.i++
	it.ws()
	return true
}

// appendUnJSON appends the unescaped text of a validated JSON string
// body. Lone surrogates become U+FFFD, as encoding/json does.
func appendUnJSON(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != '\\' || i+1 >= len(src) {
			dst = append(dst, c)
			continue
		}
		i++
		switch src[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(src, i+1)
			if !ok {
				dst = append(dst, '\\', 'u')
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(0), false
				if i+6 < len(src) && src[i+1] == '\\' && src[i+2] == 'u' {
					r2, ok2 = hex4(src, i+3)
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, src[i])
		}
	}
	return dst
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for k := i; k < i+4; k++ {
		h, ok := unhex(b[k])
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(h)
	}
	return r, true
}

// decodeError converts the iterator's failure into a DecodeError that
// shows a few bytes around the failure.
func (it *objIter) decodeError(f Format) error {
	reason := it.reason
	if reason == "" {
		reason = "malformed JSON"
	}
	lo := max(it.at-8, 0)
	hi := min(it.at+8, len(it.b))
	return newError(f, it.err, "", reason+" at byte "+strconv.Itoa(it.at), it.b[lo:hi])
}
