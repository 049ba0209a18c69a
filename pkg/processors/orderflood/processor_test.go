package orderflood

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

var testApp = processors.AppInfo{App: "app", Stream: "stream", AlarmTopicARN: "arn:aws:sns:us-east-1:000000000000:app-alarms",
	Tables: processors.TablesFor("app")}

func newFactory(t testing.TB, cfg Config) processors.Factory {
	t.Helper()
	if err := cfg.Validate("test"); err != nil {
		t.Fatalf("config: %v", err)
	}
	f, err := NewFactory(cfg, testApp)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// volatile attributes differ between an uninterrupted run and one resumed
// by a new owner: who raised an alarm and when, and clock-based TTLs.
var volatile = []string{window.AttrExpiresAt, "raised_by_worker", "detected_at", "published_at", attrBody, attrClaim, attrStateAt}

func TestConformance(t *testing.T) {
	recs := loadRecords(t, ordersFile, records.FormatOrdersCSV)[:5000]
	cfg := DefaultConfig()
	// Real December 2010 data has at most ~6 invoices a minute, all
	// stamped hh:mm:00: 2 invoices in 15 s makes alarms happen.
	cfg.Threshold = 2
	t0 := recs[0].Time
	// The restore check compares alarm history too: make sure there is some.
	store, clock := processortest.NewStore(), processortest.NewClock(t0)
	l := newLease(t, newFactory(t, cfg), store, clock, "shardId-000000000001")
	for i := 0; i < len(recs); i += 100 {
		b := recs[i:min(i+100, len(recs))]
		clock.Set(b[len(b)-1].Time.Add(time.Second))
		if _, err := l.h.Batch(t.Context(), l.p, b); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(store.Items(testApp.Tables.Alarms)); n < 5 {
		t.Fatalf("the conformance input raises %d alarms; want several", n)
	} else {
		t.Logf("conformance input: %d records, %d alarms", len(recs), n)
	}
	processortest.Run(t, processortest.Suite{
		Factory: newFactory(t, cfg),
		Records: recs,
		Window:  cfg.windowConfig(),
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindOrder, Time: t0.Add(time.Duration(i) * time.Millisecond),
				InvoiceNo: fmt.Sprint(600000 + i), CustomerID: fmt.Sprintf("c%d", i), Country: fmt.Sprintf("country-%d", i%5000)}
		},
		// Open seconds (grace) and recent ones (window + grace), 3 maps
		// of max_keys each.
		MaxStateKeys: int(cfg.Window/time.Second+2*cfg.Grace/time.Second+4) * 3 * cfg.MaxKeys,
		Volatile:     volatile,
	})
}

// order builds an order line at second sec of 09:41.
func order(sec int, invoice, customer, country string) records.Record {
	return records.Record{Kind: records.KindOrder, Time: time.Date(2026, 11, 22, 9, 41, sec, 0, time.UTC),
		InvoiceNo: invoice, CustomerID: customer, Country: country, Quantity: 1, UnitPrice: 2.5}
}

// orders returns n invoices spread evenly, in time order, over seconds
// [from, from+span).
func orders(n, from, span int, prefix string) []records.Record {
	out := make([]records.Record, n)
	for i := range out {
		out[i] = order(from+i*span/n, fmt.Sprintf("%s%04d", prefix, i), fmt.Sprintf("%d.0", 12000+i%3), []string{"United Kingdom", "France"}[i%2])
	}
	return out
}

// lease is one shard's processor under a harness sharing a store.
type lease struct {
	t    *testing.T
	h    *processortest.Harness
	p    processors.Processor
	msgs []processors.Message
	seq  int
}

func newLease(t *testing.T, f processors.Factory, store *processortest.Store, clock *processortest.Clock, shard string) *lease {
	t.Helper()
	h := &processortest.Harness{Factory: f, Store: store, Clock: clock,
		Shard: processors.Shard{Stream: "stream", ShardID: shard, WorkerID: "worker-" + shard[len(shard)-1:]}}
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return &lease{t: t, h: h, p: p}
}

func (l *lease) meta(recs []records.Record) []records.Record {
	for i := range recs {
		recs[i].Meta = records.Meta{ShardID: l.h.Shard.ShardID, SequenceNumber: processortest.SeqNum(l.seq), ArrivalTime: recs[i].Time}
		l.seq++
	}
	return recs
}

