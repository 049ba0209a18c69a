package records_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// testMeta is set before every Decode: decoders must leave it alone.
var testMeta = records.Meta{ShardID: "shardId-000000000007", SequenceNumber: "4959", SubSequence: 3, PartitionKey: "pk"}

func decodeWith(t *testing.T, f records.Format, payloads ...[]byte) (records.Record, error) {
	t.Helper()
	d, err := records.NewDecoder(f)
	if err != nil {
		t.Fatalf("NewDecoder(%q): %v", f, err)
	}
	var r records.Record
	for _, p := range payloads[:len(payloads)-1] {
		if err := d.Decode(p, &r); err != nil && !errors.Is(err, records.ErrHeader) {
			t.Fatalf("Decode(%q): %v", p, err)
		}
	}
	// Dirty the record: Decode must clear what the previous record set.
	r = records.Record{Meta: testMeta, Kind: records.KindOrder, Status: 999, InvoiceNo: "stale", Quantity: 5, Host: "stale"}
	err = d.Decode(payloads[len(payloads)-1], &r)
	return r, err
}

func hit(r records.Record) records.Record {
	r.Kind = records.KindHit
	r.Meta = testMeta
	return r
}

func order(r records.Record) records.Record {
	r.Kind = records.KindOrder
	r.Meta = testMeta
	return r
}

var tehran = time.FixedZone("", 3*3600+30*60)

