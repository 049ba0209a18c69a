package records_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// benchLines returns the data lines of a file for benchmarks.
func benchLines(b *testing.B, rel string) [][]byte {
	b.Helper()
	all := readLines(b, rel)
	out := all[:0:0]
	for _, l := range all {
		if len(l) > 0 && l[0] != '#' && string(l[:min(len(l), 9)]) != "InvoiceNo" {
			out = append(out, l)
		}
	}
	return out
}

func runDecode(b *testing.B, f records.Format, lines [][]byte) {
	b.Helper()
	d, err := records.NewDecoder(f)
	if err != nil {
		b.Fatal(err)
	}
	var total int
	for _, l := range lines {
		total += len(l)
	}
	b.SetBytes(int64(total / len(lines)))
	b.ReportAllocs()
	var r records.Record
	i := 0
	cpu0 := processCPU()
	for b.Loop() {
		if err := d.Decode(lines[i], &r); err != nil && !errors.Is(err, records.ErrTruncated) {
			b.Fatalf("line %d: %v", i+1, err)
		}
		if i++; i == len(lines) {
			i = 0
		}
	}
	reportCPU(b, cpu0)
}

// reportCPU adds cpu-ns/op: process CPU time (GC included) per
// operation. On a shared machine wall-clock ns/op also counts the time
// other processes hold the CPU; the budgets are about CPU.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if cpu0 < 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

func BenchmarkCombinedZaker(b *testing.B) {
	runDecode(b, records.FormatCombined, benchLines(b, zakerFile))
}

func BenchmarkCombinedElastic(b *testing.B) {
	runDecode(b, records.FormatCombined, benchLines(b, elasticFile))
}

func BenchmarkCloudFront(b *testing.B) {
	runDecode(b, records.FormatCloudFront, benchLines(b, cloudfrontFile))
}

func BenchmarkOrdersCSV(b *testing.B) {
	runDecode(b, records.FormatOrdersCSV, benchLines(b, ordersFile))
}

func BenchmarkAutoZaker(b *testing.B) {
	runDecode(b, records.FormatAuto, benchLines(b, zakerFile))
}

// clickHit is the clickstream schema as a producer would marshal it.
type clickHit struct {
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	Referer   string `json:"referer"`
	SessionID string `json:"session_id"`
	Timestamp string `json:"timestamp"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
	Bytes     int64  `json:"bytes"`
	Host      string `json:"host"`
	Event     string `json:"event"`
	Method    string `json:"method"`
}

// clickstreamLines turns the zaker hits into JSON clickstream hits.
func clickstreamLines(b *testing.B) [][]byte {
	b.Helper()
	var d records.CombinedDecoder
	var out [][]byte
	for i, l := range benchLines(b, zakerFile) {
		var r records.Record
		if err := d.Decode(l, &r); err != nil {
			b.Fatal(err)
		}
		ev := "pageview"
		if i%5 == 0 {
			ev = "add_to_cart"
		}
		j, err := json.Marshal(clickHit{
			IP: r.ClientIP, UserAgent: r.UserAgent, Referer: r.Referer, SessionID: "s-" + strconv.Itoa(i%97),
			Timestamp: r.Time.Format("2006-01-02T15:04:05.000Z07:00"), Path: r.Path, Status: r.Status, Bytes: r.Bytes,
			Host: "www.zanbil.ir", Event: ev, Method: r.Method,
		})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}

func BenchmarkClickstream(b *testing.B) {
	runDecode(b, records.FormatClickstream, clickstreamLines(b))
}

// BenchmarkClickstreamGoccy is the alternative the hand-written scanner
// was measured against, doing the same job: goccy/go-json into a struct,
// time.Parse of the timestamp and the copy into a Record (without the
// UTF-8 check and the field validation ClickstreamDecoder adds).
func BenchmarkClickstreamGoccy(b *testing.B) {
	lines := clickstreamLines(b)
	b.ReportAllocs()
	var r records.Record
	i := 0
	cpu0 := processCPU()
	for b.Loop() {
		var h clickHit
		if err := gojson.Unmarshal(lines[i], &h); err != nil {
			b.Fatal(err)
		}
		t, err := time.Parse(time.RFC3339Nano, h.Timestamp)
		if err != nil {
			b.Fatal(err)
		}
		r = records.Record{Kind: records.KindHit, Time: t, ClientIP: h.IP, UserAgent: h.UserAgent, Referer: h.Referer,
			SessionID: h.SessionID, Path: h.Path, Status: h.Status, Bytes: h.Bytes, Host: h.Host, Event: h.Event, Method: h.Method}
		if i++; i == len(lines) {
			i = 0
		}
	}
	reportCPU(b, cpu0)
	benchSink = r
}

// benchSink keeps the compiler from dropping the Record copies above.
var benchSink records.Record

func BenchmarkOrdersJSON(b *testing.B) {
	var d records.OrderCSVDecoder
	var lines [][]byte
	for _, l := range benchLines(b, ordersFile) {
		var r records.Record
		if err := d.Decode(l, &r); err != nil {
			b.Fatal(err)
		}
		j, err := json.Marshal(map[string]any{
			"invoice_no": r.InvoiceNo, "stock_code": r.StockCode, "description": r.Description, "quantity": r.Quantity,
			"invoice_date": r.Time.Format("2006-01-02 15:04:05"), "unit_price": r.UnitPrice, "customer_id": r.CustomerID, "country": r.Country,
		})
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, j)
	}
	runDecode(b, records.FormatOrdersJSON, lines)
}
