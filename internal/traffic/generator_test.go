package traffic_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/x-way/crawlerdetect"

	"github.com/shardwatch/shardwatch/internal/traffic"
	"github.com/shardwatch/shardwatch/pkg/records"
)

var start = time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)

func generate(t testing.TB, cfg traffic.Config, n int) []traffic.Event {
	t.Helper()
	g, err := traffic.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]traffic.Event, n)
	for i := range evs {
		g.Next(&evs[i])
	}
	return evs
}

var timestampRE = regexp.MustCompile(`"(timestamp|invoice_date)":"[^"]*"`)

func TestGeneratorDeterministic(t *testing.T) {
	cfg := traffic.Config{Seed: 42, Start: start, Rate: 50, FloodEvery: 20 * time.Second}
	a := generate(t, cfg, 3000)
	// Comparer: element-wise reflection over payload bytes is slow.
	if diff := cmp.Diff(a, generate(t, cfg, 3000), cmp.Comparer(bytes.Equal)); diff != "" {
		t.Fatalf("same seed and start, different events (-first +second):\n%s", diff)
	}

	// Another start moves timestamps only.
	later := cfg
	later.Start = start.Add(time.Hour)
	b := generate(t, later, 3000)
	for i := range a {
		if a[i].Offset != b[i].Offset || !b[i].Time.Equal(a[i].Time.Add(time.Hour)) {
			t.Fatalf("event %d: offset/time %v/%v vs %v/%v", i, a[i].Offset, a[i].Time, b[i].Offset, b[i].Time)
		}
		pa := timestampRE.ReplaceAll(a[i].Payload, nil)
		pb := timestampRE.ReplaceAll(b[i].Payload, nil)
		if !bytes.Equal(pa, pb) {
			t.Fatalf("event %d differs beyond the timestamp:\n%s\n%s", i, a[i].Payload, b[i].Payload)
		}
	}

	other := cfg
	other.Seed = 43
	c := generate(t, other, 3000)
	same := 0
	for i := range a {
		if bytes.Equal(a[i].Payload, c[i].Payload) {
			same++
		}
	}
	if same > 30 {
		t.Errorf("seeds 42 and 43 share %d of 3000 payloads", same)
	}
}

