package records_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/records"
)

func TestDecodeBadInput(t *testing.T) {
	const good = `54.36.149.41 - - [22/Jan/2019:03:56:14 +0330] "GET / HTTP/1.1" 200 30577 "-" "Mozilla/5.0 (compatible; AhrefsBot/6.1)" "-"`
	const cfGood = "2018-11-07\t00:12:08\tFRA53\t376\t3.120.138.129\tGET\td.cloudfront.net\t/x\t302\t-\tbot%2520x\t-\t-\tHit\tid\td.cloudfront.net\thttps\t337\t0.394\t-\tTLSv1.2\tC\tHit\tHTTP/1.1\t-\t-"
	const csvGood = "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"
	cf := func(col int, v string) string {
		f := strings.Split(cfGood, "\t")
		f[col] = v
		return strings.Join(f, "\t")
	}
	csv := func(col int, v string) string {
		f := strings.Split(csvGood, ",")
		f[col] = v
		return strings.Join(f, ",")
	}
	tests := []struct {
		name   string
		format records.Format
		in     string
		kind   error
		field  string
		msg    string // exact Error() when set
	}{
		// Shared checks.
		{name: "empty", format: records.FormatCombined, in: "", kind: records.ErrEmpty, msg: "combined: no data"},
		{name: "only newline", format: records.FormatOrdersCSV, in: " \r\n", kind: records.ErrEmpty},
		{name: "oversize", format: records.FormatClickstream, in: `{"ip":"` + strings.Repeat("a", records.MaxRecordBytes) + `"}`, kind: records.ErrOversize},
		{name: "oversize auto", format: records.FormatAuto, in: strings.Repeat("a", records.MaxRecordBytes+1), kind: records.ErrOversize},
		{name: "invalid UTF-8 in UA", format: records.FormatCombined, in: strings.Replace(good, "AhrefsBot", "Ahrefs\xffBot", 1), kind: records.ErrInvalidUTF8,
			msg: "combined: invalid UTF-8 at byte 109"},
		{name: "invalid UTF-8 JSON", format: records.FormatClickstream, in: "{\"ip\":\"\xc3\x28\"}", kind: records.ErrInvalidUTF8},
		{name: "invalid UTF-8 CSV", format: records.FormatOrdersCSV, in: strings.Replace(csvGood, "WHITE", "WH\xe2\x82ITE", 1), kind: records.ErrInvalidUTF8},
		{name: "binary garbage", format: records.FormatAuto, in: "\x16\x03\x01\x02\x00\x01\xfc\x03\x03", kind: records.ErrInvalidUTF8},

		// Combined.
		{name: "only client", format: records.FormatCombined, in: "54.36.149.41", kind: records.ErrTruncated, field: "timestamp"},
		{name: "control bytes", format: records.FormatCombined, in: "\x16\x03\x01\x02\x00", kind: records.ErrTruncated, field: "timestamp"},
		{name: "leading space", format: records.FormatCombined, in: " " + good, kind: records.ErrMalformed, field: "client"},
		{name: "cut in timestamp", format: records.FormatCombined, in: good[:30], kind: records.ErrTruncated, field: "timestamp"},
		{name: "cut after timestamp", format: records.FormatCombined, in: good[:46], kind: records.ErrTruncated, field: "request"},
		{name: "cut in request", format: records.FormatCombined, in: good[:53], kind: records.ErrTruncated, field: "request"},
		{name: "cut before status", format: records.FormatCombined, in: good[:63], kind: records.ErrTruncated, field: "status"},
		{name: "cut before bytes", format: records.FormatCombined, in: good[:67], kind: records.ErrTruncated, field: "bytes"},
		{name: "cut before bytes, no space", format: records.FormatCombined, in: good[:66], kind: records.ErrTruncated, field: "bytes"},
		{name: "cut in referer", format: records.FormatCombined, in: good[:75], kind: records.ErrTruncated, field: "referer"},
		{name: "cut in user agent", format: records.FormatCombined, in: good[:95], kind: records.ErrTruncated, field: "user_agent",
			msg: `combined: field user_agent: no closing quote "Mozilla/5.0 (comp"`},
		{name: "status not a number", format: records.FormatCombined, in: strings.Replace(good, " 200 ", " 2x0 ", 1), kind: records.ErrMalformed, field: "status",
			msg: `combined: field status: not a number "2x0"`},
		{name: "status out of range", format: records.FormatCombined, in: strings.Replace(good, " 200 ", " 700 ", 1), kind: records.ErrMalformed, field: "status",
			msg: `combined: field status: not an HTTP status "700"`},
		{name: "bytes not a number", format: records.FormatCombined, in: strings.Replace(good, "30577", "305x7", 1), kind: records.ErrMalformed, field: "bytes"},
		{name: "bytes negative", format: records.FormatCombined, in: strings.Replace(good, "30577", "-1", 1), kind: records.ErrMalformed, field: "bytes"},
		{name: "bad month", format: records.FormatCombined, in: strings.Replace(good, "Jan", "Foo", 1), kind: records.ErrMalformed, field: "timestamp",
			msg: `combined: field timestamp: bad time "22/Foo/2019:03:56:14 +0330"`},
		{name: "31 February", format: records.FormatCombined, in: strings.Replace(good, "22/Jan", "31/Feb", 1), kind: records.ErrMalformed, field: "timestamp"},
		{name: "bad zone", format: records.FormatCombined, in: strings.Replace(good, "+0330", "+3300", 1), kind: records.ErrMalformed, field: "timestamp"},
		{name: "short timestamp", format: records.FormatCombined, in: strings.Replace(good, ":14 +0330", " +0330", 1), kind: records.ErrMalformed, field: "timestamp"},
		{name: "unquoted request", format: records.FormatCombined, in: strings.Replace(good, `"GET / HTTP/1.1"`, `GET`, 1), kind: records.ErrMalformed, field: "request"},
		{name: "junk after user agent", format: records.FormatCombined, in: strings.Replace(good, `AhrefsBot/6.1)" "-"`, `AhrefsBot/6.1)"x`, 1), kind: records.ErrMalformed, field: "user_agent"},
		{name: "escaped closing quote", format: records.FormatCombined, in: good[:94] + `\"`, kind: records.ErrTruncated, field: "user_agent"},

		// CloudFront.
		{name: "cf too few fields", format: records.FormatCloudFront, in: "2018-11-07\t00:12:08\tFRA53\t376", kind: records.ErrTruncated,
			msg: "cloudfront: line has 4 fields, want at least 24"},
		{name: "cf bad date", format: records.FormatCloudFront, in: cf(0, "2018-13-07"), kind: records.ErrMalformed, field: "time"},
		{name: "cf bad date text", format: records.FormatCloudFront, in: cf(0, "07.11.2018"), kind: records.ErrMalformed, field: "date"},
		{name: "cf bad time", format: records.FormatCloudFront, in: cf(1, "24:00:00"), kind: records.ErrMalformed, field: "time"},
		{name: "cf bad status", format: records.FormatCloudFront, in: cf(8, "abc"), kind: records.ErrMalformed, field: "status"},
		{name: "cf bad bytes", format: records.FormatCloudFront, in: cf(3, "1e3"), kind: records.ErrMalformed, field: "sc-bytes"},
		{name: "cf no client", format: records.FormatCloudFront, in: cf(4, "-"), kind: records.ErrMalformed, field: "c-ip"},
		{name: "cf UA decodes to invalid UTF-8", format: records.FormatCloudFront, in: cf(10, "bot%25FFx"), kind: records.ErrInvalidUTF8, field: "cs(User-Agent)"},
		{name: "cf bad #Fields", format: records.FormatCloudFront, in: "#Fields: date time", kind: records.ErrMalformed, field: "#Fields"},

		// Clickstream JSON.
		{name: "json cut", format: records.FormatClickstream, in: `{"ip":"1.2.3.4"`, kind: records.ErrTruncated},
		{name: "json cut in string", format: records.FormatClickstream, in: `{"ip":"1.2.`, kind: records.ErrTruncated},
		{name: "json cut in escape", format: records.FormatClickstream, in: `{"ip":"1\u00`, kind: records.ErrTruncated},
		{name: "json not an object", format: records.FormatClickstream, in: `[1,2]`, kind: records.ErrMalformed},
		{name: "json number for string", format: records.FormatClickstream, in: `{"ip":1.2.3.4}`, kind: records.ErrMalformed, field: "ip",
			msg: `clickstream: field ip: want a string "1.2"`},
		{name: "json missing colon", format: records.FormatClickstream, in: `{"ip" "a"}`, kind: records.ErrMalformed,
			msg: `clickstream: want ':' at byte 6 "{\"ip\" \"a\"}"`},
		{name: "json no known field", format: records.FormatClickstream, in: `{"x":{"y":[]}}`, kind: records.ErrMalformed},
		{name: "json trailing data", format: records.FormatClickstream, in: `{"ip":"a"} {}`, kind: records.ErrMalformed},
		{name: "json trailing comma", format: records.FormatClickstream, in: `{"ip":"a",}`, kind: records.ErrMalformed},
		{name: "json raw control char", format: records.FormatClickstream, in: "{\"ip\":\"a\x01\"}", kind: records.ErrMalformed},
		{name: "json bad escape", format: records.FormatClickstream, in: `{"ip":"a\x41"}`, kind: records.ErrMalformed},
		{name: "json status text", format: records.FormatClickstream, in: `{"status":"2x0"}`, kind: records.ErrMalformed, field: "status",
			msg: `clickstream: field status: not an integer "2x0"`},
		{name: "json status range", format: records.FormatClickstream, in: `{"status":42}`, kind: records.ErrMalformed, field: "status"},
		{name: "json status float", format: records.FormatClickstream, in: `{"status":200.5}`, kind: records.ErrMalformed, field: "status"},
		{name: "json bytes negative", format: records.FormatClickstream, in: `{"bytes":-5}`, kind: records.ErrMalformed, field: "bytes"},
		{name: "json ip object", format: records.FormatClickstream, in: `{"ip":{}}`, kind: records.ErrMalformed, field: "ip"},
		{name: "json bad timestamp", format: records.FormatClickstream, in: `{"timestamp":"yesterday"}`, kind: records.ErrMalformed, field: "timestamp"},
		{name: "json negative millis", format: records.FormatClickstream, in: `{"timestamp":-1}`, kind: records.ErrMalformed, field: "timestamp"},
		{name: "json nested too deep", format: records.FormatClickstream, in: `{"x":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`, kind: records.ErrMalformed},
		{name: "json mismatched brackets", format: records.FormatClickstream, in: `{"ip":"a","x":[1,2}}`, kind: records.ErrMalformed},
		{name: "json bad literal", format: records.FormatClickstream, in: `{"ip":nul}`, kind: records.ErrMalformed},

		// Orders CSV.
		{name: "csv cut", format: records.FormatOrdersCSV, in: "536365,85123A,WHITE", kind: records.ErrTruncated,
			msg: "orders-csv: row has 3 fields, want 8"},
		{name: "csv too many fields", format: records.FormatOrdersCSV, in: csvGood + ",x", kind: records.ErrMalformed},
		{name: "csv open quote", format: records.FormatOrdersCSV, in: `536365,85123A,"WHITE, HANGING`, kind: records.ErrTruncated, field: "Description"},
		{name: "csv text after quote", format: records.FormatOrdersCSV, in: csv(2, `"WHITE"X`), kind: records.ErrMalformed, field: "Description"},
		{name: "csv empty invoice", format: records.FormatOrdersCSV, in: csv(0, ""), kind: records.ErrMalformed, field: "InvoiceNo"},
		{name: "csv quantity", format: records.FormatOrdersCSV, in: csv(3, "six"), kind: records.ErrMalformed, field: "Quantity",
			msg: `orders-csv: field Quantity: not an integer "six"`},
		{name: "csv date", format: records.FormatOrdersCSV, in: csv(4, "2010-12-32 08:26:00"), kind: records.ErrMalformed, field: "InvoiceDate"},
		{name: "csv price", format: records.FormatOrdersCSV, in: csv(5, "2,55"), kind: records.ErrMalformed},
		{name: "csv price NaN", format: records.FormatOrdersCSV, in: csv(5, "NaN"), kind: records.ErrMalformed, field: "UnitPrice"},

		// Orders JSON.
		{name: "order json no invoice", format: records.FormatOrdersJSON, in: `{"quantity":1}`, kind: records.ErrMalformed, field: "invoice_no"},
		{name: "order json no quantity", format: records.FormatOrdersJSON, in: `{"invoice_no":"1"}`, kind: records.ErrMalformed, field: "quantity"},
		{name: "order json float quantity", format: records.FormatOrdersJSON, in: `{"invoice_no":"1","quantity":1.5}`, kind: records.ErrMalformed, field: "quantity"},
		{name: "order json price", format: records.FormatOrdersJSON, in: `{"invoice_no":"1","quantity":1,"unit_price":"abc"}`, kind: records.ErrMalformed, field: "unit_price"},
		{name: "order json date", format: records.FormatOrdersJSON, in: `{"invoice_no":"1","quantity":1,"invoice_date":true}`, kind: records.ErrMalformed, field: "invoice_date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := records.NewDecoder(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			r := records.Record{Meta: testMeta, ClientIP: "stale", Kind: records.KindHit}
			err = d.Decode([]byte(tt.in), &r)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("Decode error = %v, want %v", err, tt.kind)
			}
			var de *records.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error %T is not a *DecodeError", err)
			}
			if tt.field != "" && de.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", de.Field, tt.field, err)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.msg)
			}
			if len(de.Value) > 64 {
				t.Errorf("Value is %d bytes, want it cut short", len(de.Value))
			}
			// A failed decode leaves nothing behind but the Meta.
			if diff := cmp.Diff(records.Record{Meta: testMeta}, r); diff != "" {
				t.Errorf("record after error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	tests := []struct {
		format records.Format
		in     string
	}{
		{records.FormatCloudFront, "#Version: 1.0"},
		{records.FormatCloudFront, "#Fields: date time x-edge-location sc-bytes c-ip"},
		{records.FormatCloudFront, "# a comment"},
		{records.FormatOrdersCSV, "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n"},
		{records.FormatAuto, "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"},
		{records.FormatAuto, "#Version: 1.0"},
	}
	for _, tt := range tests {
		d, _ := records.NewDecoder(tt.format)
		var r records.Record
		if err := d.Decode([]byte(tt.in), &r); err != records.ErrHeader {
			t.Errorf("%s Decode(%q) = %v, want ErrHeader itself", tt.format, tt.in, err)
		}
	}
}

