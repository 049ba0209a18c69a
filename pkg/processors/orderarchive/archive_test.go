package orderarchive_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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
		{"table: archive\nmax_lines: 5\ninvoice_gap: 0s\n", "", ""},
		{"invoice_gap: -1s\n", "demo", "processors.orderarchive.invoice_gap: must be >= 0"},
		{"", "", "processors.orderarchive.table: required when the application name is empty"},
		{"tabel: x\n", "demo", "processors.orderarchive.tabel: unknown field (line 1)"},
		{"max_lines: 0\n", "demo", "processors.orderarchive.max_lines: must be between 1 and 1000"},
		{"table: " + strings.Repeat("t", 256) + "\n", "demo", "processors.orderarchive.table: must be at most 255 characters"},
	}
	for _, tt := range tests {
		a := processors.AppInfo{App: tt.app, Tables: processors.TablesFor(tt.app)}
		if tt.app == "" {
			a.Tables.Results = "results"
		}
		_, err := build(t, tt.in, a)
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
		Records: orders(t, 2000),
		Window:  window.Config{Size: time.Minute},
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindOrder, Time: t0, InvoiceNo: fmt.Sprint(600000 + i), StockCode: "X",
				Quantity: 1, UnitPrice: 1, CustomerID: fmt.Sprint(i)}
		},
		FloodSize:    20_000,
		MaxStateKeys: 1000,
		// One item per order plus the shard's state item: the kit's flood
		// batches hold 1,000 orders.
		MaxItemsPerFlush: 1001,
	})
}

// archive feeds recs through one lease of shard, batch records at a time,
// ends the shard and returns the archive as item key -> attributes, last
// write winning (what the table holds).
func archive(t *testing.T, f processors.Factory, shard string, recs []records.Record, batch int) map[string]string {
	t.Helper()
	ctx := t.Context()
	p, err := f(ctx, processors.Env{Shard: processors.Shard{Stream: "orders", ShardID: shard}, Logger: zap.NewNop(),
		Clock: processortest.NewClock(time.Date(2010, 12, 1, 0, 0, 0, 0, time.UTC)), Store: processortest.NewStore()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &processortest.Recorder{}
	for off := 0; off < len(recs); off += batch {
		if err := p.Process(ctx, recs[off:min(off+batch, len(recs))], rec); err != nil {
			t.Fatal(err)
		}
		if err := p.Flush(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx, processors.ShardEnded, rec); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(rec.Items))
	for _, it := range rec.Items {
		if it.Table != table {
			continue // the shard's state item
		}
		pk, _ := it.Attrs["pk"].(*types.AttributeValueMemberS)
		sk, _ := it.Attrs["sk"].(*types.AttributeValueMemberS)
		if pk == nil || sk == nil || it.Key != pk.Value+"\x00"+sk.Value {
			t.Fatalf("item key %q does not match its pk/sk", it.Key)
		}
		var b strings.Builder
		for _, name := range slices.Sorted(maps.Keys(it.Attrs)) {
			b.WriteString(name + "=" + processortest.Printable(it.Attrs[name]) + " ")
		}
		out[it.Key] = b.String()
	}
	return out
}

// TestReplayTwice archives the whole December 2010 file twice, as two
// producer runs would deliver it (other shards, other sequence numbers,
// other batch cuts): exactly one item per order line, and the second run
// writes exactly the same items.
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
	first := archive(t, f, "shardId-000000000000", recs, 500)
	if len(first) != lines {
		t.Errorf("first run: %d items, want one per order line (%d)", len(first), lines)
	}
	second := processortest.Sequence("shardId-000000000007", slices.Clone(recs))
	for i := range second {
		second[i].Meta.SequenceNumber = processortest.SeqNum(i + 1_000_000)
	}
	again := archive(t, f, "shardId-000000000007", second, 333)
	if !maps.Equal(first, again) { // cmp.Diff only on failure: it is slow on 42k items
		t.Errorf("the second run wrote other items (-first +second):\n%.3000s", cmp.Diff(first, again))
	}
	// Identical lines of one invoice are numbered, not merged.
	dups := 0
	for _, attrs := range first {
		if !strings.Contains(attrs, "line=N:1 ") {
			dups++
		}
	}
	if want := lines - distinctLines(t); dups != want {
		t.Errorf("%d lines numbered > 1; the file repeats %d lines identically", dups, want)
	}
	t.Logf("%d order lines, %d of them repeat an identical line", lines, dups)
}

// distinctLines counts the distinct data rows of the orders file.
func distinctLines(t *testing.T) int {
	b, err := os.ReadFile(processortest.DataDir(t) + "/orders/online-retail-2010-12.csv")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, l := range strings.Split(string(b), "\n") {
		if i > 0 && strings.TrimSpace(l) != "" {
			seen[l] = true
		}
	}
	return len(seen)
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

// TestLineNumbers: identical lines are numbered within their invoice;
// the count restarts with the next invoice and when the invoice arrives
// again after invoice_gap (an order produced again numbers from 1 again),
// and stops at max_lines distinct lines.
func TestLineNumbers(t *testing.T) {
	f, err := build(t, "max_lines: 2\n", app)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)
	line := func(inv, stock string) records.Record {
		return records.Record{Kind: records.KindOrder, Time: t0, InvoiceNo: inv, StockCode: stock, Quantity: 1, CustomerID: "c"}
	}
	recs := processortest.Sequence("s", []records.Record{
		line("a", "x"), line("a", "x"), line("a", "y"), line("a", "x"), line("a", "z"), line("a", "z"),
		line("b", "x"), line("a", "x"), line("a", "x"),
		line("a", "x"), line("a", "x"), // produced again two minutes later
	})
	recs[9].Meta.ArrivalTime = t0.Add(2 * time.Minute)
	recs[10].Meta.ArrivalTime = t0.Add(2 * time.Minute)
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
		if it.Table != table {
			continue
		}
		o, err := orderarchive.ParseOrder(it.Attrs)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s%s%d", o.Invoice, o.StockCode, o.Line))
	}
	want := []string{"ax1", "ax2", "ay1", "ax3", "az1", "az1", "bx1", "ax1", "ax2", "ax1", "ax2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if n := p.(processortest.StateSizer).StateSize(); n != 1 {
		t.Errorf("StateSize %d, want 1 (invoice a's one line)", n)
	}
	if len(rec.Data) != 1 || rec.Data[0].Value != 11 {
		t.Errorf("metrics %+v, want ArchivedOrders 11", rec.Data)
	}
}