// TestGeneratorPayloadsDecode runs every payload through the consumer's
// decoder: what the generator writes is what the fleet reads.
func TestGeneratorPayloadsDecode(t *testing.T) {
	evs := generate(t, traffic.Config{Seed: 7, Start: start, Rate: 200, OrderShare: 0.1}, 5000)
	dec, err := records.NewDecoder(records.FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	var r records.Record
	kinds := map[traffic.Kind]int{}
	for i, ev := range evs {
		if err := dec.Decode(ev.Payload, &r); err != nil {
			t.Fatalf("event %d: %v\n%s", i, err, ev.Payload)
		}
		kinds[ev.Kind]++
		if !r.Time.Equal(ev.Time) {
			t.Errorf("event %d: decoded time %v, want %v", i, r.Time, ev.Time)
		}
		switch ev.Kind {
		case traffic.KindHit:
			if r.Kind != records.KindHit || r.ClientIP != ev.Keys.IP || r.SessionID != ev.Keys.Session ||
				r.Status == 0 || r.Path == "" || r.Host == "" || r.UserAgent == "" {
				t.Errorf("event %d: decoded hit %+v from %s", i, r, ev.Payload)
			}
		case traffic.KindOrder:
			if r.Kind != records.KindOrder || r.CustomerID != ev.Keys.Customer || r.Quantity < 1 ||
				r.UnitPrice <= 0 || r.InvoiceNo == "" || r.Country == "" {
				t.Errorf("event %d: decoded order %+v from %s", i, r, ev.Payload)
			}
		default:
			t.Fatalf("event %d: kind %d", i, ev.Kind)
		}
		if i > 0 && ev.Offset < evs[i-1].Offset {
			t.Fatalf("event %d: offset %v before %v", i, ev.Offset, evs[i-1].Offset)
		}
	}
	if share := float64(kinds[traffic.KindOrder]) / float64(len(evs)); share < 0.08 || share > 0.12 {
		t.Errorf("order share %.3f, want about 0.1", share)
	}
	// Poisson arrivals at 200/s: 5000 events take about 25 s.
	if last := evs[len(evs)-1].Offset; last < 23*time.Second || last > 27*time.Second {
		t.Errorf("5000 events at 200/s end at %v, want about 25s", last)
	}
}

func TestGeneratorBots(t *testing.T) {
	evs := generate(t, traffic.Config{Seed: 1, Start: start, BotShare: 0.3, NoOrders: true}, 20000)
	cd := crawlerdetect.New()
	dec, _ := records.NewDecoder(records.FormatClickstream)
	var r records.Record
	var bots, robots int
	paths := map[string]bool{}
	verdict := map[string]bool{} // crawlerdetect is slow per UA: cache it
	for _, ev := range evs {
		if err := dec.Decode(ev.Payload, &r); err != nil {
			t.Fatal(err)
		}
		isBot, ok := verdict[r.UserAgent]
		if !ok {
			isBot = cd.IsCrawler(r.UserAgent)
			verdict[r.UserAgent] = isBot
		}
		if !isBot {
			if r.SessionID == "" {
				t.Errorf("human hit without session: %s", ev.Payload)
			}
			continue
		}
		bots++
		if r.Referer != "" || r.SessionID != "" {
			t.Errorf("bot hit with referer or session: %s", ev.Payload)
		}
		if r.Path == "/robots.txt" {
			robots++
		}
		paths[r.Path] = true
	}
	if share := float64(bots) / float64(len(evs)); share < 0.28 || share > 0.32 {
		t.Errorf("crawlerdetect flags %.3f of hits, want about 0.3", share)
	}
	if robots < 24 {
		t.Errorf("%d robots.txt fetches, want at least one per bot (24)", robots)
	}
	if len(paths) < bots/2 {
		t.Errorf("bots fetched %d distinct paths in %d hits: not crawling", len(paths), bots)
	}
}

func TestGeneratorFloods(t *testing.T) {
	cfg := traffic.Config{Seed: 3, Start: start, Rate: 10, OrderShare: 0.01, FloodEvery: 60 * time.Second, FloodSize: 40}
	g, err := traffic.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var orders []time.Duration
	var ev traffic.Event
	for ev.Offset < 190*time.Second {
		g.Next(&ev)
		if ev.Kind == traffic.KindOrder {
			orders = append(orders, ev.Offset)
		}
	}
	// Orders per 15 s window starting at each flood and between floods.
	count := func(from time.Duration) int {
		n := 0
		for _, o := range orders {
			if o >= from && o < from+15*time.Second {
				n++
			}
		}
		return n
	}
	for _, f := range []time.Duration{60 * time.Second, 120 * time.Second, 180 * time.Second} {
		if n := count(f); n < 40 {
			t.Errorf("flood at %v: %d orders in 15 s, want >= 40", f, n)
		}
		if n := count(f - 30*time.Second); n > 10 {
			t.Errorf("quiet window at %v: %d orders in 15 s", f-30*time.Second, n)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []traffic.Config{
		{},
		{Start: start, Rate: -1},
		{Start: start, BotShare: 1.5},
		{Start: start, OrderShare: -0.1},
		{Start: start, FloodEvery: time.Second},
	} {
		if _, err := traffic.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", cfg)
		}
	}
}

func TestHitJSONEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{`quote " back \ slash`, `quote " back \ slash`},
		{"ctl \x00\x01\n\t\x7f", "ctl \x00\x01\n\t\x7f"},
		{"invalid \xff\xfe utf8", "invalid \ufffd\ufffd utf8"},
		{"<script>alert(1)</script>", "<script>alert(1)</script>"},
		{"line\u2028sep", "line\u2028sep"},
		{"ünïcødé ✓", "ünïcødé ✓"},
	}
	for _, tt := range tests {
		h := traffic.Hit{UserAgent: tt.in, Time: start}
		out := h.AppendJSON(nil)
		var got struct {
			UA string `json:"user_agent"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", tt.in, out, err)
		}
		if got.UA != tt.want {
			t.Errorf("%q: round trip %q, want %q", tt.in, got.UA, tt.want)
		}
	}
}

func FuzzHitJSON(f *testing.F) {
	f.Add("ua", "/p?q=1", "ref")
	f.Add("\xff", "\"", "\\")
	f.Fuzz(func(t *testing.T, ua, path, ref string) {
		h := traffic.Hit{UserAgent: ua, Path: path, Referer: ref, Time: start, Status: 200}
		out := h.AppendJSON(nil)
		var got struct {
			UA   string `json:"user_agent"`
			Path string `json:"path"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		if utf8.ValidString(ua) && got.UA != ua {
			t.Fatalf("user agent %q came back as %q", ua, got.UA)
		}
		if utf8.ValidString(path) && got.Path != path {
			t.Fatalf("path %q came back as %q", path, got.Path)
		}
	})
}

func TestKeyMode(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2)).Uint64
	keys := traffic.Keys{IP: "192.0.2.1", Session: "s1", Customer: "12346"}
	tests := []struct {
		mode string
		keys traffic.Keys
		want string // "" = random
	}{
		{"ip", keys, "192.0.2.1"},
		{"SESSION", keys, "s1"},
		{"customer", keys, "12346"},
		{"random", keys, ""},
		{"ip", traffic.Keys{Customer: "1"}, ""},
		{"session", traffic.Keys{IP: "1"}, ""},
		{"ip", traffic.Keys{IP: strings.Repeat("x", 300)}, ""},
	}
	for _, tt := range tests {
		m, err := traffic.ParseKeyMode(tt.mode)
		if err != nil {
			t.Fatal(err)
		}
		got := m.Key(tt.keys, rnd)
		if tt.want != "" && got != tt.want {
			t.Errorf("%s %+v: key %q, want %q", tt.mode, tt.keys, got, tt.want)
		}
		if tt.want == "" && (len(got) != 16 || got == m.Key(tt.keys, rnd)) {
			t.Errorf("%s %+v: key %q, want a fresh random 16-hex key", tt.mode, tt.keys, got)
		}
	}
	if _, err := traffic.ParseKeyMode("shard"); err == nil {
		t.Error("ParseKeyMode accepted an unknown mode")
	}
}

func BenchmarkGenerator(b *testing.B) {
	g, err := traffic.New(traffic.Config{Seed: 1, Start: start, FloodEvery: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	var ev traffic.Event
	b.ReportAllocs()
	for b.Loop() {
		g.Next(&ev)
	}
}
