package records

import "time"

// OrderJSONDecoder reads one Online Retail order line as a JSON object
// with snake_case keys, or with the keys a Kinesis Agent's CSVTOJSON
// conversion writes (customFieldNames InvoiceNo, StockCode, Description,
// Quantity, InvoiceDate, UnitPrice, Customer, Country; CustomerID is
// accepted too; every value a string, the date as in the CSV):
//
//	{"invoice_no":"536365","stock_code":"85123A","description":"WHITE HANGING HEART T-LIGHT HOLDER",
//	 "quantity":6,"invoice_date":"2010-12-01 08:26:00","unit_price":2.55,
//	 "customer_id":"17850","country":"United Kingdom"}
//
// into a KindOrder Record. invoice_no, stock_code and customer_id may be
// strings or numbers (customer_id 17850.0 becomes "17850");
// quantity is an integer and unit_price a number, either also accepted
// as a string; invoice_date takes the OrderCSVDecoder forms or epoch
// milliseconds. An empty customer ("", as the agent writes an empty CSV
// cell) means none. invoice_no and quantity are required; null means absent;
// unknown keys are ignored.
//
// The zero value is ready to use.
type OrderJSONDecoder struct {
	zones zoneCache
	tab   strtab
}

// Decode implements Decoder.
func (d *OrderJSONDecoder) Decode(data []byte, r *Record) error {
	b, err := checkPayload(FormatOrdersJSON, data)
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
	return finishDecode(FormatOrdersJSON, &d.tab, b, r, t, KindOrder)
}

func (d *OrderJSONDecoder) scan(b []byte, r *Record, tm *time.Time) error {
	const f = FormatOrdersJSON
	var it objIter
	it.init(b)
	var keyBuf [32]byte
	hasInvoice, hasQuantity := false, false
	for it.next() {
		key := it.key
		if it.keyEsc {
			key = appendUnJSON(keyBuf[:0], key)
		}
		v := &it.val
		var err error
		switch string(key) {
		case "invoice_no", "InvoiceNo":
			err = jsonText(&d.tab, f, b, v, tInvoiceNo, true)
			if v.kind != jsonNull {
				hasInvoice = v.end > v.start
			}
		case "stock_code", "StockCode":
			err = jsonText(&d.tab, f, b, v, tStockCode, true)
		case "description", "Description":
			err = jsonText(&d.tab, f, b, v, tDescription, false)
		case "country", "Country":
			err = jsonText(&d.tab, f, b, v, tCountry, false)
		case "customer_id", "Customer", "CustomerID":
			err = jsonText(&d.tab, f, b, v, tCustomerID, true)
		case "quantity", "Quantity":
			r.Quantity, err = jsonInt(f, b, v, "quantity")
			hasQuantity = hasQuantity || v.kind != jsonNull
		case "unit_price", "UnitPrice":
			err = d.price(b, v, r)
		case "invoice_date", "InvoiceDate":
			err = d.date(b, v, tm)
		}
		if err != nil {
			return err
		}
	}
	if it.err != nil {
		return it.decodeError(f)
	}
	if !hasInvoice {
		return newError(f, ErrMalformed, "invoice_no", "missing", nil)
	}
	if !hasQuantity {
		return newError(f, ErrMalformed, "quantity", "missing", nil)
	}
	return nil
}

func (d *OrderJSONDecoder) price(b []byte, v *jsonVal, r *Record) error {
	text := b[v.start:v.end]
	switch {
	case v.kind == jsonNull:
		r.UnitPrice = 0
		return nil
	case v.kind == jsonNumber || (v.kind == jsonString && !v.esc):
		p, ok := parseFloat(text)
		if !ok {
			return newError(FormatOrdersJSON, ErrMalformed, "unit_price", "not a number", text)
		}
		r.UnitPrice = p
		return nil
	}
	return newError(FormatOrdersJSON, ErrMalformed, "unit_price", "want a number", text)
}

func (d *OrderJSONDecoder) date(b []byte, v *jsonVal, tm *time.Time) error {
	text := b[v.start:v.end]
	var ok bool
	switch {
	case v.kind == jsonNull:
		return nil
	case v.kind == jsonNumber:
		*tm, ok = epochMillis(text)
	case v.kind == jsonString && !v.esc:
		*tm, ok = parseOrderTime(text, &d.zones)
	}
	if !ok {
		return newError(FormatOrdersJSON, ErrMalformed, "invoice_date", "not a date-time", text)
	}
	return nil
}
