package records

import (
	"bytes"
	"time"
)

// CombinedDecoder reads Apache/nginx access-log lines in combined format
//
//	client ident user [22/Jan/2019:03:56:14 +0330] "GET /p HTTP/1.1" 200 5667 "referer" "user agent"
//
// and in common format (the same without referer and user agent). Fields
// after the user agent (nginx's X-Forwarded-For, ...) are ignored.
// Mapping:
//
//   - client: ClientIP, as written (IPv4, IPv6 or a host name).
//   - the timestamp: Time, with the line's own zone offset.
//   - the request "METHOD target PROTOCOL": Method, Path, Protocol. A
//     request that does not start with an upper-case method (TLS bytes on
//     a plain port, "-") leaves Method and Protocol empty and Path holds
//     the request text, if any.
//   - status: Status, 0 for "-" or "000"; bytes: Bytes, 0 for "-".
//   - "-" as referer or user agent: "".
//
// Inside quoted fields \" and \\ are unescaped (Apache escaping); other
// escapes such as nginx's \x22 are kept as written.
//
// The zero value is ready to use.
type CombinedDecoder struct {
	zones zoneCache
	tab   strtab
}

// Decode implements Decoder.
func (d *CombinedDecoder) Decode(data []byte, r *Record) error {
	line, err := checkPayload(FormatCombined, data)
	if err != nil {
		clearDecoded(r)
		return err
	}
	startDecode(r)
	d.tab.reset()
	var t time.Time
	if err := d.scan(line, r, &t); err != nil {
		clearDecoded(r)
		return err
	}
	return finishDecode(FormatCombined, &d.tab, line, r, t, KindHit)
}

func (d *CombinedDecoder) scan(line []byte, r *Record, tm *time.Time) error {
	n := len(line)
	sp := tokenEnd(line, 0)
	if sp == n {
		sp = -1
	}
	switch {
	case sp < 0:
		return combinedErr(ErrTruncated, "timestamp", "missing", nil)
	case sp == 0:
		return combinedErr(ErrMalformed, "client", "empty", nil)
	}
	d.tab.add(tClientIP, 0, sp, decVerbatim)

	// ident and user are not kept; the timestamp's '[' ends them.
	lb := sp + 1
	for lb < n && line[lb] != '[' {
		lb++ // ident and user: a few bytes, cheaper than IndexByte's setup
	}
	if lb == n {
		return combinedErr(ErrTruncated, "timestamp", "missing", nil)
	}
	if line[lb-1] != ' ' {
		return combinedErr(ErrMalformed, "timestamp", "not preceded by a space", line[sp+1:lb+1])
	}
	const tsLen = 26 // 22/Jan/2019:03:56:14 +0330
	p := lb + 1 + tsLen
	if p >= n {
		if bytes.IndexByte(line[lb:], ']') >= 0 {
			return combinedErr(ErrMalformed, "timestamp", "bad time", line[lb:])
		}
		return combinedErr(ErrTruncated, "timestamp", "cut short", line[lb:])
	}
	if line[p] != ']' {
		return combinedErr(ErrMalformed, "timestamp", "bad time", line[lb:p+1])
	}
	t, ok := parseCLFTime(line[lb+1:p], &d.zones)
	if !ok {
		return combinedErr(ErrMalformed, "timestamp", "bad time", line[lb+1:p])
	}
	*tm = t
	p++

	// "request"
	if p == n {
		return combinedErr(ErrTruncated, "request", "missing", nil)
	}
	if line[p] != ' ' {
		return combinedErr(ErrMalformed, "timestamp", "text after ']'", line[lb:min(p+8, n)])
	}
	p++
	rs, re, p, err := quoted(line, p, "request")
	if err != nil {
		return err
	}
	d.request(line, rs, re, r)

	// status
	if p == n {
		return combinedErr(ErrTruncated, "status", "missing", nil)
	}
	if line[p] != ' ' {
		return combinedErr(ErrMalformed, "request", "text after closing quote", line[re:min(p+8, n)])
	}
	p++
	if p == n {
		return combinedErr(ErrTruncated, "status", "missing", nil)
	}
	tokEnd := tokenEnd(line, p)
	status, ok := parseStatus(line[p:tokEnd])
	if !ok {
		return statusErr(FormatCombined, line[p:tokEnd])
	}
	r.Status = status
	p = tokEnd

	// bytes
	if p == n {
		return combinedErr(ErrTruncated, "bytes", "missing", nil)
	}
	p++
	if p == n {
		return combinedErr(ErrTruncated, "bytes", "missing", nil)
	}
	tokEnd = tokenEnd(line, p)
	size, ok := parseSize(line[p:tokEnd])
	if !ok {
		return combinedErr(ErrMalformed, "bytes", "not a number", line[p:tokEnd])
	}
	r.Bytes = size
	p = tokEnd
	if p == n {
		return nil // common log format
	}

	// "referer" "user agent", then anything.
	fs, fe, p, err := quoted(line, p+1, "referer")
	if err != nil {
		return err
	}
	d.addQuotedText(tReferer, line, fs, fe)
	if p == n {
		return nil
	}
	if line[p] != ' ' {
		return combinedErr(ErrMalformed, "referer", "text after closing quote", line[fe:min(p+8, n)])
	}
	fs, fe, p, err = quoted(line, p+1, "user_agent")
	if err != nil {
		return err
	}
	d.addQuotedText(tUserAgent, line, fs, fe)
	if p < n && line[p] != ' ' {
		return combinedErr(ErrMalformed, "user_agent", "text after closing quote", line[fe:min(p+8, n)])
	}
	return nil
}

