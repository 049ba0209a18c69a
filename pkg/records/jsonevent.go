package records

import (
	"errors"
	"fmt"
	"time"
)

// JSONFields names the members of a generic JSON event (format json).
// Names are matched exactly against top-level members; nested objects
// are not searched.
type JSONFields struct {
	// Time names the event-time member: an RFC 3339 string or epoch
	// milliseconds (a number or a string of digits). "" means the payload
	// has none. A missing or null time leaves Record.Time zero, so
	// EventTime falls back to the Kinesis arrival time.
	Time string `yaml:"time"`
	// Key names the member that identifies the series (a string, or a
	// number taken as written), e.g. "iotName". "" means one series: Key
	// stays "". When set, the member is required.
	Key string `yaml:"key"`
	// Values names the numeric members, 1 to MaxValues of them, e.g.
	// ["iotValue"]. Each is required and must be a JSON number or a
	// string holding one; Record.Values[i] is the value of Values[i].
	Values []string `yaml:"values"`
}

// DefaultJSONFields are the fields NewDecoder(FormatJSON) uses:
// {"timestamp": ..., "key": ..., "value": ...}.
func DefaultJSONFields() JSONFields {
	return JSONFields{Time: "timestamp", Key: "key", Values: []string{"value"}}
}

// ErrJSONFields is matched (errors.Is) by NewJSONDecoder's errors.
var ErrJSONFields = errors.New("invalid json record fields")

// Validate reports a JSONFields no decoder can use: no values, more than
// MaxValues, or a name used twice.
func (f JSONFields) Validate() error {
	if len(f.Values) == 0 || len(f.Values) > MaxValues {
		return fmt.Errorf("%w: want 1 to %d value fields, got %d", ErrJSONFields, MaxValues, len(f.Values))
	}
	seen := map[string]bool{}
	for _, n := range append([]string{f.Time, f.Key}, f.Values...) {
		if n == "" {
			continue
		}
		if seen[n] {
			return fmt.Errorf("%w: field %q named twice", ErrJSONFields, n)
		}
		seen[n] = true
	}
	for _, n := range f.Values {
		if n == "" {
			return fmt.Errorf("%w: empty value field name", ErrJSONFields)
		}
	}
	return nil
}

// JSONDecoder reads one generic JSON event per record into a KindEvent
// Record: Key from JSONFields.Key, Values from JSONFields.Values and Time
// from JSONFields.Time. Other members (of any type) are ignored;
// duplicate members keep the last value. Errors are *DecodeError with
// Format "json": ErrMalformed with Reason "missing" for an absent (or
// null) key or value member, ErrMalformed for a member of the wrong type
// or an unparsable number or time, and the usual kinds for bad JSON.
//
// A decoded event costs one allocation (its key string) or none with
// AliasPayload(true); the values are stored inline in the Record.
type JSONDecoder struct {
	fields JSONFields
	zones  zoneCache
	tab    strtab
}

// NewJSONDecoder returns a decoder for events with the given fields.
func NewJSONDecoder(fields JSONFields) (*JSONDecoder, error) {
	if err := fields.Validate(); err != nil {
		return nil, err
	}
	fields.Values = append([]string(nil), fields.Values...)
	return &JSONDecoder{fields: fields}, nil
}

// Fields returns the decoder's fields.
func (d *JSONDecoder) Fields() JSONFields {
	f := d.fields
	f.Values = append([]string(nil), f.Values...)
	return f
}

// Decode implements Decoder.
func (d *JSONDecoder) Decode(data []byte, r *Record) error {
	if len(d.fields.Values) == 0 {
		clearDecoded(r)
		return newError(FormatJSON, ErrMalformed, "", "decoder has no value fields (use NewJSONDecoder)", nil)
	}
	b, err := checkPayload(FormatJSON, data)
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
	return finishDecode(FormatJSON, &d.tab, b, r, t, KindEvent)
}

func (d *JSONDecoder) scan(b []byte, r *Record, tm *time.Time) error {
	const f = FormatJSON
	var it objIter
	it.init(b)
	var keyBuf [64]byte
	var have uint8 // bit i: Values[i] seen
	hasKey := false
	for it.next() {
		name := it.key
		if it.keyEsc {
			name = appendUnJSON(keyBuf[:0], name)
		}
		v := &it.val
		switch string(name) {
		case "":
			continue
		case d.fields.Key:
			if v.kind == jsonNull {
				hasKey = false
				d.tab.add(tKey, 0, 0, decVerbatim)
				continue
			}
			if v.kind != jsonString && v.kind != jsonNumber {
				return newError(f, ErrMalformed, d.fields.Key, "want a string or number", b[v.start:v.end])
			}
			dec := decVerbatim
			if v.esc {
				dec = decJSON
			}
			d.tab.add(tKey, v.start, v.end, dec)
			hasKey = true
			continue
		case d.fields.Time:
			if err := d.timestamp(b, v, tm); err != nil {
				return err
			}
			continue
		}
		for i, vn := range d.fields.Values {
			if string(name) != vn {
				continue
			}
			if v.kind == jsonNull {
				have &^= 1 << i
				break
			}
			text := b[v.start:v.end]
			if v.kind != jsonNumber && (v.kind != jsonString || v.esc) {
				return newError(f, ErrMalformed, vn, "want a number", text)
			}
			x, ok := parseFloat(text)
			if !ok {
				return newError(f, ErrMalformed, vn, "not a number", text)
			}
			r.Values[i] = x
			have |= 1 << i
			break
		}
	}
	if it.err != nil {
		return it.decodeError(f)
	}
	if d.fields.Key != "" && !hasKey {
		return newError(f, ErrMalformed, d.fields.Key, "missing", nil)
	}
	for i, vn := range d.fields.Values {
		if have&(1<<i) == 0 {
			return newError(f, ErrMalformed, vn, "missing", nil)
		}
	}
	r.NumValues = uint8(len(d.fields.Values))
	return nil
}

func (d *JSONDecoder) timestamp(b []byte, v *jsonVal, tm *time.Time) error {
	text := b[v.start:v.end]
	var ok bool
	switch {
	case v.kind == jsonNull:
		*tm = time.Time{}
		return nil
	case v.kind == jsonNumber || (v.kind == jsonString && !v.esc && isDigits(text)):
		if *tm, ok = epochMillis(text); !ok {
			return newError(FormatJSON, ErrMalformed, d.fields.Time, "not epoch milliseconds", text)
		}
		return nil
	case v.kind == jsonString && !v.esc:
		if *tm, ok = parseRFC3339(text, &d.zones); !ok {
			return newError(FormatJSON, ErrMalformed, d.fields.Time, "not RFC 3339", text)
		}
		return nil
	}
	return newError(FormatJSON, ErrMalformed, d.fields.Time, "want a string or number", text)
}
