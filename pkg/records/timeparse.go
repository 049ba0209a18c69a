package records

import "time"

// Timestamps are parsed by hand: time.Parse costs more than the rest of a
// combined-log line together, and time.FixedZone allocates a Location per
// call for offsets that are not whole hours (+0330). zoneCache keeps the
// few offsets a shard sees.

// zoneCache maps UTC offsets (seconds) to Locations. It is tiny and
// per-decoder: a shard's records come from a handful of zones.
type zoneCache struct {
	offs [8]int
	locs [8]*time.Location
	n    int
	next int
}

func (z *zoneCache) get(off int) *time.Location {
	if off == 0 {
		return time.UTC
	}
	for i := 0; i < z.n; i++ {
		if z.offs[i] == off {
			return z.locs[i]
		}
	}
	loc := time.FixedZone("", off)
	i := z.next
	z.offs[i], z.locs[i] = off, loc
	z.next = (z.next + 1) % len(z.offs)
	if z.n < len(z.offs) {
		z.n++
	}
	return loc
}

// civil is a calendar date-time before validation.
type civil struct {
	year, month, day, hour, min, sec, nsec int
}

// valid rejects what time.Date would silently normalise (31 Feb, 25:00)
// and years before 1970: no web log or order predates the epoch, and
// year 1 would even collide with the zero Time ("no timestamp").
func (c *civil) valid() bool {
	return c.year >= 1970 && c.year <= 9999 &&
		c.month >= 1 && c.month <= 12 &&
		c.day >= 1 && c.day <= daysIn(c.month, c.year) &&
		c.hour >= 0 && c.hour <= 23 &&
		c.min >= 0 && c.min <= 59 &&
		c.sec >= 0 && c.sec <= 59
}

// time returns c, a wall time at UTC offset off seconds, as a Time in
// loc. It computes Unix seconds directly (c is valid, so time.Date's
// normalisation and zone lookup are wasted work on the hot path).
func (c *civil) time(off int, loc *time.Location) time.Time {
	secs := daysFromCivil(c.year, c.month, c.day)*86400 + int64(c.hour*3600+c.min*60+c.sec) - int64(off)
	return time.Unix(secs, int64(c.nsec)).In(loc)
}

// daysFromCivil counts days from 1970-01-01 to y-m-d in the proleptic
// Gregorian calendar (H. Hinnant's algorithm, for y >= 1).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097 + doe - 719468)
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// digits parses b, all ASCII digits, as a non-negative int; -1 otherwise.
func digits(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// monthAbbr maps "Jan".."Dec" to 1..12, 0 otherwise.
func monthAbbr(b []byte) int {
	if len(b) != 3 {
		return 0
	}
	switch string(b) {
	case "Jan":
		return 1
	case "Feb":
		return 2
	case "Mar":
		return 3
	case "Apr":
		return 4
	case "May":
		return 5
	case "Jun":
		return 6
	case "Jul":
		return 7
	case "Aug":
		return 8
	case "Sep":
		return 9
	case "Oct":
		return 10
	case "Nov":
		return 11
	case "Dec":
		return 12
	}
	return 0
}

// parseCLFTime parses the inside of an access-log timestamp,
// "22/Jan/2019:03:56:14 +0330", keeping the zone offset.
func parseCLFTime(b []byte, z *zoneCache) (time.Time, bool) {
	if len(b) != 26 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[14] != ':' || b[17] != ':' || b[20] != ' ' {
		return time.Time{}, false
	}
	c := civil{
		day:   digits(b[0:2]),
		month: monthAbbr(b[3:6]),
		year:  digits(b[7:11]),
		hour:  digits(b[12:14]),
		min:   digits(b[15:17]),
		sec:   digits(b[18:20]),
	}
	off, ok := parseOffset(b[21:26])
	if !ok || !c.valid() {
		return time.Time{}, false
	}
	return c.time(off, z.get(off)), true
}

// parseOffset parses "+hhmm" or "+hh:mm" into seconds east of UTC.
func parseOffset(b []byte) (int, bool) {
	var h, m int
	switch {
	case len(b) == 5:
		h, m = digits(b[1:3]), digits(b[3:5])
	case len(b) == 6 && b[3] == ':':
		h, m = digits(b[1:3]), digits(b[4:6])
	default:
		return 0, false
	}
	if h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, false
	}
	off := (h*60 + m) * 60
	switch b[0] {
	case '+':
		return off, true
	case '-':
		return -off, true
	}
	return 0, false
}

