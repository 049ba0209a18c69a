package orderarchive

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Key attributes of the archive table, and the placeholder customer.
const (
	AttrPK = "pk" // S: customer id, or Guest
	AttrSK = "sk" // S: see Key
	// Guest is the partition key of orders without a customer id.
	Guest = "_guest"
)

// Attribute names of an order item.
const (
	attrCustomer    = "customer_id" // absent for guests
	attrInvoice     = "invoice"
	attrStockCode   = "stock_code"
	attrDescription = "description"
	attrQuantity    = "quantity"
	attrUnitPrice   = "unit_price" // absent when not a finite DynamoDB number
	attrInvoiceDate = "invoice_date"
	attrCountry     = "country"
	attrCancelled   = "cancelled"
	attrLine        = "line" // occurrence of an identical line in its invoice, from 1
)

// Size limits: DynamoDB keys are at most 2048 (partition) and 1024 (sort)
// bytes; every stored string must be valid UTF-8.
const (
	maxIDLen   = 128 // customer, invoice, stock code
	maxTextLen = 4096
)

// LineKey is the order line's identity without its occurrence number:
// partition key and sort-key prefix.
type LineKey struct {
	PK     string
	Prefix string // "<date>#<invoice>#<stock code>#<content hash>#"
}

// KeyOf returns the key of order line r: the customer id (Guest when
// empty), and "<invoice date, RFC 3339 UTC>#<invoice>#<stock code>#<hash>#"
// where hash is 8 hex digits of FNV-1a over description, quantity, unit
// price and country. The occurrence number (Key) completes the sort key.
//
// Everything comes from the payload, so the key is the same whichever
// producer, stream position or replay delivers the line. An order without
// a payload date sorts first (0001-01-01T00:00:00Z); the Kinesis arrival
// time would not be stable across replays.
func KeyOf(r *records.Record) LineKey {
	pk := Guest
	if r.CustomerID != "" {
		pk = clip(r.CustomerID, maxIDLen)
	}
	var num [32]byte
	h := fnvString(fnvOffset32, r.Description)
	h = fnvBytes(h, strconv.AppendInt(num[:0], r.Quantity, 10))
	h = fnvBytes(h, appendPrice(num[:0], r.UnitPrice))
	h = fnvString(h, r.Country)
	b := make([]byte, 0, 96)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, '#')
	b = append(b, orDash(clip(r.InvoiceNo, maxIDLen))...)
	b = append(b, '#')
	b = append(b, orDash(clip(r.StockCode, maxIDLen))...)
	b = append(b, '#')
	for i := 28; i >= 0; i -= 4 {
		b = append(b, "0123456789abcdef"[h>>uint(i)&0xf])
	}
	b = append(b, '#')
	return LineKey{PK: pk, Prefix: string(b)}
}

// FNV-1a, 32 bits, over each field followed by a NUL separator (inlined:
// hash/fnv through its interface allocates per record).
const (
	fnvOffset32 = 2166136261
	fnvPrime32  = 16777619
)

func fnvString(h uint32, s string) uint32 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * fnvPrime32
	}
	return h * fnvPrime32 // ^ 0 separator
}

func fnvBytes(h uint32, b []byte) uint32 {
	for _, c := range b {
		h = (h ^ uint32(c)) * fnvPrime32
	}
	return h * fnvPrime32
}

// Key returns the sort key of the n-th (from 1) identical line.
func (k LineKey) Key(n int) string {
	switch {
	case n < 10:
		return k.Prefix + "00" + strconv.Itoa(n)
	case n < 100:
		return k.Prefix + "0" + strconv.Itoa(n)
	}
	return k.Prefix + strconv.Itoa(n)
}

// invoice returns the "<date>#<invoice>" part of the key, which identifies
// the invoice within the customer.
func (k LineKey) invoice() string {
	i := strings.IndexByte(k.Prefix, '#')
	if i < 0 {
		return k.Prefix
	}
	j := strings.IndexByte(k.Prefix[i+1:], '#')
	if j < 0 {
		return k.Prefix
	}
	return k.Prefix[:i+1+j]
}

// date returns the invoice date part of the key.
func (k LineKey) date() string {
	d, _, _ := strings.Cut(k.Prefix, "#")
	return d
}

