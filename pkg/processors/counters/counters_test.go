package counters_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/counters"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var app = processors.AppInfo{App: "demo", Stream: "web", Tables: processors.TablesFor("demo")}

func build(t testing.TB, conf string) processors.Factory {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(conf), &node); err != nil {
		t.Fatal(err)
	}
	f, err := counters.Plugin().Build(&node, app)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConfig(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"", ""},
		{"grace: 2s\nidle: 10s\nminutes: false\nmax_events: 5\nupdate_interval: 1m\nretention: 720h\n", ""},
		{"minutes: false\nhours: false\n", "processors.counters.minutes: seconds, minutes and hours are all off: nothing to count"},
		{"minutes: false\nhours: false\nseconds: true\nseconds_retention: 10m\n", ""},
		{"seconds: true\nseconds_retention: 10s\n", "processors.counters.seconds_retention: must be >= 1m"},
		{"max_events: 0\n", "processors.counters.max_events: must be between 1 and 1000"},
		{"update_interval: 10ms\n", "processors.counters.update_interval: must be >= 1s"},
		{"window: 1m\n", "processors.counters.window: unknown field (line 1)"},
		{"grace: 2h\n", "processors.counters.grace: must be between 0 and 1h"},
	}
	for _, tt := range tests {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(tt.in), &node); err != nil {
			t.Fatal(err)
		}
		_, err := counters.Plugin().Build(&node, app)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("Build(%q) error = %q, want %q", tt.in, got, tt.wantErr)
		}
	}
}

var events = []string{"", "pageview", "", "add_to_cart", "pageview", "hit", ""}

// traffic is the real access log with clickstream-like event names mixed
// in, and the real December 2010 orders re-timed onto the same hours.
func traffic(t testing.TB) []records.Record {
	hits := processortest.LoadRecords(t, "access/zaker-access-10k.log", records.FormatCombined)
	orders := processortest.LoadRecords(t, "orders/online-retail-2010-12.csv", records.FormatOrdersCSV)
	shift := hits[0].Time.Sub(orders[0].Time)
	var out []records.Record
	o := 0
	for i, r := range hits {
		r.Event = events[i%len(events)]
		out = append(out, r)
		// Every 4th hit, the next order line (at most ~2,500 of them).
		if i%4 == 0 && o < len(orders) {
			or := orders[o]
			or.Time = r.Time
			_ = shift
			out = append(out, or)
			o++
		}
	}
	for i := range out {
		out[i].Meta = records.Meta{}
	}
	return processortest.Sequence("shardId-000000000001", out)
}

func TestConformance(t *testing.T) {
	recs := traffic(t)
	t0 := recs[0].Time
	for _, tt := range []struct {
		name, conf string
		records    int // a prefix of the traffic (0 = all)
		maxState   int
	}{
		{"minutes+hours", "max_events: 50\n", 0, 2 * (50 + 6)},
		// Second buckets: the flood's second plus up to grace (5s) of
		// earlier seconds still open, each with at most a few names. The
		// first 3,000 records (~9 minutes, ~530 second buckets) keep the
		// kit fast under -race.
		{"seconds", "max_events: 50\nseconds: true\n", 3000, 3*(50+6) + 6*(50+6)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := recs
			if tt.records > 0 {
				in = recs[:tt.records]
			}
			processortest.Run(t, processortest.Suite{
				Factory: build(t, tt.conf),
				Records: in,
				// The finality check reads each item's own window end with
				// this grace and idle; Size only paces the idle flushes
				// (the hour windows close later, never earlier).
				Window: window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 30 * time.Second},
				Flood: func(i int) records.Record {
					return records.Record{Kind: records.KindHit, Time: t0, Event: fmt.Sprintf("ev%d", i)}
				},
				FloodSize:    20_000,
				MaxStateKeys: tt.maxState,
			})
		})
	}
}

type key struct{ event, bucket string }

