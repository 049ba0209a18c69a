package histogram_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/histogram"
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
	f, err := histogram.Plugin().Build(&node, app)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConfig(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"", ""},
		{"window: 5m\ngrace: 10s\nidle: 1m\ntop_k: 0\nmax_hosts: 5\nbuckets: [100, 1KiB, 1MB, 2GiB]\n", ""},
		{"bucket: [1]\n", "processors.histogram.bucket: unknown field (line 1)"},
		{"buckets: []\n", "processors.histogram.buckets: must list 1 to 16 upper bounds"},
		{"buckets: [10, 10]\n", "processors.histogram.buckets: must be strictly ascending (10 after 10)"},
		{"buckets: [1KiB, 100]\n", "processors.histogram.buckets: must be strictly ascending (100 after 1KiB)"},
		{"buckets: [ten]\n", `processors.histogram: line 1: "ten" is not a byte size (e.g. 1024, 10KiB, 1MiB)`},
		{"buckets: [-1]\n", `processors.histogram: line 1: "-1" is not a byte size (e.g. 1024, 10KiB, 1MiB)`},
		{"top_k: 101\n", "processors.histogram.top_k: must be between 0 and 100"},
		{"max_hosts: 0\n", ""},
		{"max_hosts: -1\n", "processors.histogram.max_hosts: must be >= 1 (0 or unset: derived from the item size)"},
		{"linear: {width: 100B, max: 10KB}\n", ""},
		{"linear: {width: 100B, max: 10KB}\nmax_hosts: 200\n", "processors.histogram.max_hosts: must be <= 138 with 101 buckets (item size)"},
		{"linear: {width: 100B, max: 10KB}\nbuckets: [1, 2]\n", "processors.histogram.linear: set buckets or linear, not both"},
		{"linear: {width: 0, max: 10KB}\n", "processors.histogram.linear.width: must be >= 1B"},
		{"linear: {width: 100, max: 1050}\n", "processors.histogram.linear.max: must be a multiple of width (100) above it"},
		{"linear: {width: 10, max: 10KB}\n", "processors.histogram.linear: 1000 buckets of 10 up to 10000: at most 255 (item size)"},
		{"linear: {widht: 10, max: 10KB}\n", "processors.histogram.linear.widht: unknown field (line 1)"},
		{"max_hosts: 5000\n", "processors.histogram.max_hosts: must be <= 1071 with 7 buckets (item size)"},
		{"name: Big\n", `processors.histogram.name: "Big": want 1-40 of a-z, 0-9, '-' and '_', starting with a letter or digit`},
		{"name: sizes-2\n", ""},
		{"window: 7s\n", "processors.histogram.window: must divide 24h evenly (windows align to UTC days)"},
	}
	for _, tt := range tests {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(tt.in), &node); err != nil {
			t.Fatal(err)
		}
		_, err := histogram.Plugin().Build(&node, app)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("Build(%q) error = %q, want %q", tt.in, got, tt.wantErr)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want histogram.ByteSize
		ok   bool
	}{
		{"0", 0, true}, {"1024", 1024, true}, {"1KiB", 1024, true}, {"10 KiB", 10240, true},
		{"1MiB", 1 << 20, true}, {"3GiB", 3 << 30, true}, {"1KB", 1000, true}, {"2MB", 2e6, true},
		{"5B", 5, true}, {"1.5KiB", 0, false}, {"", 0, false}, {"KiB", 0, false}, {"-3", 0, false},
		{"99999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := histogram.ParseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, ok=%t", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if got := fmt.Sprint(histogram.DefaultBuckets()); got != "[0 1KiB 10KiB 100KiB 1MiB 10MiB]" {
		t.Errorf("DefaultBuckets = %s", got)
	}
}

func zaker(t testing.TB) []records.Record {
	return processortest.LoadRecords(t, "access/zaker-access-10k.log", records.FormatCombined)
}

func TestConformance(t *testing.T) {
	recs := zaker(t)
	t0 := recs[0].Time
	processortest.Run(t, processortest.Suite{
		Factory: build(t, "max_hosts: 500\n"),
		Records: recs,
		Window:  window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 30 * time.Second},
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindHit, Time: t0, Bytes: int64(i),
				Host: fmt.Sprintf("h%d.example", i), Path: fmt.Sprintf("/p/%d", i)}
		},
		FloodSize:    50_000,
		MaxStateKeys: 500 + 10,
		ExactMetrics: true,
	})
}

