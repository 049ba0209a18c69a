package useragent

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/x-way/crawlerdetect"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// TestFastPathActive fails when a crawlerdetect upgrade changes what the
// matcher reads (pattern fields) or a pattern shape it cannot analyse:
// the detector would still be correct, but 50x slower.
func TestFastPathActive(t *testing.T) {
	crawlers, exclusions, err := libraryPatterns()
	if err != nil {
		t.Fatalf("libraryPatterns: %v", err)
	}
	if len(crawlers) < 1000 || len(exclusions) < 20 {
		t.Errorf("got %d crawler and %d exclusion patterns; crawlerdetect v0.2.31 has 1452 and 53", len(crawlers), len(exclusions))
	}
	m := sharedMatcher()
	if m.fast == nil || m.crawlers == nil {
		t.Fatal("fast matcher unavailable: every uncached User-Agent would cost crawlerdetect's 60-300 us")
	}
	if len(m.fast.always) > 0 {
		t.Errorf("%d crawler patterns have no necessary literal and run on every User-Agent", len(m.fast.always))
	}
}

// uaCorpus returns the distinct User-Agents of every shared data file
// (every 32nd under the race detector).
func uaCorpus(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	add := func(ua string) {
		if !seen[ua] {
			seen[ua] = true
			if !raceEnabled || len(seen)%32 == 0 {
				out = append(out, ua)
			}
		}
	}
	for _, f := range []string{crawlersFile, devicesFile} {
		for _, l := range readLines(t, f) {
			add(l)
		}
	}
	for _, f := range []struct {
		name string
		fmt  records.Format
	}{{zakerFile, records.FormatCombined}, {elasticFile, records.FormatCombined}, {cfFile, records.FormatCloudFront}} {
		for _, r := range loadRecords(t, f.name, f.fmt) {
			add(r.UserAgent)
		}
	}
	return out
}

// trickyUAs exercise the edges of the fast path: text joined across a
// removed exclusion, non-ASCII case folding (U+017F folds to 's', U+212A
// to 'k'), anchors after trimming, empty input.
var trickyUAs = []string{
	"", " ", "-", "b0t", " b0t ", "crMozilla/5.0awl", "spidMozilla/5.0er", "Mozilla/5.0 (compatible; ſpider)",
	"Mozilla/5.0 (\u212Aurl)", "ſcrapy/2.0", "Java/1.8.0", "  Java/1.8.0", "xJava/1.8.0",
	"Mozilla/5.0 (Linux; Android 10; cubot) Chrome/80", "Mozilla/5.0 (; M bot)", "Ruby", "Ruby/2.7",
	"Amazon Simple Notification Service Agent", "Amazon Simple Notification Service Agent ",
	"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/119.0",
	"Mozilla/5.0 Safari.Safari.Safari/1.1bot", "\x00bot", "bo\xfft", "BOT", "héllo bot", "Y!J-ABC", "y!j-abc",
	"xpymep1.exe", "Zend\\Http\\Client", "WhereGoes?", strings.Repeat("Mozilla/5.0 ", 200) + "curl",
}

// TestMatchEqualsCrawlerdetect is the exactness claim: on every
// User-Agent of the shared data (and some tricky ones) the matcher's
// verdict is crawlerdetect's.
func TestMatchEqualsCrawlerdetect(t *testing.T) {
	m := sharedMatcher()
	uas := append(uaCorpus(t), trickyUAs...)
	var bots, mismatches int
	for _, ua := range uas {
		got, name := m.Match(ua)
		if want := crawlerdetect.IsCrawler(ua); got != want {
			mismatches++
			t.Errorf("match(%q) = %t, crawlerdetect says %t", ua, got, want)
		}
		if got {
			bots++
			if name == "" {
				t.Errorf("match(%q): crawler without a name", ua)
			}
		}
	}
	t.Logf("%d distinct User-Agents, %d crawlers, %d mismatches", len(uas), bots, mismatches)
}

// TestStripEqualsExclusions checks step 1 alone against the library's
// exclusion regexp, which makes failures easier to read.
func TestStripEqualsExclusions(t *testing.T) {
	m := sharedMatcher()
	for _, ua := range append(uaCorpus(t), trickyUAs...) {
		if !isASCII(ua) {
			continue
		}
		s := strings.TrimSpace(ua)
		want := m.exclusions.ReplaceAllString(s, "")
		if got := string(m.fast.strip(s, &matchScratch{})); got != want {
			t.Errorf("strip(%q) = %q, want %q", ua, got, want)
		}
	}
}

