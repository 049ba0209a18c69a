package useragent

import (
	"cmp"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	uaparse "github.com/mileusna/useragent"
)

// Class is what kind of client sent a User-Agent.
type Class uint8

const (
	// Unknown: no source recognised the User-Agent (an app, a rare
	// client, garbage, or an empty header).
	Unknown Class = iota
	// Human: a browser or a human-driven client.
	Human
	// Bot: a crawler, scanner, monitor, headless browser or other
	// automated agent.
	Bot
	// Library: an HTTP client, SDK, feed reader or link unfurler: software
	// fetching on someone's behalf, neither a browser nor a crawler.
	Library
)

var classNames = [...]string{Unknown: "unknown", Human: "human", Bot: "bot", Library: "library"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Device is the device class, as in CloudFront log analysis.
type Device uint8

// Device classes.
const (
	DeviceOther Device = iota
	DeviceDesktop
	DeviceMobile
	DeviceTablet
	DeviceBot
)

var deviceNames = [...]string{DeviceOther: "other", DeviceDesktop: "desktop", DeviceMobile: "mobile", DeviceTablet: "tablet", DeviceBot: "bot"}

func (d Device) String() string {
	if int(d) < len(deviceNames) {
		return deviceNames[d]
	}
	return fmt.Sprintf("device(%d)", uint8(d))
}

// Result is the classification of one User-Agent.
type Result struct {
	Class Class
	// Reason names the source and rule that decided, "<source>:<rule>":
	// config-allow, config-deny, allow (built-in false-positive list),
	// automation, library, crawlerdetect, uaparser, heuristic, browser,
	// app, none, empty. E.g. "crawlerdetect:AhrefsBot", "library:curl",
	// "allow:microsoft-office", "browser:Chrome".
	Reason string
	// Kind refines Library (http-client, sdk, feed-reader, link-preview)
	// and headless browsers (automation); "" otherwise.
	Kind string
	// Name names the client: crawler, library or browser ("" if unknown).
	Name string
	// Browser and OS are families ("Chrome", "Mobile Safari" is "Safari";
	// "Windows", "iOS", ...), "Other" when not recognised.
	Browser, OS string
	Device      Device
}

// IsBot reports whether the client is a bot (CloudFront's isbot).
// Libraries are not bots; callers that count all automated traffic test
// Class != Human && Class != Unknown.
func (r Result) IsBot() bool { return r.Class == Bot }

// Config configures a Classifier. The zero value takes defaults.
type Config struct {
	// CacheSize is the number of distinct User-Agents whose result is
	// cached (LRU). Default DefaultCacheSize.
	CacheSize int `yaml:"cache_size"`
	// Allow lists User-Agents that are human whatever the sources say,
	// Deny those that are bots: a case-insensitive substring, or a Go
	// regexp written "re:<regexp>". Allow wins over Deny; both win over
	// the built-in lists.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// DefaultCacheSize is the default Config.CacheSize.
const DefaultCacheSize = 10_000

// MaxCacheSize bounds Config.CacheSize (entries are ~300 bytes plus the
// User-Agent).
const MaxCacheSize = 10_000_000

// MaxCachedLen bounds the length of a cached User-Agent: longer ones
// (rare, often garbage) are classified every time instead of pinning
// memory.
const MaxCachedLen = 1024

// Classifier classifies User-Agents. It is safe for concurrent use; build
// one per process and share it, which raises the cache hit ratio.
type Classifier struct {
	allow, deny Patterns
	rules       *builtin
	crawlers    *CrawlerMatcher
	cache       *lru.Cache[string, Result]
	scratch     sync.Pool // *scratch

	hits, misses atomic.Uint64
}

type builtin struct {
	lits                       litIndex
	allow, automation, library *ruleSet
	botWords, platform         []int32 // literal ids
}

type scratch struct {
	up    []byte
	found []int32
}

// builtinRules compiles the built-in lists once per process.
var builtinRules = sync.OnceValues(func() (*builtin, error) {
	b := &builtin{}
	var err error
	if b.allow, err = newRuleSet(&b.lits, withClass(allowRules, Human)); err != nil {
		return nil, fmt.Errorf("allow rules: %w", err)
	}
	if b.automation, err = newRuleSet(&b.lits, withClass(automationRules, Bot)); err != nil {
		return nil, fmt.Errorf("automation rules: %w", err)
	}
	if b.library, err = newRuleSet(&b.lits, withClass(libraryRules, Library)); err != nil {
		return nil, fmt.Errorf("library rules: %w", err)
	}
	if b.botWords, err = b.lits.ids(botWords); err != nil {
		return nil, fmt.Errorf("bot words: %w", err)
	}
	if b.platform, err = b.lits.ids(platformWords); err != nil {
		return nil, fmt.Errorf("platform words: %w", err)
	}
	b.lits.build()
	return b, nil
})

func withClass(rules []rule, c Class) []rule {
	out := make([]rule, len(rules))
	for i, r := range rules {
		r.class = c
		out[i] = r
	}
	return out
}

// New returns a classifier for cfg. Invalid fields return a
// *ConfigError.
func New(cfg Config) (*Classifier, error) {
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheSize < 1 || cfg.CacheSize > MaxCacheSize {
		return nil, &ConfigError{Field: "cache_size", Reason: fmt.Sprintf("must be between 1 and %d", MaxCacheSize)}
	}
	allow, err := CompilePatterns(cfg.Allow)
	if err != nil {
		return nil, patternConfigError("allow", err)
	}
	deny, err := CompilePatterns(cfg.Deny)
	if err != nil {
		return nil, patternConfigError("deny", err)
	}
	rules, err := builtinRules()
	if err != nil {
		return nil, fmt.Errorf("built-in rules: %w", err)
	}
	cache, err := lru.New[string, Result](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("user-agent cache: %w", err)
	}
	c := &Classifier{allow: allow, deny: deny, rules: rules, crawlers: CrawlerDetect(), cache: cache}
	c.scratch.New = func() any { return &scratch{} }
	return c, nil
}

func patternConfigError(field string, err error) error {
	if pe, ok := err.(*PatternError); ok {
		return &ConfigError{Field: fmt.Sprintf("%s[%d]", field, pe.Index), Reason: pe.Reason}
	}
	return &ConfigError{Field: field, Reason: err.Error()}
}

// Classify returns the result for ua. A cache hit costs ~50 ns and does
// not allocate. ua may alias a reused buffer: the cache keeps a copy.
func (c *Classifier) Classify(ua string) Result {
	if r, ok := c.cache.Get(ua); ok {
		c.hits.Add(1)
		return r
	}
	c.misses.Add(1)
	r := c.classify(ua)
	if len(ua) <= MaxCachedLen {
		c.cache.Add(strings.Clone(ua), r)
	}
	return r
}

// classify decides without the cache. The order is: configured allow and
// deny, the built-in allow list, headless browsers, libraries,
// crawlerdetect, the UA parser's bot verdict, heuristics, then browsers.
func (c *Classifier) classify(ua string) Result {
	s := strings.TrimSpace(ua)
	if s == "" || s == "-" {
		return Result{Class: Unknown, Reason: "empty", Browser: other, OS: other}
	}
	p := uaparse.Parse(s)
	r := Result{Browser: browserFamily(p.Name), OS: osFamily(p.OS), Device: deviceOf(p)}
	decide := func(cl Class, source, name, kind string) Result {
		r.Class, r.Name, r.Kind = cl, name, kind
		r.Reason = source + ":" + name
		switch cl {
		case Bot:
			r.Device = DeviceBot
		case Library:
			r.Device = DeviceOther
		}
		r.Name = strings.Clone(r.Name) // may alias ua
		return r
	}
	if name, ok := c.allow.Find(s); ok {
		return decide(Human, "config-allow", cmp.Or(name, "pattern"), "")
	}
	if name, ok := c.deny.Find(s); ok {
		return decide(Bot, "config-deny", cmp.Or(name, "pattern"), "")
	}

	sc := c.scratch.Get().(*scratch)
	defer c.scratch.Put(sc)
	b := c.rules
	up := appendUpper(sc.up[:0], s)
	sc.up = up
	found := b.lits.scan(up, sc.found)
	sc.found = found
	botWord := hasAnyID(found, b.botWords)

	if i := b.allow.find(up, found); i >= 0 && !botWord {
		return decide(Human, "allow", b.allow.rules[i].name, "")
	}
	if i := b.automation.find(up, found); i >= 0 {
		ru := &b.automation.rules[i]
		return decide(Bot, "automation", ru.name, ru.kind)
	}
	if i := b.library.find(up, found); i >= 0 {
		ru := &b.library.rules[i]
		if ru.kind == kindPreview || ru.kind == kindFeed || !botWord {
			return decide(Library, "library", ru.name, ru.kind)
		}
	}
	if bot, name := c.crawlers.Match(s); bot {
		return decide(Bot, "crawlerdetect", name, "")
	}
	if p.Bot {
		return decide(Bot, "uaparser", parserBotName(p, s), "")
	}
	platform := hasAnyID(found, b.platform)
	if h := heuristic(s, up, r.Browser != other, platform); h != "" {
		return decide(Bot, "heuristic", h, "")
	}
	if r.Browser != other {
		return decide(Human, "browser", r.Browser, "")
	}
	if platform {
		return decide(Unknown, "app", uaToken(s), "")
	}
	return decide(Unknown, "none", uaToken(s), "")
}

func appendUpper(dst []byte, s string) []byte {
	dst = append(dst, s...)
	for i, c := range dst {
		if 'a' <= c && c <= 'z' {
			dst[i] = c - 'a' + 'A'
		}
	}
	return dst
}

func parserBotName(p uaparse.UserAgent, s string) string {
	if p.Name != "" && p.Name != p.String && len(p.Name) <= 64 {
		return p.Name
	}
	return uaToken(s)
}

// heuristic names a bot trait of a User-Agent that no list knows, or
// returns "". browser says the parser recognised a browser family.
func heuristic(s string, up []byte, browser, platform bool) string {
	mozilla := strings.HasPrefix(string(up), "MOZILLA/")
	switch {
	case mozilla && !strings.Contains(s, "("):
		// Every browser states its platform in parentheses.
		return "no-platform"
	case hasEmail(s):
		return "contact-email"
	case hasDomain(s):
		return "domain-name"
	case !browser && containsUpper(up, "compatible"):
		// "(compatible; Name/1.0; ...)" without a browser engine the
		// parser knows.
		return "compatible-nonbrowser"
	case !browser && !mozilla && !platform && !strings.HasPrefix(string(up), "OPERA/") && len(s) >= 4 && hasLetter(s):
		// Neither a browser nor an app on a known platform: a script or
		// a niche fetcher ("Name/0.1").
		return "non-browser"
	}
	return ""
}

// hasEmail reports a contact address ("crawler@example.com"), which
// crawlers give and browsers never do.
func hasEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	prev, rest := s[at-1], s[at+1:]
	if !isTokenByte(prev) {
		return false
	}
	end := strings.IndexAny(rest, " ;)(,>")
	if end < 0 {
		end = len(rest)
	}
	dom := rest[:end]
	dot := strings.LastIndexByte(dom, '.')
	return dot > 0 && dot < len(dom)-2
}

func hasLetter(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' })
}

// tlds are the top-level domains of hasDomain: the common generic ones
// and the largest country ones.
var tlds = map[string]bool{
	"com": true, "net": true, "org": true, "io": true, "ai": true, "co": true, "info": true, "biz": true, "dev": true,
	"app": true, "me": true, "xyz": true, "ly": true, "sh": true, "cloud": true, "tech": true, "site": true,
	"online": true, "tv": true, "us": true, "eu": true, "uk": true, "de": true, "fr": true, "nl": true, "ru": true,
	"jp": true, "cn": true, "br": true, "in": true, "it": true, "es": true, "pl": true, "ch": true, "se": true,
	"be": true, "at": true, "cz": true, "kr": true, "au": true, "ca": true,
}

// hasDomain reports a domain name ("example.com", "scanner.example.io"),
// which crawlers give to identify their operator and browsers never do.
func hasDomain(s string) bool {
	for i := 1; i < len(s)-2; i++ {
		if s[i] != '.' || !isLetterOrDigit(s[i-1]) {
			continue
		}
		j := i + 1
		for j < len(s) && ('a' <= s[j] && s[j] <= 'z') {
			j++
		}
		if j == i+1 || j < len(s) && (isLetterOrDigit(s[j]) || s[j] == '_' || s[j] == '-') {
			continue
		}
		if j < len(s) && s[j] == '.' && j+1 < len(s) && isLetterOrDigit(s[j+1]) {
			continue // a longer dotted name: judged at its last dot
		}
		if tlds[s[i+1:j]] {
			// The label before the dot must hold a letter: "1.0.co" is
			// no domain.
			k := i - 1
			letter := false
			for k >= 0 && (isLetterOrDigit(s[k]) || s[k] == '-' || s[k] == '.') {
				letter = letter || ('a' <= s[k]|0x20 && s[k]|0x20 <= 'z')
				k--
			}
			// The name starts a word: "scanner.example.io", "(+example.com";
			// not "FBCR/T-Mobile.pl" (a value).
			if letter && (k < 0 || strings.IndexByte(" (;+,[", s[k]) >= 0) {
				return true
			}
		}
	}
	return false
}

func isLetterOrDigit(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// platformWords mark an app or device User-Agent ("Spotify/8.6 Android/29",
// "MyApp/1 CFNetwork/1220 Darwin/20.3.0", "Dalvik/2.1.0 (Linux; U; ...)").
var platformWords = []string{
	"android", "iphone", "ipad", "ios ", "ios/", "cfnetwork", "darwin/", "dalvik/", "windows",
	"macintosh", "mac os", "linux", "cros ", "tizen", "webos", "playstation", "xbox", "nintendo", "smart-tv", "smarttv",
	"midp", "blackberry", "symbian", "series60", "nokia", "ucweb", "kaios",
}

const other = "Other"

var browserFamilies = map[string]string{
	"Chrome": "Chrome", "Headless Chrome": "Headless Chrome", "Firefox": "Firefox", "Safari": "Safari",
	"Mobile Safari": "Safari", "Edge": "Edge", "Opera": "Opera", "Opera Mini": "Opera Mini", "Opera Touch": "Opera",
	"Internet Explorer": "IE", "Vivaldi": "Vivaldi", "Samsung Browser": "Samsung Internet",
	"Android browser": "Android", "Huawei Browser": "Huawei Browser", "Miui Browser": "MIUI Browser",
	"NetFront": "NetFront", "Facebook App": "Facebook", "Instagram App": "Instagram", "TikTok App": "TikTok",
	"YaBrowser": "Yandex Browser", "UCBrowser": "UC Browser", "Brave": "Brave", "SeaMonkey": "SeaMonkey",
	"Konqueror": "Konqueror", "Epiphany": "Epiphany", "Midori": "Midori", "Silk": "Silk", "QQBrowser": "QQ Browser",
	"Whale": "Whale", "DuckDuckGo": "DuckDuckGo", "Puffin": "Puffin", "PaleMoon": "Pale Moon", "Waterfox": "Waterfox",
}

func browserFamily(name string) string {
	if f, ok := browserFamilies[name]; ok {
		return f
	}
	return other
}

var osFamilies = map[string]string{
	uaparse.Windows: "Windows", uaparse.WindowsPhone: "Windows Phone", uaparse.Android: "Android",
	uaparse.MacOS: "macOS", uaparse.IOS: "iOS", uaparse.Linux: "Linux", uaparse.FreeBSD: "FreeBSD",
	uaparse.ChromeOS: "ChromeOS", uaparse.BlackBerry: "BlackBerry", uaparse.Harmony: "HarmonyOS",
}

func osFamily(os string) string {
	if f, ok := osFamilies[os]; ok {
		return f
	}
	return other
}

func deviceOf(p uaparse.UserAgent) Device {
	switch {
	case p.Tablet:
		return DeviceTablet
	case p.Mobile:
		return DeviceMobile
	case p.Desktop:
		return DeviceDesktop
	}
	return DeviceOther
}

// CacheStats counts cache lookups since the classifier was built.
type CacheStats struct {
	Hits, Misses uint64
	Size         int
}

// HitRatio returns Hits / (Hits + Misses), 0 before any lookup.
func (s CacheStats) HitRatio() float64 {
	if n := s.Hits + s.Misses; n > 0 {
		return float64(s.Hits) / float64(n)
	}
	return 0
}

// Stats returns the cache counters.
func (c *Classifier) Stats() CacheStats {
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Size: c.cache.Len()}
}