// offline is the exact histogram of the hits of recs in [start, end),
// computed without the processor.
type offline struct {
	total   histogram.Row
	hosts   map[string]*histogram.Row
	largest map[string]int64 // path -> largest response
}

func count(recs []records.Record, edges []int64, start, end time.Time) offline {
	o := offline{total: histogram.Row{Counts: make([]int64, len(edges)+1)}, hosts: map[string]*histogram.Row{}, largest: map[string]int64{}}
	for _, r := range recs {
		if et := r.EventTime(); r.Kind != records.KindHit || et.Before(start) || !et.Before(end) {
			continue
		}
		b := max(r.Bytes, 0)
		i := len(edges)
		for j, e := range edges {
			if b <= e {
				i = j
				break
			}
		}
		host := r.Host
		if host == "" {
			host = "-"
		}
		h := o.hosts[host]
		if h == nil {
			h = &histogram.Row{Counts: make([]int64, len(edges)+1)}
			o.hosts[host] = h
		}
		for _, row := range []*histogram.Row{&o.total, h} {
			row.Counts[i]++
			row.Bytes += b
		}
		path := histogram.PathKey(r.Path)
		o.largest[path] = max(o.largest[path], b)
	}
	return o
}

// topPaths ranks o's paths like the processor: most bytes, then path.
func (o offline) topPaths(k int) []string {
	var ps []string
	for p := range o.largest {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b string) int {
		if o.largest[a] != o.largest[b] {
			if o.largest[a] > o.largest[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return ps[:min(k, len(ps))]
}

func shardOf(key string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(shards))
}

// TestGlobalAcrossShards spreads real traffic over three shards at
// random (so hosts and paths reach several shards), runs one processor per
// shard on one store and checks every final global item against an
// offline count of the window's records.
func TestGlobalAcrossShards(t *testing.T) {
	all := zaker(t)
	// Hosts: the Zaker log has none; give them a few so per-host rows are
	// exercised.
	for i := range all {
		all[i].Host = fmt.Sprintf("site%d.example", shardOf(all[i].ClientIP, 4))
	}
	const shards, k = 3, 10
	// A grace longer than the log's disorder: nothing is late, so the
	// offline count of every record applies.
	factory := build(t, fmt.Sprintf("top_k: %d\ngrace: 2m\n", k))
	edges := histogram.DefaultConfig().Edges()
	store := processortest.NewStore()
	clock := processortest.NewClock(all[0].Time)
	split := make([][]records.Record, shards)
	rng := rand.New(rand.NewPCG(7, 9))
	for _, r := range all {
		i := rng.IntN(shards)
		split[i] = append(split[i], r)
	}
	hs := make([]*processortest.Harness, shards)
	ps := make([]processors.Processor, shards)
	ctx := t.Context()
	for i := range shards {
		id := fmt.Sprintf("shardId-%012d", i)
		processortest.Sequence(id, split[i])
		hs[i] = &processortest.Harness{Factory: factory, Store: store, Clock: clock, Shard: processors.Shard{Stream: "web", ShardID: id}}
		var err error
		if ps[i], err = hs[i].Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var late float64
	for off := 0; ; off += 200 {
		more := false
		for i := range shards {
			if off >= len(split[i]) {
				continue
			}
			more = true
			b := split[i][off:min(off+200, len(split[i]))]
			clock.Set(b[len(b)-1].Time.Add(time.Second))
			rec, err := hs[i].Batch(ctx, ps[i], b)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range rec.Data {
				late += d.Value
			}
		}
		if !more {
			break
		}
	}
	if late != 0 {
		t.Fatalf("%g late records with a 2m grace", late)
	}
	clock.Advance(time.Hour)
	for range 2 { // close, then re-merge
		for i := range shards {
			if _, err := hs[i].Flush(ctx, ps[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range shards {
		if _, err := hs[i].Close(ctx, ps[i], processors.ShardEnded); err != nil {
			t.Fatal(err)
		}
	}

	globals := 0
	var requests int64
	for _, it := range store.Items(app.Tables.Results) {
		if sk, _ := window.GetStr(it, window.AttrSK); sk != window.GlobalSK {
			continue
		}
		g, err := histogram.ParseGlobal(it)
		if err != nil {
			t.Fatal(err)
		}
		globals++
		if final, _ := window.GetBool(it, window.AttrFinal); !final || g.Finals != g.Merged || g.Merged != shards {
			t.Errorf("window %s: final=%t, merged %d partials, %d final; want all %d", g.Start, final, g.Merged, g.Finals, shards)
		}
		want := count(all, edges, g.Start, g.End)
		requests += g.Total.Requests()
		if diff := cmp.Diff(want.total, g.Total); diff != "" {
			t.Errorf("window %s: total (-want +got):\n%s", g.Start, diff)
		}
		gotHosts := map[string]*histogram.Row{}
		for _, h := range g.Hosts {
			gotHosts[h.Host] = &h.Row
		}
		if diff := cmp.Diff(want.hosts, gotHosts); diff != "" {
			t.Errorf("window %s: hosts (-want +got):\n%s", g.Start, diff)
		}
		var gotPaths []string
		for _, l := range g.Largest {
			gotPaths = append(gotPaths, l.Path)
			if want.largest[l.Path] != l.Bytes {
				t.Errorf("window %s: %s largest %d, want %d", g.Start, l.Path, l.Bytes, want.largest[l.Path])
			}
		}
		if diff := cmp.Diff(want.topPaths(k), gotPaths); diff != "" {
			t.Errorf("window %s: largest paths (-want +got):\n%s", g.Start, diff)
		}
	}
	if globals < 40 {
		t.Errorf("%d global items, want one per minute of the 41-minute log", globals)
	}
	if requests != int64(len(all)) {
		t.Errorf("globals count %d requests, the log has %d", requests, len(all))
	}
}

// TestLargestExact checks the per-shard top K and its merge against brute
// force on random skewed data where paths reach several shards.
func TestLargestExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	for trial := range 30 {
		shards, k := 1+rng.IntN(4), 1+rng.IntN(8)
		cfg := histogram.DefaultConfig()
		cfg.TopK = k
		store := processortest.NewStore()
		var all []records.Record
		for s := range shards {
			var recs []records.Record
			for range 50 + rng.IntN(300) {
				recs = append(recs, records.Record{Kind: records.KindHit, Time: t0.Add(time.Duration(rng.IntN(60)) * time.Second),
					Path: fmt.Sprintf("/p%d?x=%d", rng.IntN(40), rng.IntN(3)), Bytes: int64(rng.IntN(20)) * 1000})
			}
			id := fmt.Sprintf("shardId-%012d", s)
			processortest.Sequence(id, recs)
			all = append(all, recs...)
			h := &processortest.Harness{Factory: build(t, fmt.Sprintf("top_k: %d\n", k)), Store: store,
				Clock: processortest.NewClock(t0), Shard: processors.Shard{Stream: "web", ShardID: id}}
			p, err := h.Start(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(recs); off += 37 {
				if _, err := h.Batch(t.Context(), p, recs[off:min(off+37, len(recs))]); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := h.Close(t.Context(), p, processors.ShardEnded); err != nil {
				t.Fatal(err)
			}
		}
		want := count(all, cfg.Edges(), t0, t0.Add(time.Minute))
		items, err := store.Query(t.Context(), app.Tables.Results, "pk", histogram.Keys("histogram", time.Minute).Window(t0), "sk", window.GlobalSK, window.GlobalSK)
		if err != nil || len(items) != 1 {
			t.Fatalf("trial %d: global item: %v, %d items", trial, err, len(items))
		}
		g, err := histogram.ParseGlobal(items[0])
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range g.Largest {
			got = append(got, fmt.Sprintf("%s=%d", l.Path, l.Bytes))
		}
		var wantTop []string
		for _, p := range want.topPaths(k) {
			wantTop = append(wantTop, fmt.Sprintf("%s=%d", p, want.largest[p]))
		}
		if diff := cmp.Diff(wantTop, got); diff != "" {
			t.Errorf("trial %d (%d shards, k=%d): largest (-want +got):\n%s", trial, shards, k, diff)
		}
	}
}

func TestMergeHostsCapAndEdges(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	row := func(c ...int64) histogram.Row {
		var b int64
		for _, x := range c {
			b += x * 10
		}
		return histogram.Row{Counts: c, Bytes: b}
	}
	edges := []int64{0, 100}
	parts := []histogram.Partial{
		{Shard: "b", Start: t0, End: t0.Add(time.Minute), Final: true, Edges: edges, Total: row(1, 2, 3),
			Hosts: []histogram.HostRow{{Host: "x", Row: row(1, 1, 1)}, {Host: "y", Row: row(0, 1, 0)}}, Other: row(0, 0, 2)},
		{Shard: "a", Start: t0, End: t0.Add(time.Minute), Edges: edges, Total: row(0, 5, 0),
			Hosts: []histogram.HostRow{{Host: "y", Row: row(0, 4, 0)}, {Host: "z", Row: row(0, 1, 0)}}, Other: row(0, 0, 0)},
		{Shard: "c", Start: t0, End: t0.Add(time.Minute), Final: true, Edges: []int64{0, 200}, Total: row(9, 9, 9)},
	}
	g := histogram.Merge(parts, 2, 5)
	want := histogram.Global{
		Start: t0, End: t0.Add(time.Minute), Merged: 2, Finals: 1, Skipped: 1, Edges: edges,
		Total:   row(1, 7, 3),
		Hosts:   []histogram.HostRow{{Host: "y", Row: row(0, 5, 0)}, {Host: "x", Row: row(1, 1, 1)}},
		Other:   row(0, 1, 2), // z folded in
		Largest: []histogram.Large{},
	}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
}

func TestItemRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	p := histogram.Partial{
		Shard: "shardId-000000000001", Start: t0, End: t0.Add(time.Minute), Final: true,
		Pos:   window.Position{Seq: "49590000000000000000000000000000000000000000000000000001", Sub: 3},
		Edges: []int64{0, 1024},
		Total: histogram.Row{Counts: []int64{1, 2, 3}, Bytes: 99999},
		Hosts: []histogram.HostRow{
			{Host: "a.example", Row: histogram.Row{Counts: []int64{1, 2, 0}, Bytes: 2000}},
			{Host: "tab\there\n", Row: histogram.Row{Counts: []int64{0, 0, 3}, Bytes: 97999}},
			{Host: `"quoted`, Row: histogram.Row{Counts: []int64{0, 0, 0}}},
		},
		Other:   histogram.Row{Counts: []int64{0, 0, 0}},
		Largest: []histogram.Large{{Path: "/big\tfile", Host: "a.example", Bytes: 5000}, {Path: "/", Host: "-", Bytes: 1}},
	}
	it := histogram.PartialItem("t", histogram.Keys("histogram", time.Minute), &p, t0.Add(time.Hour))
	if it.Key != "histogram#60s#2026-11-22T09:41:00Z|shard#shardId-000000000001" {
		t.Errorf("key %q", it.Key)
	}
	got, err := histogram.ParsePartial(it.Attrs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	g := histogram.Merge([]histogram.Partial{p}, 10, 10)
	gi := histogram.GlobalItem("t", histogram.Keys("histogram", time.Minute), &g, p.Pos, t0)
	g2, err := histogram.ParseGlobal(gi.Attrs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(g, g2); diff != "" {
		t.Errorf("global round trip (-want +got):\n%s", diff)
	}
	if f, _ := window.GetBool(gi.Attrs, window.AttrFinal); !f {
		t.Error("global of one final partial is not final")
	}
}

// TestHostCapAndClip floods one window with long, invalid and many hosts:
// the totals stay exact, stored strings are valid and short.
func TestHostCapAndClip(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	cfg := histogram.DefaultConfig()
	cfg.MaxHosts = 3
	cfg.TopK = 2
	recs := []records.Record{
		{Kind: records.KindHit, Time: t0, Host: strings.Repeat("h", 300), Path: "/" + strings.Repeat("p", 2000), Bytes: 10},
		{Kind: records.KindHit, Time: t0, Host: "\xff\xfe", Path: "/\xff?q", Bytes: 20},
		{Kind: records.KindHit, Time: t0, Host: "", Bytes: -5},
		{Kind: records.KindHit, Time: t0, Host: "d", Bytes: 1 << 40},
		{Kind: records.KindHit, Time: t0, Host: "e", Bytes: 1},
		{Kind: records.KindOrder, Time: t0, Host: "f", Bytes: 1},
	}
	processortest.Sequence("s", recs)
	h := &processortest.Harness{Factory: build(t, "max_hosts: 3\ntop_k: 2\n"), Store: processortest.NewStore(),
		Clock: processortest.NewClock(t0), Shard: processors.Shard{Stream: "web", ShardID: "s"}}
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Batch(t.Context(), p, recs); err != nil {
		t.Fatal(err)
	}
	rec, err := h.Close(t.Context(), p, processors.ShardEnded)
	if err != nil {
		t.Fatal(err)
	}
	var part histogram.Partial
	for _, it := range rec.Items {
		if kind, _ := window.GetStr(it.Attrs, window.AttrKind); kind == window.KindPartial {
			if part, err = histogram.ParsePartial(it.Attrs); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := part.Total.Requests(); got != 5 {
		t.Errorf("requests %d, want 5 (orders ignored)", got)
	}
	if want := []int64{1, 3, 0, 0, 0, 0, 1}; !slices.Equal(part.Total.Counts, want) {
		t.Errorf("counts %v, want %v", part.Total.Counts, want)
	}
	if len(part.Hosts) != 3 || part.Other.Requests() != 2 {
		t.Errorf("%d host rows, other %d requests; want 3 and 2", len(part.Hosts), part.Other.Requests())
	}
	for _, hr := range part.Hosts {
		if len(hr.Host) > 100 || !strings.Contains(hr.Host, "~") && hr.Host != "-" {
			t.Errorf("host %q not clipped", hr.Host)
		}
	}
	if len(part.Largest) != 2 || part.Largest[0].Bytes != 1<<40 || len(part.Largest[1].Path) > 512 {
		t.Errorf("largest %+v", part.Largest)
	}
}

func BenchmarkProcess(b *testing.B) {
	recs := zaker(b)
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
		off := i % len(recs)
		chunk := recs[off:min(off+batch, len(recs))]
		if off == 0 && i > 0 {
			// A fresh processor: the data's event time restarts.
			b.StopTimer()
			p, _ = h.Start(ctx)
			b.StartTimer()
		}
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

// BenchmarkProcessWarm is Process alone on open windows (no Flush).
func BenchmarkProcessWarm(b *testing.B) {
	recs := zaker(b)
	t0 := recs[0].Time.Truncate(time.Minute)
	for i := range recs {
		recs[i].Time = t0.Add(time.Duration(i%50) * time.Second)
	}
	h := &processortest.Harness{Factory: build(b, ""), Store: processortest.NewStore(), Clock: processortest.NewClock(t0),
		Shard: processors.Shard{Stream: "web", ShardID: "shardId-000000000001"}}
	ctx := context.Background()
	p, err := h.Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var rec processortest.Recorder
	if err := p.Process(ctx, recs, &rec); err != nil {
		b.Fatal(err)
	}
	const batch = 500
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		off := i % (len(recs) - batch)
		if err := p.Process(ctx, recs[off:off+batch], &rec); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLinearBuckets(t *testing.T) {
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("linear: {width: 100B, max: 10KB}\n"), &node); err != nil {
		t.Fatal(err)
	}
	cfg := histogram.DefaultConfig()
	if err := processors.DecodeStrict(&node, "processors.histogram", &cfg); err != nil {
		t.Fatal(err)
	}
	edges := cfg.Edges()
	if len(edges) != 100 || edges[0] != 99 || edges[99] != 9999 {
		t.Fatalf("edges %v..., want 100 bounds 99, 199, ..., 9999", edges[:3])
	}
	if got := cfg.HostCap(); got != 138 {
		t.Errorf("HostCap with 101 buckets = %d, want 138", got)
	}
	if got := histogram.DefaultConfig().HostCap(); got != 1000 {
		t.Errorf("HostCap with the default buckets = %d, want 1000", got)
	}
	// Kibana's buckets: [k*100, (k+1)*100).
	for size, want := range map[int64]int{0: 0, 99: 0, 100: 1, 150: 1, 199: 1, 200: 2, 9999: 99, 10_000: 100, 1 << 40: 100} {
		lo, hi := histogram.BucketBounds(edges, want)
		if size < lo || (hi >= 0 && size > hi) {
			t.Errorf("size %d: bucket %d is [%d, %d]", size, want, lo, hi)
		}
		recs := processortest.Sequence("shardId-000000000001", []records.Record{{Kind: records.KindHit,
			Time: time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC), Bytes: size}})
		h := &processortest.Harness{Factory: build(t, "linear: {width: 100B, max: 10KB}\n"), Store: processortest.NewStore(),
			Clock: processortest.NewClock(recs[0].Time), Shard: processors.Shard{Stream: "web", ShardID: "shardId-000000000001"}}
		p, err := h.Start(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Batch(t.Context(), p, recs); err != nil {
			t.Fatal(err)
		}
		rec, err := h.Close(t.Context(), p, processors.ShardEnded)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range rec.Items {
			if sk, _ := window.GetStr(it.Attrs, window.AttrSK); sk != window.GlobalSK {
				continue
			}
			g, err := histogram.ParseGlobal(it.Attrs)
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Total.Counts) != 101 || g.Total.Counts[want] != 1 {
				t.Errorf("size %d: not counted in bucket %d", size, want)
			}
		}
	}
}

// TestItemSizeLinear fills a global item of the largest linear layout
// (255 buckets + overflow, the derived host cap, top_k 100) with the
// longest hosts and paths and 19-digit counts: it stays below 400 KB.
func TestItemSizeLinear(t *testing.T) {
	cfg := histogram.DefaultConfig()
	cfg.Linear = &histogram.Linear{Width: 4, Max: 1020}
	cfg.TopK = 100
	if err := cfg.Validate("h"); err != nil {
		t.Fatal(err)
	}
	edges := cfg.Edges()
	big := func() histogram.Row {
		r := histogram.Row{Counts: make([]int64, len(edges)+1), Bytes: math.MaxInt64}
		for i := range r.Counts {
			r.Counts[i] = math.MaxInt64
		}
		return r
	}
	g := histogram.Global{Start: time.Unix(0, 0).UTC(), End: time.Unix(60, 0).UTC(), Merged: 1000, Finals: 1000, Edges: edges, Total: big(), Other: big()}
	for i := range cfg.HostCap() {
		g.Hosts = append(g.Hosts, histogram.HostRow{Host: fmt.Sprintf("%04d", i) + strings.Repeat("h", 96), Row: big()})
	}
	for i := range cfg.TopK {
		g.Largest = append(g.Largest, histogram.Large{Path: fmt.Sprintf("/%04d", i) + strings.Repeat("p", 507), Host: strings.Repeat("h", 100), Bytes: math.MaxInt64})
	}
	it := histogram.GlobalItem("demo-results", histogram.Keys("histogram", time.Minute), &g, window.Position{}, time.Unix(1e10, 0))
	if n := processortest.ItemSize(it.Attrs); n > 400_000 {
		t.Errorf("largest global item: %d bytes, over 400 KB", n)
	} else {
		t.Logf("largest global item (%d buckets, %d hosts, top %d): %d bytes", len(edges)+1, cfg.HostCap(), cfg.TopK, n)
	}
}

// TestPercentiles checks the percentile estimates against the exact
// percentiles of random sizes: the exact value lies in the reported
// bucket, and the estimate too.
func TestPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		cfg := histogram.DefaultConfig()
		if trial%2 == 0 {
			cfg.Linear = &histogram.Linear{Width: histogram.ByteSize(50 + rng.IntN(200)), Max: 0}
			cfg.Linear.Max = cfg.Linear.Width * histogram.ByteSize(5+rng.IntN(100))
		}
		edges := cfg.Edges()
		counts := make([]int64, len(edges)+1)
		sizes := make([]int64, 1+rng.IntN(5000))
		for i := range sizes {
			sizes[i] = int64(rng.ExpFloat64() * 3000)
			j, _ := slices.BinarySearch(edges, sizes[i])
			counts[j]++
		}
		slices.Sort(sizes)
		ps, ok := histogram.Percentiles(edges, counts, 0.5, 0.9, 0.99)
		if !ok || len(ps) != 3 {
			t.Fatalf("trial %d: %v, %t", trial, ps, ok)
		}
		for _, p := range ps {
			exact := sizes[int(math.Ceil(p.P*float64(len(sizes))))-1]
			if exact < p.Lo || (!p.Overflow() && exact > p.Hi) || p.Estimate < p.Lo || (!p.Overflow() && p.Estimate > p.Hi) {
				t.Errorf("trial %d: p%g exact %d, got bucket [%d, %d] estimate %d", trial, 100*p.P, exact, p.Lo, p.Hi, p.Estimate)
			}
		}
	}
	if _, ok := histogram.Percentiles([]int64{1}, []int64{0, 0}, 0.5); ok {
		t.Error("percentiles of an empty histogram")
	}
}
