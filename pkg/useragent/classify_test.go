package useragent

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

func newTestClassifier(t testing.TB, cfg Config) *Classifier {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// The User-Agents below are written for these tests from the clients'
// documented formats; none is copied from another project's fixtures.

func TestClassify(t *testing.T) {
	c := newTestClassifier(t, Config{})
	type want struct {
		Class   Class
		Reason  string
		Kind    string
		Browser string
		OS      string
		Device  Device
	}
	tests := []struct {
		ua   string
		want want
	}{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			want{Human, "browser:Chrome", "", "Chrome", "Windows", DeviceDesktop}},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
			want{Human, "browser:Safari", "", "Safari", "iOS", DeviceMobile}},
		{"Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1",
			want{Human, "browser:Safari", "", "Safari", "iOS", DeviceTablet}},
		{"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
			want{Human, "browser:Firefox", "", "Firefox", "Linux", DeviceDesktop}},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
			want{Human, "browser:Chrome", "", "Chrome", "Android", DeviceMobile}},
		{"Mozilla/5.0 (compatible; ExampleSiteAuditBot/2.1; +https://audit.example.net/bot)",
			want{Bot, "crawlerdetect:ExampleSiteAuditBot", "", "Other", "Other", DeviceBot}},
		{"curl/8.5.0", want{Library, "library:curl", kindHTTP, "Other", "Other", DeviceOther}},
		{"python-requests/2.32.3", want{Library, "library:python-requests", kindHTTP, "Other", "Other", DeviceOther}},
		{"Go-http-client/2.0", want{Library, "library:Go-http-client", kindHTTP, "Other", "Other", DeviceOther}},
		{"aws-sdk-go-v2/1.30.0 os/linux lang/go#1.22 md/GOOS#linux", want{Library, "library:aws-sdk", kindSDK, "Other", "Other", DeviceOther}},
		{"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", want{Library, "library:Slackbot", kindPreview, "Other", "Other", DeviceOther}},
		{"Mozilla/5.0 (compatible; MyFeedTool FeedFetcher; 12 subscribers)", want{Library, "library:feed fetcher", kindFeed, "Other", "Other", DeviceOther}},
		// A crawler built on an HTTP library is a crawler.
		{"python-requests/2.31.0 (compatible; ExampleCrawler/1.0)", want{Bot, "crawlerdetect:python-requests", "", "Other", "Other", DeviceBot}},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
			want{Bot, "automation:HeadlessChrome", "automation", "Headless Chrome", "Linux", DeviceBot}},
		{"Mozilla/5.0", want{Bot, "heuristic:no-platform", "", "Other", "Other", DeviceBot}},
		{"Mozilla/5.0 (compatible; Quarkly/0.3)", want{Bot, "heuristic:compatible-nonbrowser", "", "Other", "Other", DeviceBot}},
		{"Quarkly/0.3 (ops@example.org)", want{Bot, "heuristic:contact-email", "", "Other", "Other", DeviceBot}},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 scanner.example.io",
			want{Bot, "heuristic:domain-name", "", "Chrome", "Windows", DeviceBot}},
		{"Sitelookup/0.1", want{Bot, "heuristic:non-browser", "", "Other", "Other", DeviceBot}},
		{"ExampleApp/3.2 (iPhone; iOS 17.1; Scale/3.00)", want{Unknown, "app:ExampleApp", "", "Other", "iOS", DeviceMobile}},
		{"Dalvik/2.1.0 (Linux; U; Android 13; SM-S911B Build/TP1A.220624.014)", want{Unknown, "app:Dalvik", "", "Other", "Android", DeviceMobile}},
		{"", want{Unknown, "empty", "", "Other", "Other", DeviceOther}},
		{"-", want{Unknown, "empty", "", "Other", "Other", DeviceOther}},
		{"xy", want{Unknown, "none:xy", "", "Other", "Other", DeviceOther}},
	}
	for _, tt := range tests {
		for range 2 { // the second answer comes from the cache
			r := c.Classify(tt.ua)
			got := want{r.Class, r.Reason, r.Kind, r.Browser, r.OS, r.Device}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Classify(%q) (-want +got):\n%s", tt.ua, diff)
			}
		}
	}
	if s := c.Stats(); s.Hits != uint64(len(tests)) || s.Misses != uint64(len(tests)) {
		t.Errorf("stats = %+v, want %d hits and %d misses", s, len(tests), len(tests))
	}
}

