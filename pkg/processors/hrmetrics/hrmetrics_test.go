package hrmetrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/hrmetrics"
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
	f, err := hrmetrics.Plugin().Build(&node, app)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConfig(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"", ""},
		{"timestamp: arrival\nhosts: [FRA53, www.example.com]\nmax_seconds: 60\ndedupe: false\n", ""},
		{"timestamp: processing\n", `processors.hrmetrics.timestamp: must be "event" or "arrival"`},
		{"hosts: [a, a]\n", `processors.hrmetrics.hosts[1]: empty or repeated host "a"`},
		{"max_seconds: 0\n", "processors.hrmetrics.max_seconds: must be between 1 and 86400"},
		{"dims: [ip]\n", "processors.hrmetrics.dims: unknown field (line 1)"},
	}
	for _, tt := range tests {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(tt.in), &node); err != nil {
			t.Fatal(err)
		}
		_, err := hrmetrics.Plugin().Build(&node, app)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("Build(%q) error = %q, want %q", tt.in, got, tt.wantErr)
		}
	}
}

func TestConformance(t *testing.T) {
	recs := processortest.LoadRecords(t, "cloudfront/aws-samples-cloudfront.log", records.FormatCloudFront)
	recs = append(recs, processortest.LoadRecords(t, "access/zaker-access-10k.log", records.FormatCombined)...)
	processortest.Sequence("shardId-000000000001", recs)
	t0 := recs[len(recs)-1].Time
	processortest.Run(t, processortest.Suite{
		Factory:      build(t, "hosts: [FRA53, BOM52]\n"),
		Records:      recs,
		Window:       window.Config{Size: time.Second},
		ClockLag:     2 * time.Second,
		ExactMetrics: true,
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindHit, Time: t0.Add(time.Duration(i) * time.Second), Host: fmt.Sprint(i)}
		},
		FloodSize:    10_000,
		MaxStateKeys: 3600 * 3,
	})
}

func TestDatums(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	arr := t0.Add(500 * time.Millisecond)
	recs := processortest.Sequence("s", []records.Record{
		{Kind: records.KindHit, Time: t0, Status: 200, Bytes: 100, Host: "FRA53", Meta: records.Meta{ArrivalTime: arr}},
		{Kind: records.KindHit, Time: t0.Add(300 * time.Millisecond), Status: 503, Bytes: -1, Host: "DUB2", Meta: records.Meta{ArrivalTime: arr}},
		{Kind: records.KindOrder, Time: t0.Add(time.Second), Meta: records.Meta{ArrivalTime: arr}},
		{Kind: records.KindHit, Time: t0.AddDate(0, 0, -15)}, // too old for CloudWatch
		{Kind: records.KindUnknown, Time: t0},
	})
	h := &processortest.Harness{Factory: build(t, "hosts: [FRA53]\n"), Store: processortest.NewStore(),
		Clock: processortest.NewClock(t0.Add(2 * time.Second)), Shard: processors.Shard{Stream: "web", ShardID: "s"}}
	ctx := context.Background()
	p, err := h.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := h.Batch(ctx, p, recs)
	if err != nil {
		t.Fatal(err)
	}
	stream := []processors.Dim{{Name: "Stream", Value: "web"}}
	host := []processors.Dim{{Name: "Stream", Value: "web"}, {Name: "Host", Value: "FRA53"}}
	s0, s1 := t0, t0.Add(time.Second)
	want := []processors.Datum{
		{Name: "Requests", Unit: "Count", Dims: stream, Time: s0, Value: 2, Count: 2},
		{Name: "Bytes", Unit: "Bytes", Dims: stream, Time: s0, Value: 100, Count: 2},
		{Name: "Status2xx", Unit: "Count", Dims: stream, Time: s0, Value: 1, Count: 2},
		{Name: "Status3xx", Unit: "Count", Dims: stream, Time: s0, Value: 0, Count: 2},
		{Name: "Status4xx", Unit: "Count", Dims: stream, Time: s0, Value: 0, Count: 2},
		{Name: "Status5xx", Unit: "Count", Dims: stream, Time: s0, Value: 1, Count: 2},
		{Name: "ProcessingLag", Unit: "Milliseconds", Dims: stream, Time: s0, Value: 3000, Count: 2},
		{Name: "Requests", Unit: "Count", Dims: host, Time: s0, Value: 1, Count: 1},
		{Name: "Bytes", Unit: "Bytes", Dims: host, Time: s0, Value: 100, Count: 1},
		{Name: "Status2xx", Unit: "Count", Dims: host, Time: s0, Value: 1, Count: 1},
		{Name: "Status3xx", Unit: "Count", Dims: host, Time: s0, Value: 0, Count: 1},
		{Name: "Status4xx", Unit: "Count", Dims: host, Time: s0, Value: 0, Count: 1},
		{Name: "Status5xx", Unit: "Count", Dims: host, Time: s0, Value: 0, Count: 1},
		{Name: "ProcessingLag", Unit: "Milliseconds", Dims: host, Time: s0, Value: 1500, Count: 1},
		{Name: "Orders", Unit: "Count", Dims: stream, Time: s1, Value: 1, Count: 1},
		{Name: "ProcessingLag", Unit: "Milliseconds", Dims: stream, Time: s1, Value: 1500, Count: 1},
		{Name: "RecordsDropped", Unit: "Count", Dims: stream, Time: t0.Add(2 * time.Second), Value: 1, Count: 1},
	}
	if diff := cmp.Diff(want, rec.Data); diff != "" {
		t.Errorf("datums (-want +got):\n%s", diff)
	}
	// A new owner skips what the first one sent.
	p2, err := h.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec, err = h.Batch(ctx, p2, recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Data) != 0 {
		t.Errorf("replayed records produced %d datums, want 0", len(rec.Data))
	}
}

func BenchmarkProcess(b *testing.B) {
	recs := processortest.LoadRecords(b, "access/zaker-access-10k.log", records.FormatCombined)
	h := &processortest.Harness{Factory: build(b, ""), Store: processortest.NewStore(), Clock: processortest.NewClock(recs[0].Time),
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
		off := i % (len(recs) - batch)
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
