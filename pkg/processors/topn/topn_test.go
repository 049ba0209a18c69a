package topn_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/topn"
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
	f, err := topn.Plugin().Build(&node, app)
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
		{"n: 10\nwindow: 30s\ngrace: 2s\nidle: 5s\nmax_keys: 1000\nmax_hosts: 10\n", ""},
		{"n: 0\n", "processors.topn.n: must be between 1 and 1000"},
		{"nn: 3\n", "processors.topn.nn: unknown field (line 1)"},
		{"window: 500ms\n", "processors.topn.window: must be >= 1s"},
		{"n: 10\ncandidates: 5\n", "processors.topn.candidates: must be >= n (10) or 0 for max(5n, 100)"},
		{"n: 1000\n", "processors.topn.candidates: must be <= 2000 (item size); set it explicitly for large n"},
		{"max_keys: 10\n", "processors.topn.max_keys: must be >= candidates (250)"},
		{"max_hosts: 0\n", "processors.topn.max_hosts: must be >= 1"},
		{"grace: -1s\n", "processors.topn.grace: must be >= 0"},
	}
	for _, tt := range tests {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(tt.in), &node); err != nil {
			t.Fatal(err)
		}
		_, err := topn.Plugin().Build(&node, app)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("Build(%q) error = %q, want %q", tt.in, got, tt.wantErr)
		}
	}
}

func zaker(t testing.TB) []records.Record {
	return processortest.LoadRecords(t, "access/zaker-access-10k.log", records.FormatCombined)
}

func TestConformance(t *testing.T) {
	recs := zaker(t)
	t0 := recs[0].Time
	processortest.Run(t, processortest.Suite{
		Factory: build(t, "n: 10\n"),
		Records: recs,
		Window:  window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 30 * time.Second},
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindHit, Time: t0, Bytes: 100,
				ClientIP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Host: fmt.Sprintf("h%d", i)}
		},
		FloodSize:    50_000,
		MaxStateKeys: 100_000 + 10_000,
	})
}

// bruteTop is the exact global answer for one window.
type counts struct{ req, bytes int64 }

func brute(recs []records.Record, start, end time.Time) map[string]counts {
	out := map[string]counts{}
	for _, r := range recs {
		if et := r.EventTime(); r.Kind == records.KindHit && !et.Before(start) && et.Before(end) {
			c := out[r.ClientIP]
			c.req++
			c.bytes += max(r.Bytes, 0)
			out[r.ClientIP] = c
		}
	}
	return out
}

func shardOf(ip string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(ip))
	return int(h.Sum32() % uint32(shards))
}

