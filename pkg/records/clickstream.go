package records

import (
	"time"
)

// DefaultEvent is the Event of a clickstream hit whose payload names none.
const DefaultEvent = "pageview"

// ClickstreamDecoder reads one JSON clickstream hit per record:
//
//	{"ip":"203.0.113.9","user_agent":"Mozilla/5.0 ...","referer":"https://example.com/",
//	 "session_id":"s-81f2","timestamp":"2026-11-22T09:41:07.120Z","path":"/cart?id=7",
//	 "status":200,"bytes":5120,"host":"shop.example.com","event":"add_to_cart","method":"GET"}
//
// into a KindHit Record (ip -> ClientIP, user_agent -> UserAgent, the
// others by name). timestamp is an RFC 3339 string or epoch milliseconds
// (a number, or a string of digits). status and bytes are integers, also
// accepted as strings of digits; session_id may be a number. Every key is
// optional and null means absent, but at least one known key must be
// present; unknown keys (of any type) are ignored, duplicate keys keep
// the last value. event defaults to DefaultEvent.
//
// The zero value is ready to use.
type ClickstreamDecoder struct {
	zones zoneCache
	tab   strtab
}

// Decode implements Decoder.
func (d *ClickstreamDecoder) Decode(data []byte, r *Record) error {
	b, err := checkPayload(FormatClickstream, data)
	if err != nil {
		clearDecoded(r)
		return err
	}
	startDecode(r)
	d.tab.reset()
	var t time.Time
	if err := d.scan(b, r, &t); err != nil {
		clearDecoded(r)
		return err
	}
	if err := finishDecode(FormatClickstream, &d.tab, b, r, t, KindHit); err != nil {
		return err
	}
	if r.Event == "" {
		r.Event = DefaultEvent
	}
	return nil
}

func (d *ClickstreamDecoder) scan(b []byte, r *Record, tm *time.Time) error {
	const f = FormatClickstream
	var it objIter
	it.init(b)
	known := false
	var keyBuf [32]byte
	for it.next() {
		key := it.key
		if it.keyEsc {
			key = appendUnJSON(keyBuf[:0], key)
		}
		v := &it.val
		var err error
		switch string(key) {
		case "ip":
			err = jsonIP(&d.tab, f, b, v)
		case "user_agent":
			err = jsonText(&d.tab, f, b, v, tUserAgent, false)
		case "referer":
			err = jsonText(&d.tab, f, b, v, tReferer, false)
		case "session_id":
			err = jsonText(&d.tab, f, b, v, tSessionID, true)
		case "path":
			err = jsonText(&d.tab, f, b, v, tPath, false)
		case "host":
			err = jsonText(&d.tab, f, b, v, tHost, false)
		case "event":
			err = jsonText(&d.tab, f, b, v, tEvent, false)
		case "method":
			err = jsonText(&d.tab, f, b, v, tMethod, false)
		case "timestamp":
			err = d.timestamp(b, v, tm)
		case "status":
			var n int64
			if n, err = jsonInt(f, b, v, "status"); err == nil {
				if n != 0 && (n < 100 || n > 599) {
					err = newError(f, ErrMalformed, "status", "not an HTTP status", b[v.start:v.end])
				}
				r.Status = int(n)
			}
		case "bytes":
			if r.Bytes, err = jsonInt(f, b, v, "bytes"); err == nil && r.Bytes < 0 {
				err = newError(f, ErrMalformed, "bytes", "negative", b[v.start:v.end])
			}
		default:
			continue
		}
		if err != nil {
			return err
		}
		known = true
	}
	if it.err != nil {
		return it.decodeError(f)
	}
	if !known {
		return newError(f, ErrMalformed, "", "no clickstream fields (ip, path, event, ...)", nil)
	}
	return nil
}

func (d *ClickstreamDecoder) timestamp(b []byte, v *jsonVal, tm *time.Time) error {
	text := b[v.start:v.end]
	switch {
	case v.kind == jsonNull:
		*tm = time.Time{}
		return nil
	case v.kind == jsonNumber || (v.kind == jsonString && !v.esc && isDigits(text)):
		t, ok := epochMillis(text)
		if !ok {
			return newError(FormatClickstream, ErrMalformed, "timestamp", "not epoch milliseconds", text)
		}
		*tm = t
		return nil
	case v.kind == jsonString && !v.esc:
		t, ok := parseRFC3339(text, &d.zones)
		if !ok {
			return newError(FormatClickstream, ErrMalformed, "timestamp", "not RFC 3339", text)
		}
		*tm = t
		return nil
	}
	return newError(FormatClickstream, ErrMalformed, "timestamp", "want a string or number", text)
}

// epochMillis parses a non-negative integer count of milliseconds.
func epochMillis(b []byte) (time.Time, bool) {
	ms, ok := parseUint(b)
	if !ok || ms > maxEpochSeconds*1000 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(ms)).UTC(), true
}

func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// jsonText registers a string member as the text of field tf. null leaves
// it unset; numbers are taken as written when numOK (ids).
func jsonText(t *strtab, f Format, b []byte, v *jsonVal, tf textField, numOK bool) error {
	switch {
	case v.kind == jsonString:
		if v.end-v.start == 1 && b[v.start] == '-' && (tf == tReferer || tf == tUserAgent) {
			t.add(tf, 0, 0, decVerbatim) // "-" means none, as in access logs
			return nil
		}
		dec := decVerbatim
		if v.esc {
			dec = decJSON
		}
		t.add(tf, v.start, v.end, dec)
		return nil
	case v.kind == jsonNull:
		return nil
	case v.kind == jsonNumber && numOK:
		t.add(tf, v.start, v.end, decVerbatim)
		return nil
	}
	return newError(f, ErrMalformed, jsonFieldName(f, tf), "want a string", b[v.start:v.end])
}

// jsonIP reads the client address: an IP address string (no escapes, an
// address never needs them) or null. Anything else is an error rather
// than a ClientIP that is not an address.
func jsonIP(t *strtab, f Format, b []byte, v *jsonVal) error {
	switch {
	case v.kind == jsonNull || v.kind == jsonString && v.start == v.end:
		return nil
	case v.kind != jsonString:
		return newError(f, ErrMalformed, jsonFieldName(f, tClientIP), "want a string", b[v.start:v.end])
	}
	if _, ok := parseIPBytes(b[v.start:v.end]); !ok || v.esc {
		return newError(f, ErrMalformed, jsonFieldName(f, tClientIP), "not an IP address", b[v.start:v.end])
	}
	t.add(tClientIP, v.start, v.end, decVerbatim)
	return nil
}

// jsonInt reads an integer member: a JSON integer or a string of digits
// (with an optional sign). null is 0.
func jsonInt(f Format, b []byte, v *jsonVal, field string) (int64, error) {
	text := b[v.start:v.end]
	switch {
	case v.kind == jsonNull:
		return 0, nil
	case v.kind == jsonNumber || (v.kind == jsonString && !v.esc):
		if n, ok := parseInt(text); ok {
			return n, nil
		}
		return 0, newError(f, ErrMalformed, field, "not an integer", text)
	}
	return 0, newError(f, ErrMalformed, field, "want an integer", text)
}

// jsonFieldName is the JSON key of a text field, for errors.
func jsonFieldName(f Format, tf textField) string {
	if tf == tClientIP && f == FormatClickstream {
		return "ip"
	}
	return textFieldNames[tf]
}