func TestDecodeErrorString(t *testing.T) {
	tests := []struct {
		err  *records.DecodeError
		want string
	}{
		{&records.DecodeError{Format: "combined", Field: "status", Reason: "not a number", Value: "2x0", Kind: records.ErrMalformed},
			`combined: field status: not a number "2x0"`},
		{&records.DecodeError{Format: "cloudfront", Reason: "line has 3 fields", Kind: records.ErrTruncated}, "cloudfront: line has 3 fields"},
		{&records.DecodeError{Format: "orders-csv", Field: "Description", Reason: "bad", Value: "a\tb", Kind: records.ErrMalformed},
			`orders-csv: field Description: bad "a\tb"`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	long := strings.Repeat("é", 100)
	d := &records.CombinedDecoder{}
	var r records.Record
	err := d.Decode([]byte(`1.2.3.4 - - [22/Jan/2019:03:56:14 +0330] "GET / HTTP/1.1" 200 1 "-" "`+long), &r)
	var de *records.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("want a DecodeError, got %v", err)
	}
	if want := strings.Repeat("é", 24) + "..."; de.Value != want {
		t.Errorf("Value = %q, want %q (cut on a rune boundary)", de.Value, want)
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    records.Format
		wantErr bool
	}{
		{"", records.FormatAuto, false},
		{"auto", records.FormatAuto, false},
		{" Combined ", records.FormatCombined, false},
		{"cloudfront", records.FormatCloudFront, false},
		{"clickstream", records.FormatClickstream, false},
		{"orders-csv", records.FormatOrdersCSV, false},
		{"ORDERS-JSON", records.FormatOrdersJSON, false},
		{"json", records.FormatJSON, false},
		{"xml", "", true},
		{"orders_csv", "", true},
	}
	for _, tt := range tests {
		got, err := records.ParseFormat(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, records.ErrUnknownFormat) {
			t.Errorf("ParseFormat(%q) error %v is not ErrUnknownFormat", tt.in, err)
		}
		var f records.Format
		if err := f.UnmarshalText([]byte(tt.in)); (err != nil) != tt.wantErr || f != tt.want {
			t.Errorf("UnmarshalText(%q) = %q, %v", tt.in, f, err)
		}
	}
	for _, f := range records.Formats() {
		if _, err := records.NewDecoder(f); err != nil {
			t.Errorf("NewDecoder(%q): %v", f, err)
		}
	}
	if _, err := records.NewDecoder("xml"); !errors.Is(err, records.ErrUnknownFormat) {
		t.Errorf("NewDecoder(xml) = %v, want ErrUnknownFormat", err)
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		in   string
		want records.Format
	}{
		{`{"ip":"1.2.3.4"}`, records.FormatClickstream},
		{` {"invoice_no":"1","quantity":1}`, records.FormatOrdersJSON},
		{"#Version: 1.0", records.FormatCloudFront},
		{"2018-11-07\t00:12:08\tFRA53\t376\t3.1.1.1\tGET\th\t/\t200\t-\tua\t-\t-\tHit", records.FormatCloudFront},
		{"536365,85123A,X,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom", records.FormatOrdersCSV},
		{"C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527.0,United Kingdom", records.FormatOrdersCSV},
		{"InvoiceNo,StockCode", records.FormatOrdersCSV},
		{`1.2.3.4 - - [22/Jan/2019:03:56:14 +0330] "GET /a,b HTTP/1.1" 200 1`, records.FormatCombined},
		{`2001:db8::1 - - [22/Jan/2019:03:56:14 +0330] "GET / HTTP/1.1" 200 1`, records.FormatCombined},
		{"", records.FormatCombined},
	}
	for _, tt := range tests {
		if got := records.Sniff([]byte(tt.in)); got != tt.want {
			t.Errorf("Sniff(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
