package records

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// cfCol identifies a CloudFront column the decoder uses.
type cfCol int8

const (
	cfNone cfCol = iota - 1
	cfDate
	cfTime
	cfTimestamp // real-time logs: epoch seconds with millis
	cfEdge
	cfBytes
	cfIP
	cfMethod
	cfStem
	cfStatus
	cfReferer
	cfUA
	cfQuery
	cfProtoVersion
	cfHost
	cfResult
	cfResponseResult
	cfCSBytes
	cfTimeTaken
	cfXFF
	cfSSLProtocol
	cfSSLCipher
	cfNumCols
)

// cfColumns maps column names to the columns the decoder uses. The
// real-time log spellings (cs-user-agent, ...) are accepted too, so a
// headerless real-time log stream works after SetFields.
var cfColumns = map[string]cfCol{
	"date":                        cfDate,
	"time":                        cfTime,
	"timestamp":                   cfTimestamp,
	"x-edge-location":             cfEdge,
	"sc-bytes":                    cfBytes,
	"c-ip":                        cfIP,
	"cs-method":                   cfMethod,
	"cs-uri-stem":                 cfStem,
	"sc-status":                   cfStatus,
	"cs(Referer)":                 cfReferer,
	"cs-referer":                  cfReferer,
	"cs(User-Agent)":              cfUA,
	"cs-user-agent":               cfUA,
	"cs-uri-query":                cfQuery,
	"cs-protocol-version":         cfProtoVersion,
	"cs(Host)":                    cfHost,
	"cs-host":                     cfHost,
	"x-edge-result-type":          cfResult,
	"x-edge-response-result-type": cfResponseResult,
	"cs-bytes":                    cfCSBytes,
	"time-taken":                  cfTimeTaken,
	"x-forwarded-for":             cfXFF,
	"ssl-protocol":                cfSSLProtocol,
	"ssl-cipher":                  cfSSLCipher,
}

// cfColNames names the columns in errors.
var cfColNames = [cfNumCols]string{"date", "time", "timestamp", "x-edge-location", "sc-bytes", "c-ip",
	"cs-method", "cs-uri-stem", "sc-status", "cs(Referer)", "cs(User-Agent)", "cs-uri-query", "cs-protocol-version",
	"cs(Host)", "x-edge-result-type", "x-edge-response-result-type", "cs-bytes", "time-taken", "x-forwarded-for",
	"ssl-protocol", "ssl-cipher"}

// CloudFrontStandardFields is the column order of CloudFront standard
// logs (version 1.0) as AWS documents it today; it applies until a
// "#Fields" header says otherwise. Older logs with fewer trailing
// columns decode with it too.
var CloudFrontStandardFields = []string{
	"date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)", "cs-uri-stem",
	"sc-status", "cs(Referer)", "cs(User-Agent)", "cs-uri-query", "cs(Cookie)", "x-edge-result-type",
	"x-edge-request-id", "x-host-header", "cs-protocol", "cs-bytes", "time-taken", "x-forwarded-for",
	"ssl-protocol", "ssl-cipher", "x-edge-response-result-type", "cs-protocol-version", "fle-status",
	"fle-encrypted-fields", "c-port", "time-to-first-byte", "x-edge-detailed-result-type",
	"sc-content-type", "sc-content-len", "sc-range-start", "sc-range-end",
}

// maxCFFields bounds the columns a layout may have (33 today).
const maxCFFields = 96

// cfLayout says which line field feeds which column.
type cfLayout struct {
	byIdx [maxCFFields]cfCol
	// need is the field count a line must reach: one past the last
	// mapped column.
	need int
}

// defaultCFLayout applies until a "#Fields" header is seen (building it
// from the standard list cannot fail; TestDefaultCloudFrontLayout checks).
var defaultCFLayout, _ = buildLayout(CloudFrontStandardFields)

// buildLayout maps column names to the columns the decoder uses; false
// when they lack c-ip or a time (date and time, or timestamp).
func buildLayout(names []string) (cfLayout, bool) {
	var l cfLayout
	for i := range l.byIdx {
		l.byIdx[i] = cfNone
	}
	var seen [cfNumCols]bool
	for i, name := range names {
		if i == maxCFFields {
			break
		}
		if c, ok := cfColumns[name]; ok {
			l.byIdx[i] = c
			seen[c] = true
			l.need = i + 1
		}
	}
	hasTime := (seen[cfDate] && seen[cfTime]) || seen[cfTimestamp]
	return l, hasTime && seen[cfIP]
}

