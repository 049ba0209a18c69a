package records_test

import (
	"errors"
	"fmt"

	"github.com/shardwatch/shardwatch/pkg/records"
)

func ExampleNewDecoder() {
	format, err := records.ParseFormat("auto")
	if err != nil {
		fmt.Println(err)
		return
	}
	dec, err := records.NewDecoder(format) // one per shard
	if err != nil {
		fmt.Println(err)
		return
	}
	payloads := []string{
		`54.36.149.41 - - [22/Jan/2019:03:56:14 +0330] "GET /p?q=1 HTTP/1.1" 200 30577 "-" "Mozilla/5.0 (compatible; AhrefsBot/6.1)" "-"`,
		"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
		"C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527.0,United Kingdom",
		`{"ip":"203.0.113.9","path":"/cart","timestamp":1700000000123}`,
		`54.36.149.41 - - [22/Jan/2019:03:56:14 +0330] "GET / HTTP/1.1" 2x0 1`,
	}
	var r records.Record // reused: Decode resets everything but Meta
	for _, p := range payloads {
		err := dec.Decode([]byte(p), &r)
		switch {
		case errors.Is(err, records.ErrHeader):
			fmt.Println("header: skipped")
		case errors.Is(err, records.ErrMalformed):
			fmt.Println("dead letter:", err)
		case err != nil:
			fmt.Println("other error:", err)
		case r.Kind == records.KindOrder:
			fmt.Println(r.Kind, r.InvoiceNo, r.Quantity, r.CustomerID, r.IsCancellation())
		default:
			fmt.Println(r.Kind, r.ClientIP, r.Method, r.Path, r.Status, r.Event, r.Time.Format("2006-01-02T15:04:05Z07:00"))
		}
	}
	// Output:
	// hit 54.36.149.41 GET /p?q=1 200  2019-01-22T03:56:14+03:30
	// header: skipped
	// order C536379 -1 14527 true
	// hit 203.0.113.9  /cart 0 pageview 2023-11-14T22:13:20Z
	// dead letter: combined: field status: not a number "2x0"
}
