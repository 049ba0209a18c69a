package records_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// seedLines returns up to n lines of a data file for fuzz seeds, or
// nothing when the shared data is absent (the fuzzers still run on the
// literal seeds).
func seedLines(rel string, n int) [][]byte {
	dir, err := os.Getwd()
	if err != nil {
		return nil
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
	b, err := os.ReadFile(filepath.Join(dir, "..", "shared", "data", rel))
	if err != nil {
		return nil
	}
	lines := bytes.Split(b, []byte("\n"))
	return lines[:min(n, len(lines))]
}

var nastySeeds = []string{
	"", " ", "\n", "\r\n", "-", `"`, `\`, "{", "}", "[", "#", "#Fields:", "#Fields: date time c-ip", "\t\t\t\t\t\t\t\t\t\t\t",
	"\x00\x01\x02", "\xff\xfe", "\xc3\x28", "%", "%%", "%25%2", ",,,,,,,", `"",,,,,,,`, `"a""b`, `{"a":`, `{"ip":"\ud800"}`,
	`{"ip":"\uD83D\uDE00"}`, `{"x":[[[[[[[[`, `{"timestamp":99999999999999999999}`, `{"status":-0}`, `{"bytes":1e400}`,
	`1.2.3.4 - - [`, `1.2.3.4 - - [22/Jan/2019:03:56:14 +0330]`, `1.2.3.4 - - [22/Jan/2019:03:56:14 +0330] "\"" 200 1 "\\" "\\\"`,
	`::1 - - [29/Feb/2023:00:00:00 +0000] "GET / HTTP/1.1" 200 1`, `1 - - [01/Jan/0000:00:00:00 +0000] "-" - -`,
	"536365,85123A,X,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom,",
	"C1,\"\",\"\"\"\",-0,12/31/9999 23:59:59,-0.0,.0,",
	"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
}

func addSeeds(f *testing.F, files ...string) {
	for _, s := range nastySeeds {
		f.Add([]byte(s))
	}
	for _, file := range files {
		for _, l := range seedLines(file, 40) {
			f.Add(l)
		}
	}
}

// checkDecoded asserts the invariants every decode result must keep.
func checkDecoded(t *testing.T, data []byte, r records.Record, err error) {
	t.Helper()
	if err != nil {
		if errors.Is(err, records.ErrHeader) {
			if err != records.ErrHeader {
				t.Fatalf("header error wrapped: %v", err)
			}
		} else {
			var de *records.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			switch de.Kind {
			case records.ErrEmpty, records.ErrTruncated, records.ErrMalformed, records.ErrOversize, records.ErrInvalidUTF8:
			default:
				t.Fatalf("DecodeError kind %v is not a sentinel", de.Kind)
			}
			if de.Error() == "" || len(de.Value) > 64 {
				t.Fatalf("bad error text %q (value %d bytes)", de.Error(), len(de.Value))
			}
		}
		if diff := cmp.Diff(records.Record{Meta: testMeta}, r); diff != "" {
			t.Fatalf("record not cleared after %v (-want +got):\n%s", err, diff)
		}
		return
	}
	if r.Meta != testMeta {
		t.Fatalf("Meta changed: %+v", r.Meta)
	}
	if !utf8.Valid(data) {
		t.Fatalf("invalid UTF-8 payload decoded without error")
	}
	if r.Status != 0 && (r.Status < 100 || r.Status > 599) {
		t.Fatalf("Status %d", r.Status)
	}
	if r.Bytes < 0 {
		t.Fatalf("Bytes %d", r.Bytes)
	}
	if y := r.Time.Year(); !r.Time.IsZero() && (y < 1 || y > 9999) {
		t.Fatalf("Time %v", r.Time)
	}
	hitText := r.ClientIP + r.Method + r.Path + r.Protocol + r.Referer + r.UserAgent + r.Host + r.SessionID + r.Event
	orderText := r.InvoiceNo + r.StockCode + r.Description + r.CustomerID + r.Country
	switch r.Kind {
	case records.KindHit:
		// No IP, no guess: the client field holds an address or nothing.
		if a, err := netip.ParseAddr(r.ClientIP); r.ClientIP != "" && (err != nil || a.String() == "" || strings.ContainsAny(r.ClientIP, " ,\"")) {
			t.Fatalf("ClientIP %q is not an IP address", r.ClientIP)
		}
		if orderText != "" || r.Quantity != 0 || r.UnitPrice != 0 {
			t.Fatalf("hit with order fields: %+v", r)
		}
	case records.KindOrder:
		if hitText != "" || r.Status != 0 || r.Bytes != 0 {
			t.Fatalf("order with hit fields: %+v", r)
		}
		if r.InvoiceNo == "" {
			t.Fatalf("order without invoice: %+v", r)
		}
	default:
		t.Fatalf("Kind %v without error", r.Kind)
	}
	for _, s := range []string{hitText, orderText} {
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 field text %q", s)
		}
	}
	if r.Referer == "-" || r.UserAgent == "-" {
		t.Fatalf("dash kept: %+v", r)
	}
}