// TestDecodeRealLines checks every field of chosen lines of the real
// data files, through the format's own decoder and through auto.
func TestDecodeRealLines(t *testing.T) {
	cfHeaders := func(t *testing.T) [][]byte {
		return [][]byte{line(t, cloudfrontFile, 1), line(t, cloudfrontFile, 2)}
	}
	tests := []struct {
		name    string
		format  records.Format
		file    string
		line    int
		headers func(t *testing.T) [][]byte // records decoded first, if any
		want    records.Record
	}{
		{
			name: "zaker crawler, dash referer, percent-encoded path, +0330, trailing XFF field", format: records.FormatCombined,
			file: zakerFile, line: 1,
			want: hit(records.Record{
				Time:      time.Date(2019, 1, 22, 3, 56, 14, 0, tehran),
				ClientIP:  "54.36.149.41",
				Method:    "GET",
				Path:      "/filter/27|13%20%D9%85%DA%AF%D8%A7%D9%BE%DB%8C%DA%A9%D8%B3%D9%84,27|%DA%A9%D9%85%D8%AA%D8%B1%20%D8%A7%D8%B2%205%20%D9%85%DA%AF%D8%A7%D9%BE%DB%8C%DA%A9%D8%B3%D9%84,p53",
				Protocol:  "HTTP/1.1",
				Status:    200,
				Bytes:     30577,
				UserAgent: "Mozilla/5.0 (compatible; AhrefsBot/6.1; +http://ahrefs.com/robot/)",
			}),
		},
		{
			name: "zaker browser with referer", format: records.FormatCombined,
			file: zakerFile, line: 2,
			want: hit(records.Record{
				Time:      time.Date(2019, 1, 22, 3, 56, 16, 0, tehran),
				ClientIP:  "31.56.96.51",
				Method:    "GET",
				Path:      "/image/60844/productModel/200x200",
				Protocol:  "HTTP/1.1",
				Status:    200,
				Bytes:     5667,
				Referer:   "https://www.zanbil.ir/m/filter/b113",
				UserAgent: "Mozilla/5.0 (Linux; Android 6.0; ALE-L21 Build/HuaweiALE-L21) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/66.0.3359.158 Mobile Safari/537.36",
			}),
		},
		{
			name: "elastic apache combined, UTC", format: records.FormatCombined,
			file: elasticFile, line: 1,
			want: hit(records.Record{
				Time:      time.Date(2015, 5, 17, 10, 5, 3, 0, time.UTC),
				ClientIP:  "83.149.9.216",
				Method:    "GET",
				Path:      "/presentations/logstash-monitorama-2013/images/kibana-search.png",
				Protocol:  "HTTP/1.1",
				Status:    200,
				Bytes:     203023,
				Referer:   "http://semicomplete.com/presentations/logstash-monitorama-2013/",
				UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36",
			}),
		},
		{
			name: "cloudfront bingbot after header, UA encoded twice", format: records.FormatCloudFront,
			file: cloudfrontFile, line: 3, headers: cfHeaders,
			want: hit(records.Record{
				Time:      time.Date(2018, 11, 7, 0, 12, 8, 0, time.UTC),
				ClientIP:  "3.120.138.129",
				Method:    "GET",
				Path:      "/notavailable.json",
				Protocol:  "HTTP/1.1",
				Status:    302,
				Bytes:     376,
				UserAgent: "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
				Host:      "d345qc258n54ge.cloudfront.net", Edge: "FRA53", EdgeResult: "LambdaGeneratedResponse", EdgeResponseResult: "LambdaGeneratedResponse",
				RequestBytes: 337, TimeTaken: 394 * time.Millisecond, TLSProtocol: "TLSv1.2", TLSCipher: "ECDHE-RSA-AES128-GCM-SHA256",
			}),
		},
		{
			name: "cloudfront without header uses the standard v1.0 order", format: records.FormatCloudFront,
			file: cloudfrontFile, line: 5,
			want: hit(records.Record{
				Time:      time.Date(2018, 11, 7, 0, 11, 29, 0, time.UTC),
				ClientIP:  "13.233.35.131",
				Method:    "GET",
				Path:      "/index.html",
				Protocol:  "HTTP/1.1",
				Status:    200,
				Bytes:     965,
				UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:61.0) Gecko/20100101 Firefox/61.0",
				Host:      "d345qc258n54ge.cloudfront.net", Edge: "BOM52", EdgeResult: "Hit", EdgeResponseResult: "Hit",
				RequestBytes: 337, TimeTaken: 1047 * time.Millisecond, TLSProtocol: "TLSv1.2", TLSCipher: "ECDHE-RSA-AES128-GCM-SHA256",
			}),
		},
		{
			name: "cloudfront DUB2 iPhone", format: records.FormatCloudFront,
			file: cloudfrontFile, line: 6, headers: cfHeaders,
			want: hit(records.Record{
				Time:      time.Date(2018, 11, 7, 0, 12, 20, 0, time.UTC),
				ClientIP:  "52.209.5.129",
				Method:    "GET",
				Path:      "/index.html",
				Protocol:  "HTTP/1.1",
				Status:    200,
				Bytes:     966,
				UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 11_0 like Mac OS X) AppleWebKit/604.1.38 (KHTML, like Gecko) Version/11.0 Mobile/15A372 Safari/604.1",
				Host:      "d345qc258n54ge.cloudfront.net", Edge: "DUB2", EdgeResult: "Hit", EdgeResponseResult: "Hit",
				RequestBytes: 394, TimeTaken: 417 * time.Millisecond, TLSProtocol: "TLSv1.2", TLSCipher: "ECDHE-RSA-AES128-GCM-SHA256",
			}),
		},
		{
			name: "order, float customer id", format: records.FormatOrdersCSV,
			file: ordersFile, line: 2,
			want: order(records.Record{
				Time:        time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC),
				InvoiceNo:   "536365",
				StockCode:   "85123A",
				Description: "WHITE HANGING HEART T-LIGHT HOLDER",
				Quantity:    6,
				UnitPrice:   2.55,
				CustomerID:  "17850",
				Country:     "United Kingdom",
			}),
		},
		{
			name: "order, quoted description with doubled quote", format: records.FormatOrdersCSV,
			file: ordersFile, line: 873,
			want: order(records.Record{
				Time:        time.Date(2010, 12, 1, 12, 27, 0, 0, time.UTC),
				InvoiceNo:   "536477",
				StockCode:   "22041",
				Description: `RECORD FRAME 7" SINGLE SIZE `,
				Quantity:    48,
				UnitPrice:   2.1,
				CustomerID:  "16210",
				Country:     "United Kingdom",
			}),
		},
		{
			name: "order, cancellation", format: records.FormatOrdersCSV,
			file: ordersFile, line: 143,
			want: order(records.Record{
				Time:        time.Date(2010, 12, 1, 9, 41, 0, 0, time.UTC),
				InvoiceNo:   "C536379",
				StockCode:   "D",
				Description: "Discount",
				Quantity:    -1,
				UnitPrice:   27.5,
				CustomerID:  "14527",
				Country:     "United Kingdom",
			}),
		},
		{
			name: "order, no customer, non-ASCII description", format: records.FormatOrdersCSV,
			file: ordersFile, line: 38250,
			want: order(records.Record{
				Time:        time.Date(2010, 12, 20, 10, 14, 0, 0, time.UTC),
				InvoiceNo:   "539492",
				StockCode:   "gift_0001_40",
				Description: "Dotcomgiftshop Gift Voucher £40.00",
				Quantity:    1,
				UnitPrice:   34.04,
				Country:     "United Kingdom",
			}),
		},
		{
			name: "order, empty description, zero price", format: records.FormatOrdersCSV,
			file: ordersFile, line: 624,
			want: order(records.Record{
				Time:      time.Date(2010, 12, 1, 11, 52, 0, 0, time.UTC),
				InvoiceNo: "536414",
				StockCode: "22139",
				Quantity:  56,
				Country:   "United Kingdom",
			}),
		},
	}
	for _, tt := range tests {
		for _, f := range []records.Format{tt.format, records.FormatAuto} {
			t.Run(tt.name+"/"+string(f), func(t *testing.T) {
				var payloads [][]byte
				if tt.headers != nil {
					payloads = tt.headers(t)
				}
				payloads = append(payloads, line(t, tt.file, tt.line))
				got, err := decodeWith(t, f, payloads...)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("record mismatch (-want +got):\n%s", diff)
				}
				// cmp compares times with Equal; the zone must survive too.
				_, wantOff := tt.want.Time.Zone()
				if _, off := got.Time.Zone(); off != wantOff {
					t.Errorf("zone offset = %d s, want %d s", off, wantOff)
				}
			})
		}
	}
}

