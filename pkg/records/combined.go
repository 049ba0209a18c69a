package records

import (
	"bytes"
	"time"
)

// CombinedDecoder reads Apache/nginx access-log lines in combined format
//
//	client ident user [22/Jan/2019:03:56:14 +0330] "GET /p HTTP/1.1" 200 5667 "referer" "user agent"
//
// and in common format (the same without referer and user agent), and
// recognises by their shape the layouts that put something else first:
//
//   - Apache vhost_combined (%v:%p %h ...) and nginx formats starting with
//     $host: "example.com:80 10.0.0.1 - - [...]". The virtual host (with
//     its port, as logged) goes to Host, the address after it is the peer.
//   - nginx formats starting with $http_x_forwarded_for, quoted or not:
//     "\"10.0.0.2, 10.0.0.1\" - - [...]" or "10.0.0.2, 10.0.0.1 - - [...]".
//     The list goes to ForwardedFor; no peer is logged.
//   - mod_ssl's ssl_request_log: "[time] client TLSv1.3 CIPHER \"request\" bytes"
//     (no status). TLSProtocol and TLSCipher hold the TLS fields.
//
// A quoted field after the user agent (nginx's "$http_x_forwarded_for",
// as in the default "main" format) goes to ForwardedFor; later fields are
// ignored. ClientIP is chosen by the decoder's ClientPolicy and is always
// an IP address: a line whose client would be anything else (a host name
// from HostnameLookups, "-", "unknown") fails with ErrMalformed, field
// client. Mapping of the rest:
//
//   - the timestamp: Time, with the line's own zone offset.
//   - the request "METHOD target PROTOCOL": Method, Path, Protocol. A
//     request that does not start with an upper-case method (TLS bytes on
//     a plain port, "-") leaves Method and Protocol empty and Path holds
//     the request text, if any.
//   - status: Status, 0 for "-" or "000"; bytes: Bytes, 0 for "-".
//   - "-" as referer, user agent or forwarded list: "".
//
// Inside quoted fields \" and \\ are unescaped (Apache escaping); other
// escapes such as nginx's \x22 are kept as written.
//
// The zero value reads every layout with ClientPeer.
type CombinedDecoder struct {
	// Layout restricts the decoder to one layout (a format other than
	// FormatCombined); a line of another layout fails with ErrMalformed.
	Layout Format
	Client ClientPolicy
	zones  zoneCache
	tab    strtab
}

// Decode implements Decoder.
func (d *CombinedDecoder) Decode(data []byte, r *Record) error {
	f := d.format()
	line, err := checkPayload(f, data)
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
	return finishDecode(f, &d.tab, line, r, t, KindHit)
}

func (d *CombinedDecoder) format() Format {
	if d.Layout == "" {
		return FormatCombined
	}
	return d.Layout
}

// layout reports which layout the line's start has; lb is the index of
// the timestamp's '[' and peer/list the spans of the logged peer and
// X-Forwarded-For list (start -1 when absent).
func (d *CombinedDecoder) prefix(line []byte) (layout Format, lb int, peer, list hop, err error) {
	n := len(line)
	peer, list = hop{-1, -1}, hop{-1, -1}
	p := 0
	switch {
	case line[0] == '[':
		return FormatSSLRequest, 0, peer, list, nil
	case line[0] == '"': // quoted X-Forwarded-For list
		s, e, next, err := quoted(line, 0, "forwarded_for")
		if err != nil {
			return "", 0, peer, list, err
		}
		if e-s != 1 || line[s] != '-' {
			list = hop{s, e}
		}
		layout, p = FormatXFFCombined, next
	default:
		end := tokenEnd(line, 0)
		if end == 0 {
			return "", 0, peer, list, combinedErr(ErrMalformed, "client", "empty", nil)
		}
		if line[end-1] == ',' { // unquoted list: "a, b, c"
			for end < n && line[end-1] == ',' {
				end = tokenEnd(line, end+1)
			}
			list, layout, p = hop{0, end}, FormatXFFCombined, end
			break
		}
		if _, ok := parseIPBytes(line[:end]); ok || end == n {
			peer, layout, p = hop{0, end}, FormatCombined, end
			break
		}
		// Not an address: a virtual host if an address follows it.
		s := end + 1
		e := tokenEnd(line, s)
		if _, ok := parseIPBytes(line[s:e]); ok && s < n {
			d.tab.add(tHost, 0, end, decVerbatim)
			peer, layout, p = hop{s, e}, FormatVhostCombined, e
			break
		}
		return "", 0, peer, list, combinedErr(ErrMalformed, "client", "not an IP address", line[:end])
	}
	if p >= n {
		return "", 0, peer, list, combinedErr(ErrTruncated, "timestamp", "missing", nil)
	}
	// ident and user are not kept; the timestamp's '[' ends them.
	lb = p + 1
	for lb < n && line[lb] != '[' {
		lb++ // ident and user: a few bytes, cheaper than IndexByte's setup
	}
	if lb >= n {
		return "", 0, peer, list, combinedErr(ErrTruncated, "timestamp", "missing", nil)
	}
	if line[lb-1] != ' ' {
		return "", 0, peer, list, combinedErr(ErrMalformed, "timestamp", "not preceded by a space", line[p:lb+1])
	}
	return layout, lb, peer, list, nil
}

