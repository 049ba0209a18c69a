package botdetect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

var testApp = processors.AppInfo{App: "app", Stream: "stream", Tables: processors.TablesFor("app")}

func newFactory(t testing.TB, cfg Config) processors.Factory {
	t.Helper()
	if err := cfg.Validate("test"); err != nil {
		t.Fatalf("config: %v", err)
	}
	det, err := NewDetector(cfg.UserAgents)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFactory(cfg, testApp, det)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConformance(t *testing.T) {
	recs := loadRecords(t, zakerFile, records.FormatCombined)
	cfg := DefaultConfig()
	cfg.MaxIPs = 20_000
	// Profiles are written on a cadence of the processor clock; in this
	// test the clock moves by more than this between most batches, so a
	// new owner restores profiles and replays the records after them.
	cfg.Profile.PersistEvery = 10 * time.Second
	t0 := recs[0].Time
	processortest.Run(t, processortest.Suite{
		Factory: newFactory(t, cfg),
		Records: recs,
		Window:  cfg.Config,
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindHit, Time: t0.Add(time.Duration(i) * time.Millisecond / 4),
				ClientIP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Path: fmt.Sprintf("/p/%d", i),
				UserAgent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", Host: "shop.example"}
		},
		MaxStateKeys: cfg.MaxIPs,
		ExactMetrics: true,
		// TTLs follow the clock when it is past the window (replays of old
		// data); a rewrite after a failover may extend them. Checked in
		// TestExpiry instead.
		Volatile: []string{window.AttrExpiresAt, attrGen},
		Scratch:  []string{KindDelta},
	})
}

// TestExpiry: items live for the retention after their window, or after
// the clock when a replay of old data is processed.
func TestExpiry(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Retention = 48 * time.Hour
	for _, lag := range []time.Duration{time.Minute, 30 * 24 * time.Hour} {
		store := processortest.NewStore()
		f := newFactory(t, cfg)
		h := &processortest.Harness{Factory: f, Store: store, Shard: processors.Shard{ShardID: "shardId-000000000001"},
			Clock: processortest.NewClock(time.Date(2026, 11, 22, 9, 42, 0, 0, time.UTC).Add(lag))}
		runShardFrom(t, h, processortest.Sequence("shardId-000000000001", []records.Record{hit(1, "10.0.0.1", "/", "", browserUA)}))
		end := time.Date(2026, 11, 22, 9, 42, 0, 0, time.UTC)
		for _, it := range store.Items(testApp.Tables.Results) {
			n, _ := window.GetInt(it, window.AttrExpiresAt)
			got := time.Unix(n, 0)
			sk, _ := window.GetStr(it, window.AttrSK)
			if got.Before(end.Add(cfg.Retention)) || got.Before(end.Add(lag).Add(cfg.Retention)) {
				t.Errorf("lag %s: %s expires %s, want >= window end and >= clock, + 48h", lag, sk, got.UTC())
			}
		}
	}
}

// hit builds a test hit.
func hit(sec int, ip, path, ref, ua string) records.Record {
	return records.Record{Kind: records.KindHit, Time: time.Date(2026, 11, 22, 9, 41, sec, 0, time.UTC),
		ClientIP: ip, Path: path, Referer: ref, UserAgent: ua, Host: "shop.example", Bytes: 100, Status: 200}
}

const browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"