// batch processes recs and writes the output (a completed batch).
func (l *lease) batch(recs []records.Record) *processortest.Recorder {
	l.t.Helper()
	rec, err := l.h.Batch(l.t.Context(), l.p, l.meta(recs))
	if err != nil {
		l.t.Fatal(err)
	}
	l.msgs = append(l.msgs, rec.Messages...)
	return rec
}

// emit processes recs without writing the output (a crash before the write).
func (l *lease) emit(recs []records.Record) *processortest.Recorder {
	l.t.Helper()
	rec, err := l.h.Emit(l.t.Context(), l.p, l.meta(recs))
	if err != nil {
		l.t.Fatal(err)
	}
	return rec
}

func (l *lease) flush() *processortest.Recorder {
	l.t.Helper()
	rec, err := l.h.Flush(l.t.Context(), l.p)
	if err != nil {
		l.t.Fatal(err)
	}
	l.msgs = append(l.msgs, rec.Messages...)
	return rec
}

func (l *lease) close(r processors.Reason) *processortest.Recorder {
	l.t.Helper()
	rec, err := l.h.Close(l.t.Context(), l.p, r)
	if err != nil {
		l.t.Fatal(err)
	}
	l.msgs = append(l.msgs, rec.Messages...)
	return rec
}

func history(t *testing.T, store *processortest.Store) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for k, v := range store.Dump(volatile...)[testApp.Tables.Alarms] {
		out[k] = v
	}
	return out
}

func alarmOf(t *testing.T, m processors.Message) Alarm {
	t.Helper()
	var a Alarm
	if err := json.Unmarshal(m.Body, &a); err != nil {
		t.Fatalf("message body: %v", err)
	}
	return a
}

func clockAt(sec int) *processortest.Clock {
	return processortest.NewClock(time.Date(2026, 11, 22, 9, 41, sec, 0, time.UTC))
}

// TestGlobalAcrossShards: neither shard alone reaches the threshold;
// together they do, and exactly one message goes out.
func TestGlobalAcrossShards(t *testing.T) {
	f := newFactory(t, DefaultConfig())
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	b := newLease(t, f, store, clock, "shardId-000000000002")
	a.batch(orders(20, 0, 10, "A"))
	if len(a.msgs) != 0 {
		t.Fatalf("shard 1 alone alarmed: %v", a.msgs)
	}
	b.batch(orders(15, 5, 10, "B"))
	if len(b.msgs) != 1 {
		t.Fatalf("shard 2 sent %d messages, want 1", len(b.msgs))
	}
	got := alarmOf(t, b.msgs[0])
	want := Alarm{
		ID: "order-flood", Name: "order-flood", Mode: ModeGlobal, Period: time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC),
		WindowStart: time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC), WindowEnd: time.Date(2026, 11, 22, 9, 41, 15, 0, time.UTC),
		Orders: 35, Threshold: 30, Severity: "high",
		TopCustomers: []Top{{"12000.0", 12}, {"12001.0", 12}, {"12002.0", 11}},
		TopCountries: []Top{{"United Kingdom", 18}, {"France", 17}},
		FirstOrder:   time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC), LastOrder: time.Date(2026, 11, 22, 9, 41, 14, 0, time.UTC),
		Shards: 2, Stream: "stream", RaisedByShard: "shardId-000000000002", RaisedByWorker: "worker-2",
		DetectedAt: clock.Now(), DedupID: dedupID("order-flood", time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alarm (-want +got):\n%s", diff)
	}
	m := b.msgs[0]
	if m.Topic != testApp.AlarmTopicARN || m.Attributes["alarm"] != "order-flood" || m.Attributes["severity"] != "high" {
		t.Errorf("message topic/attributes = %q %v", m.Topic, m.Attributes)
	}
	if m.DedupID != want.DedupID || m.GroupID != want.DedupID || m.Attributes["dedup_id"] != want.DedupID {
		t.Errorf("message ids: dedup %q group %q attribute %q; want %q", m.DedupID, m.GroupID, m.Attributes["dedup_id"], want.DedupID)
	}
	// Shard 1 re-checks, sees the breach, loses the election.
	clock.Advance(time.Second)
	a.flush()
	b.flush() // confirms
	a.flush()
	if n := len(a.msgs) + len(b.msgs); n != 1 {
		t.Errorf("%d messages fleet-wide, want 1", n)
	}
	h := history(t, store)
	if len(h) != 1 || h["order-flood|2026-11-22T09:41:00Z"]["published"] != "BOOL:true" {
		t.Errorf("alarm history = %v; want one published item", h)
	}
}

