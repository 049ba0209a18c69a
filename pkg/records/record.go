package records

import "time"

// Kind says which family of fields a Record carries.
type Kind uint8

const (
	// KindUnknown is the zero Kind: the record was not decoded.
	KindUnknown Kind = iota
	// KindHit is one web request: an access-log line, a CloudFront log
	// record or a clickstream hit.
	KindHit
	// KindOrder is one e-commerce order line.
	KindOrder
	// KindEvent is a generic JSON event (format json): a series Key and
	// numeric Values.
	KindEvent
)

// MaxValues is the number of numeric values a Record carries (format
// json, JSONFields.Values).
const MaxValues = 4

// String returns the lower-case name of k.
func (k Kind) String() string {
	switch k {
	case KindHit:
		return "hit"
	case KindOrder:
		return "order"
	case KindEvent:
		return "event"
	default:
		return "unknown"
	}
}

// Meta locates a record in the stream. The consumer fills it from the
// Kinesis record; decoders leave it alone.
type Meta struct {
	ShardID        string
	SequenceNumber string
	// SubSequence is the index of a user record inside a KPL aggregate,
	// 0 for plain records. (SequenceNumber, SubSequence) is unique.
	SubSequence  int64
	PartitionKey string
	// ArrivalTime is Kinesis' ApproximateArrivalTimestamp.
	ArrivalTime time.Time
}

// Record is the one decoded model every processor sees. Hits and orders
// share it (a flat struct, so decoding allocates nothing per field); Kind
// says which fields are meaningful. String fields may alias the raw
// payload and must be copied (strings.Clone) by anything that keeps them
// beyond the batch.
type Record struct {
	Kind Kind
	// Time is the event time from the payload; zero when the payload had
	// none. Use EventTime for windowing.
	Time time.Time
	Meta Meta

	// Web hit fields.
	// ClientIP is always an IPv4 or IPv6 address as written, never a host
	// name or a list: the socket peer, or the hop chosen from
	// ForwardedFor (see ClientPolicy).
	ClientIP  string
	Method    string
	Path      string // request target, query string included
	Protocol  string
	Status    int   // 0 when unknown
	Bytes     int64 // response bytes, 0 for "-"
	Referer   string
	UserAgent string
	Host      string // virtual host; for CloudFront the distribution's domain (cs(Host))
	SessionID string
	// ForwardedFor is the X-Forwarded-For list as logged ("a, b"), "" when
	// the line has none or "-".
	ForwardedFor string
	// TLSProtocol and TLSCipher are the connection's TLS version and
	// cipher suite, where the log has them (mod_ssl's ssl_request_log).
	TLSProtocol string
	TLSCipher   string
	// CloudFront fields: the edge location (x-edge-location, e.g. FRA53),
	// how the edge served the request (x-edge-result-type: Hit, Miss,
	// RefreshHit, Error, ...) and what it returned
	// (x-edge-response-result-type), the request's size (cs-bytes) and the
	// time the edge took (time-taken).
	Edge               string
	EdgeResult         string
	EdgeResponseResult string
	RequestBytes       int64
	TimeTaken          time.Duration
	// Event names a clickstream event ("pageview" when the payload does not say).
	Event string

	// Order fields.
	InvoiceNo   string
	StockCode   string
	Description string
	Quantity    int64
	UnitPrice   float64
	CustomerID  string // "" when the order has none
	Country     string

	// Generic event fields (KindEvent). The values are inline, not a
	// slice: they cost no allocation and no pointer, and other formats
	// only reset NumValues.
	Key       string             // the series key ("" when not configured)
	Values    [MaxValues]float64 // Values[:NumValues] are meaningful
	NumValues uint8
}

// ValueSlice returns the meaningful values, r.Values[:r.NumValues]. The
// slice aliases r.
func (r *Record) ValueSlice() []float64 { return r.Values[:min(int(r.NumValues), MaxValues)] }

// EventTime returns the time windows are computed on: the payload's own
// timestamp, else the Kinesis arrival time.
func (r *Record) EventTime() time.Time {
	if !r.Time.IsZero() {
		return r.Time
	}
	return r.Meta.ArrivalTime
}

// Reset clears r for reuse, keeping nothing from the previous record.
func (r *Record) Reset() { *r = Record{} }
