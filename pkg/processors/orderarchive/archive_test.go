package orderarchive_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/orderarchive"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var app = processors.AppInfo{App: "demo", Stream: "orders", Tables: processors.TablesFor("demo")}

const table = "demo-orders"

func build(t testing.TB, conf string, app processors.AppInfo) (processors.Factory, error) {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(conf), &node); err != nil {
		t.Fatal(err)
	}
	return orderarchive.Plugin().Build(&node, app)
}

func TestConfig(t *testing.T) {
	tests := []struct {
		in      string
		app     string
		wantErr string
	}{
		{"", "demo", ""},
		{"table: archive\nmax_lines: 5\n", "", ""},
		{"", "", "processors.orderarchive.table: required when the application name is empty"},
		{"tabel: x\n", "demo", "processors.orderarchive.tabel: unknown field (line 1)"},
		{"max_lines: 0\n", "demo", "processors.orderarchive.max_lines: must be between 1 and 1000000"},
		{"table: " + strings.Repeat("t", 256) + "\n", "demo", "processors.orderarchive.table: must be at most 255 characters"},
	}
	for _, tt := range tests {
		_, err := build(t, tt.in, processors.AppInfo{App: tt.app})
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("Build(%q, app %q) error = %q, want %q", tt.in, tt.app, got, tt.wantErr)
		}
	}
}