// TestConcurrentBatches: both shards evaluate before the other's write is
// durable, so neither sees the breach at first; the re-check on their
// next flush finds it, and one message goes out.
func TestConcurrentBatches(t *testing.T) {
	f := newFactory(t, DefaultConfig())
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	b := newLease(t, f, store, clock, "shardId-000000000002")
	ra := a.emit(orders(16, 0, 10, "A"))
	rb := b.emit(orders(16, 2, 10, "B"))
	if len(ra.Messages)+len(rb.Messages) != 0 {
		t.Fatal("alarm before any partial was durable")
	}
	for _, r := range []*processortest.Recorder{ra, rb} {
		if err := store.Apply(r.Items); err != nil {
			t.Fatal(err)
		}
	}
	a.flush()
	b.flush()
	a.flush()
	b.flush()
	if n := len(a.msgs) + len(b.msgs); n != 1 {
		t.Errorf("%d messages fleet-wide, want 1", n)
	}
}

// TestShutdownHandsOverAlarms: a breach found while shutting down is
// claimed but left to the next owner, which publishes it once.
func TestShutdownHandsOverAlarms(t *testing.T) {
	f := newFactory(t, DefaultConfig())
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	if err := a.p.Process(t.Context(), a.meta(orders(30, 0, 10, "A")), &processortest.Recorder{}); err != nil {
		t.Fatal(err)
	}
	a.close(processors.Shutdown)
	if len(a.msgs) != 0 {
		t.Fatalf("shutdown published %d messages", len(a.msgs))
	}
	next := newLease(t, f, store, clock, "shardId-000000000001")
	next.flush()
	next.flush()
	next.close(processors.Shutdown)
	if len(next.msgs) != 1 {
		t.Errorf("next owner sent %d messages, want 1", len(next.msgs))
	}
	if h := history(t, store); h["order-flood|2026-11-22T09:41:00Z"]["published"] != "BOOL:true" {
		t.Errorf("history = %v; want published=true", h)
	}
}

func TestSuppressionPeriod(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Threshold = 5
	f := newFactory(t, cfg)
	store, clock := processortest.NewStore(), clockAt(0)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	for i := range 12 { // a flood over two minutes: one alarm per minute
		recs := orders(6, 0, 1, fmt.Sprintf("X%d-", i))
		for j := range recs {
			recs[j].Time = recs[j].Time.Add(time.Duration(i) * 10 * time.Second)
		}
		clock.Set(recs[0].Time.Add(time.Second))
		a.batch(recs)
	}
	a.close(processors.ShardEnded)
	var periods []string
	for _, m := range a.msgs {
		periods = append(periods, m.Attributes["period"])
	}
	if diff := cmp.Diff([]string{"2026-11-22T09:41:00Z", "2026-11-22T09:42:00Z"}, periods); diff != "" {
		t.Errorf("alarm periods (-want +got):\n%s", diff)
	}
}

func TestCustomerMode(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode = ModeCustomer
	cfg.Threshold = 5
	f := newFactory(t, cfg)
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	var recs []records.Record
	for i := range 6 {
		recs = append(recs, order(i, fmt.Sprintf("F%d", i), "17850.0", "United Kingdom"))
	}
	for i := range 4 {
		recs = append(recs, order(i, fmt.Sprintf("G%d", i), "13047.0", "France"))
	}
	a.batch(recs)
	a.flush()
	if len(a.msgs) != 1 {
		t.Fatalf("%d messages, want 1 (customer 17850.0 only)", len(a.msgs))
	}
	got := alarmOf(t, a.msgs[0])
	if got.ID != "order-flood#customer#17850.0" || got.Key != "17850.0" || got.Orders != 6 {
		t.Errorf("alarm = %+v", got)
	}
	if !strings.Contains(a.msgs[0].Subject, "17850.0") {
		t.Errorf("subject %q does not name the customer", a.msgs[0].Subject)
	}
}

func TestIPModeHits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode, cfg.Source, cfg.Path, cfg.Methods, cfg.Threshold = ModeIP, SourceHits, "^/checkout", []string{"POST"}, 3
	f := newFactory(t, cfg)
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	hit := func(sec int, ip, method, path string) records.Record {
		return records.Record{Kind: records.KindHit, Time: time.Date(2026, 11, 22, 9, 41, sec, 0, time.UTC), ClientIP: ip, Method: method, Path: path}
	}
	a.batch([]records.Record{
		hit(1, "10.0.0.1", "POST", "/checkout/pay"), hit(2, "10.0.0.1", "POST", "/checkout"), hit(3, "10.0.0.1", "POST", "/checkout"),
		hit(1, "10.0.0.2", "GET", "/checkout"), hit(2, "10.0.0.2", "GET", "/checkout"), hit(3, "10.0.0.2", "POST", "/cart"),
	})
	a.flush()
	if len(a.msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(a.msgs))
	}
	if got := alarmOf(t, a.msgs[0]); got.Key != "10.0.0.1" || got.Orders != 3 || len(got.TopIPs) != 1 {
		t.Errorf("alarm = %+v", got)
	}
}