func brute(recs []records.Record, res ...counters.Resolution) map[key]int64 {
	out := map[key]int64{}
	add := func(ev string, t time.Time) {
		for _, r := range res {
			out[key{ev, r.Bucket(t)}]++
		}
	}
	for _, r := range recs {
		t := r.EventTime()
		if r.Kind == records.KindOrder {
			add("order", t)
			continue
		}
		add("hit", t)
		if r.Status >= 400 && r.Status < 500 {
			add("4xx", t)
		}
		if r.Status >= 500 && r.Status < 600 {
			add("5xx", t)
		}
		switch r.Event {
		case "":
		case "hit":
			add("event_hit", t)
		default:
			add(r.Event, t)
		}
	}
	return out
}

// TestExactAcrossShardsAndFailover spreads the traffic over three shards,
// kills one shard's first owner mid-way (its last batch is replayed by the
// next owner) and checks every final counter against brute force.
func TestExactAcrossShardsAndFailover(t *testing.T) {
	for _, tt := range []struct {
		name, conf string
		res        []counters.Resolution
	}{
		{"minutes+hours", "", []counters.Resolution{counters.Minute, counters.Hour}},
		{"seconds", "seconds: true\n", []counters.Resolution{counters.Second, counters.Minute, counters.Hour}},
	} {
		t.Run(tt.name, func(t *testing.T) { testExact(t, tt.conf, tt.res) })
	}
}