// decodeFresh decodes data with a new decoder into a dirty record.
func decodeFresh(t *testing.T, f records.Format, data []byte) (records.Record, error) {
	t.Helper()
	d, err := records.NewDecoder(f)
	if err != nil {
		t.Fatal(err)
	}
	r := records.Record{Meta: testMeta, Kind: records.KindOrder, InvoiceNo: "x", Status: 7, Time: time.Unix(1, 0), UserAgent: "stale"}
	err = d.Decode(data, &r)
	checkDecoded(t, data, r, err)
	return r, err
}

// checkRoundTrip re-encodes r with enc and decodes again: a decoder must
// read back exactly what it produced.
func checkRoundTrip(t *testing.T, f records.Format, r records.Record, enc func(records.Record) []byte) {
	t.Helper()
	line := enc(r)
	again, err := decodeFresh(t, f, line)
	if err != nil {
		t.Fatalf("re-encoded %q: %v", line, err)
	}
	if !sameRecord(r, again) {
		t.Fatalf("round trip through %q changed the record:\n%s", line, cmp.Diff(r, again))
	}
}

func escapeCLF(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func encodeCombined(r records.Record) []byte {
	req := r.Path
	if r.Method != "" {
		req = r.Method + " " + r.Path
		if r.Protocol != "" {
			req += " " + r.Protocol
		}
	}
	ts := "[" + r.Time.Format("02/Jan/2006:15:04:05 -0700") + "]"
	if r.TLSProtocol != "" { // ssl_request_log
		return []byte(ts + " " + r.ClientIP + " " + r.TLSProtocol + " " + r.TLSCipher + ` "` + escapeCLF(req) + `" ` + strconv.FormatInt(r.Bytes, 10))
	}
	client := r.ClientIP
	if r.Host != "" { // vhost_combined
		client = r.Host + " " + client
	}
	line := client + " - - " + ts + ` "` + escapeCLF(req) + `" ` +
		strconv.Itoa(r.Status + 1000)[1:] + " " + strconv.FormatInt(r.Bytes, 10) +
		` "` + escapeCLF(dashIfEmpty(r.Referer)) + `" "` + escapeCLF(dashIfEmpty(r.UserAgent)) + `"`
	if r.ForwardedFor != "" {
		line += ` "` + escapeCLF(r.ForwardedFor) + `"`
	}
	return []byte(line)
}

func FuzzCombined(f *testing.F) {
	addSeeds(f, zakerFile, elasticFile)
	for _, l := range []string{lineVhost, lineVhostIPv6, lineNginxHost, lineXFFQuoted, lineXFFBare, lineXFFOne, lineXFFDash,
		lineMain, lineMainNoXFF, lineSSL, lineSSLNoBytes, lineHostname, lineUnknown} {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeFresh(t, records.FormatCombined, data)
		if err != nil {
			return
		}
		if r.Kind != records.KindHit || r.Time.IsZero() || r.ClientIP == "" {
			t.Fatalf("combined record incomplete: %+v", r)
		}
		checkRoundTrip(t, records.FormatCombined, r, encodeCombined)
	})
}

func FuzzCloudFront(f *testing.F) {
	addSeeds(f, cloudfrontFile)
	f.Fuzz(func(t *testing.T, data []byte) {
		// Stateful: run the input's lines through one decoder, so a
		// fuzzed #Fields header changes the layout of what follows.
		d := &records.CloudFrontDecoder{}
		for _, l := range bytes.Split(data, []byte("\n")) {
			r := records.Record{Meta: testMeta, Host: "stale"}
			err := d.Decode(l, &r)
			checkDecoded(t, l, r, err)
			if err == nil && (r.Kind != records.KindHit || r.Time.IsZero() || r.ClientIP == "") {
				t.Fatalf("cloudfront record incomplete: %+v", r)
			}
		}
	})
}