// TestDecodeSynthetic covers shapes the real files lack.
func TestDecodeSynthetic(t *testing.T) {
	ua := "Mozilla/5.0 (X11; Linux x86_64)"
	tests := []struct {
		name   string
		format records.Format
		in     string
		want   records.Record
	}{
		{
			name: "IPv6 client, negative offset", format: records.FormatCombined,
			in: `2001:db8::1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://example.com/start.html" "` + ua + `"`,
			want: hit(records.Record{
				Time: time.Date(2000, 10, 10, 13, 55, 36, 0, time.FixedZone("", -7*3600)), ClientIP: "2001:db8::1",
				Method: "GET", Path: "/apache_pb.gif", Protocol: "HTTP/1.0", Status: 200, Bytes: 2326,
				Referer: "http://example.com/start.html", UserAgent: ua,
			}),
		},
		{
			name: "common log format", format: records.FormatCombined,
			in: `127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /index.html HTTP/1.0" 304 -` + "\n",
			want: hit(records.Record{
				Time: time.Date(2000, 10, 10, 13, 55, 36, 0, time.UTC), ClientIP: "127.0.0.1",
				Method: "GET", Path: "/index.html", Protocol: "HTTP/1.0", Status: 304,
			}),
		},
		{
			name: "escaped quotes and backslash in request and UA", format: records.FormatCombined,
			in: `10.0.0.1 - - [01/Feb/2024:00:00:00 +0100] "GET /q?s=\"x\" HTTP/1.1" 200 10 "-" "Evil \"Bot\" \\o/"`,
			want: hit(records.Record{
				Time: time.Date(2024, 2, 1, 0, 0, 0, 0, time.FixedZone("", 3600)), ClientIP: "10.0.0.1",
				Method: "GET", Path: `/q?s="x"`, Protocol: "HTTP/1.1", Status: 200, Bytes: 10,
				UserAgent: `Evil "Bot" \o/`,
			}),
		},
		{
			name: "nginx hex escape kept, TLS garbage request, status 400", format: records.FormatCombined,
			in: `10.0.0.2 - - [01/Feb/2024:00:00:00 +0000] "\x16\x03\x01\x00" 400 157 "-" "-"`,
			want: hit(records.Record{
				Time: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), ClientIP: "10.0.0.2",
				Path: `\x16\x03\x01\x00`, Status: 400, Bytes: 157,
			}),
		},
		{
			name: "empty request, status 000", format: records.FormatCombined,
			in: `10.0.0.3 - - [29/Feb/2024:23:59:59 +0000] "-" 000 0 "-" "-"`,
			want: hit(records.Record{
				Time: time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC), ClientIP: "10.0.0.3",
			}),
		},
		{
			name: "HTTP/0.9 request without protocol, space in path", format: records.FormatCombined,
			in: `10.0.0.4 - - [01/Feb/2024:00:00:00 +0000] "GET /a b" 200 1`,
			want: hit(records.Record{
				Time: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), ClientIP: "10.0.0.4",
				Method: "GET", Path: "/a b", Status: 200, Bytes: 1,
			}),
		},
		{
			name: "cloudfront query joined to path, status 000", format: records.FormatCloudFront,
			in: "2024-03-01\t12:00:01\tIAD89\t0\t2001:db8::7\tGET\td1.cloudfront.net\t/a.js\t000\thttps://example.com/\tcurl/8.5.0\tv=1&x=%20\t-\tError\tid\td1\thttps\t100\t0.001\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tError\tHTTP/2.0\t-\t-",
			want: hit(records.Record{
				Time: time.Date(2024, 3, 1, 12, 0, 1, 0, time.UTC), ClientIP: "2001:db8::7", Method: "GET",
				Path: "/a.js?v=1&x=%20", Protocol: "HTTP/2.0", Referer: "https://example.com/", UserAgent: "curl/8.5.0", Host: "d1.cloudfront.net",
				Edge: "IAD89", EdgeResult: "Error", EdgeResponseResult: "Error", RequestBytes: 100, TimeTaken: time.Millisecond,
				TLSProtocol: "TLSv1.3", TLSCipher: "TLS_AES_128_GCM_SHA256",
			}),
		},
		{
			name: "clickstream with RFC 3339 time and escapes", format: records.FormatClickstream,
			in: `{"ip":"198.51.100.7","user_agent":"Mozilla\/5.0 \"quoted\" \u00e9\ud83d\ude00","referer":"-","session_id":"s-1",` +
				`"timestamp":"2026-11-22T09:41:07.120+01:00","path":"/cart?id=7","status":201,"bytes":"5120","host":"shop.example.com",` +
				`"event":"add_to_cart","method":"POST","extra":{"nested":[1,{"a":null}],"b":true}}`,
			want: hit(records.Record{
				Time: time.Date(2026, 11, 22, 9, 41, 7, 120e6, time.FixedZone("", 3600)), ClientIP: "198.51.100.7",
				UserAgent: "Mozilla/5.0 \"quoted\" é😀", SessionID: "s-1", Path: "/cart?id=7", Status: 201, Bytes: 5120,
				Host: "shop.example.com", Event: "add_to_cart", Method: "POST",
			}),
		},
		{
			name: "clickstream epoch millis, default event, numeric session", format: records.FormatClickstream,
			in: ` { "ip" : "203.0.113.9", "timestamp" : 1700000000123, "session_id": 42, "status": null } ` + "\n",
			want: hit(records.Record{
				Time: time.UnixMilli(1700000000123).UTC(), ClientIP: "203.0.113.9", SessionID: "42", Event: records.DefaultEvent,
			}),
		},
		{
			name: "clickstream duplicate key: last wins", format: records.FormatClickstream,
			in:   `{"ip":"1.1.1.1","path":"/a","ip":"2.2.2.2","path":""}`,
			want: hit(records.Record{ClientIP: "2.2.2.2", Event: records.DefaultEvent}),
		},
		{
			name: "order JSON", format: records.FormatOrdersJSON,
			in: `{"invoice_no":"C536379","stock_code":"D","description":"Discount","quantity":-1,"invoice_date":"2010-12-01 09:41:00",` +
				`"unit_price":27.5,"customer_id":14527.0,"country":"United Kingdom"}`,
			want: order(records.Record{
				Time: time.Date(2010, 12, 1, 9, 41, 0, 0, time.UTC), InvoiceNo: "C536379", StockCode: "D", Description: "Discount",
				Quantity: -1, UnitPrice: 27.5, CustomerID: "14527", Country: "United Kingdom",
			}),
		},
		{
			name: "order JSON numeric invoice, string numbers, US date", format: records.FormatOrdersJSON,
			in: `{"invoice_no":536365,"stock_code":71053,"quantity":"6","unit_price":"3.39","invoice_date":"12/1/2010 8:26","customer_id":null}`,
			want: order(records.Record{
				Time: time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC), InvoiceNo: "536365", StockCode: "71053", Quantity: 6, UnitPrice: 3.39,
			}),
		},
		{
			name: "order CSV with CRLF, quoted comma, RFC 3339 date", format: records.FormatOrdersCSV,
			in: `536520,22760,"TRAY, BREAKFAST IN BED",1,2010-12-01T12:43:00Z,12.75,14729,United Kingdom` + "\r\n",
			want: order(records.Record{
				Time: time.Date(2010, 12, 1, 12, 43, 0, 0, time.UTC), InvoiceNo: "536520", StockCode: "22760",
				Description: "TRAY, BREAKFAST IN BED", Quantity: 1, UnitPrice: 12.75, CustomerID: "14729", Country: "United Kingdom",
			}),
		},
	}
	for _, tt := range tests {
		for _, f := range []records.Format{tt.format, records.FormatAuto} {
			t.Run(tt.name+"/"+string(f), func(t *testing.T) {
				got, err := decodeWith(t, f, []byte(tt.in))
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("record mismatch (-want +got):\n%s", diff)
				}
				_, wantOff := tt.want.Time.Zone()
				if _, off := got.Time.Zone(); off != wantOff {
					t.Errorf("zone offset = %d s, want %d s", off, wantOff)
				}
			})
		}
	}
}

