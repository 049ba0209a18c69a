package records_test

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/records"
)

var iotFields = records.JSONFields{Time: "ts", Key: "iotName", Values: []string{"iotValue"}}

func newJSON(t testing.TB, f records.JSONFields) *records.JSONDecoder {
	t.Helper()
	d, err := records.NewJSONDecoder(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func event(key string, ts time.Time, vals ...float64) records.Record {
	r := records.Record{Meta: testMeta, Kind: records.KindEvent, Key: key, Time: ts, NumValues: uint8(len(vals))}
	copy(r.Values[:], vals)
	return r
}

func TestJSONEventDecode(t *testing.T) {
	two := records.JSONFields{Key: "host", Values: []string{"requests", "bytes"}}
	ts := time.UnixMilli(1700000000123).UTC()
	tests := []struct {
		name   string
		fields records.JSONFields
		in     string
		want   records.Record
	}{
		{"iot", iotFields, `{"iotName": "DemoSensor", "iotValue": 14}`, event("DemoSensor", time.Time{}, 14)},
		{"iot with epoch ms", iotFields, `{"iotName":"DemoSensor","iotValue":101.5,"ts":1700000000123}`, event("DemoSensor", ts, 101.5)},
		{"rfc3339 time, numeric key, string value", iotFields, `{"ts":"2023-11-14T22:13:20.123Z","iotName":7,"iotValue":"-3e2"}`, event("7", ts, -300)},
		{"escaped key and member names", iotFields, `{"iot\u004eame":"A\"B","iotValue":0}`, event(`A"B`, time.Time{}, 0)},
		{"other members ignored, last duplicate wins", iotFields, `{"iotName":"x","extra":{"a":[1,2]},"iotValue":1,"iotValue":2,"flag":true}`, event("x", time.Time{}, 2)},
		{"two values, order of fields", two, `{"bytes":512,"host":"h","requests":3}`, event("h", time.Time{}, 3, 512)},
		{"no key configured", records.JSONFields{Values: []string{"v"}}, `{"v":1.25}`, event("", time.Time{}, 1.25)},
		{"null time", iotFields, `{"iotName":"x","iotValue":1,"ts":null}`, event("x", time.Time{}, 1)},
		{"trailing newline", iotFields, "{\"iotName\":\"x\",\"iotValue\":1}\n", event("x", time.Time{}, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newJSON(t, tt.fields)
			r := records.Record{Meta: testMeta, Kind: records.KindOrder, InvoiceNo: "stale", Status: 5, Quantity: 3}
			if err := d.Decode([]byte(tt.in), &r); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, r); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got := r.ValueSlice(); len(got) != int(tt.want.NumValues) {
				t.Errorf("ValueSlice %v", got)
			}
		})
	}
}

func TestJSONEventErrors(t *testing.T) {
	tests := []struct {
		name, in string
		kind     error
		field    string
	}{
		{"missing key", `{"iotValue":1}`, records.ErrMalformed, "iotName"},
		{"null key", `{"iotName":null,"iotValue":1}`, records.ErrMalformed, "iotName"},
		{"object key", `{"iotName":{},"iotValue":1}`, records.ErrMalformed, "iotName"},
		{"missing value", `{"iotName":"x"}`, records.ErrMalformed, "iotValue"},
		{"null value", `{"iotName":"x","iotValue":null}`, records.ErrMalformed, "iotValue"},
		{"bool value", `{"iotName":"x","iotValue":true}`, records.ErrMalformed, "iotValue"},
		{"text value", `{"iotName":"x","iotValue":"high"}`, records.ErrMalformed, "iotValue"},
		{"overflowing value", `{"iotName":"x","iotValue":1e999}`, records.ErrMalformed, "iotValue"},
		{"bad time", `{"iotName":"x","iotValue":1,"ts":"yesterday"}`, records.ErrMalformed, "ts"},
		{"bool time", `{"iotName":"x","iotValue":1,"ts":false}`, records.ErrMalformed, "ts"},
		{"not an object", `[1,2]`, records.ErrMalformed, ""},
		{"truncated", `{"iotName":"x","iotVal`, records.ErrTruncated, ""},
		{"empty", " \n", records.ErrEmpty, ""},
		{"invalid utf-8", "{\"iotName\":\"\xff\",\"iotValue\":1}", records.ErrInvalidUTF8, ""},
	}
	for _, tt := range tests {
		d := newJSON(t, iotFields)
		r := event("stale", time.Unix(5, 0), 9)
		err := d.Decode([]byte(tt.in), &r)
		var de *records.DecodeError
		if !errors.As(err, &de) || !errors.Is(err, tt.kind) || de.Field != tt.field || de.Format != records.FormatJSON {
			t.Errorf("%s: %v (%#v), want %v on field %q", tt.name, err, de, tt.kind, tt.field)
		}
		if diff := cmp.Diff(records.Record{Meta: testMeta}, r); diff != "" {
			t.Errorf("%s: record not cleared:\n%s", tt.name, diff)
		}
	}
}

func TestJSONFieldsValidate(t *testing.T) {
	bad := []records.JSONFields{
		{},
		{Values: []string{"a", "b", "c", "d", "e"}},
		{Key: "a", Values: []string{"a"}},
		{Values: []string{""}},
		{Time: "t", Values: []string{"v", "t"}},
	}
	for _, f := range bad {
		if _, err := records.NewJSONDecoder(f); !errors.Is(err, records.ErrJSONFields) {
			t.Errorf("NewJSONDecoder(%+v) = %v, want ErrJSONFields", f, err)
		}
	}
	d, err := records.NewDecoder(records.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	var r records.Record
	if err := d.Decode([]byte(`{"key":"k","value":3,"timestamp":"2024-01-02T03:04:05Z"}`), &r); err != nil || r.Key != "k" || r.Values[0] != 3 {
		t.Errorf("default fields: %v %+v", err, r)
	}
	var zero records.JSONDecoder
	if err := zero.Decode([]byte(`{"value":1}`), &r); !errors.Is(err, records.ErrMalformed) {
		t.Errorf("zero JSONDecoder: %v", err)
	}
}

// Other formats reset the event fields of a reused Record.
func TestOtherFormatsResetValues(t *testing.T) {
	d, _ := records.NewDecoder(records.FormatClickstream)
	r := event("stale", time.Time{}, 1, 2)
	if err := d.Decode([]byte(`{"ip":"1.2.3.4"}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.Key != "" || r.NumValues != 0 || len(r.ValueSlice()) != 0 {
		t.Errorf("event fields kept: key %q values %v", r.Key, r.ValueSlice())
	}
}

func TestJSONEventAllocs(t *testing.T) {
	data := []byte(`{"iotName":"DemoSensor","iotValue":14,"ts":1700000000123}`)
	for _, alias := range []bool{false, true} {
		d := newJSON(t, iotFields)
		d.AliasPayload(alias)
		var r records.Record
		n := testing.AllocsPerRun(100, func() {
			if err := d.Decode(data, &r); err != nil {
				t.Fatal(err)
			}
		})
		want := 1.0
		if alias {
			want = 0
		}
		if n != want {
			t.Errorf("alias %v: %v allocations per record, want %v", alias, n, want)
		}
	}
}

func FuzzJSONEvent(f *testing.F) {
	for _, s := range []string{
		`{"iotName": "DemoSensor", "iotValue": 14}`,
		`{"iotName":"DemoSensor","iotValue":101.5,"ts":1700000000123}`,
		`{"ts":"2023-11-14T22:13:20.123+01:00","iotName":7,"iotValue":"-3e2","x":[{"y":null}]}`,
		`{"iot\u004eame":"A\"B\ud83d\ude00","iotValue":0}`,
		`{"iotName":"x","iotValue":1e999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newJSON(t, iotFields)
		r := records.Record{Meta: testMeta, Kind: records.KindOrder, InvoiceNo: "x", Status: 7, Time: time.Unix(1, 0)}
		err := d.Decode(data, &r)
		if err != nil {
			var de *records.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			if diff := cmp.Diff(records.Record{Meta: testMeta}, r); diff != "" {
				t.Fatalf("record not cleared after %v:\n%s", err, diff)
			}
			return
		}
		if r.Kind != records.KindEvent || r.NumValues != 1 || r.InvoiceNo != "" || r.Status != 0 || !utf8.ValidString(r.Key) {
			t.Fatalf("bad record %+v", r)
		}
		v := r.Values[0]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("value %v", v)
		}
		// Round trip: the decoded event re-encoded decodes the same.
		key, _ := json.Marshal(r.Key)
		line := `{"iotName":` + string(key) + `,"iotValue":` + strconv.FormatFloat(v, 'g', -1, 64) + `}`
		var again records.Record
		again.Meta = testMeta
		if err := d.Decode([]byte(line), &again); err != nil {
			t.Fatalf("re-encoded %q: %v", line, err)
		}
		if again.Key != r.Key || again.Values[0] != v {
			t.Fatalf("round trip %q: %+v", line, again)
		}
	})
}

func BenchmarkJSONEvent(b *testing.B) {
	lines := make([][]byte, 64)
	for i := range lines {
		lines[i] = []byte(`{"iotName":"DemoSensor` + strconv.Itoa(i%4) + `","iotValue":` + strconv.Itoa(10+i%11) + `,"ts":17000000` + strconv.Itoa(10000+i) + `}`)
	}
	d := newJSON(b, iotFields)
	b.ReportAllocs()
	var r records.Record
	i := 0
	for b.Loop() {
		if err := d.Decode(lines[i], &r); err != nil {
			b.Fatal(err)
		}
		i = (i + 1) % len(lines)
	}
}