func TestKeyOf(t *testing.T) {
	t0 := time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)
	base := records.Record{Kind: records.KindOrder, Time: t0, InvoiceNo: "536365", StockCode: "85123A",
		Description: "WHITE HANGING HEART T-LIGHT HOLDER", Quantity: 6, UnitPrice: 2.55, CustomerID: "17850", Country: "United Kingdom"}
	with := func(f func(r *records.Record)) records.Record {
		r := base
		f(&r)
		return r
	}
	tests := []struct {
		name   string
		r      records.Record
		pk     string
		prefix string // sort key up to the hash
	}{
		{"order", base, "17850", "2010-12-01T08:26:00Z#536365#85123A#"},
		{"guest", with(func(r *records.Record) { r.CustomerID = "" }), "_guest", "2010-12-01T08:26:00Z#536365#85123A#"},
		{"cancellation", with(func(r *records.Record) { r.InvoiceNo, r.Quantity = "C536379", -1 }), "17850", "2010-12-01T08:26:00Z#C536379#85123A#"},
		{"undated", with(func(r *records.Record) { r.Time = time.Time{} }), "17850", "0001-01-01T00:00:00Z#536365#85123A#"},
		{"zoned", with(func(r *records.Record) { r.Time = t0.In(time.FixedZone("x", 3600)) }), "17850", "2010-12-01T08:26:00Z#536365#85123A#"},
		{"empty ids", with(func(r *records.Record) { r.InvoiceNo, r.StockCode = "", "" }), "17850", "2010-12-01T08:26:00Z#-#-#"},
	}
	for _, tt := range tests {
		k := orderarchive.KeyOf(&tt.r)
		if k.PK != tt.pk || !strings.HasPrefix(k.Prefix, tt.prefix) || len(k.Prefix) != len(tt.prefix)+9 {
			t.Errorf("%s: key %q %q, want %q %q<hash>#", tt.name, k.PK, k.Prefix, tt.pk, tt.prefix)
		}
	}
	// The hash separates different lines of one stock code in one
	// invoice, and nothing else changes it.
	a, b := orderarchive.KeyOf(&base), orderarchive.KeyOf(ptr(with(func(r *records.Record) { r.Quantity = 7 })))
	if a == b {
		t.Errorf("lines with different quantities share key %v", a)
	}
	c := with(func(r *records.Record) {
		r.Meta = records.Meta{ShardID: "x", SequenceNumber: "99", ArrivalTime: t0.Add(time.Hour)}
	})
	if orderarchive.KeyOf(&c) != a {
		t.Errorf("the stream position changed the key")
	}
	// Golden: a changed key layout or hash would duplicate every line of an
	// existing archive on the next replay.
	if got := a.Key(1); got != "2010-12-01T08:26:00Z#536365#85123A#1ebfd097#001" {
		t.Errorf("key of the first line of the data = %q, changed", got)
	}
	if got := a.Key(2); got != a.Prefix+"002" {
		t.Errorf("Key(2) = %q", got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestItemRoundTrip(t *testing.T) {
	t0 := time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)
	tests := []struct {
		r    records.Record
		want orderarchive.Order
	}{
		{
			records.Record{Kind: records.KindOrder, Time: t0, InvoiceNo: "C536379", StockCode: "D", Description: "Discount",
				Quantity: -1, UnitPrice: 27.5, CustomerID: "14527", Country: "United Kingdom"},
			orderarchive.Order{Customer: "14527", Invoice: "C536379", StockCode: "D", Description: "Discount", Quantity: -1,
				UnitPrice: 27.5, HasPrice: true, Date: t0, Country: "United Kingdom", Cancelled: true, Line: 3},
		},
		{
			records.Record{Kind: records.KindOrder, Time: t0, InvoiceNo: "1", StockCode: "S", Quantity: 2, UnitPrice: math.NaN()},
			orderarchive.Order{Invoice: "1", StockCode: "S", Quantity: 2, Date: t0, Line: 3},
		},
	}
	for _, tt := range tests {
		k := orderarchive.KeyOf(&tt.r)
		it := orderarchive.Item(table, k, 3, &tt.r)
		got, err := orderarchive.ParseOrder(it.Attrs)
		if err != nil {
			t.Fatal(err)
		}
		tt.want.SortKey = k.Key(3)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		if it.Table != table || !strings.HasSuffix(it.Key, k.Key(3)) {
			t.Errorf("item table %q key %q", it.Table, it.Key)
		}
	}
	if got := tests[0].want.Amount(); got != -27.5 {
		t.Errorf("Amount = %g", got)
	}
}

// TestHostileInput checks that keys stay within DynamoDB's limits and
// strings valid UTF-8 whatever the record holds.
func TestHostileInput(t *testing.T) {
	long := strings.Repeat("é", 40_000)
	r := records.Record{Kind: records.KindOrder, InvoiceNo: long, StockCode: "\xff\xfe", CustomerID: long + "x",
		Description: long, Country: "\x00", UnitPrice: -math.MaxFloat64, Quantity: math.MinInt64}
	k := orderarchive.KeyOf(&r)
	it := orderarchive.Item(table, k, 1, &r)
	if len(k.PK) > 2048 || len(k.Key(999)) > 1024 {
		t.Errorf("key sizes %d / %d", len(k.PK), len(k.Key(999)))
	}
	for name, v := range it.Attrs {
		if s := processortest.Printable(v); !utf8.ValidString(s) {
			t.Errorf("attribute %s is not valid UTF-8", name)
		}
	}
	if _, ok := it.Attrs["unit_price"]; ok {
		t.Errorf("an out-of-range price was stored: %v", processortest.Printable(it.Attrs["unit_price"]))
	}
	r2 := r
	r2.CustomerID = long + "y" // same clipped prefix, different id
	if orderarchive.KeyOf(&r2).PK == k.PK {
		t.Error("two long customer ids share a partition key")
	}
}

func orders(t testing.TB, n int) []records.Record {
	recs := processortest.LoadRecords(t, "orders/online-retail-2010-12.csv", records.FormatOrdersCSV)
	if n > 0 && n < len(recs) {
		recs = recs[:n]
	}
	return recs
}

func TestConformance(t *testing.T) {
	f, err := build(t, "max_lines: 1000\n", app)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)
	processortest.Run(t, processortest.Suite{
		Factory: f,
		Records: orders(t, 5000),
		Window:  window.Config{Size: time.Minute},
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindOrder, Time: t0, InvoiceNo: fmt.Sprint(600000 + i), StockCode: "X",
				Quantity: 1, UnitPrice: 1, CustomerID: fmt.Sprint(i)}
		},
		FloodSize:    20_000,
		MaxStateKeys: 1000,
	})
}

