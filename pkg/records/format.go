package records

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Format names a payload format (config value SHARDWATCH_FORMAT).
type Format string

// The formats a Decoder reads.
const (
	FormatAuto     Format = "auto"     // sniff every record
	FormatCombined Format = "combined" // Apache/nginx combined or common log line, any layout below
	// The access-log layouts FormatCombined recognises, each also a
	// format of its own that accepts only that layout.
	FormatVhostCombined Format = "vhost-combined" // Apache vhost_combined, nginx $host first
	FormatXFFCombined   Format = "xff-combined"   // nginx $http_x_forwarded_for first
	FormatSSLRequest    Format = "ssl-request"    // mod_ssl ssl_request_log
	FormatCloudFront    Format = "cloudfront"     // CloudFront standard (W3C) access log line
	FormatClickstream   Format = "clickstream"    // JSON clickstream hit
	FormatOrdersCSV     Format = "orders-csv"     // Online Retail CSV row
	FormatOrdersJSON    Format = "orders-json"    // Online Retail row as JSON
	FormatJSON          Format = "json"           // generic JSON event (JSONFields)
)

// ErrUnknownFormat is returned by ParseFormat and NewDecoder for a name
// that is not one of the Format constants.
var ErrUnknownFormat = errors.New("unknown record format")

// Formats lists every valid Format, auto first (for help texts).
func Formats() []Format {
	return []Format{FormatAuto, FormatCombined, FormatVhostCombined, FormatXFFCombined, FormatSSLRequest,
		FormatCloudFront, FormatClickstream, FormatOrdersCSV, FormatOrdersJSON, FormatJSON}
}

// ParseFormat maps a config value to a Format, ignoring case and
// surrounding space. The empty string means FormatAuto, the default.
func ParseFormat(s string) (Format, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return FormatAuto, nil
	}
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, 0, len(Formats()))
	for _, f := range Formats() {
		names = append(names, string(f))
	}
	return "", fmt.Errorf("%w %q (want one of %s)", ErrUnknownFormat, s, strings.Join(names, ", "))
}

// UnmarshalText lets config decoders (yaml.v3, flag.TextVar) read a
// Format and reject unknown names at load time.
func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Decoder decodes one Kinesis record payload into a caller-owned Record.
//
// Decode resets every field of r except r.Meta, then fills it. Strings in
// r share one backing array per record (copy them with strings.Clone to
// keep them past the batch); data is not retained, unless the decoder
// aliases payloads (see PayloadAliaser). On error r has
// KindUnknown. The error is ErrHeader for header records (skip them) or a
// *DecodeError. Decode never panics.
//
// A Decoder is per shard: CloudFront decoding is stateful (a "#Fields"
// record changes the column order of the records after it) and decoders
// keep small caches. It is not safe for concurrent use.
type Decoder interface {
	Decode(data []byte, r *Record) error
}

// Options configure decoders beyond their format.
type Options struct {
	// Client picks Record.ClientIP of access-log lines.
	Client ClientPolicy
	// JSON names the members FormatJSON reads; zero means DefaultJSONFields.
	JSON JSONFields
}

// NewDecoder returns a fresh per-shard Decoder for f with default Options.
// FormatJSON gets DefaultJSONFields; use NewJSONDecoder for others.
func NewDecoder(f Format) (Decoder, error) { return NewDecoderWith(f, Options{}) }

// NewDecoderWith returns a fresh per-shard Decoder for f.
func NewDecoderWith(f Format, o Options) (Decoder, error) {
	switch f {
	case FormatAuto:
		d := &AutoDecoder{}
		d.combined.Client = o.Client
		return d, nil
	case FormatCombined:
		return &CombinedDecoder{Client: o.Client}, nil
	case FormatVhostCombined, FormatXFFCombined, FormatSSLRequest:
		return &CombinedDecoder{Layout: f, Client: o.Client}, nil
	case FormatCloudFront:
		return &CloudFrontDecoder{}, nil
	case FormatClickstream:
		return &ClickstreamDecoder{}, nil
	case FormatOrdersCSV:
		return &OrderCSVDecoder{}, nil
	case FormatOrdersJSON:
		return &OrderJSONDecoder{}, nil
	case FormatJSON:
		if o.JSON.Values == nil && o.JSON.Key == "" && o.JSON.Time == "" {
			o.JSON = DefaultJSONFields()
		}
		return NewJSONDecoder(o.JSON)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownFormat, string(f))
}