// TestInvoicesAndCancellations: an invoice's lines count once, a
// cancellation (C...) not at all.
func TestInvoicesAndCancellations(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Threshold = 1000
	f := newFactory(t, cfg)
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	rec := a.batch([]records.Record{
		order(1, "536365", "17850.0", "United Kingdom"), order(1, "536365", "17850.0", "United Kingdom"),
		order(1, "536366", "17850.0", "United Kingdom"), order(1, "C536379", "14527.0", "United Kingdom"),
	})
	var n float64
	for _, d := range rec.Data {
		if d.Name == MetricOrders {
			n += d.Value
		}
	}
	if n != 2 {
		t.Errorf("Orders metric = %g, want 2", n)
	}
}

func TestAlarmMetric(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Threshold = 3
	f := newFactory(t, cfg)
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	rec := a.batch(append(orders(2, 0, 1, "A"), order(16, "B1", "", "")))
	got := map[int]float64{}
	for _, d := range rec.Data {
		if d.Name == MetricAlarm {
			got[d.Time.Second()] = max(got[d.Time.Second()], d.Value)
		}
	}
	// Windows ending at 0-14 (changed by second 0) and 16 (up to the
	// watermark) are reported; none breached.
	if len(got) != 16 || got[0] != 0 || got[16] != 0 {
		t.Errorf("OrderFloodAlarm by second = %v; want 16 zeros", got)
	}
	rec = a.batch([]records.Record{order(16, "B2", "", ""), order(16, "B3", "", "")})
	got = map[int]float64{}
	for _, d := range rec.Data {
		if d.Name == MetricAlarm {
			got[d.Time.Second()] = max(got[d.Time.Second()], d.Value)
		}
	}
	if got[16] != 1 || got[15] != 0 {
		t.Errorf("OrderFloodAlarm by second = %v; want second 16 = 1", got)
	}
}

// TestStoreErrorDefers: a failing store defers evaluation and alarms to
// a later flush instead of failing the batch.
func TestStoreErrorDefers(t *testing.T) {
	f := newFactory(t, DefaultConfig())
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	store.Fail = errors.New("throttled")
	if _, err := a.h.Emit(t.Context(), a.p, a.meta(orders(30, 0, 10, "A"))); err != nil {
		t.Fatalf("batch failed on a store error: %v", err)
	}
	store.Fail = nil
	a.flush()
	if len(a.msgs) != 1 {
		t.Errorf("%d messages after the store recovered, want 1", len(a.msgs))
	}
	store.Fail = errors.New("down")
	if _, err := f(t.Context(), a.h.Env()); err == nil || !errors.Is(err, store.Fail) {
		t.Errorf("factory with a failing store = %v; want the restore error", err)
	}
}

// TestRealOrders replays the December 2010 orders: at their real pace
// nothing breaches 30 invoices in 15 s; compressed 120x (the demo replay
// speed of SOURCES.md) floods appear.
func TestRealOrders(t *testing.T) {
	recs := loadRecords(t, ordersFile, records.FormatOrdersCSV)
	t0 := recs[0].Time
	for _, speed := range []int{1, 120} {
		f := newFactory(t, DefaultConfig())
		store := processortest.NewStore()
		clock := processortest.NewClock(t0)
		l := newLease(t, f, store, clock, "shardId-000000000001")
		batch := make([]records.Record, 0, 500)
		for i := range recs {
			r := recs[i]
			r.Time = t0.Add(r.Time.Sub(t0) / time.Duration(speed))
			batch = append(batch, r)
			if len(batch) == cap(batch) || i == len(recs)-1 {
				clock.Set(batch[len(batch)-1].Time.Add(time.Second))
				l.batch(batch)
				batch = batch[:0]
			}
		}
		l.close(processors.ShardEnded)
		switch {
		case speed == 1 && len(l.msgs) != 0:
			t.Errorf("real pace: %d alarms, want 0 (max ~6 invoices a minute)", len(l.msgs))
		case speed > 1 && len(l.msgs) == 0:
			t.Errorf("%dx: no alarm", speed)
		}
		maxOrders := int64(0)
		for _, m := range l.msgs {
			maxOrders = max(maxOrders, alarmOf(t, m).Orders)
		}
		t.Logf("%dx: %d invoices lines, %d alarms (largest flood %d invoices in 15 s)", speed, len(recs), len(l.msgs), maxOrders)
	}
}