func TestCloudFrontFieldsHeader(t *testing.T) {
	d := &records.CloudFrontDecoder{}
	var r records.Record
	// A reordered, shorter layout: the header decides.
	hdr := "#Fields: c-ip date sc-status time x-edge-location cs(User-Agent)"
	if err := d.Decode([]byte(hdr), &r); !errors.Is(err, records.ErrHeader) {
		t.Fatalf("Decode(#Fields) = %v, want ErrHeader", err)
	}
	if err := d.Decode([]byte("#Version: 1.0"), &r); !errors.Is(err, records.ErrHeader) {
		t.Fatalf("Decode(#Version) = %v, want ErrHeader", err)
	}
	r = records.Record{Meta: testMeta}
	if err := d.Decode([]byte("192.0.2.1\t2024-01-02\t404\t03:04:05\tLHR62\tcurl%2F8"), &r); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := hit(records.Record{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), ClientIP: "192.0.2.1", Status: 404, Edge: "LHR62", UserAgent: "curl/8"})
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("record mismatch (-want +got):\n%s", diff)
	}

	// A header without the columns the decoder needs is an error and the
	// previous layout stays.
	err := d.Decode([]byte("#Fields: foo bar"), &r)
	if !errors.Is(err, records.ErrMalformed) {
		t.Fatalf("Decode(bad #Fields) = %v, want ErrMalformed", err)
	}
	if err := d.Decode([]byte("192.0.2.1\t2024-01-02\t404\t03:04:05\tLHR62\tcurl%2F8"), &r); err != nil {
		t.Fatalf("Decode after bad header: %v", err)
	}

	// Real-time logs: no header, epoch timestamp, configured fields.
	rt := &records.CloudFrontDecoder{}
	if err := rt.SetFields([]string{"timestamp", "c-ip", "time-to-first-byte", "sc-status", "sc-bytes", "cs-method", "cs-protocol", "cs-host", "cs-uri-stem", "cs-user-agent"}); err != nil {
		t.Fatalf("SetFields: %v", err)
	}
	r = records.Record{Meta: testMeta}
	if err := rt.Decode([]byte("1591725813.034\t198.51.100.1\t0.002\t200\t512\tGET\thttps\td1.cloudfront.net\t/x\tcurl/7.64"), &r); err != nil {
		t.Fatalf("Decode real-time line: %v", err)
	}
	want = hit(records.Record{Time: time.Unix(1591725813, 34e6).UTC(), ClientIP: "198.51.100.1", Status: 200, Bytes: 512, Method: "GET", Path: "/x", UserAgent: "curl/7.64", Host: "d1.cloudfront.net"})
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("real-time record mismatch (-want +got):\n%s", diff)
	}
}

func TestIsCancellation(t *testing.T) {
	tests := []struct {
		r    records.Record
		want bool
	}{
		{records.Record{Kind: records.KindOrder, InvoiceNo: "C536379"}, true},
		{records.Record{Kind: records.KindOrder, InvoiceNo: "536379"}, false},
		{records.Record{Kind: records.KindOrder}, false},
		{records.Record{Kind: records.KindHit, InvoiceNo: "C1"}, false},
	}
	for _, tt := range tests {
		if got := tt.r.IsCancellation(); got != tt.want {
			t.Errorf("IsCancellation(%q, %v) = %v, want %v", tt.r.InvoiceNo, tt.r.Kind, got, tt.want)
		}
	}
}