func testExact(t *testing.T, conf string, res []counters.Resolution) {
	all := traffic(t)
	// Keep records in time order per shard, so nothing is late.
	const shards = 3
	split := make([][]records.Record, shards)
	for i, r := range all {
		split[i%shards] = append(split[i%shards], r)
	}
	factory := build(t, conf)
	store := processortest.NewStore()
	clock := processortest.NewClock(all[0].Time)
	ctx := t.Context()
	hs := make([]*processortest.Harness, shards)
	ps := make([]processors.Processor, shards)
	for i := range shards {
		id := fmt.Sprintf("shardId-%012d", i)
		processortest.Sequence(id, split[i])
		hs[i] = &processortest.Harness{Factory: factory, Store: store, Clock: clock, Shard: processors.Shard{Stream: "web", ShardID: id}}
		var err error
		if ps[i], err = hs[i].Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const batch = 250
	for off, round := 0, 0; ; off, round = off+batch, round+1 {
		more := false
		for i := range shards {
			if off >= len(split[i]) {
				continue
			}
			more = true
			b := split[i][off:min(off+batch, len(split[i]))]
			clock.Set(b[len(b)-1].Time.Add(time.Second))
			if _, err := hs[i].Batch(ctx, ps[i], b); err != nil {
				t.Fatal(err)
			}
			if i == 1 && round == 5 {
				// Crash after writing, before the checkpoint: a new owner
				// replays this batch.
				p, err := hs[i].Start(ctx)
				if err != nil {
					t.Fatal(err)
				}
				ps[i] = p
				if _, err := hs[i].Batch(ctx, ps[i], b); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !more {
			break
		}
	}
	for round := range 3 {
		clock.Advance(2 * time.Hour)
		for i := range shards {
			if _, err := hs[i].Flush(ctx, ps[i]); err != nil {
				t.Fatalf("idle round %d: %v", round, err)
			}
		}
	}
	got := map[key]int64{}
	for _, it := range store.Items(app.Tables.Counters) {
		ev, bucket, n, final, err := counters.ParseCounter(it)
		if err != nil {
			t.Fatal(err)
		}
		if !final {
			t.Errorf("%s %s not final after every window closed", ev, bucket)
		}
		got[key{ev, bucket}] = n
	}
	want := brute(all, res...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	if len(want) < 100 {
		t.Errorf("only %d counters: test data too small", len(want))
	}
}

func TestEventNames(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	names := []string{"pageview", "hit", "event_x", "bad\x01", string(make([]byte, 65)), "\xff", "a", "b", "c"}
	var recs []records.Record
	for _, n := range names {
		recs = append(recs, records.Record{Kind: records.KindHit, Time: t0, Status: 200, Event: n})
	}
	processortest.Sequence("s", recs)
	h := &processortest.Harness{Factory: build(t, "max_events: 5\nhours: false\n"), Store: processortest.NewStore(),
		Clock: processortest.NewClock(t0), Shard: processors.Shard{ShardID: "s"}}
	ctx := context.Background()
	p, err := h.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Batch(ctx, p, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Close(ctx, p, processors.ShardEnded); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, it := range h.Store.Items(app.Tables.Counters) {
		ev, _, n, _, err := counters.ParseCounter(it)
		if err != nil {
			t.Fatal(err)
		}
		got[ev] = n
	}
	want := map[string]int64{
		"hit": 9, "pageview": 1, "event_hit": 1, "event_event_x": 1, "_invalid": 3, "a": 1, "b": 1, "_other": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestRanges(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 41, 30, 0, time.UTC)
	tests := []struct {
		name         string
		from, to     string
		wantF, wantT string
	}{
		{"hours", "", "", "2026-11-22T07", "2026-11-22T09"},
		{"minutes", "", "", "2026-11-22T09:32", "2026-11-22T09:41"},
	}
	tests[0].from, tests[0].to = counters.HourRange(now, 3)
	tests[1].from, tests[1].to = counters.MinuteRange(now, 10)
	for _, tt := range tests {
		if tt.from != tt.wantF || tt.to != tt.wantT {
			t.Errorf("%s range = [%s, %s], want [%s, %s]", tt.name, tt.from, tt.to, tt.wantF, tt.wantT)
		}
	}
	if !counters.IsResolution("2026-11-22T09", counters.Hour) || counters.IsResolution("2026-11-22T09:41", counters.Hour) {
		t.Error("IsResolution")
	}
	from, to := counters.SecondRange(now, 60)
	if from != "2026-11-22T09:40:31" || to != "2026-11-22T09:41:30" {
		t.Errorf("second range = [%s, %s]", from, to)
	}
	for _, tt := range []struct {
		bucket string
		res    string
		start  time.Time
	}{
		{"2026-11-22T09:41:07", "second", time.Date(2026, 11, 22, 9, 41, 7, 0, time.UTC)},
		{"2026-11-22T09:41", "minute", time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)},
		{"2026-11-22T09", "hour", time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)},
	} {
		r, start, err := counters.ParseBucket(tt.bucket)
		if err != nil || r.Name != tt.res || !start.Equal(tt.start) {
			t.Errorf("ParseBucket(%q) = %s %s %v, want %s %s", tt.bucket, r.Name, start, err, tt.res, tt.start)
		}
	}
	for _, bad := range []string{"", "2026-11-22", "2026-11-22T9:41:07", "2026-11-22T09:61"} {
		if _, _, err := counters.ParseBucket(bad); err == nil {
			t.Errorf("ParseBucket(%q) accepted", bad)
		}
	}
}

func BenchmarkProcess(b *testing.B) {
	b.Run("minutes+hours", func(b *testing.B) { benchProcess(b, "") })
	b.Run("seconds", func(b *testing.B) { benchProcess(b, "seconds: true\n") })
}

func benchProcess(b *testing.B, conf string) {
	recs := traffic(b)
	h := &processortest.Harness{Factory: build(b, conf), Store: processortest.NewStore(), Clock: processortest.NewClock(recs[0].Time),
		Shard: processors.Shard{Stream: "web", ShardID: "shardId-000000000001"}}
	ctx := context.Background()
	p, err := h.Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 500
	var rec processortest.Recorder
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		off := i % len(recs)
		if off+batch > len(recs) {
			off = 0
		}
		if off == 0 && i > 0 {
			b.StopTimer()
			p, _ = h.Start(ctx)
			b.StartTimer()
		}
		chunk := recs[off : off+batch]
		h.Clock.Set(chunk[len(chunk)-1].Time)
		if err := p.Process(ctx, chunk, &rec); err != nil {
			b.Fatal(err)
		}
		if err := p.Flush(ctx, &rec); err != nil {
			b.Fatal(err)
		}
		rec.Reset()
	}
}