func FuzzMatch(f *testing.F) {
	for _, ua := range trickyUAs {
		f.Add(ua)
	}
	f.Add("Mozilla/5.0 (compatible; AhrefsBot/6.1; +http://ahrefs.com/robot/)")
	f.Add("Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1")
	m := sharedMatcher()
	f.Fuzz(func(t *testing.T, ua string) {
		got, _ := m.Match(ua)
		if want := crawlerdetect.IsCrawler(ua); got != want {
			t.Errorf("match(%q) = %t, crawlerdetect says %t", ua, got, want)
		}
	})
}

func TestCrawlerNames(t *testing.T) {
	tests := []struct{ ua, want string }{
		{"Mozilla/5.0 (compatible; AhrefsBot/6.1; +http://ahrefs.com/robot/)", "AhrefsBot"},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"},
		{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot"},
		{"curl/7.54.0", "curl"},
		{"Java/1.8.0_151", "Java"},
		{"python-requests/2.31.0", "python-requests"},
		{"Mozilla/5.0 (compatible; SemrushBot/6~bl; +http://www.semrush.com/bot.html)", "SemrushBot"},
		{"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "YandexBot"},
		{"Mozilla/5.0 (compatible; ſpider)", "pider"}, // slow path: the token starts after the non-ASCII rune
	}
	m := sharedMatcher()
	for _, tt := range tests {
		bot, name := m.Match(tt.ua)
		if !bot || name != tt.want {
			t.Errorf("match(%q) = %t, %q; want true, %q", tt.ua, bot, name, tt.want)
		}
	}
}

func TestTokenAt(t *testing.T) {
	tests := []struct {
		s          string
		start, end int
		want       string
	}{
		{"( ; AhrefsBot/6.1", 4, 10, "AhrefsBot"},
		{"Java/1.8.0_151", 0, 5, "Java"},
		{"curl/7.5", 0, 4, "curl"},
		{" YLT", 0, 4, "YLT"},
		{"x", 0, 1, "x"},
		{"a.b.c.-", 0, 1, "a.b.c"},
		{"!!", 0, 2, "!!"},
		{strings.Repeat("a", 100), 0, 3, strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		if got := tokenAt(tt.s, tt.start, tt.end); got != tt.want {
			t.Errorf("tokenAt(%q, %d, %d) = %q, want %q", tt.s, tt.start, tt.end, got, tt.want)
		}
	}
}

func TestRequiredLiterals(t *testing.T) {
	tests := []struct {
		pat  string
		want []string // sorted; nil: always run
	}{
		{`Ahrefs`, []string{"AHREFS"}},
		{`^Java\/`, []string{"JAVA/"}},
		{`^Ruby|Ruby\/[0-9]`, []string{"RUBY"}},
		{`Y!J-[A-Z][A-Z][A-Z]`, []string{"Y!J-"}},
		{`xpymep([0-9]?)\.exe`, []string{"XPYMEP"}},
		{`[a-z0-9\-_]*(bot|crawl|spider)`, []string{"BOT", "CRAWL", "SPIDER"}},
		{`a(b|c)d`, []string{"ABD", "ACD"}},
		{`x+yz`, []string{"YZ"}}, // sound, not tight: x+ only requires "X"
		{`(foo)?bar`, []string{"BAR"}},
		{`.*`, nil},
		{`a*`, nil},
		{`(ab|c*)`, nil},
		{`a{2,}bc`, []string{"BC"}},
	}
	for _, tt := range tests {
		re, err := syntax.Parse("(?i:"+tt.pat+")", syntax.Perl)
		if err != nil {
			t.Fatalf("%s: %v", tt.pat, err)
		}
		got := requiredLiterals(re)
		slices.Sort(got)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("requiredLiterals(%q) (-want +got):\n%s", tt.pat, diff)
		}
		// Soundness on a sample: every match contains a literal.
		if got == nil {
			continue
		}
		full := regexp.MustCompile("(?i:" + tt.pat + ")")
		for _, s := range []string{"ahrefs", "java/x", "ruby/1", "Y!J-ABC", "xpymep.exe", "xxbot", "acd", "xxxyz", "bar", "aabc"} {
			if loc := full.FindStringIndex(s); loc != nil {
				m := strings.ToUpper(s[loc[0]:loc[1]])
				if !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(m, l) }) {
					t.Errorf("%q matches %q but contains none of %q", tt.pat, s, got)
				}
			}
		}
	}
}