func TestDecodeConfig(t *testing.T) {
	tests := []struct {
		yaml    string
		wantErr string
	}{
		{yaml: ""},
		{yaml: "mode: customer\nthreshold: 10\nwindow: 30s\nsuppression: 5m"},
		{yaml: "mode: ip\nsource: hits\npath: ^/checkout\nmethods: [POST]"},
		{yaml: "treshold: 3", wantErr: "processors.orderflood.treshold: unknown field (line 1)"},
		{yaml: "mode: session", wantErr: "processors.orderflood.mode: must be global, customer or ip"},
		{yaml: "mode: ip", wantErr: "processors.orderflood.mode: ip needs source hits"},
		{yaml: "source: hits", wantErr: "processors.orderflood.path: required with source hits"},
		{yaml: "source: hits\npath: '('", wantErr: "processors.orderflood.path: bad regexp"},
		{yaml: "threshold: 0", wantErr: "processors.orderflood.threshold: must be >= 1"},
		{yaml: "window: 1500ms", wantErr: "processors.orderflood.window: must be whole seconds"},
		{yaml: "suppression: 7s", wantErr: "processors.orderflood.suppression: must be whole seconds >= 1s dividing 24h"},
		{yaml: "name: 'a#b'", wantErr: "processors.orderflood.name: must be 1-64 characters"},
		{yaml: "max_keys: 100000", wantErr: "processors.orderflood.max_keys: must be between 1 and 1500"},
		{yaml: "count: euros", wantErr: "processors.orderflood.count: must be invoices or lines"},
		{yaml: "source: hits\npath: /x\nmethods: [post]", wantErr: "processors.orderflood.methods[0]: must be an upper-case HTTP method"},
	}
	for _, tt := range tests {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(tt.yaml), &node); err != nil {
			t.Fatal(err)
		}
		_, err := DecodeConfig(&node, "processors.orderflood")
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
		case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
			t.Errorf("%q: err = %v, want prefix %q", tt.yaml, err, tt.wantErr)
		}
	}
	if _, err := Plugin().Build(nil, processors.AppInfo{}); err == nil {
		t.Error("Build without an application name succeeded")
	}
}

// BenchmarkProcess is the per-record cost on the real orders (invoice
// de-duplication, customer and country counts, flush with evaluation
// against an in-memory store).
func BenchmarkProcess(b *testing.B) {
	recs := loadRecords(b, ordersFile, records.FormatOrdersCSV)
	f := newFactory(b, DefaultConfig())
	clock := processortest.NewClock(recs[0].Time)
	store := processortest.NewStore()
	p, err := f(context.Background(), processors.Env{Shard: processors.Shard{ShardID: "shardId-000000000001"}, Clock: clock, Store: store})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 500
	out := &processortest.Recorder{}
	span := recs[len(recs)-1].Time.Sub(recs[0].Time) + time.Hour
	b.ReportAllocs()
	n := 0
	for i := 0; n < b.N; i++ {
		lo := (i * batch) % len(recs)
		if lo == 0 && i > 0 {
			b.StopTimer()
			for j := range recs {
				recs[j].Time = recs[j].Time.Add(span)
			}
			b.StartTimer()
		}
		bt := recs[lo:min(lo+batch, len(recs))]
		_ = p.Process(context.Background(), bt, out)
		clock.Set(bt[len(bt)-1].Time.Add(time.Second))
		_ = p.Flush(context.Background(), out)
		if err := store.Apply(out.Items); err != nil {
			b.Fatal(err)
		}
		out.Reset()
		n += len(bt)
	}
}

// TestNoTopic: without an alarm topic the flood is recorded, not
// published (a publish to no topic would fail the batch forever).
func TestNoTopic(t *testing.T) {
	app := testApp
	app.AlarmTopicARN = ""
	f, err := NewFactory(DefaultConfig(), app)
	if err != nil {
		t.Fatal(err)
	}
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	a.batch(orders(30, 0, 10, "A"))
	a.flush()
	if len(a.msgs) != 0 {
		t.Errorf("%d messages without a topic", len(a.msgs))
	}
	if h := history(t, store); len(h) != 1 {
		t.Errorf("history = %v; want the alarm recorded", h)
	}
}
