package records

import (
	"unicode/utf8"
	"unsafe"
)

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

// textField identifies a string field of Record.
type textField uint8

const (
	tClientIP textField = iota
	tMethod
	tPath
	tProtocol
	tReferer
	tUserAgent
	tHost
	tSessionID
	tEvent
	tInvoiceNo
	tStockCode
	tDescription
	tCustomerID
	tCountry
	tForwardedFor
	tTLSProtocol
	tTLSCipher
	tEdge
	tEdgeResult
	tEdgeResponseResult
	tKey
	numTextFields
)

// maxScratch is the scratch capacity kept between records; a rare huge
// record must not pin a megabyte per shard for the rest of the lease.
const maxScratch = 64 << 10

type textSpan struct {
	start, end int32
	// qStart:qEnd is the query for decJoinQuery.
	qStart, qEnd int32
	dec          textDec
}

// strtab turns the string fields of one record into Go strings with a
// single allocation. While scanning, a decoder registers where each field
// lies in the payload; flush then either converts the whole payload once
// and slices it (no field needs rewriting: the common case) or writes the
// rewritten fields one after another into a reused scratch buffer and
// converts that once. Either way every string of a record shares one
// backing array, so a record costs one allocation whatever its shape.
//
// It holds offsets, not pointers, and flush stores each Record string
// field exactly once: pointer stores into the (heap) Record cost a write
// barrier while the GC runs, which at one allocation per record is often.
type strtab struct {
	spans   [numTextFields]textSpan
	set     uint32 // bit i: spans[i] is registered
	rewrite bool
	// alias: slice the payload itself instead of a copy (AliasPayload).
	alias   bool
	scratch []byte
}

func (t *strtab) reset() {
	t.set = 0
	t.rewrite = false
}

// add registers data[start:end] as the text of field f, replacing an
// earlier registration (JSON duplicate keys: the last one wins). An empty
// span unsets f.
func (t *strtab) add(f textField, start, end int, dec textDec) {
	if start >= end {
		t.set &^= 1 << f
		return
	}
	t.spans[f] = textSpan{start: int32(start), end: int32(end), dec: dec}
	t.set |= 1 << f
	if dec != decVerbatim {
		t.rewrite = true
	}
}

// addJoin registers stem + "?" + query as the text of f.
func (t *strtab) addJoin(f textField, start, end, qStart, qEnd int) {
	t.spans[f] = textSpan{start: int32(start), end: int32(end), qStart: int32(qStart), qEnd: int32(qEnd), dec: decJoinQuery}
	t.set |= 1 << f
	t.rewrite = true
}

// flush stores every string field of r: the registered text, or "". It
// fails only when a percent-decoded field is not valid UTF-8 (the payload
// itself was checked before scanning), returning that field; r is then
// untouched.
func (t *strtab) flush(data []byte, r *Record) (bad textField, ok bool) {
	var texts [numTextFields]string // on the stack: no write barriers
	if t.set != 0 {
		if !t.rewrite {
			var s string
			if t.alias {
				// The caller promised not to modify data (AliasPayload).
				s = unsafe.String(unsafe.SliceData(data), len(data))
			} else {
				s = string(data)
			}
			for f := range numTextFields {
				if t.set&(1<<f) != 0 {
					texts[f] = s[t.spans[f].start:t.spans[f].end]
				}
			}
		} else if bad, ok := t.rewriteInto(data, &texts); !ok {
			return bad, false
		}
	}
	setText(&r.ClientIP, texts[tClientIP])
	setText(&r.Method, texts[tMethod])
	setText(&r.Path, texts[tPath])
	setText(&r.Protocol, texts[tProtocol])
	setText(&r.Referer, texts[tReferer])
	setText(&r.UserAgent, texts[tUserAgent])
	setText(&r.Host, texts[tHost])
	setText(&r.SessionID, texts[tSessionID])
	setText(&r.Event, texts[tEvent])
	setText(&r.InvoiceNo, texts[tInvoiceNo])
	setText(&r.StockCode, texts[tStockCode])
	setText(&r.Description, texts[tDescription])
	setText(&r.CustomerID, normaliseCustomerID(texts[tCustomerID]))
	setText(&r.Country, texts[tCountry])
	setText(&r.ForwardedFor, texts[tForwardedFor])
	setText(&r.TLSProtocol, texts[tTLSProtocol])
	setText(&r.TLSCipher, texts[tTLSCipher])
	setText(&r.Edge, texts[tEdge])
	setText(&r.EdgeResult, texts[tEdgeResult])
	setText(&r.EdgeResponseResult, texts[tEdgeResponseResult])
	setText(&r.Key, texts[tKey])
	return 0, true
}

// setText stores s unless both it and the old value are empty: a hit
// leaves the order fields empty and vice versa, and skipping those stores
// skips their write barriers.
func setText(dst *string, s string) {
	if len(s) != 0 || len(*dst) != 0 {
		*dst = s
	}
}

func (t *strtab) rewriteInto(data []byte, texts *[numTextFields]string) (textField, bool) {
	var offs [numTextFields][2]int
	buf := t.scratch[:0]
	for f := range numTextFields {
		if t.set&(1<<f) == 0 {
			continue
		}
		sp := &t.spans[f]
		from := len(buf)
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
			buf = append(buf, src...)
			buf = buf[:from+percentDecodeStable(buf[from:])]
			if !utf8.Valid(buf[from:]) {
				t.keep(buf)
				return f, false
			}
		case decJoinQuery:
			buf = append(buf, src...)
			buf = append(buf, '?')
			buf = append(buf, data[sp.qStart:sp.qEnd]...)
		}
		offs[f] = [2]int{from, len(buf)}
	}
	s := string(buf)
	for f := range numTextFields {
		if t.set&(1<<f) != 0 {
			texts[f] = s[offs[f][0]:offs[f][1]]
		}
	}
	t.keep(buf)
	return 0, true
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