// AutoDecoder sniffs every record and hands it to the matching decoder,
// so one stream may mix formats. The rules, in order, on the payload
// without leading space:
//
//   - '{': JSON; an order when it has an "invoice_no" or "InvoiceNo" key, else a
//     clickstream hit.
//   - '#', or ten or more tabs: a CloudFront line (its header state is
//     kept as with FormatCloudFront).
//   - a first comma-separated field that is digits, a letter then digits
//     (C536379, a cancellation) or "InvoiceNo": an orders CSV row.
//   - anything else: a combined/common access-log line.
//
// The zero value is ready to use.
type AutoDecoder struct {
	combined    CombinedDecoder
	cloudfront  CloudFrontDecoder
	clickstream ClickstreamDecoder
	ordersCSV   OrderCSVDecoder
	ordersJSON  OrderJSONDecoder
}

// Sniff reports the format AutoDecoder would use for data.
func Sniff(data []byte) Format {
	i := 0
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	if i == len(data) {
		return FormatCombined
	}
	switch data[i] {
	case '{':
		if bytes.Contains(data, []byte(`"invoice_no"`)) || bytes.Contains(data, []byte(`"InvoiceNo"`)) {
			return FormatOrdersJSON
		}
		return FormatClickstream
	case '#':
		return FormatCloudFront
	}
	if bytes.Count(data, []byte{'\t'}) >= 10 {
		return FormatCloudFront
	}
	if looksLikeInvoice(data[i:]) {
		return FormatOrdersCSV
	}
	return FormatCombined
}

// looksLikeInvoice reports whether the first CSV field is an invoice
// number (digits, optionally after one letter) or the header's InvoiceNo.
func looksLikeInvoice(b []byte) bool {
	end := bytes.IndexByte(b, ',')
	if end <= 0 {
		return false
	}
	f := b[:end]
	if string(f) == "InvoiceNo" {
		return true
	}
	if f[0] >= 'A' && f[0] <= 'Z' {
		f = f[1:]
	}
	if len(f) == 0 {
		return false
	}
	for _, c := range f {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Decode sniffs data (see AutoDecoder) and decodes it.
func (d *AutoDecoder) Decode(data []byte, r *Record) error {
	if len(data) > MaxRecordBytes {
		// Refuse before sniffing scans a huge payload.
		clearDecoded(r)
		_, err := checkPayload(FormatAuto, data)
		return err
	}
	switch Sniff(data) {
	case FormatOrdersJSON:
		return d.ordersJSON.Decode(data, r)
	case FormatClickstream:
		return d.clickstream.Decode(data, r)
	case FormatCloudFront:
		return d.cloudfront.Decode(data, r)
	case FormatOrdersCSV:
		return d.ordersCSV.Decode(data, r)
	}
	return d.combined.Decode(data, r)
}

// clearDecoded clears everything a decoder sets, keeping the consumer's
// Meta: the state of r after a failed Decode.
func clearDecoded(r *Record) {
	*r = Record{Meta: r.Meta}
}

// startDecode zeroes the scalar fields a decoder may leave unset. String
// fields and Time are stored once at the end (see strtab.flush), so they
// are not cleared here: a pointer store costs a write barrier during GC.
func startDecode(r *Record) {
	r.Kind = KindUnknown
	r.Status = 0
	r.Bytes = 0
	r.Quantity = 0
	r.UnitPrice = 0
	r.RequestBytes = 0
	r.TimeTaken = 0
	r.NumValues = 0
}

// finishDecode stores the time and the strings: the last step of a
// successful scan. It fails only for a percent-decoded field that is not
// UTF-8; r is then cleared.
func finishDecode(f Format, tab *strtab, data []byte, r *Record, t time.Time, kind Kind) error {
	if bad, ok := tab.flush(data, r); !ok {
		clearDecoded(r)
		field := textFieldNames[bad]
		if f == FormatCloudFront && bad == tUserAgent {
			field = cfColNames[cfUA] // only CloudFront percent-decodes
		}
		return &DecodeError{Format: f, Field: field, Reason: "invalid UTF-8 after percent-decoding", Kind: ErrInvalidUTF8}
	}
	r.Time = t
	r.Kind = kind
	return nil
}

// textFieldNames names Record's string fields in errors.
var textFieldNames = [numTextFields]string{"client", "method", "path", "protocol", "referer", "user_agent", "host",
	"session_id", "event", "invoice_no", "stock_code", "description", "customer_id", "country",
	"forwarded_for", "tls_protocol", "tls_cipher", "x-edge-location", "x-edge-result-type", "x-edge-response-result-type", "key"}
