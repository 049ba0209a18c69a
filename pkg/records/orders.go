package records

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// IsCancellation reports whether r is a cancelled order line: in the
// Online Retail data an invoice number starting with "C" (its Quantity is
// negative). Decoders keep cancellations; processors decide.
func (r *Record) IsCancellation() bool {
	return r.Kind == KindOrder && len(r.InvoiceNo) > 0 && r.InvoiceNo[0] == 'C'
}

// orderCols are the Online Retail columns, in CSV order.
const (
	ocInvoiceNo = iota
	ocStockCode
	ocDescription
	ocQuantity
	ocInvoiceDate
	ocUnitPrice
	ocCustomerID
	ocCountry
	ocNum
)

var orderColNames = [ocNum]string{"InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"}

// OrderCSVDecoder reads one Online Retail CSV row per record:
//
//	536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
//
// into a KindOrder Record (InvoiceDate -> Time). Fields may be quoted
// ("TRAY, BREAKFAST IN BED", with "" for a quote). InvoiceDate is
// "YYYY-MM-DD HH:MM:SS" read as UTC (RFC 3339 and the original export's
// "12/1/2010 8:26" are accepted too). A CustomerID written as a float
// ("17850.0") becomes "17850"; it may be empty. Description and Country
// may be empty; InvoiceNo, StockCode, Quantity, InvoiceDate and UnitPrice
// may not. The header row (first field "InvoiceNo") is ErrHeader.
// Cancellations (InvoiceNo "C...", negative Quantity) are kept.
//
// The zero value is ready to use.
type OrderCSVDecoder struct {
	zones zoneCache
	tab   strtab
}

// Decode implements Decoder.
func (d *OrderCSVDecoder) Decode(data []byte, r *Record) error {
	line, err := checkPayload(FormatOrdersCSV, data)
	if err != nil {
		clearDecoded(r)
		return err
	}
	startDecode(r)
	d.tab.reset()
	var t time.Time
	if err := d.scan(line, r, &t); err != nil {
		clearDecoded(r)
		return err
	}
	return finishDecode(FormatOrdersCSV, &d.tab, line, r, t, KindOrder)
}

// csvField is one field's span; quoted fields exclude the quotes.
type csvField struct {
	start, end int
	escaped    bool // has "" inside quotes
}

func (d *OrderCSVDecoder) scan(line []byte, r *Record, tm *time.Time) error {
	const f = FormatOrdersCSV
	var fields [ocNum]csvField
	n, err := splitCSV(line, &fields)
	if err != nil {
		return err
	}
	text := func(c int) []byte { return line[fields[c].start:fields[c].end] }
	if n >= 1 && string(text(ocInvoiceNo)) == "InvoiceNo" {
		return ErrHeader
	}
	if n < ocNum {
		return newError(f, ErrTruncated, "", "row has "+strconv.Itoa(n)+" fields, want 8", nil)
	}
	for _, c := range [...]int{ocInvoiceNo, ocStockCode, ocQuantity, ocInvoiceDate, ocUnitPrice} {
		if fields[c].start == fields[c].end {
			return newError(f, ErrMalformed, orderColNames[c], "empty", nil)
		}
	}
	var ok bool
	if r.Quantity, ok = parseInt(text(ocQuantity)); !ok {
		return newError(f, ErrMalformed, "Quantity", "not an integer", text(ocQuantity))
	}
	if *tm, ok = parseOrderTime(text(ocInvoiceDate), &d.zones); !ok {
		return newError(f, ErrMalformed, "InvoiceDate", "not a date-time", text(ocInvoiceDate))
	}
	if r.UnitPrice, ok = parseFloat(text(ocUnitPrice)); !ok {
		return newError(f, ErrMalformed, "UnitPrice", "not a number", text(ocUnitPrice))
	}
	for _, c := range [...]struct {
		col int
		dst textField
	}{
		{ocInvoiceNo, tInvoiceNo},
		{ocStockCode, tStockCode},
		{ocDescription, tDescription},
		{ocCustomerID, tCustomerID},
		{ocCountry, tCountry},
	} {
		fl := fields[c.col]
		dec := decVerbatim
		if fl.escaped {
			dec = decCSV
		}
		d.tab.add(c.dst, fl.start, fl.end, dec)
	}
	return nil
}

// splitCSV splits one RFC 4180 row into at most len(fields) fields and
// returns how many there are. A stray quote inside an unquoted field is
// kept as text (LazyQuotes in encoding/csv terms).
func splitCSV(line []byte, fields *[ocNum]csvField) (int, error) {
	const f = FormatOrdersCSV
	n, p := 0, 0
	for {
		if n == len(fields) {
			return n, newError(f, ErrMalformed, "", "more than 8 fields", nil)
		}
		var fl csvField
		if p < len(line) && line[p] == '"' {
			fl.start = p + 1
			q := fl.start
			for {
				i := bytes.IndexByte(line[q:], '"')
				if i < 0 {
					return n, newError(f, ErrTruncated, orderColNames[n], "no closing quote", line[p:])
				}
				q += i
				if q+1 < len(line) && line[q+1] == '"' {
					fl.escaped = true
					q += 2
					continue
				}
				break
			}
			fl.end = q
			p = q + 1
			if p < len(line) && line[p] != ',' {
				return n, newError(f, ErrMalformed, orderColNames[n], "text after closing quote", line[fl.start:min(p+8, len(line))])
			}
		} else {
			fl.start = p
			if i := bytes.IndexByte(line[p:], ','); i >= 0 {
				p += i
			} else {
				p = len(line)
			}
			fl.end = p
		}
		fields[n] = fl
		n++
		if p >= len(line) {
			return n, nil
		}
		p++ // the comma
	}
}

// parseOrderTime reads an InvoiceDate: "2010-12-01 08:26:00" (UTC), RFC
// 3339, or the original UCI export's "12/1/2010 8:26".
func parseOrderTime(b []byte, z *zoneCache) (time.Time, bool) {
	if len(b) >= 19 && b[4] == '-' {
		return parseRFC3339(b, z)
	}
	return parseUSDateTime(b)
}

// normaliseCustomerID turns a customer id written as a float ("17850.0",
// as pandas exports an integer column with gaps) into its integer text.
// Anything else is returned as it is: ids need not be numeric.
func normaliseCustomerID(s string) string {
	dot := strings.IndexByte(s, '.')
	if dot <= 0 {
		return s
	}
	for i := 0; i < dot; i++ {
		if s[i] < '0' || s[i] > '9' {
			return s
		}
	}
	for i := dot + 1; i < len(s); i++ {
		if s[i] != '0' {
			return s
		}
	}
	return s[:dot]
}
