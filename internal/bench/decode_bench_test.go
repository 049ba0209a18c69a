package bench_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// BenchmarkDecode is each records decoder on its real data, in batches of
// 250 lines (the decoders are per record; the batching only matches the
// other benchmarks' units). Header lines count as records: a decoder sees
// them too. "alias" variants decode the way the consumer's pipeline does,
// with records.PayloadAliaser on (no copy of the payload).
func BenchmarkDecode(b *testing.B) {
	cases := []struct {
		name   string
		format records.Format
		lines  func(testing.TB) [][]byte
		alias  bool // records.PayloadAliaser on, as the consumer's pipeline sets it
	}{
		{"combined/zaker", records.FormatCombined, fileLines(zakerFile), false},
		{"combined/elastic", records.FormatCombined, fileLines(elasticFile), false},
		{"cloudfront", records.FormatCloudFront, fileLines(cloudfrontFile), false},
		{"clickstream", records.FormatClickstream, clickstreamLines, false},
		{"orders-csv", records.FormatOrdersCSV, fileLines(ordersFile), false},
		{"orders-json", records.FormatOrdersJSON, orderJSONLines, false},
		{"auto/zaker", records.FormatAuto, fileLines(zakerFile), false},
		{"auto/clickstream", records.FormatAuto, clickstreamLines, false},
		{"auto/orders-csv", records.FormatAuto, fileLines(ordersFile), false},
		{"auto/zaker/alias", records.FormatAuto, fileLines(zakerFile), true},
		{"auto/clickstream/alias", records.FormatAuto, clickstreamLines, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			ls := tc.lines(b)
			dec, err := records.NewDecoder(tc.format)
			if err != nil {
				b.Fatal(err)
			}
			dec.(records.PayloadAliaser).AliasPayload(tc.alias)
			var r records.Record
			bad := 0
			runBatches(b, workload{
				n: len(ls),
				batch: func(lo, hi int) {
					for _, l := range ls[lo:hi] {
						if err := dec.Decode(l, &r); err != nil && !errors.Is(err, records.ErrHeader) {
							bad++
						}
					}
				},
			})
			if bad*100 > b.N*batchSize { // more than 1% undecodable: wrong input
				b.Fatalf("%d records did not decode", bad)
			}
		})
	}
}

func fileLines(rel string) func(testing.TB) [][]byte {
	return func(tb testing.TB) [][]byte { return lines(tb, rel) }
}

// orderJSONLines re-encodes the order CSV rows as orders-json records.
func orderJSONLines(tb testing.TB) [][]byte {
	tb.Helper()
	var d records.OrderCSVDecoder
	var out [][]byte
	for _, l := range lines(tb, ordersFile) {
		var r records.Record
		if err := d.Decode(l, &r); err != nil {
			continue
		}
		j, err := json.Marshal(map[string]any{
			"invoice_no": r.InvoiceNo, "stock_code": r.StockCode, "description": r.Description, "quantity": r.Quantity,
			"invoice_date": r.Time.Format("2006-01-02 15:04:05"), "unit_price": r.UnitPrice, "customer_id": r.CustomerID, "country": r.Country,
		})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}