// CloudFrontDecoder reads CloudFront standard access logs (W3C format,
// tab-separated). It is stateful per shard: a "#Fields:" record sets the
// column order of the records after it and, like "#Version:" and other
// '#' lines, is reported as ErrHeader. Before any header the standard
// version 1.0 order (CloudFrontStandardFields) applies. Mapping:
//
//   - date + time (UTC): Time; c-ip: ClientIP; cs-method: Method.
//   - cs-uri-stem, plus "?" and cs-uri-query when there is a query: Path.
//   - sc-status: Status ("000", a client that went away, is 0).
//   - sc-bytes: Bytes; cs-protocol-version: Protocol.
//   - cs(Host), the distribution's domain: Host; x-edge-location (e.g.
//     FRA53): Edge; x-edge-result-type and x-edge-response-result-type:
//     EdgeResult, EdgeResponseResult; cs-bytes: RequestBytes;
//     time-taken (seconds, millisecond precision): TimeTaken;
//     ssl-protocol, ssl-cipher: TLSProtocol, TLSCipher.
//   - x-forwarded-for: ForwardedFor; c-ip is the peer and the decoder's
//     ClientPolicy picks ClientIP, as for access logs.
//   - cs(Referer), cs(User-Agent): Referer, UserAgent; "-" is "". The
//     user agent is percent-decoded until stable (CloudFront encodes it
//     twice: %2520 -> %20 -> space); path and referer are kept encoded,
//     as URLs.
//
// The zero value is ready to use.
type CloudFrontDecoder struct {
	Client ClientPolicy
	layout *cfLayout // nil: defaultCFLayout
	tab    strtab
}

// SetFields sets the column order, as a "#Fields:" header would; use it
// for headerless streams such as CloudFront real-time logs (whose
// "timestamp" column, epoch seconds, replaces date and time).
func (d *CloudFrontDecoder) SetFields(names []string) error {
	l, ok := buildLayout(names)
	if !ok {
		return newError(FormatCloudFront, ErrMalformed, "#Fields", "needs c-ip and date+time or timestamp", []byte(strings.Join(names, " ")))
	}
	d.layout = &l
	return nil
}

// Decode implements Decoder.
func (d *CloudFrontDecoder) Decode(data []byte, r *Record) error {
	line, err := checkPayload(FormatCloudFront, data)
	if err != nil {
		clearDecoded(r)
		return err
	}
	if line[0] == '#' {
		clearDecoded(r)
		return d.header(line)
	}
	startDecode(r)
	d.tab.reset()
	var t time.Time
	if err := d.scan(line, r, &t); err != nil {
		clearDecoded(r)
		return err
	}
	return finishDecode(FormatCloudFront, &d.tab, line, r, t, KindHit)
}

func (d *CloudFrontDecoder) header(line []byte) error {
	const prefix = "#Fields:"
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return ErrHeader // #Version and comments carry nothing we use
	}
	// Header lines are rare; allocating the names is fine.
	names := strings.Fields(string(line[len(prefix):]))
	if err := d.SetFields(names); err != nil {
		return err
	}
	return ErrHeader
}