func encodeClickstream(r records.Record) []byte {
	m := map[string]any{"ip": r.ClientIP, "user_agent": r.UserAgent, "referer": r.Referer, "session_id": r.SessionID,
		"path": r.Path, "status": r.Status, "bytes": r.Bytes, "host": r.Host, "event": r.Event, "method": r.Method}
	if !r.Time.IsZero() {
		m["timestamp"] = r.Time.Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(m)
	return b
}

func FuzzClickstream(f *testing.F) {
	addSeeds(f)
	f.Add([]byte(`{"ip":"198.51.100.7","user_agent":"Mozilla\/5.0 \"q\" \u00e9","referer":"-","session_id":"s-1","timestamp":"2026-11-22T09:41:07.120+01:00","path":"/cart?id=7","status":201,"bytes":"5120","host":"shop","event":"add","method":"POST","x":{"n":[1,{"a":null}]}}`))
	f.Add([]byte(`{"ip":"1.2.3.4","timestamp":1700000000123,"session_id":42}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeFresh(t, records.FormatClickstream, data)
		if err != nil {
			return
		}
		if r.Kind != records.KindHit || r.Event == "" {
			t.Fatalf("clickstream record incomplete: %+v", r)
		}
		checkRoundTrip(t, records.FormatClickstream, r, encodeClickstream)
	})
}

func quoteCSV(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func encodeOrderCSV(r records.Record) []byte {
	return []byte(strings.Join([]string{quoteCSV(r.InvoiceNo), quoteCSV(r.StockCode), quoteCSV(r.Description),
		strconv.FormatInt(r.Quantity, 10), r.Time.Format(time.RFC3339Nano), strconv.FormatFloat(r.UnitPrice, 'f', -1, 64),
		quoteCSV(r.CustomerID), quoteCSV(r.Country)}, ","))
}

func FuzzOrderCSV(f *testing.F) {
	addSeeds(f, ordersFile)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeFresh(t, records.FormatOrdersCSV, data)
		if err != nil {
			return
		}
		if r.Time.IsZero() || r.StockCode == "" {
			t.Fatalf("order record incomplete: %+v", r)
		}
		if r.InvoiceNo == "InvoiceNo" {
			t.Fatalf("header decoded as an order")
		}
		checkRoundTrip(t, records.FormatOrdersCSV, r, encodeOrderCSV)
	})
}

func encodeOrderJSON(r records.Record) []byte {
	m := map[string]any{"invoice_no": r.InvoiceNo, "stock_code": r.StockCode, "description": r.Description,
		"quantity": r.Quantity, "unit_price": r.UnitPrice, "customer_id": r.CustomerID, "country": r.Country}
	if !r.Time.IsZero() {
		m["invoice_date"] = r.Time.Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(m)
	return b
}

func FuzzOrderJSON(f *testing.F) {
	addSeeds(f)
	f.Add([]byte(`{"invoice_no":"C536379","stock_code":"D","description":"Discount","quantity":-1,"invoice_date":"2010-12-01 09:41:00","unit_price":27.5,"customer_id":14527.0,"country":"United Kingdom"}`))
	f.Add([]byte(`{"invoice_no":536365,"quantity":"6","unit_price":"3.39","invoice_date":"12/1/2010 8:26","customer_id":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeFresh(t, records.FormatOrdersJSON, data)
		if err != nil {
			return
		}
		checkRoundTrip(t, records.FormatOrdersJSON, r, encodeOrderJSON)
	})
}

func FuzzAuto(f *testing.F) {
	addSeeds(f, zakerFile, cloudfrontFile, ordersFile)
	f.Add([]byte(`{"ip":"1.2.3.4","path":"/"}`))
	f.Add([]byte(`{"invoice_no":"1","quantity":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeFresh(t, records.FormatAuto, data)
		if len(data) > records.MaxRecordBytes {
			return
		}
		// Auto must agree with the decoder it says it picked.
		want, wantErr := decodeFresh(t, records.Sniff(data), data)
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("auto error %v, %s error %v", err, records.Sniff(data), wantErr)
		}
		if !sameRecord(r, want) {
			t.Fatalf("auto disagrees with %s:\n%s", records.Sniff(data), cmp.Diff(want, r))
		}
	})
}