// TestGlobalAcrossShards splits real traffic over three shards by client
// IP (the partition key), runs one processor per shard on one store and
// checks every final global item against a brute-force count of the
// window's records.
func TestGlobalAcrossShards(t *testing.T) {
	all := zaker(t)
	const shards, n = 3, 5
	factory := build(t, fmt.Sprintf("n: %d\ncandidates: %d\n", n, 100))
	store := processortest.NewStore()
	clock := processortest.NewClock(all[0].Time)
	split := make([][]records.Record, shards)
	for _, r := range all {
		i := shardOf(r.ClientIP, shards)
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
	// Feed the shards interleaved, 200 records of each at a time, the
	// clock following event time.
	for off := 0; ; off += 200 {
		more := false
		for i := range shards {
			if off >= len(split[i]) {
				continue
			}
			more = true
			b := split[i][off:min(off+200, len(split[i]))]
			clock.Set(b[len(b)-1].Time.Add(time.Second))
			if _, err := hs[i].Batch(ctx, ps[i], b); err != nil {
				t.Fatal(err)
			}
		}
		if !more {
			break
		}
	}
	clock.Advance(time.Hour)
	for i := range shards { // two idle rounds: close, then re-merge
		if _, err := hs[i].Flush(ctx, ps[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range shards {
		if _, err := hs[i].Flush(ctx, ps[i]); err != nil {
			t.Fatal(err)
		}
		if _, err := hs[i].Close(ctx, ps[i], processors.ShardEnded); err != nil {
			t.Fatal(err)
		}
	}

	globals := 0
	for _, it := range store.Items(app.Tables.Results) {
		if sk, _ := window.GetStr(it, window.AttrSK); sk != window.GlobalSK {
			continue
		}
		g, err := topn.ParseGlobal(it)
		if err != nil {
			t.Fatal(err)
		}
		globals++
		want := brute(all, g.Start, g.End)
		if g.Finals != g.Merged {
			t.Errorf("window %s: global merged %d partials, %d final", g.Start, g.Merged, g.Finals)
		}
		var wantReq int64
		for _, c := range want {
			wantReq += c.req
		}
		if g.Requests != wantReq {
			t.Errorf("window %s: requests %d, want %d", g.Start, g.Requests, wantReq)
		}
		checkTop(t, g, want, n)
	}
	if globals < 30 {
		t.Errorf("%d global items, want one per minute of the 41-minute log", globals)
	}
}

// checkTop verifies a global list against exact counts: true counts
// within the reported error, and the list is the true top n whenever it
// claims exactness.
func checkTop(t *testing.T, g topn.Global, want map[string]counts, n int) {
	t.Helper()
	for _, r := range g.TopRequests {
		c := want[r.Key]
		if c.req < r.Requests || c.req > r.Requests+r.ErrRequests {
			t.Errorf("window %s: %s requests %d+%d, true %d", g.Start, r.Key, r.Requests, r.ErrRequests, c.req)
		}
	}
	if !g.Exact() {
		return
	}
	keys := slices.Collect(maps.Keys(want))
	slices.SortFunc(keys, func(a, b string) int {
		if want[a].req != want[b].req {
			return int(want[b].req - want[a].req)
		}
		if want[a].bytes != want[b].bytes {
			if want[b].bytes > want[a].bytes {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	keys = keys[:min(n, len(keys))]
	var got []string
	for _, r := range g.TopRequests {
		got = append(got, r.Key)
	}
	if diff := cmp.Diff(keys, got); diff != "" {
		t.Errorf("window %s: top %d by requests (-want +got):\n%s", g.Start, n, diff)
	}
}

// TestMergeBounds checks Merge's error accounting against brute force on
// random skewed data where shards truncate their lists and IPs spread
// over several shards (the worst case).
func TestMergeBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	for trial := range 20 {
		shards, m := 2+rng.IntN(4), 5+rng.IntN(20)
		truth := map[string]counts{}
		var parts []topn.Partial
		for s := range shards {
			local := map[string]counts{}
			for range 200 + rng.IntN(500) {
				ip := fmt.Sprintf("ip%d", int(rng.ExpFloat64()*20))
				b := int64(rng.IntN(10_000))
				c := local[ip]
				c.req++
				c.bytes += b
				local[ip] = c
				c = truth[ip]
				c.req++
				c.bytes += b
				truth[ip] = c
			}
			parts = append(parts, partialOf(fmt.Sprintf("s%d", s), t0, local, m))
		}
		g := topn.Merge(parts, 10)
		for _, r := range g.TopRequests {
			c := truth[r.Key]
			if c.req < r.Requests || c.req > r.Requests+r.ErrRequests {
				t.Errorf("trial %d: %s requests in [%d, %d], true %d", trial, r.Key, r.Requests, r.Requests+r.ErrRequests, c.req)
			}
		}
		for _, r := range g.TopBytes {
			c := truth[r.Key]
			if c.bytes < r.Bytes || c.bytes > r.Bytes+r.ErrBytes {
				t.Errorf("trial %d: %s bytes in [%d, %d], true %d", trial, r.Key, r.Bytes, r.Bytes+r.ErrBytes, c.bytes)
			}
		}
		listed := map[string]bool{}
		for _, p := range parts {
			for _, e := range p.IPs {
				listed[e.Key] = true
			}
		}
		for ip, c := range truth {
			if !listed[ip] && (c.req > g.BoundRequests || c.bytes > g.BoundBytes) {
				t.Errorf("trial %d: unlisted %s has %d/%d, above the bound %d/%d", trial, ip, c.req, c.bytes, g.BoundRequests, g.BoundBytes)
			}
		}
	}
}

// partialOf computes a shard's partial from exact counts like the
// processor does: union of the top m by requests and by bytes.
func partialOf(shard string, t0 time.Time, local map[string]counts, m int) topn.Partial {
	keys := slices.Sorted(maps.Keys(local))
	pick := func(less func(a, b string) int) []string {
		k := slices.Clone(keys)
		slices.SortStableFunc(k, less)
		return k[:min(m, len(k))]
	}
	byReq := pick(func(a, b string) int { return int(local[b].req - local[a].req) })
	byBytes := pick(func(a, b string) int { return int(local[b].bytes - local[a].bytes) })
	in := map[string]bool{}
	p := topn.Partial{Shard: shard, Start: t0, End: t0.Add(time.Minute), Final: true}
	for _, k := range append(byReq, byBytes...) {
		if !in[k] {
			in[k] = true
			p.IPs = append(p.IPs, topn.Entry{Key: k, Requests: local[k].req, Bytes: local[k].bytes})
		}
	}
	for _, k := range keys {
		p.Requests += local[k].req
		p.Bytes += local[k].bytes
		if !in[k] {
			p.BoundRequests = max(p.BoundRequests, local[k].req)
			p.BoundBytes = max(p.BoundBytes, local[k].bytes)
		}
	}
	return p
}

func TestMergeExactDisjoint(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	parts := []topn.Partial{
		{Shard: "b", Start: t0, End: t0.Add(time.Minute), Final: true, Requests: 5, Bytes: 50,
			IPs: []topn.Entry{{Key: "2.2.2.2", Requests: 4, Bytes: 10}, {Key: "3.3.3.3", Requests: 1, Bytes: 40}}},
		{Shard: "a", Start: t0, End: t0.Add(time.Minute), Final: false, Requests: 3, Bytes: 30,
			IPs: []topn.Entry{{Key: "1.1.1.1", Requests: 3, Bytes: 30}}},
	}
	g := topn.Merge(parts, 2)
	want := topn.Global{
		Start: t0, End: t0.Add(time.Minute), Merged: 2, Finals: 1, Requests: 8, Bytes: 80,
		TopRequests: []topn.Ranked{{Entry: topn.Entry{Key: "2.2.2.2", Requests: 4, Bytes: 10}}, {Entry: topn.Entry{Key: "1.1.1.1", Requests: 3, Bytes: 30}}},
		TopBytes:    []topn.Ranked{{Entry: topn.Entry{Key: "3.3.3.3", Requests: 1, Bytes: 40}}, {Entry: topn.Entry{Key: "1.1.1.1", Requests: 3, Bytes: 30}}},
	}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
	if !g.Exact() {
		t.Error("disjoint complete partials should merge exactly")
	}
}

func TestItemRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	p := topn.Partial{
		Shard: "shardId-1", Start: t0, End: t0.Add(time.Minute), Pos: window.Position{Seq: "123", Sub: 4}, Final: true,
		Requests: 10, Bytes: 1000, Keys: 3, OverflowRequests: 1, OverflowBytes: 2,
		IPs:           []topn.Entry{{Key: "1.1.1.1", Requests: 9, Bytes: 900}},
		BoundRequests: 1, BoundBytes: 100, ErrRequests: 0, ErrBytes: 0,
		Hosts: []topn.Entry{{Key: "FRA53", Requests: 10, Bytes: 1000}},
	}
	keys := topn.Keys(time.Minute)
	it := topn.PartialItem("demo-results", keys, &p, t0.Add(time.Hour))
	if it.Key != "topn#60s#2026-11-22T09:41:00Z|shard#shardId-1" {
		t.Errorf("item key %q", it.Key)
	}
	back, err := topn.ParsePartial(it.Attrs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, back); diff != "" {
		t.Errorf("partial round trip (-want +got):\n%s", diff)
	}
	g := topn.Merge([]topn.Partial{p}, 5)
	gb, err := topn.ParseGlobal(topn.GlobalItem("demo-results", keys, &g, 5, p.Pos, t0).Attrs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(g, gb); diff != "" {
		t.Errorf("global round trip (-want +got):\n%s", diff)
	}
}

func TestRestoreAfterTruncation(t *testing.T) {
	// A shard with more IPs than candidates restores a truncated list: the
	// result must report an error bound, never claim exactness falsely.
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	var recs []records.Record
	for i := range 400 {
		recs = append(recs, records.Record{Kind: records.KindHit, Time: t0.Add(time.Duration(i) * 100 * time.Millisecond),
			ClientIP: fmt.Sprintf("10.0.%d.%d", i%150/256, i%150), Bytes: 10})
	}
	processortest.Sequence("shardId-1", recs)
	factory := build(t, "n: 3\ncandidates: 20\nmax_keys: 1000\n")
	h := &processortest.Harness{Factory: factory, Store: processortest.NewStore(), Clock: processortest.NewClock(t0),
		Shard: processors.Shard{Stream: "web", ShardID: "shardId-1"}}
	ctx := context.Background()
	p1, err := h.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Batch(ctx, p1, recs[:200]); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Close(ctx, p1, processors.Shutdown); err != nil {
		t.Fatal(err)
	}
	p2, err := h.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Batch(ctx, p2, recs[200:]); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(time.Hour)
	if _, err := h.Close(ctx, p2, processors.ShardEnded); err != nil {
		t.Fatal(err)
	}
	items, _ := h.Store.Query(ctx, app.Tables.Results, "pk", topn.Keys(time.Minute).Window(t0), "sk", "global", "global")
	if len(items) != 1 {
		t.Fatalf("%d global items", len(items))
	}
	g, err := topn.ParseGlobal(items[0])
	if err != nil {
		t.Fatal(err)
	}
	if g.Requests != 400 {
		t.Errorf("requests %d, want 400 (totals stay exact)", g.Requests)
	}
	if g.Exact() {
		t.Error("global claims exactness after restoring a truncated partial")
	}
	checkTop(t, g, brute(recs, g.Start, g.End), 3)
}

func BenchmarkProcess(b *testing.B) {
	recs := zaker(b)
	factory := build(b, "")
	h := &processortest.Harness{Factory: factory, Store: processortest.NewStore(), Clock: processortest.NewClock(recs[0].Time),
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
			// Start over with a fresh processor: the data's event time
			// restarts, which would make every record late.
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

// BenchmarkProcessWarm is the steady state inside one busy window: real
// records (605 IPs) re-timed into one minute, Process only, no Flush.
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
	if err := p.Process(ctx, recs, &rec); err != nil { // warm the maps
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