func (d *CloudFrontDecoder) scan(line []byte, r *Record, tm *time.Time) error {
	layout := d.layout
	if layout == nil {
		layout = &defaultCFLayout
	}
	var spans [cfNumCols][2]int
	var seen [cfNumCols]bool
	idx, start := 0, 0
	for start <= len(line) && idx < layout.need {
		end := bytes.IndexByte(line[start:], '\t')
		if end < 0 {
			end = len(line)
		} else {
			end += start
		}
		if c := layout.byIdx[idx]; c != cfNone {
			spans[c] = [2]int{start, end}
			seen[c] = true
		}
		idx++
		start = end + 1
	}
	if idx < layout.need {
		return newError(FormatCloudFront, ErrTruncated, "", "line has "+strconv.Itoa(idx)+" fields, want at least "+strconv.Itoa(layout.need), nil)
	}
	field := func(c cfCol) []byte { return line[spans[c][0]:spans[c][1]] }

	if seen[cfTimestamp] {
		t, ok := parseEpochSeconds(field(cfTimestamp))
		if !ok {
			return cfErr(ErrMalformed, cfTimestamp, "bad time", field(cfTimestamp))
		}
		*tm = t
	} else {
		var c civil
		if !parseDate(field(cfDate), &c) {
			return cfErr(ErrMalformed, cfDate, "bad date", field(cfDate))
		}
		if !parseClock(field(cfTime), &c) || !c.valid() {
			return cfErr(ErrMalformed, cfTime, "bad time", field(cfTime))
		}
		*tm = c.time(0, time.UTC)
	}

	if v := field(cfIP); len(v) == 0 || isDash(v) {
		return cfErr(ErrMalformed, cfIP, "empty", nil)
	} else if _, ok := parseIPBytes(v); !ok {
		return cfErr(ErrMalformed, cfIP, "not an IP address", v)
	}
	if seen[cfXFF] && !isDash(field(cfXFF)) {
		d.addText(tForwardedFor, spans[cfXFF], line, decVerbatim)
	}
	xff := hop{-1, -1}
	if seen[cfXFF] && !isDash(field(cfXFF)) && len(field(cfXFF)) > 0 {
		xff = hop{spans[cfXFF][0], spans[cfXFF][1]}
	}
	c, ok := d.Client.pickForwarded(line, hop{spans[cfIP][0], spans[cfIP][1]}, xff)
	if !ok {
		return cfErr(ErrMalformed, cfIP, "not an IP address", field(cfIP))
	}
	d.tab.add(tClientIP, c.start, c.end, decVerbatim)
	if seen[cfCSBytes] {
		n, ok := parseSize(field(cfCSBytes))
		if !ok {
			return cfErr(ErrMalformed, cfCSBytes, "not a number", field(cfCSBytes))
		}
		r.RequestBytes = n
	}
	if seen[cfTimeTaken] && !isDash(field(cfTimeTaken)) {
		d, ok := parseSeconds(field(cfTimeTaken))
		if !ok {
			return cfErr(ErrMalformed, cfTimeTaken, "not a duration in seconds", field(cfTimeTaken))
		}
		r.TimeTaken = d
	}
	if seen[cfStatus] {
		st, ok := parseStatus(field(cfStatus))
		if !ok {
			return statusErr(FormatCloudFront, field(cfStatus))
		}
		r.Status = st
	}
	if seen[cfBytes] {
		n, ok := parseSize(field(cfBytes))
		if !ok {
			return cfErr(ErrMalformed, cfBytes, "not a number", field(cfBytes))
		}
		r.Bytes = n
	}
	d.addText(tEdge, spans[cfEdge], line, decVerbatim)
	d.addText(tHost, spans[cfHost], line, decVerbatim)
	d.addText(tEdgeResult, spans[cfResult], line, decVerbatim)
	d.addText(tEdgeResponseResult, spans[cfResponseResult], line, decVerbatim)
	d.addText(tTLSProtocol, spans[cfSSLProtocol], line, decVerbatim)
	d.addText(tTLSCipher, spans[cfSSLCipher], line, decVerbatim)
	d.addText(tMethod, spans[cfMethod], line, decVerbatim)
	d.addText(tProtocol, spans[cfProtoVersion], line, decVerbatim)
	d.addText(tReferer, spans[cfReferer], line, decVerbatim)
	uaDec := decVerbatim
	if bytes.IndexByte(field(cfUA), '%') >= 0 {
		uaDec = decPercent
	}
	d.addText(tUserAgent, spans[cfUA], line, uaDec)
	if q := field(cfQuery); len(q) > 0 && !isDash(q) && seen[cfStem] {
		d.tab.addJoin(tPath, spans[cfStem][0], spans[cfStem][1], spans[cfQuery][0], spans[cfQuery][1])
	} else {
		d.addText(tPath, spans[cfStem], line, decVerbatim)
	}
	return nil
}

// addText registers a column's text; "-" (W3C for "no value") is "".
func (d *CloudFrontDecoder) addText(f textField, sp [2]int, line []byte, dec textDec) {
	if isDash(line[sp[0]:sp[1]]) {
		return
	}
	d.tab.add(f, sp[0], sp[1], dec)
}

func isDash(b []byte) bool { return len(b) == 1 && b[0] == '-' }

// parseEpochSeconds parses "1591725813.034" (real-time log timestamps).
func parseEpochSeconds(b []byte) (time.Time, bool) {
	secPart, frac := b, []byte(nil)
	if i := bytes.IndexByte(b, '.'); i >= 0 {
		secPart, frac = b[:i], b[i+1:]
	}
	sec, ok := parseUint(secPart)
	if !ok || sec > maxEpochSeconds || len(frac) > 9 {
		return time.Time{}, false
	}
	nsec := 0
	for i, scale := 0, 100000000; i < len(frac); i, scale = i+1, scale/10 {
		if frac[i] < '0' || frac[i] > '9' {
			return time.Time{}, false
		}
		nsec += int(frac[i]-'0') * scale
	}
	return time.Unix(int64(sec), int64(nsec)).UTC(), true
}

// maxEpochSeconds is the start of year 10000: later is garbage.
const maxEpochSeconds = 253402300800

func cfErr(kind error, c cfCol, reason string, v []byte) error {
	return newError(FormatCloudFront, kind, cfColNames[c], reason, v)
}
