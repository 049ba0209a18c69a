package records

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// MaxRecordBytes is the largest payload a decoder accepts: the Kinesis
// record size limit (1 MiB). Anything bigger cannot have come from a
// well-behaved producer, so it is rejected before any scanning.
const MaxRecordBytes = 1 << 20

// Sentinel kinds of decode failure. Every error a Decoder returns, except
// ErrHeader, is a *DecodeError whose Kind is one of these, so callers
// classify with errors.Is(err, records.ErrMalformed) and friends.
var (
	// ErrEmpty: the payload is empty or only whitespace.
	ErrEmpty = errors.New("empty record")
	// ErrTruncated: the payload ended before a required field.
	ErrTruncated = errors.New("truncated record")
	// ErrMalformed: a field is present but its content is invalid.
	ErrMalformed = errors.New("malformed record")
	// ErrOversize: the payload is larger than MaxRecordBytes.
	ErrOversize = errors.New("oversize record")
	// ErrInvalidUTF8: a text field (or the whole payload) is not UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
)

// ErrHeader is returned, unwrapped, for records that carry no data but
// are legitimate parts of the stream: CloudFront "#Version"/"#Fields"
// lines and CSV header rows. It is not a failure: the pipeline skips the
// record without dead-lettering it. A "#Fields" header has already been
// applied to the decoder when ErrHeader is returned.
var ErrHeader = errors.New("header record")

// maxErrValue bounds the offending text copied into a DecodeError, so a
// 1 MiB garbage payload does not end up in a log line.
const maxErrValue = 48

// DecodeError says why and where a payload could not be decoded.
type DecodeError struct {
	// Format is the decoder that failed ("combined", "cloudfront", ...).
	Format Format
	// Field names the field at fault ("status", "timestamp"), or "" when
	// the payload as a whole is at fault.
	Field string
	// Reason says what was wrong, e.g. "not a number".
	Reason string
	// Value is a copy of the offending text, cut to a few dozen bytes;
	// "" when there is nothing useful to show.
	Value string
	// Kind is the sentinel this error matches with errors.Is:
	// ErrEmpty, ErrTruncated, ErrMalformed, ErrOversize or ErrInvalidUTF8.
	Kind error
}

// Error renders e as `combined: field status: not a number "2x0"`.
func (e *DecodeError) Error() string {
	b := make([]byte, 0, 64+len(e.Value))
	b = append(b, e.Format...)
	b = append(b, ": "...)
	if e.Field != "" {
		b = append(b, "field "...)
		b = append(b, e.Field...)
		b = append(b, ": "...)
	}
	b = append(b, e.Reason...)
	if e.Value != "" {
		b = append(b, ' ')
		b = strconv.AppendQuote(b, e.Value)
	}
	return string(b)
}

// Unwrap returns the sentinel kind so errors.Is works.
func (e *DecodeError) Unwrap() error { return e.Kind }

// newError builds a DecodeError, copying (a bounded prefix of) value so
// the error never aliases the caller's payload buffer.
func newError(f Format, kind error, field, reason string, value []byte) *DecodeError {
	return &DecodeError{Format: f, Field: field, Reason: reason, Value: errValue(value), Kind: kind}
}

// errValue copies at most maxErrValue bytes of v, cutting on a rune
// boundary when v is valid UTF-8 so the quoted value stays readable.
func errValue(v []byte) string {
	if len(v) <= maxErrValue {
		return string(v)
	}
	n := maxErrValue
	for n > maxErrValue-utf8.UTFMax && !utf8.RuneStart(v[n]) {
		n--
	}
	return string(v[:n]) + "..."
}

// checkPayload applies the checks every decoder shares: size, emptiness
// and UTF-8 validity. It returns data with trailing line terminators
// removed (agents usually ship one line per record, newline included).
func checkPayload(f Format, data []byte) ([]byte, error) {
	if len(data) > MaxRecordBytes {
		return nil, &DecodeError{Format: f, Reason: "payload of " + strconv.Itoa(len(data)) + " bytes exceeds " + strconv.Itoa(MaxRecordBytes), Kind: ErrOversize}
	}
	data = trimEOL(data)
	if isBlank(data) {
		return nil, &DecodeError{Format: f, Reason: "no data", Kind: ErrEmpty}
	}
	if !utf8.Valid(data) {
		return nil, invalidUTF8(f, "", data)
	}
	return data, nil
}

// invalidUTF8 reports the first invalid byte's offset; it runs only on
// the failure path, so finding it again is fine.
func invalidUTF8(f Format, field string, data []byte) *DecodeError {
	off := 0
	for off < len(data) {
		r, n := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	return &DecodeError{Format: f, Field: field, Reason: "invalid UTF-8 at byte " + strconv.Itoa(off), Kind: ErrInvalidUTF8}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
