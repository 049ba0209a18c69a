package traffic

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Hit is one clickstream hit. Its JSON keys are the ones
// records.ClickstreamDecoder reads.
type Hit struct {
	IP        string
	UserAgent string
	Referer   string
	SessionID string
	Time      time.Time
	Path      string
	Status    int   // 0 = unknown, omitted
	Bytes     int64 // omitted when Status is 0
	Host      string
	Method    string
	Event     string
}

// AppendJSON appends h as one JSON object, with a fixed key order, and
// returns the extended slice. Strings are escaped so that any input,
// invalid UTF-8 included, yields valid JSON.
func (h *Hit) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"ip":`...)
	dst = appendString(dst, h.IP)
	dst = append(dst, `,"user_agent":`...)
	dst = appendString(dst, h.UserAgent)
	dst = append(dst, `,"referer":`...)
	dst = appendString(dst, h.Referer)
	dst = append(dst, `,"session_id":`...)
	dst = appendString(dst, h.SessionID)
	dst = append(dst, `,"timestamp":"`...)
	dst = h.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","path":`...)
	dst = appendString(dst, h.Path)
	if h.Status != 0 {
		dst = append(dst, `,"status":`...)
		dst = strconv.AppendInt(dst, int64(h.Status), 10)
		dst = append(dst, `,"bytes":`...)
		dst = strconv.AppendInt(dst, h.Bytes, 10)
	}
	dst = append(dst, `,"host":`...)
	dst = appendString(dst, h.Host)
	if h.Method != "" {
		dst = append(dst, `,"method":`...)
		dst = appendString(dst, h.Method)
	}
	dst = append(dst, `,"event":`...)
	dst = appendString(dst, h.Event)
	return append(dst, '}')
}

// Order is one e-commerce order line. Its JSON keys are the ones
// records.OrderJSONDecoder reads.
type Order struct {
	InvoiceNo   string
	StockCode   string
	Description string
	Quantity    int64
	Time        time.Time
	UnitPrice   float64
	CustomerID  string // "" = guest, written as null
	Country     string
}

// AppendJSON appends o as one JSON object and returns the extended slice.
func (o *Order) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"invoice_no":`...)
	dst = appendString(dst, o.InvoiceNo)
	dst = append(dst, `,"stock_code":`...)
	dst = appendString(dst, o.StockCode)
	dst = append(dst, `,"description":`...)
	dst = appendString(dst, o.Description)
	dst = append(dst, `,"quantity":`...)
	dst = strconv.AppendInt(dst, o.Quantity, 10)
	dst = append(dst, `,"invoice_date":"`...)
	dst = o.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","unit_price":`...)
	dst = strconv.AppendFloat(dst, o.UnitPrice, 'f', -1, 64)
	dst = append(dst, `,"customer_id":`...)
	if o.CustomerID == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, o.CustomerID)
	}
	dst = append(dst, `,"country":`...)
	dst = appendString(dst, o.Country)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Control characters, quotes and
// backslashes are escaped, invalid UTF-8 becomes U+FFFD, and U+2028/2029
// are escaped so the payload is also valid JavaScript.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// KeyMode says which field becomes a record's Kinesis partition key.
type KeyMode uint8

// Partition key modes. With KeyIP every client IP lives on one shard, which
// makes the consumer's global top-N merge exact.
const (
	KeyIP KeyMode = iota
	KeySession
	KeyCustomer
	KeyRandom
)

var keyModeNames = [...]string{KeyIP: "ip", KeySession: "session", KeyCustomer: "customer", KeyRandom: "random"}

// String returns the flag spelling of m.
func (m KeyMode) String() string {
	if int(m) < len(keyModeNames) {
		return keyModeNames[m]
	}
	return "unknown"
}

// ParseKeyMode reads ip, session, customer or random.
func ParseKeyMode(s string) (KeyMode, error) {
	for i, n := range keyModeNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return KeyMode(i), nil
		}
	}
	return 0, fmt.Errorf("partition key %q: want one of ip, session, customer, random", s)
}

// Keys are the fields a partition key can come from.
type Keys struct {
	IP, Session, Customer string
}

// maxKeyBytes keeps a key within Kinesis' 256-character limit whatever its
// encoding; a longer field is garbage, not an identity worth keeping.
const maxKeyBytes = 256

// Key returns the partition key for k: the field m names, or a random key
// from rnd when that field is empty (orders have no IP, bots no session)
// or too long to be a partition key.
func (m KeyMode) Key(k Keys, rnd func() uint64) string {
	var v string
	switch m {
	case KeyIP:
		v = k.IP
	case KeySession:
		v = k.Session
	case KeyCustomer:
		v = k.Customer
	}
	if v != "" && len(v) <= maxKeyBytes {
		return v
	}
	var b [8]byte
	x := rnd()
	for i := range b {
		b[i] = byte(x >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}