// Item returns the archive item of the n-th occurrence of order line r.
//
// It allocates little (it runs for every order of the chain): every
// string and number of the item is copied into one buffer (record strings
// may alias the batch payload, and an item may outlive it), and the
// attribute values live in two small arrays.
func Item(table string, k LineKey, n int, r *records.Record) processors.Item {
	customer, invoice, stock := clip(r.CustomerID, maxTextLen), clip(r.InvoiceNo, maxTextLen), clip(r.StockCode, maxTextLen)
	desc, country := clip(r.Description, maxTextLen), clip(r.Country, maxTextLen)
	var nb [3][32]byte
	qty := strconv.AppendInt(nb[0][:0], r.Quantity, 10)
	price := appendPrice(nb[1][:0], r.UnitPrice)
	line := strconv.AppendInt(nb[2][:0], int64(n), 10)

	var b strings.Builder
	b.Grow(len(k.PK) + 1 + len(k.Prefix) + 3 + len(line) + len(customer) + len(invoice) + len(stock) +
		len(desc) + len(country) + len(qty) + len(price))
	// The item key is "pk NUL sk"; pk and sk are its two halves.
	b.WriteString(k.PK)
	b.WriteByte(0)
	b.WriteString(k.Prefix)
	for i := len(line); i < 3; i++ {
		b.WriteByte('0')
	}
	b.Write(line)
	keyEnd := b.Len()
	var off [8]int
	for i, f := range [...]string{customer, invoice, stock, desc, country, string(qty), string(price)} {
		off[i] = b.Len()
		b.WriteString(f)
	}
	off[7] = b.Len()
	all := b.String()
	field := func(i int) string { return all[off[i]:off[i+1]] }
	key := all[:keyEnd]

	var sv [8]types.AttributeValueMemberS
	var nv [3]types.AttributeValueMemberN
	svs, nvs := sv[:0], nv[:0]
	m := make(map[string]types.AttributeValue, 12)
	putS := func(name, v string) {
		svs = append(svs, types.AttributeValueMemberS{Value: v})
		m[name] = &svs[len(svs)-1]
	}
	putN := func(name, v string) {
		nvs = append(nvs, types.AttributeValueMemberN{Value: v})
		m[name] = &nvs[len(nvs)-1]
	}
	putS(AttrPK, key[:len(k.PK)])
	putS(AttrSK, key[len(k.PK)+1:])
	if customer != "" {
		putS(attrCustomer, field(0))
	}
	putS(attrInvoice, field(1))
	putS(attrStockCode, field(2))
	if desc != "" {
		putS(attrDescription, field(3))
	}
	putS(attrInvoiceDate, k.date())
	if country != "" {
		putS(attrCountry, field(4))
	}
	putN(attrQuantity, field(5))
	if len(price) > 0 {
		putN(attrUnitPrice, field(6))
	}
	putN(attrLine, key[len(key)-len(line):]) // the sort key ends with it
	if r.IsCancellation() {
		m[attrCancelled] = &types.AttributeValueMemberBOOL{Value: true}
	}
	return processors.Item{Table: table, Key: key, Attrs: m}
}

// Order is an archived order line as read back (by `consumer query`).
type Order struct {
	Customer    string // "" for guests
	SortKey     string
	Invoice     string
	StockCode   string
	Description string
	Quantity    int64
	UnitPrice   float64
	HasPrice    bool
	Date        time.Time
	Country     string
	Cancelled   bool
	Line        int
}

// Amount is Quantity times UnitPrice (negative for cancellations).
func (o *Order) Amount() float64 { return float64(o.Quantity) * o.UnitPrice }

// ErrBadItem is returned by ParseOrder for an item that is not an order.
var ErrBadItem = errors.New("malformed order item")

// ParseOrder decodes an Item.
func ParseOrder(item map[string]types.AttributeValue) (Order, error) {
	var o Order
	var ok bool
	if o.SortKey, ok = getStr(item, AttrSK); !ok {
		return o, fmt.Errorf("%w: missing %s", ErrBadItem, AttrSK)
	}
	o.Customer, _ = getStr(item, attrCustomer)
	o.Invoice, _ = getStr(item, attrInvoice)
	o.StockCode, _ = getStr(item, attrStockCode)
	o.Description, _ = getStr(item, attrDescription)
	o.Country, _ = getStr(item, attrCountry)
	if n, ok := item[attrQuantity].(*types.AttributeValueMemberN); ok {
		q, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return o, fmt.Errorf("%w: %s %q", ErrBadItem, attrQuantity, n.Value)
		}
		o.Quantity = q
	}
	if n, ok := item[attrUnitPrice].(*types.AttributeValueMemberN); ok {
		p, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			return o, fmt.Errorf("%w: %s %q", ErrBadItem, attrUnitPrice, n.Value)
		}
		o.UnitPrice, o.HasPrice = p, true
	}
	if s, ok := getStr(item, attrInvoiceDate); ok {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return o, fmt.Errorf("%w: %s %q", ErrBadItem, attrInvoiceDate, s)
		}
		o.Date = t.UTC()
	}
	if b, ok := item[attrCancelled].(*types.AttributeValueMemberBOOL); ok {
		o.Cancelled = b.Value
	}
	if n, ok := item[attrLine].(*types.AttributeValueMemberN); ok {
		o.Line, _ = strconv.Atoi(n.Value)
	}
	return o, nil
}

// appendPrice appends a unit price as a DynamoDB number, or nothing when
// it is not one (NaN, infinities, or beyond DynamoDB's 1e125 magnitude).
func appendPrice(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= 1e125 || (f != 0 && math.Abs(f) < 1e-125) {
		return b
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// str returns a string attribute holding its own copy of s: record
// strings may alias the batch payload, and an emitted item may outlive it.
func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: strings.Clone(s)} }

func getStr(item map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip returns s when it is valid UTF-8 of at most n bytes; otherwise its
// valid prefix followed by "~" and a hash of the whole, so distinct long
// values stay distinct and keys stay within DynamoDB's limits.
func clip(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) {
		return s
	}
	h := fnv.New64a()
	h.Write([]byte(s))
	sum := strconv.FormatUint(h.Sum64(), 16) // rare: only oversized or invalid input
	v := strings.ToValidUTF8(s, "\uFFFD")
	if limit := n - 1 - len(sum); len(v) > limit {
		for limit > 0 && !utf8.RuneStart(v[limit]) {
			limit--
		}
		v = v[:limit]
	}
	return v + "~" + sum
}