// TestResumeMidInvoice hands a shard over in the middle of an invoice
// with identical lines, at every possible point and with the next owner
// starting at the last checkpoint or one batch before it (a crash after
// the write, before the checkpoint): the archive is always the same as
// without a handover.
func TestResumeMidInvoice(t *testing.T) {
	f, err := build(t, "", app)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)
	var recs []records.Record
	for i, stock := range []string{"x", "x", "y", "x", "y", "x"} {
		recs = append(recs, records.Record{Kind: records.KindOrder, Time: t0, InvoiceNo: "inv1", StockCode: stock, Quantity: 1, CustomerID: "c"})
		if i == 2 {
			recs = append(recs, records.Record{Kind: records.KindHit, Time: t0}) // other records in between
		}
	}
	recs = append(recs, records.Record{Kind: records.KindOrder, Time: t0, InvoiceNo: "inv2", StockCode: "x", Quantity: 1, CustomerID: "c"})
	processortest.Sequence("s", recs)
	const batch = 2
	lease := func(h *processortest.Harness, from, to int) {
		t.Helper()
		p, err := h.Start(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for off := from; off < to; off += batch {
			if _, err := h.Batch(t.Context(), p, recs[off:min(off+batch, to)]); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := h.Close(t.Context(), p, processors.Shutdown); err != nil {
			t.Fatal(err)
		}
	}
	harness := func() *processortest.Harness {
		return &processortest.Harness{Factory: f, Store: processortest.NewStore(), Clock: processortest.NewClock(t0), Shard: processors.Shard{ShardID: "s"}}
	}
	ref := harness()
	lease(ref, 0, len(recs))
	want := ref.Store.Dump()[table]
	for cut := batch; cut < len(recs); cut += batch {
		for _, back := range []int{0, batch} { // resume at the checkpoint, or replay the last batch
			h := harness()
			lease(h, 0, cut)
			lease(h, cut-back, len(recs))
			if diff := cmp.Diff(want, h.Store.Dump()[table]); diff != "" {
				t.Errorf("handover after record %d, next owner from %d (-want +got):\n%s", cut, cut-back, diff)
			}
		}
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

// A malformed state item costs the numbering of one invoice at most, never
// the lease.
func TestMalformedState(t *testing.T) {
	f, err := build(t, "", app)
	if err != nil {
		t.Fatal(err)
	}
	store := processortest.NewStore()
	if err := store.Apply([]processors.Item{{Table: app.Tables.Results, Key: "k", Attrs: map[string]types.AttributeValue{
		"pk":       &types.AttributeValueMemberS{Value: "orderarchive#demo-orders#state"},
		"sk":       &types.AttributeValueMemberS{Value: "shard#s"},
		"gen0_pos": &types.AttributeValueMemberS{Value: "not a position"},
	}}}); err != nil {
		t.Fatal(err)
	}
	h := &processortest.Harness{Factory: f, Store: store, Clock: processortest.NewClock(time.Time{}), Shard: processors.Shard{ShardID: "s"}}
	if _, err := h.Start(t.Context()); err != nil {
		t.Errorf("factory with a malformed state item: %v", err)
	}
	store.Fail = fmt.Errorf("throttled")
	if _, err := h.Start(t.Context()); err == nil {
		t.Error("factory ignored a failed state query")
	}
}