func (d *CombinedDecoder) scan(line []byte, r *Record, tm *time.Time) error {
	layout, lb, peer, list, err := d.prefix(line)
	if err != nil {
		return err
	}
	if d.Layout != "" && d.Layout != layout {
		return newError(d.Layout, ErrMalformed, "", "a "+string(layout)+" line", line[:min(len(line), 24)])
	}
	if layout == FormatSSLRequest {
		return d.scanSSL(line, r, tm)
	}
	n := len(line)
	p, err := d.timestamp(line, lb, tm)
	if err != nil {
		return err
	}

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
		return d.client(line, peer, list) // common log format
	}

	// "referer" "user agent", then anything.
	fs, fe, p, err := quoted(line, p+1, "referer")
	if err != nil {
		return err
	}
	d.addQuotedText(tReferer, line, fs, fe)
	if p == n {
		return d.client(line, peer, list)
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
	// nginx "main": "$http_x_forwarded_for" after the user agent.
	if list.start < 0 && p+1 < n && line[p+1] == '"' {
		if fs, fe, _, err := quoted(line, p+1, "forwarded_for"); err == nil && (fe-fs != 1 || line[fs] != '-') {
			list = hop{fs, fe}
		}
	}
	return d.client(line, peer, list)
}

// client registers ForwardedFor and the ClientIP the policy picks.
func (d *CombinedDecoder) client(line []byte, peer, list hop) error {
	if list.start >= 0 {
		d.tab.add(tForwardedFor, list.start, list.end, decVerbatim)
	}
	c, ok := d.Client.pickForwarded(line, peer, list)
	if !ok {
		v := line[max(list.start, 0):max(list.end, 0)]
		if peer.start >= 0 {
			v = line[peer.start:peer.end]
		}
		return combinedErr(ErrMalformed, "client", "not an IP address", v)
	}
	d.tab.add(tClientIP, c.start, c.end, decVerbatim)
	return nil
}

// timestamp parses "[22/Jan/2019:03:56:14 +0330]" at line[lb:] and
// returns the index after the ']'.
func (d *CombinedDecoder) timestamp(line []byte, lb int, tm *time.Time) (int, error) {
	n := len(line)
	const tsLen = 26 // 22/Jan/2019:03:56:14 +0330
	p := lb + 1 + tsLen
	if p >= n {
		if bytes.IndexByte(line[lb:], ']') >= 0 {
			return 0, combinedErr(ErrMalformed, "timestamp", "bad time", line[lb:])
		}
		return 0, combinedErr(ErrTruncated, "timestamp", "cut short", line[lb:])
	}
	if line[p] != ']' {
		return 0, combinedErr(ErrMalformed, "timestamp", "bad time", line[lb:p+1])
	}
	t, ok := parseCLFTime(line[lb+1:p], &d.zones)
	if !ok {
		return 0, combinedErr(ErrMalformed, "timestamp", "bad time", line[lb+1:p])
	}
	*tm = t
	return p + 1, nil
}

// scanSSL reads mod_ssl's ssl_request_log layout:
//
//	[22/Jan/2019:03:56:14 +0330] 10.0.0.1 TLSv1.3 TLS_AES_256_GCM_SHA384 "GET / HTTP/1.1" 5667
func (d *CombinedDecoder) scanSSL(line []byte, r *Record, tm *time.Time) error {
	n := len(line)
	p, err := d.timestamp(line, 0, tm)
	if err != nil {
		return err
	}
	var toks [3]hop // client, protocol, cipher
	for i := range toks {
		if p >= n || line[p] != ' ' || p+1 >= n {
			return newError(FormatSSLRequest, ErrTruncated, [3]string{"client", "tls_protocol", "tls_cipher"}[i], "missing", nil)
		}
		e := tokenEnd(line, p+1)
		toks[i] = hop{p + 1, e}
		p = e
	}
	if p+1 >= n {
		return newError(FormatSSLRequest, ErrTruncated, "request", "missing", nil)
	}
	rs, re, p, err := quoted(line, p+1, "request")
	if err != nil {
		return err
	}
	d.request(line, rs, re, r)
	if p+1 >= n || line[p] != ' ' {
		return newError(FormatSSLRequest, ErrTruncated, "bytes", "missing", nil)
	}
	size, ok := parseSize(line[p+1 : tokenEnd(line, p+1)])
	if !ok {
		return newError(FormatSSLRequest, ErrMalformed, "bytes", "not a number", line[p+1:tokenEnd(line, p+1)])
	}
	r.Bytes = size
	d.tab.add(tTLSProtocol, toks[1].start, toks[1].end, decVerbatim)
	d.tab.add(tTLSCipher, toks[2].start, toks[2].end, decVerbatim)
	return d.client(line, toks[0], hop{-1, -1})
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