// run feeds recs through one lease of shard into store, batch records at a
// time, and ends the shard.
func run(t *testing.T, f processors.Factory, store *processortest.Store, shard string, recs []records.Record, batch int) {
	t.Helper()
	h := &processortest.Harness{Factory: f, Store: store, Clock: processortest.NewClock(time.Date(2010, 12, 1, 0, 0, 0, 0, time.UTC)),
		Shard: processors.Shard{Stream: "orders", ShardID: shard}}
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(recs); off += batch {
		if _, err := h.Batch(t.Context(), p, recs[off:min(off+batch, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Close(t.Context(), p, processors.ShardEnded); err != nil {
		t.Fatal(err)
	}
}

// TestReplayTwice archives the whole December 2010 file twice, as two
// producer runs would deliver it (other shards, other sequence numbers,
// other batch cuts): exactly one item per order line, and the second run
// changes nothing.
func TestReplayTwice(t *testing.T) {
	recs := orders(t, 0)
	lines := countLines(t)
	if len(recs) != lines {
		t.Fatalf("decoded %d records of %d order lines", len(recs), lines)
	}
	f, err := build(t, "", app)
	if err != nil {
		t.Fatal(err)
	}
	store := processortest.NewStore()
	run(t, f, store, "shardId-000000000000", recs, 500)
	first := store.Dump()
	if n := len(first[table]); n != lines {
		t.Errorf("first run: %d items, want one per order line (%d)", n, lines)
	}
	second := processortest.Sequence("shardId-000000000007", append([]records.Record(nil), recs...))
	for i := range second {
		second[i].Meta.SequenceNumber = processortest.SeqNum(i + 1_000_000)
	}
	run(t, f, store, "shardId-000000000007", second, 333)
	if diff := cmp.Diff(first, store.Dump()); diff != "" {
		t.Errorf("the second run changed the archive (-first +after):\n%.3000s", diff)
	}
	// Identical lines of one invoice are numbered, not merged.
	dups := 0
	for _, it := range store.Items(table) {
		if o, _ := orderarchive.ParseOrder(it); o.Line > 1 {
			dups++
		}
	}
	if dups == 0 {
		t.Error("no line numbered > 1; the December file has identical lines within invoices")
	}
	t.Logf("%d order lines, %d of them repeat an identical line of their invoice", lines, dups)
}

// countLines counts the data rows of the orders file independently of the
// decoder: non-empty lines after the header.
func countLines(t *testing.T) int {
	b, err := os.ReadFile(processortest.DataDir(t) + "/orders/online-retail-2010-12.csv")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, l := range strings.Split(string(b), "\n") {
		if i > 0 && strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

// TestLineMemoryBound: once max_lines distinct lines were seen the oldest
// is forgotten (its next identical line starts again at 1).
func TestLineMemoryBound(t *testing.T) {
	f, err := build(t, "max_lines: 2\n", app)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)
	line := func(inv string) records.Record {
		return records.Record{Kind: records.KindOrder, Time: t0, InvoiceNo: inv, StockCode: "S", Quantity: 1, CustomerID: "c"}
	}
	recs := processortest.Sequence("s", []records.Record{line("a"), line("a"), line("b"), line("c"), line("a"), line("c")})
	h := &processortest.Harness{Factory: f, Store: processortest.NewStore(), Clock: processortest.NewClock(t0), Shard: processors.Shard{ShardID: "s"}}
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := h.Batch(t.Context(), p, recs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range rec.Items {
		o, err := orderarchive.ParseOrder(it.Attrs)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s%d", o.Invoice, o.Line))
	}
	if diff := cmp.Diff([]string{"a1", "a2", "b1", "c1", "a1", "c2"}, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if n := p.(processortest.StateSizer).StateSize(); n != 2 {
		t.Errorf("StateSize %d, want 2", n)
	}
	if len(rec.Data) != 1 || rec.Data[0].Value != 6 {
		t.Errorf("metrics %+v, want ArchivedOrders 6", rec.Data)
	}
}

func BenchmarkProcess(b *testing.B) {
	recs := orders(b, 0)
	f, err := build(b, "", app)
	if err != nil {
		b.Fatal(err)
	}
	p, err := f(context.Background(), processors.Env{Shard: processors.Shard{ShardID: "s"}, Logger: nopLogger(),
		Clock: processortest.NewClock(time.Time{}), Store: processortest.NewStore()})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 500
	var rec processortest.Recorder
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		off := i % (len(recs) - batch)
		if err := p.Process(context.Background(), recs[off:off+batch], &rec); err != nil {
			b.Fatal(err)
		}
		if err := p.Flush(context.Background(), &rec); err != nil {
			b.Fatal(err)
		}
		rec.Reset()
	}
}

func nopLogger() *zap.Logger { return zap.NewNop() }
