package orderflood

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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
	h := &processortest.Harness{Factory: f, Store: store, Clock: clock, Logger: testLogger,
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

// settle lets the fleet decide every order: the clock passes idle and
// every lease flushes (frontiers go idle, evaluations run, alarms go out).
func settle(clock *processortest.Clock, leases ...*lease) {
	for range 4 {
		clock.Advance(DefaultConfig().Idle + time.Second)
		for _, l := range leases {
			l.flush()
		}
	}
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
	ra, rb := orders(20, 0, 10, "A"), orders(15, 5, 10, "B")
	a.batch(ra)
	b.batch(rb)
	settle(clock, a, b)
	if len(a.msgs)+len(b.msgs) != 1 {
		t.Fatalf("%d + %d messages fleet-wide, want 1", len(a.msgs), len(b.msgs))
	}
	m := append(a.msgs, b.msgs...)[0]
	got := alarmOf(t, m)
	// The first order time whose count over [t-15s, t] reaches 30 (offline).
	want := offlineAlarms(append(ra, rb...), DefaultConfig())
	if len(want) != 1 || got.Time != want[0].t || got.Orders != want[0].n || got.TriggerCount != 1 || got.Shards != 2 {
		t.Errorf("alarm %s: %d orders, %d triggers, %d shards; offline %+v", got.Time, got.Orders, got.TriggerCount, got.Shards, want)
	}
	if got.WindowStart != got.Time.Add(-15*time.Second) || got.WindowEnd != got.Time || got.Unit != "order lines" {
		t.Errorf("alarm window [%s, %s] unit %q", got.WindowStart, got.WindowEnd, got.Unit)
	}
	if len(got.Text) > maxText || !strings.Contains(got.Text, "order lines in 15 s (threshold 30)") || m.Text != got.Text {
		t.Errorf("text %q (%d characters), message text %q", got.Text, len(got.Text), m.Text)
	}
	wantID := dedupID("order-flood", got.Period)
	if m.Topic != testApp.AlarmTopicARN || m.Attributes["alarm"] != "order-flood" || m.Attributes["trigger_count"] != "1" {
		t.Errorf("message topic/attributes = %q %v", m.Topic, m.Attributes)
	}
	if m.DedupID != wantID || m.GroupID != wantID || m.Attributes["dedup_id"] != wantID {
		t.Errorf("message ids: dedup %q group %q attribute %q; want %q", m.DedupID, m.GroupID, m.Attributes["dedup_id"], wantID)
	}
	h := history(t, store)
	key := "order-flood|" + window.FormatTime(got.Period)
	if len(h) != 1 || h[key]["published"] != "BOOL:true" || h[key][window.AttrExpiresAt] != "" {
		t.Errorf("alarm history = %v; want one published item that never expires", h)
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
	clock.Advance(DefaultConfig().Idle + time.Second)
	a.close(processors.Shutdown)
	if len(a.msgs) != 0 {
		t.Fatalf("shutdown published %d messages", len(a.msgs))
	}
	next := newLease(t, f, store, clock, "shardId-000000000001")
	settle(clock, next)
	next.close(processors.Shutdown)
	if len(next.msgs) != 1 {
		t.Errorf("next owner sent %d messages, want 1", len(next.msgs))
	}
	if h := history(t, store); h["order-flood|2026-11-22T09:41:09Z"]["published"] != "BOOL:true" {
		t.Errorf("history = %v; want published=true", h)
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
	settle(clock, a)
	if len(a.msgs) != 1 {
		t.Fatalf("%d messages, want 1 (customer 17850.0 only)", len(a.msgs))
	}
	got := alarmOf(t, a.msgs[0])
	if got.ID != "order-flood#customer#17850.0" || got.Key != "17850.0" || got.Orders != 5 {
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
	settle(clock, a)
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
	cfg.Threshold, cfg.Count = 1000, CountInvoices
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
	settle(clock, a)
	if len(a.msgs) != 1 {
		t.Errorf("%d messages after the store recovered, want 1", len(a.msgs))
	}
	store.Fail = errors.New("down")
	if _, err := f(t.Context(), a.h.Env()); err == nil || !errors.Is(err, store.Fail) {
		t.Errorf("factory with a failing store = %v; want the restore error", err)
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
		{yaml: "suppression: 500ms", wantErr: "processors.orderflood.suppression: must be between 1s and 24h"},
		{yaml: "time: ingest", wantErr: "processors.orderflood.time: must be event or arrival"},
		{yaml: "retention: -1h", wantErr: "processors.orderflood.retention: must be >= 0"},
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
	settle(clock, a)
	if len(a.msgs) != 0 {
		t.Errorf("%d messages without a topic", len(a.msgs))
	}
	if h := history(t, store); len(h) != 1 {
		t.Errorf("history = %v; want the alarm recorded", h)
	}
}

// TestBlocklist: with blocklist set, an alarm leaves its top customers in
// the item a web tier reads (alarm=<id>#blocklist, period=latest).
func TestBlocklist(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Blocklist = true
	f := newFactory(t, cfg)
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	a.batch(orders(30, 0, 10, "A"))
	settle(clock, a)
	it := history(t, store)["order-flood#blocklist|"+BlocklistPeriod]
	if it["customers"] != "L:[S:12000.0 S:12001.0 S:12002.0]" || it["alarm_period"] != "S:2026-11-22T09:41:09Z" || it["orders"] != "N:30" {
		t.Errorf("blocklist item = %v", it)
	}
}

// TestUnstartedShardHoldsBack: a shard of the stream that no worker has
// started may hold any order time: nothing is decided until it starts.
func TestUnstartedShardHoldsBack(t *testing.T) {
	f := newFactory(t, DefaultConfig())
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	a.h.Shards = []string{"shardId-000000000001", "shardId-000000000002"}
	var err error
	if a.p, err = a.h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	a.batch(orders(20, 0, 10, "A"))
	settle(clock, a)
	if len(a.msgs) != 0 {
		t.Fatalf("%d alarms before shard 2 started", len(a.msgs))
	}
	b := newLease(t, f, store, clock, "shardId-000000000002")
	b.batch(orders(15, 5, 10, "B"))
	settle(clock, a, b)
	if n := len(a.msgs) + len(b.msgs); n != 1 {
		t.Errorf("%d alarms once both shards ran, want 1", n)
	}
}

// TestArrivalDecidesWithinAPoll: by arrival time every record a shard
// reads moves its frontier, so with live traffic an alarm is decided a
// few polls after its orders, not after grace or idle. Three shards poll
// every 250 ms; two get 20 orders each in one put; the third none.
func TestArrivalDecidesWithinAPoll(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Time, cfg.Grace = TimeArrival, 500*time.Millisecond
	f := newFactory(t, cfg)
	store, clock := processortest.NewStore(), clockAt(0)
	var leases []*lease
	for _, id := range []string{"shardId-000000000001", "shardId-000000000002", "shardId-000000000003"} {
		leases = append(leases, newLease(t, f, store, clock, id))
	}
	const poll = 250 * time.Millisecond
	put := clock.Now().Add(10*time.Second + 130*time.Millisecond)
	burst := orders(40, 0, 1, "A")
	for i := range burst {
		burst[i].Time = put
	}
	var decided time.Time
	for clock.Now().Before(put.Add(5 * time.Second)) {
		clock.Advance(poll)
		now := clock.Now()
		for i, l := range leases {
			// Records put in the last poll interval (arrival times grow).
			recs := []records.Record{{Kind: records.KindHit, Time: now.Add(-poll + 10*time.Millisecond)}}
			if i < 2 && !put.After(now) && put.After(now.Add(-poll)) {
				recs = append(recs, burst[i*20:(i+1)*20]...)
			}
			recs = append(recs, records.Record{Kind: records.KindHit, Time: now.Add(-10 * time.Millisecond)})
			l.batch(recs)
		}
		if decided.IsZero() && len(leases[0].msgs)+len(leases[1].msgs)+len(leases[2].msgs) > 0 {
			decided = now
		}
	}
	var msgs []processors.Message
	for _, l := range leases {
		msgs = append(msgs, l.msgs...)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	if a := alarmOf(t, msgs[0]); !a.Time.Equal(put) || a.Orders != 40 || a.Shards != 2 {
		t.Errorf("alarm at %s: %d orders on %d shards; want %s, 40 on 2", a.Time, a.Orders, a.Shards, put)
	}
	// Read in the poll after the put; the frontiers pass it once the
	// shards read records Grace later, are written a poll after their
	// partials, and an evaluation reads them a poll after that.
	lag := decided.Sub(put)
	t.Logf("alarm decided %s after its orders", lag)
	if lag > cfg.Grace+4*poll {
		t.Errorf("alarm decided %s after its orders, want <= grace + 4 polls (%s)", lag, cfg.Grace+4*poll)
	}
}

// TestArrivalLaggingShardHoldsBack: a shard reading 3 s behind the clock
// (a backlog) holds the fleet back although it has no orders yet, so its
// share of a burst is counted: one alarm with every order. An idle shard
// that reads nothing (each poll finds it caught up) holds nothing back.
func TestArrivalLaggingShardHoldsBack(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Time, cfg.Grace = TimeArrival, 500*time.Millisecond
	f := newFactory(t, cfg)
	store, clock := processortest.NewStore(), clockAt(0)
	current := newLease(t, f, store, clock, "shardId-000000000001")
	lagging := newLease(t, f, store, clock, "shardId-000000000002")
	quiet := newLease(t, f, store, clock, "shardId-000000000003")
	const poll, lag = 250 * time.Millisecond, 3 * time.Second
	put := clock.Now().Add(10*time.Second + 130*time.Millisecond)
	burst := orders(40, 0, 1, "A")
	for i := range burst {
		burst[i].Time = put
	}
	// read returns what a shard reading `behind` the clock gets this poll.
	read := func(now time.Time, behind time.Duration, orders []records.Record) []records.Record {
		upTo := now.Add(-behind)
		recs := []records.Record{{Kind: records.KindHit, Time: upTo.Add(-poll + 10*time.Millisecond)}}
		if !put.After(upTo) && put.After(upTo.Add(-poll)) {
			recs = append(recs, orders...)
		}
		return append(recs, records.Record{Kind: records.KindHit, Time: upTo.Add(-10 * time.Millisecond)})
	}
	for clock.Now().Before(put.Add(lag + 5*time.Second)) {
		clock.Advance(poll)
		now := clock.Now()
		current.batch(read(now, 0, burst[:20]))
		lagging.batch(read(now, lag, burst[20:]))
		quiet.p.(processors.CaughtUp).CaughtUp(now) // an empty poll at the end of its shard
		quiet.flush()
	}
	msgs := append(append(current.msgs, lagging.msgs...), quiet.msgs...)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	if a := alarmOf(t, msgs[0]); !a.Time.Equal(put) || a.Orders != 40 || a.Shards != 2 {
		t.Errorf("alarm at %s: %d orders on %d shards; want %s, all 40 on 2", a.Time, a.Orders, a.Shards, put)
	}
}