// TestAllowRules checks each built-in allow rule on a client it exists
// for, and that a bot naming the same product is still a bot.
func TestAllowRules(t *testing.T) {
	c := newTestClassifier(t, Config{})
	human := []struct{ rule, ua string }{
		{"microsoft-office", "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Word 16.0.17029; Pro)"},
		{"microsoft-outlook", "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; Win64; x64; Trident/7.0; Microsoft Outlook 16.0.17029; ms-office; MSOffice 16)"},
		{"ms-office", "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"},
		{"outlook-mobile", "Outlook-Android/2.0"},
		{"cronet", "ExampleApp/5.1 (Linux; Android 12) Cronet/119.0.6045.31"},
		{"android-download-manager", "AndroidDownloadManager/13 (Linux; U; Android 13; Pixel 7 Build/TQ3A.230901.001)"},
		{"lynx", "Lynx/2.9.0dev.12 libwww-FM/2.14 SSL-MM/1.4.1 GNUTLS/3.7.9"},
		{"w3m", "w3m/0.5.3+git20230121"},
		{"elinks", "ELinks/0.16.1 (textmode; Linux 6.1.0 x86_64; 120x40-2)"},
		{"slack-desktop", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.36.140 Chrome/120.0.6099.56 Electron/28.0.0 Safari/537.36 Sonic Slack_SSB/4.36.140"},
	}
	for _, tt := range human {
		r := c.Classify(tt.ua)
		if r.Class != Human || r.Reason != "allow:"+tt.rule {
			t.Errorf("Classify(%q) = %v %q, want human allow:%s", tt.ua, r.Class, r.Reason, tt.rule)
		}
	}
	// The allow list must not open a hole: the same products with a bot
	// self-description, or Office's automated link probes.
	notHuman := []string{
		"Microsoft Office Existence Discovery",
		"Microsoft Office/16.0 (compatible; ExampleCrawler/1.0)",
		"Lynx/2.8.9 (compatible; ExampleBot/0.1)",
		"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
		"Slack-ImgProxy (+https://api.slack.com/robots)",
		"Mozilla/5.0 (X11; Linux x86_64) Cronet/120.0 (compatible; ExampleSpider/2.0)",
	}
	for _, ua := range notHuman {
		if r := c.Classify(ua); r.Class == Human {
			t.Errorf("Classify(%q) = human (%s); the allow list must not cover it", ua, r.Reason)
		}
	}
	// Without the allow list, crawlerdetect flags most of them: the list
	// is what makes them human.
	flagged := 0
	for _, tt := range human {
		if bot, _ := CrawlerDetect().Match(tt.ua); bot {
			flagged++
		}
	}
	if flagged < len(human)/2 {
		t.Errorf("crawlerdetect flags only %d of %d allow-list examples: the examples no longer exercise the list", flagged, len(human))
	}
}

func TestConfigAllowDeny(t *testing.T) {
	c := newTestClassifier(t, Config{
		Allow: []string{"ExampleUptimeBot", `re:^Pingdom\.com_bot_version_`},
		Deny:  []string{"AcmeBrowser", `re:(?i)internal-[a-z]+/`},
	})
	tests := []struct {
		ua, reason string
		class      Class
	}{
		{"Mozilla/5.0 (compatible; exampleuptimebot/1.0)", "config-allow:exampleuptimebot", Human},
		{"Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", "config-allow:Pingdom.com_bot_version_1.4", Human},
		{"Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 AcmeBrowser/1.0 Chrome/120.0 Safari/537.36", "config-deny:AcmeBrowser", Bot},
		{"tool internal-fetch/3.1", "config-deny:internal-fetch", Bot},
	}
	for _, tt := range tests {
		if r := c.Classify(tt.ua); r.Class != tt.class || r.Reason != tt.reason {
			t.Errorf("Classify(%q) = %v %q, want %v %q", tt.ua, r.Class, r.Reason, tt.class, tt.reason)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{CacheSize: -1}, "cache_size: must be between 1 and 10000000"},
		{Config{CacheSize: MaxCacheSize + 1}, "cache_size: must be between 1 and 10000000"},
		{Config{Allow: []string{""}}, "allow[0]: must not be empty"},
		{Config{Deny: []string{"ok", "re:("}}, "deny[1]: bad regexp"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want a ConfigError starting %q", tt.cfg, err, tt.want)
		}
	}
}

// TestCacheCopies checks the cache keeps no string aliasing the caller's
// buffer, which a decoder reuses.
func TestCacheCopies(t *testing.T) {
	c := newTestClassifier(t, Config{})
	const ua = "Mozilla/5.0 (compatible; ExampleSiteAuditBot/2.1; +https://audit.example.net/bot)"
	buf := []byte(ua)
	r := c.Classify(unsafe.String(unsafe.SliceData(buf), len(buf)))
	copy(buf, strings.Repeat("z", len(buf)))
	if r.Name != "ExampleSiteAuditBot" {
		t.Errorf("returned Name = %q after the buffer changed", r.Name)
	}
	if r2 := c.Classify(ua); r2.Class != Bot || r2.Name != "ExampleSiteAuditBot" || c.Stats().Hits != 1 {
		t.Errorf("cached result = %+v, stats %+v; want the intact Bot verdict from the cache", r2, c.Stats())
	}
}

// TestCacheBounded checks the cache never holds more than CacheSize
// entries and skips over-long User-Agents.
func TestCacheBounded(t *testing.T) {
	c := newTestClassifier(t, Config{CacheSize: 8})
	for i := range 100 {
		c.Classify("ExampleTool/" + strings.Repeat("1", i%50) + string(rune('a'+i%26)))
	}
	c.Classify(strings.Repeat("x", MaxCachedLen+1))
	if n := c.Stats().Size; n != 8 {
		t.Errorf("cache size %d, want 8", n)
	}
	long := "Mozilla/5.0 (compatible; ExampleBot/1.0) " + strings.Repeat("y", MaxCachedLen)
	c.Classify(long)
	c.Classify(long)
	if c.cache.Contains(long) {
		t.Error("an over-long User-Agent was cached")
	}
}

// TestRuleLiterals checks every built-in rule compiles (3+ byte ASCII
// literals) and that a rule's own literals match it.
func TestRuleLiterals(t *testing.T) {
	b, err := builtinRules()
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []*ruleSet{b.allow, b.automation, b.library} {
		for i, r := range set.rules {
			ua := strings.Join(r.all, " ")
			up := appendUpper(nil, ua)
			got := set.find(up, b.lits.scan(up, nil))
			if got < 0 {
				t.Errorf("rule %s does not match its own literals %q", r.name, ua)
				continue
			}
			// An earlier rule may claim it (a more specific name first);
			// it must then be of the same class.
			if got > i && set.rules[got].class != r.class {
				t.Errorf("rule %s is shadowed by %s", r.name, set.rules[got].name)
			}
		}
	}
}

func TestHasDomain(t *testing.T) {
	for s, want := range map[string]bool{
		"Tool/1.0 (+example.com)":           true,
		"scanner.example.io":                true,
		"Tool/1.0 (www.example.co)":         true,
		"FBCR/T-Mobile.pl":                  false,
		"Chrome/120.0.6099.56 Safari/537.3": false,
		".NET CLR 3.5.30729":                false,
		"Version/1.0.co":                    false,
		"x.comfy":                           false,
	} {
		if got := hasDomain(s); got != want {
			t.Errorf("hasDomain(%q) = %t, want %t", s, got, want)
		}
	}
}

func FuzzClassify(f *testing.F) {
	for _, ua := range trickyUAs {
		f.Add(ua)
	}
	f.Add("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.1; Pro)")
	f.Add("curl/8.0 (compatible; bot)")
	c, err := New(Config{CacheSize: 64})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		r := c.Classify(ua)
		if r.Reason == "" || r.Browser == "" || r.OS == "" {
			t.Errorf("Classify(%q) = %+v: empty reason or family", ua, r)
		}
		if (r.Class == Bot) != (r.Device == DeviceBot) {
			t.Errorf("Classify(%q) = %+v: bot class and bot device disagree", ua, r)
		}
	})
}