// runShard feeds recs as one batch to a new instance on shard and then
// lets every window close; it returns what was emitted.
func runShard(t *testing.T, f processors.Factory, store *processortest.Store, shard string, recs []records.Record) *processortest.Recorder {
	t.Helper()
	h := &processortest.Harness{Factory: f, Store: store, Shard: processors.Shard{Stream: "stream", ShardID: shard, WorkerID: "w"},
		Clock: processortest.NewClock(time.Date(2026, 11, 22, 9, 42, 0, 0, time.UTC))}
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	all := &processortest.Recorder{}
	rec, err := h.Batch(t.Context(), p, processortest.Sequence(shard, recs))
	if err != nil {
		t.Fatal(err)
	}
	all.Items = append(all.Items, rec.Items...)
	all.Data = append(all.Data, rec.Data...)
	h.Clock.Advance(10 * time.Minute)
	if rec, err = h.Flush(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	all.Items = append(all.Items, rec.Items...)
	all.Data = append(all.Data, rec.Data...)
	if _, err := h.Close(t.Context(), p, processors.Shutdown); err != nil {
		t.Fatal(err)
	}
	return all
}

func globalOf(t *testing.T, store *processortest.Store) Result {
	t.Helper()
	for _, it := range store.Items(testApp.Tables.Results) {
		if sk, _ := window.GetStr(it, window.AttrSK); sk == window.GlobalSK {
			r, err := ParseGlobal(it)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatal("no global item stored")
	return Result{}
}

func TestSignals(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RateRequests = 10
	cfg.CrawlPaths = 5
	cfg.UserAgents.Allow = []string{"FriendlyMonitor"}
	var recs []records.Record
	for i := range 12 { // rate: 12 requests with referers, 2 paths
		recs = append(recs, hit(i, "10.0.0.1", fmt.Sprintf("/a/%d", i%2), "https://shop.example/", browserUA))
	}
	recs = append(recs, hit(1, "10.0.0.2", "/robots.txt", "-", browserUA)) // robots
	for i := range 8 {                                                     // crawl: 8 distinct paths, no referer
		recs = append(recs, hit(2+i, "10.0.0.3", fmt.Sprintf("/item/%d", i), "", browserUA))
	}
	for i := range 8 { // same paths with a referer: not a crawl
		recs = append(recs, hit(2+i, "10.0.0.4", fmt.Sprintf("/item/%d", i), "https://shop.example/", browserUA))
	}
	recs = append(recs,
		hit(3, "10.0.0.5", "/", "-", "Mozilla/5.0 (compatible; AhrefsBot/6.1; +http://ahrefs.com/robot/)"), // ua
		hit(4, "10.0.0.6", "/", "-", "FriendlyMonitor/1.0 bot"),                                            // allowed
		hit(5, "10.0.0.7", "/robots.txt?x=1", "", "curl/8.0"),                                              // ua + robots
	)
	store := processortest.NewStore()
	out := runShard(t, newFactory(t, cfg), store, "shardId-000000000001", recs)

	got := globalOf(t, store)
	want := Result{
		Start: time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC), End: time.Date(2026, 11, 22, 9, 42, 0, 0, time.UTC),
		Shards: 1, FinalShards: 1, Requests: int64(len(recs)), BotRequests: 1, LibRequests: 1, IPs: 7, LibraryIPs: 1,
		FlaggedIPs: 5, FlaggedRequests: 12 + 1 + 8 + 1 + 1,
		Flagged: []FlaggedIP{
			{IP: "10.0.0.1", Reasons: []string{"rate"}, Requests: 12, Bytes: 1200, Host: "shop.example"},
			{IP: "10.0.0.3", Reasons: []string{"crawl"}, Requests: 8, Bytes: 800, Host: "shop.example"},
			{IP: "10.0.0.2", Reasons: []string{"robots"}, Requests: 1, Bytes: 100, Host: "shop.example"},
			{IP: "10.0.0.5", Reasons: []string{"ua:crawlerdetect:AhrefsBot"}, Requests: 1, Bytes: 100, BotRequests: 1, Host: "shop.example", UA: "crawlerdetect:AhrefsBot"},
			// A library is its own class: flagged only for its behaviour.
			{IP: "10.0.0.7", Reasons: []string{"robots"}, Requests: 1, Bytes: 100, LibRequests: 1, Host: "shop.example", UA: "library:curl"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("global result (-want +got):\n%s", diff)
	}

	// Bot share per second: value/count = share; seconds 3 and 5 had a bot.
	share := map[int]string{}
	for _, d := range out.Data {
		if d.Name == MetricBotShare {
			share[d.Time.Second()] = fmt.Sprintf("%g/%g", d.Value, d.Count)
		}
	}
	if share[3] != "100/4" || share[4] != "0/4" || share[5] != "0/4" || share[0] != "0/1" {
		t.Errorf("BotShare by second = %v; want 3:100/4 4:0/4 (allowed UA) 5:0/4 (library) 0:0/1", share)
	}
	lib := map[int]float64{}
	for _, d := range out.Data {
		if d.Name == MetricLibraryRequests {
			lib[d.Time.Second()] += d.Value
		}
	}
	if len(lib) != 1 || lib[5] != 1 {
		t.Errorf("LibraryRequests by second = %v, want 5:1", lib)
	}
}

// TestGlobalMergeAcrossShards: an IP whose requests are split over two
// shards is flagged for rate only in the merged result.
func TestGlobalMergeAcrossShards(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RateRequests = 10
	store := processortest.NewStore()
	f := newFactory(t, cfg)
	var a, b []records.Record
	for i := range 6 {
		a = append(a, hit(i, "10.9.9.9", "/x", "https://r/", browserUA))
		b = append(b, hit(i, "10.9.9.9", "/y", "https://r/", browserUA))
	}
	b = append(b, hit(7, "10.1.1.1", "/z", "https://r/", browserUA))
	runShard(t, f, store, "shardId-000000000001", a)
	if r := globalOf(t, store); r.Shards != 1 || r.FlaggedIPs != 0 {
		t.Fatalf("after shard 1: %+v; want one shard merged, nothing flagged", r)
	}
	runShard(t, f, store, "shardId-000000000002", b)
	got := globalOf(t, store)
	if got.Shards != 2 || got.FinalShards != 2 || got.Requests != 13 || got.IPs != 2 {
		t.Errorf("merged = %+v; want 2 final shards, 13 requests, 2 IPs", got)
	}
	want := []FlaggedIP{{IP: "10.9.9.9", Reasons: []string{"rate"}, Requests: 12, Bytes: 1200, Host: "shop.example"}}
	if diff := cmp.Diff(want, got.Flagged); diff != "" {
		t.Errorf("flagged (-want +got):\n%s", diff)
	}
}

// TestChunkedRestore: a window with more IPs than one chunk holds is
// restored by a new owner and ends with the same global result as an
// uninterrupted run.
func TestChunkedRestore(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RateRequests = 3
	f := newFactory(t, cfg)
	var recs []records.Record
	for i := range 3*chunkIPs + 10 {
		recs = append(recs, hit(i%50, fmt.Sprintf("10.0.%d.%d", i/256, i%256), "/", "https://r/", browserUA))
	}
	for i := range 3 { // a later burst makes early IPs (chunk 0) and late ones (chunk 3) rate-flagged
		recs = append(recs, hit(55, "10.0.0.1", "/", "https://r/", browserUA), hit(56+i%2, fmt.Sprintf("10.0.%d.%d", (3*chunkIPs+9)/256, (3*chunkIPs+9)%256), "/", "https://r/", browserUA))
	}
	recs = processortest.Sequence("shardId-000000000001", recs)

	ref := processortest.NewStore()
	runShard(t, f, ref, "shardId-000000000001", recs)
	want := globalOf(t, ref)

	store := processortest.NewStore()
	h := &processortest.Harness{Factory: f, Store: store, Shard: processors.Shard{Stream: "stream", ShardID: "shardId-000000000001"},
		Clock: processortest.NewClock(time.Date(2026, 11, 22, 9, 41, 30, 0, time.UTC))}
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cut := len(recs) - 4
	rec, err := h.Batch(t.Context(), p, recs[:cut])
	if err != nil {
		t.Fatal(err)
	}
	chunks := 0
	for _, it := range rec.Items {
		if k, _ := window.GetStr(it.Attrs, window.AttrKind); k == KindChunk {
			chunks++
		}
	}
	if chunks != 3 {
		t.Errorf("first flush wrote %d extra chunks, want 3", chunks)
	}
	if _, err := h.Close(t.Context(), p, processors.LeaseLost); err != nil {
		t.Fatal(err)
	}
	// The next owner is re-sent the last two records of the batch too.
	runShardFrom(t, h, recs[cut-2:])
	if diff := cmp.Diff(want, globalOf(t, store)); diff != "" {
		t.Errorf("restored global result (-want +got):\n%s", diff)
	}
}

func runShardFrom(t *testing.T, h *processortest.Harness, recs []records.Record) {
	t.Helper()
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Batch(t.Context(), p, recs); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(10 * time.Minute)
	if _, err := h.Flush(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Close(t.Context(), p, processors.Shutdown); err != nil {
		t.Fatal(err)
	}
}

func TestLateRecordsCounted(t *testing.T) {
	store := processortest.NewStore()
	f := newFactory(t, DefaultConfig())
	h := &processortest.Harness{Factory: f, Store: store, Shard: processors.Shard{ShardID: "shardId-000000000001"},
		Clock: processortest.NewClock(time.Date(2026, 11, 22, 9, 45, 0, 0, time.UTC))}
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	recs := processortest.Sequence("shardId-000000000001", []records.Record{
		hit(1, "10.0.0.1", "/", "", browserUA),
		hit(1, "10.0.0.1", "/", "", browserUA),
	})
	recs[1].Time = recs[1].Time.Add(3 * time.Minute) // moves the watermark past 09:41's end+grace
	late := hit(2, "10.0.0.2", "/", "", browserUA)
	late.Meta = records.Meta{ShardID: "shardId-000000000001", SequenceNumber: processortest.SeqNum(5)}
	if _, err := h.Batch(t.Context(), p, recs); err != nil {
		t.Fatal(err)
	}
	rec, err := h.Batch(t.Context(), p, []records.Record{late})
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, d := range rec.Data {
		if d.Name == MetricLate {
			n += d.Value
		}
	}
	if n != 1 {
		t.Errorf("LateRecords = %g, want 1 (data %+v)", n, rec.Data)
	}
	if r := globalOf(t, store); r.Requests != 1 || r.IPs != 1 {
		t.Errorf("09:41 global = %+v; the late record must not be mixed in", r)
	}
}

func TestRestoreError(t *testing.T) {
	store := processortest.NewStore()
	store.Fail = errors.New("dynamodb unavailable")
	h := &processortest.Harness{Factory: newFactory(t, DefaultConfig()), Store: store,
		Shard: processors.Shard{ShardID: "shardId-000000000001"}, Clock: processortest.NewClock(time.Now())}
	_, err := h.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "restore") || !errors.Is(err, store.Fail) {
		t.Errorf("Start with a failing store = %v; want a wrapped restore error", err)
	}
}

func TestDecodeConfig(t *testing.T) {
	tests := []struct {
		yaml    string
		wantErr string
		check   func(Config) bool
	}{
		{yaml: "", check: func(c Config) bool {
			return c.Size == time.Minute && c.RateRequests == 120 && c.UserAgents.CacheSize == DefaultCacheSize
		}},
		{yaml: "window: 5m\nrate_requests: 600\nuser_agents: {cache_size: 50, deny: [evil]}", check: func(c Config) bool {
			return c.Size == 5*time.Minute && c.RateRequests == 600 && c.UserAgents.CacheSize == 50 && c.UserAgents.Deny[0] == "evil"
		}},
		{yaml: "windw: 1m", wantErr: "processors.botdetect.windw: unknown field (line 1)"},
		{yaml: "user_agents: {size: 1}", wantErr: "processors.botdetect.user_agents.size: unknown field"},
		{yaml: "window: 500ms", wantErr: "processors.botdetect.window: must be >= 1s"},
		{yaml: "max_ips: 0", wantErr: "processors.botdetect.max_ips: must be between"},
		{yaml: "crawl_paths: 501", wantErr: "processors.botdetect.crawl_paths: must be between 0 (disabled) and 500"},
		{yaml: "rate_requests: -1", wantErr: "processors.botdetect.rate_requests: must be >= 0"},
		{yaml: "user_agents: {allow: ['re:[']}", wantErr: "processors.botdetect.user_agents.allow[0]: bad regexp"},
		{yaml: "max_report: 5000", wantErr: "processors.botdetect.max_report: must be between 1 and 2000"},
	}
	for _, tt := range tests {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(tt.yaml), &node); err != nil {
			t.Fatal(err)
		}
		cfg, err := DecodeConfig(&node, "processors.botdetect")
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want prefix %q", tt.yaml, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
		case !tt.check(cfg):
			t.Errorf("%q: decoded %+v", tt.yaml, cfg)
		}
	}
	if _, err := Plugin().Build(nil, processors.AppInfo{}); err == nil {
		t.Error("Build without an application name succeeded")
	}
	if f, err := Plugin().Build(nil, testApp); err != nil || f == nil {
		t.Errorf("Build(defaults) = %v", err)
	}
}

// BenchmarkProcess is the per-record cost on the Zaker log, warm: the
// shared detector cache is full, windows recycle as the log repeats.
func BenchmarkProcess(b *testing.B) {
	recs := loadRecords(b, zakerFile, records.FormatCombined)
	f := newFactory(b, DefaultConfig())
	clock := processortest.NewClock(recs[0].Time)
	p, err := f(context.Background(), processors.Env{Shard: processors.Shard{ShardID: "shardId-000000000001"}, Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 500
	out := &processortest.Recorder{}
	// Shift each pass of the log by its span so event time moves forward.
	span := recs[len(recs)-1].Time.Sub(recs[0].Time) + time.Minute
	pass := 0
	next := func(i int) []records.Record {
		lo := (i * batch) % len(recs)
		if lo == 0 && i > 0 {
			pass++
			for j := range recs {
				recs[j].Time = recs[j].Time.Add(span)
			}
		}
		return recs[lo:min(lo+batch, len(recs))]
	}
	for i := range len(recs) / batch { // warm up the cache
		_ = p.Process(context.Background(), next(i), out)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := len(recs) / batch; n < b.N; i++ {
		bt := next(i)
		_ = p.Process(context.Background(), bt, out)
		clock.Set(bt[len(bt)-1].Time)
		_ = p.Flush(context.Background(), out)
		out.Reset()
		n += len(bt)
	}
	b.StopTimer()
	_ = pass
}

// TestZakerLog runs the real Zaker log through one shard: every minute
// gets a global item, and each signal fires somewhere (the log is ~40%
// crawlers, some fetch robots.txt, some crawl without referers).
func TestZakerLog(t *testing.T) {
	recs := loadRecords(t, zakerFile, records.FormatCombined)
	store := processortest.NewStore()
	h := &processortest.Harness{Factory: newFactory(t, DefaultConfig()), Store: store,
		Shard: processors.Shard{ShardID: "shardId-000000000001"}, Clock: processortest.NewClock(recs[len(recs)-1].Time)}
	runShardFrom(t, h, recs)
	reasons := map[string]int{}
	windows, requests := 0, int64(0)
	for _, it := range store.Items(testApp.Tables.Results) {
		if sk, _ := window.GetStr(it, window.AttrSK); sk != window.GlobalSK {
			continue
		}
		r, err := ParseGlobal(it)
		if err != nil {
			t.Fatal(err)
		}
		windows++
		requests += r.Requests
		for _, f := range r.Flagged {
			for _, re := range f.Reasons {
				re, _, _ = strings.Cut(re, ":")
				reasons[re]++
			}
		}
	}
	if windows != 41 || requests != int64(len(recs)) {
		t.Errorf("%d windows, %d requests; want 41 minutes and all %d lines", windows, requests, len(recs))
	}
	for _, r := range []string{"ua", "robots", "crawl"} {
		if reasons[r] == 0 {
			t.Errorf("no IP flagged %q", r)
		}
	}
	t.Logf("flagged (IP, window) pairs by reason: %v", reasons)
}

// TestHugeByteCounts: forged byte counts saturate instead of wrapping,
// and the state still restores.
func TestHugeByteCounts(t *testing.T) {
	f := newFactory(t, DefaultConfig())
	store := processortest.NewStore()
	h := &processortest.Harness{Factory: f, Store: store, Shard: processors.Shard{ShardID: "shardId-000000000001"},
		Clock: processortest.NewClock(time.Date(2026, 11, 22, 9, 41, 30, 0, time.UTC))}
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	a, b := hit(1, "10.0.0.1", "/", "", browserUA), hit(2, "10.0.0.1", "/", "", browserUA)
	a.Bytes, b.Bytes = math.MaxInt64, math.MaxInt64
	if _, err := h.Batch(t.Context(), p, processortest.Sequence("shardId-000000000001", []records.Record{a, b})); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Start(t.Context()); err != nil {
		t.Errorf("restore after saturated counters: %v", err)
	}
}

// TestGlobalItemRoundTrip: the flagged list goes out deflated and reads
// back whole; a global item of an older version (flagged as a list of
// maps) still reads.
func TestGlobalItemRoundTrip(t *testing.T) {
	start := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	r := Result{Start: start, End: start.Add(time.Minute), Shards: 2, FinalShards: 2, Requests: 900, BotRequests: 40, IPs: 3,
		FlaggedIPs: 2, FlaggedRequests: 70}
	r.Flagged = []FlaggedIP{
		{IP: "10.0.0.1", Reasons: []string{"rate", "ua:crawlerdetect:AhrefsBot"}, Requests: 50, Bytes: 5000, BotRequests: 50, Host: "shop.example", UA: "ua:crawlerdetect:AhrefsBot"},
		{IP: "10.0.0.2", Reasons: []string{"profile:burst"}, Requests: 20, Bytes: 100, LibRequests: 3, Score: 1.25},
	}
	it := globalItem("results", keysFor(time.Minute), r, start.Add(time.Hour))
	if _, legacy := it.Attrs[attrFlagged]; legacy {
		t.Errorf("global item still writes %s", attrFlagged)
	}
	got, err := ParseGlobal(it.Attrs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r.Flagged, got.Flagged); diff != "" || got.Requests != r.Requests || got.FlaggedIPs != 2 {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// An older writer's list of maps.
	old := maps.Clone(it.Attrs)
	delete(old, attrFlaggedZ)
	old[attrFlagged] = &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"ip": window.Str("10.0.0.1"), "reasons": strList([]string{"rate"}), "requests": window.Int(50), "bytes": window.Int(5000), "bot_requests": window.Int(50),
	}}}}
	got, err = ParseGlobal(old)
	if err != nil || len(got.Flagged) != 1 || got.Flagged[0].IP != "10.0.0.1" || got.Flagged[0].Requests != 50 {
		t.Errorf("older item: %+v, %v", got.Flagged, err)
	}
}