// parseDate parses "2010-12-01" into c.
func parseDate(b []byte, c *civil) bool {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return false
	}
	c.year, c.month, c.day = digits(b[0:4]), digits(b[5:7]), digits(b[8:10])
	return true
}

// parseClock parses "08:26:00" into c.
func parseClock(b []byte, c *civil) bool {
	if len(b) != 8 || b[2] != ':' || b[5] != ':' {
		return false
	}
	c.hour, c.min, c.sec = digits(b[0:2]), digits(b[3:5]), digits(b[6:8])
	return true
}

// parseRFC3339 parses "2006-01-02T15:04:05[.frac](Z|+hh:mm)". A space is
// accepted for the T (RFC 3339 allows it), and a missing zone is read as
// UTC so "2010-12-01 08:26:00" (the Online Retail InvoiceDate) parses too.
func parseRFC3339(b []byte, z *zoneCache) (time.Time, bool) {
	var c civil
	if len(b) < 19 || !parseDate(b[:10], &c) {
		return time.Time{}, false
	}
	if t := b[10]; t != 'T' && t != 't' && t != ' ' {
		return time.Time{}, false
	}
	if !parseClock(b[11:19], &c) {
		return time.Time{}, false
	}
	rest := b[19:]
	if len(rest) > 0 && (rest[0] == '.' || rest[0] == ',') {
		i := 1
		scale := 100000000
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			c.nsec += int(rest[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == 1 {
			return time.Time{}, false
		}
		rest = rest[i:]
	}
	off := 0
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	default:
		var ok bool
		if off, ok = parseOffset(rest); !ok {
			return time.Time{}, false
		}
	}
	if !c.valid() {
		return time.Time{}, false
	}
	return c.time(off, z.get(off)), true
}

// parseUSDateTime parses the InvoiceDate of the original UCI export,
// "12/1/2010 8:26" (M/D/YYYY H:MM, optional :SS), as UTC.
func parseUSDateTime(b []byte) (time.Time, bool) {
	var c civil
	var ok bool
	if c.month, b, ok = numUntil(b, '/'); !ok {
		return time.Time{}, false
	}
	if c.day, b, ok = numUntil(b, '/'); !ok {
		return time.Time{}, false
	}
	if c.year, b, ok = numUntil(b, ' '); !ok {
		return time.Time{}, false
	}
	if c.hour, b, ok = numUntil(b, ':'); !ok {
		return time.Time{}, false
	}
	if c.min, b, ok = numUntil(b, ':'); !ok {
		return time.Time{}, false
	}
	if len(b) > 0 {
		if c.sec = digits(b); len(b) != 2 {
			return time.Time{}, false
		}
	}
	if !c.valid() {
		return time.Time{}, false
	}
	return c.time(0, time.UTC), true
}

// numUntil parses 1-4 digits up to sep (or the end when sep is absent)
// and returns the remainder after sep.
func numUntil(b []byte, sep byte) (int, []byte, bool) {
	i := 0
	for i < len(b) && b[i] != sep {
		i++
	}
	if i == 0 || i > 4 {
		return 0, nil, false
	}
	n := digits(b[:i])
	if n < 0 {
		return 0, nil, false
	}
	if i < len(b) {
		i++
	}
	return n, b[i:], true
}