// request splits "METHOD target PROTOCOL" (the protocol is optional,
// HTTP/0.9 style) into r's fields.
func (d *CombinedDecoder) request(line []byte, rs, re int, r *Record) {
	req := line[rs:re]
	if len(req) == 0 || (len(req) == 1 && req[0] == '-') {
		return
	}
	dec := decVerbatim
	if bytes.IndexByte(req, '\\') >= 0 {
		dec = decBackslash
	}
	sp := bytes.IndexByte(req, ' ')
	if sp <= 0 || !isMethod(req[:sp]) {
		d.tab.add(tPath, rs, re, dec)
		return
	}
	d.tab.add(tMethod, rs, rs+sp, decVerbatim)
	pathStart, pathEnd := rs+sp+1, re
	if last := bytes.LastIndexByte(req, ' '); last > sp && bytes.HasPrefix(req[last+1:], []byte("HTTP/")) {
		d.tab.add(tProtocol, rs+last+1, re, decVerbatim)
		pathEnd = rs + last
	}
	d.tab.add(tPath, pathStart, pathEnd, dec)
}

func (d *CombinedDecoder) addQuotedText(f textField, line []byte, s, e int) {
	v := line[s:e]
	if len(v) == 1 && v[0] == '-' {
		return
	}
	dec := decVerbatim
	if bytes.IndexByte(v, '\\') >= 0 {
		dec = decBackslash
	}
	d.tab.add(f, s, e, dec)
}

// quoted expects `"text"` at line[p:] and returns the text span and the
// position after the closing quote. A quote preceded by an odd number of
// backslashes is escaped.
func quoted(line []byte, p int, field string) (start, end, next int, err error) {
	if p >= len(line) {
		return 0, 0, 0, combinedErr(ErrTruncated, field, "missing", nil)
	}
	if line[p] != '"' {
		return 0, 0, 0, combinedErr(ErrMalformed, field, "not quoted", line[p:min(p+16, len(line))])
	}
	start = p + 1
	from := start
	for {
		q := bytes.IndexByte(line[from:], '"')
		if q < 0 {
			return 0, 0, 0, combinedErr(ErrTruncated, field, "no closing quote", line[start:])
		}
		q += from
		bs := 0
		for j := q - 1; j >= start && line[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return start, q, q + 1, nil
		}
		from = q + 1
	}
}

// tokenEnd returns the index of the next space at or after p, or len(b).
// Tokens (client, status, bytes) are short: a plain loop beats
// IndexByte's setup cost.
func tokenEnd(b []byte, p int) int {
	for p < len(b) && b[p] != ' ' {
		p++
	}
	return p
}

// isMethod accepts HTTP method tokens as servers log them: upper-case
// letters plus '-' and '_' (WebDAV's VERSION-CONTROL), at most 24 bytes.
func isMethod(b []byte) bool {
	if len(b) > 24 {
		return false
	}
	for _, c := range b {
		if (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// parseStatus accepts "-" and "000" as 0 (no response: the client went
// away) and otherwise 100..599.
func parseStatus(b []byte) (int, bool) {
	if len(b) == 1 && b[0] == '-' {
		return 0, true
	}
	if len(b) != 3 {
		return 0, false
	}
	v := digits(b)
	if v != 0 && (v < 100 || v > 599) {
		return 0, false
	}
	return v, true
}

// parseSize parses a non-negative byte count, "-" meaning 0.
func parseSize(b []byte) (int64, bool) {
	if len(b) == 1 && b[0] == '-' {
		return 0, true
	}
	v, ok := parseUint(b)
	if !ok || v > 1<<62 {
		return 0, false
	}
	return int64(v), true
}

func statusErr(f Format, v []byte) error {
	reason := "not a number"
	if digits(v) >= 0 {
		reason = "not an HTTP status"
	}
	return newError(f, ErrMalformed, "status", reason, v)
}

func combinedErr(kind error, field, reason string, v []byte) error {
	return newError(FormatCombined, kind, field, reason, v)
}
