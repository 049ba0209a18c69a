package useragent

import (
	"fmt"
	"slices"
	"strings"
)

// rule is one built-in rule: the User-Agent contains every literal of all
// (ASCII, any case; all[0] at the very start when prefix is set) and none
// of none. Literals are at least 3 bytes long (the trigram index needs
// it; TestRuleLiterals checks).
type rule struct {
	name   string // reported in the reason, e.g. "curl"
	kind   string // e.g. "http-client", "microsoft-office"
	class  Class
	all    []string
	prefix bool
	none   []string
}

// botWords veto an HTTP client or SDK rule: "python-requests/2.31 (MyCrawler/1.0)"
// is a crawler built on a library, not the library itself.
var botWords = []string{"bot", "crawl", "spider", "scrape"}

// allowRules are known false positives of the bot sources: human-driven
// clients whose User-Agent a crawler list flags. Each is tested, with a
// bot that looks like it (TestAllowRules).
var allowRules = []rule{
	{name: "microsoft-office", all: []string{"Microsoft Office/"}, none: []string{"Discovery"}},
	{name: "microsoft-outlook", all: []string{"Microsoft Outlook"}, none: []string{"Discovery"}},
	{name: "ms-office", all: []string{"ms-office"}, none: []string{"Discovery"}},
	{name: "msoffice", all: []string{"MSOffice "}, none: []string{"Discovery"}},
	{name: "outlook-mobile", all: []string{"Outlook-"}, none: []string{"Discovery"}},
	{name: "cronet", all: []string{"Cronet/"}},
	{name: "android-download-manager", all: []string{"AndroidDownloadManager"}},
	{name: "lynx", all: []string{"Lynx/"}, prefix: true},
	{name: "links", all: []string{"Links ("}, prefix: true},
	{name: "elinks", all: []string{"ELinks/"}, prefix: true},
	{name: "w3m", all: []string{"w3m/"}, prefix: true},
	{name: "slack-desktop", all: []string{"Slack_SSB/"}},
	{name: "slack-desktop", all: []string{"Slack/", "Electron/"}},
	{name: "slack-mobile", all: []string{"com.tinyspeck.chatlyio"}},
}

// libraryRules name HTTP clients, SDKs, feed readers and link unfurlers:
// software fetching on someone's behalf, neither a browser nor a crawler.
// Written from the clients' documented default User-Agents.
var libraryRules = []rule{
	// HTTP clients (command line and language libraries).
	{name: "curl", kind: kindHTTP, all: []string{"curl/"}, prefix: true},
	{name: "libcurl", kind: kindHTTP, all: []string{"libcurl"}},
	{name: "PycURL", kind: kindHTTP, all: []string{"PycURL/"}},
	{name: "Wget", kind: kindHTTP, all: []string{"Wget/"}, prefix: true},
	{name: "aria2", kind: kindHTTP, all: []string{"aria2/"}, prefix: true},
	{name: "HTTPie", kind: kindHTTP, all: []string{"HTTPie/"}},
	{name: "PostmanRuntime", kind: kindHTTP, all: []string{"PostmanRuntime/"}},
	{name: "insomnia", kind: kindHTTP, all: []string{"insomnia/"}, prefix: true},
	{name: "python-requests", kind: kindHTTP, all: []string{"python-requests/"}},
	{name: "python-urllib", kind: kindHTTP, all: []string{"Python-urllib/"}},
	{name: "urllib3", kind: kindHTTP, all: []string{"urllib3/"}},
	{name: "python-httpx", kind: kindHTTP, all: []string{"python-httpx/"}},
	{name: "aiohttp", kind: kindHTTP, all: []string{"aiohttp/"}},
	{name: "httplib2", kind: kindHTTP, all: []string{"httplib2"}},
	{name: "Go-http-client", kind: kindHTTP, all: []string{"Go-http-client/"}},
	{name: "Go http package", kind: kindHTTP, all: []string{"Go http package"}},
	{name: "fasthttp", kind: kindHTTP, all: []string{"fasthttp"}},
	{name: "resty", kind: kindHTTP, all: []string{"go-resty/"}},
	{name: "okhttp", kind: kindHTTP, all: []string{"okhttp/"}},
	{name: "Apache-HttpClient", kind: kindHTTP, all: []string{"Apache-HttpClient/"}},
	{name: "Apache-HttpAsyncClient", kind: kindHTTP, all: []string{"Apache-HttpAsyncClient/"}},
	{name: "Commons-HttpClient", kind: kindHTTP, all: []string{"Commons-HttpClient/"}},
	{name: "Java", kind: kindHTTP, all: []string{"Java/"}, prefix: true},
	{name: "Java-http-client", kind: kindHTTP, all: []string{"Java-http-client/"}},
	{name: "AHC", kind: kindHTTP, all: []string{"AHC/"}, prefix: true},
	{name: "ReactorNetty", kind: kindHTTP, all: []string{"ReactorNetty/"}},
	{name: "Vert.x-WebClient", kind: kindHTTP, all: []string{"Vert.x-WebClient/"}},
	{name: "Jersey", kind: kindHTTP, all: []string{"Jersey/"}},
	{name: "libwww-perl", kind: kindHTTP, all: []string{"libwww-perl/"}},
	{name: "lwp-trivial", kind: kindHTTP, all: []string{"lwp-trivial"}},
	{name: "LWP::Simple", kind: kindHTTP, all: []string{"LWP::Simple"}},
	{name: "HTTP-Tiny", kind: kindHTTP, all: []string{"HTTP-Tiny/"}},
	{name: "Mojolicious", kind: kindHTTP, all: []string{"Mojolicious"}},
	{name: "Mechanize", kind: kindHTTP, all: []string{"Mechanize/"}},
	{name: "node-fetch", kind: kindHTTP, all: []string{"node-fetch"}},
	{name: "axios", kind: kindHTTP, all: []string{"axios/"}},
	{name: "undici", kind: kindHTTP, all: []string{"undici"}},
	{name: "got", kind: kindHTTP, all: []string{"sindresorhus/got"}},
	{name: "node-superagent", kind: kindHTTP, all: []string{"superagent/"}},
	{name: "Deno", kind: kindHTTP, all: []string{"Deno/"}, prefix: true},
	{name: "Bun", kind: kindHTTP, all: []string{"Bun/"}, prefix: true},
	{name: "Ruby", kind: kindHTTP, all: []string{"Ruby"}, prefix: true},
	{name: "Faraday", kind: kindHTTP, all: []string{"Faraday v"}},
	{name: "rest-client", kind: kindHTTP, all: []string{"rest-client/"}},
	{name: "http.rb", kind: kindHTTP, all: []string{"http.rb/"}, none: []string{"Mastodon", "Pleroma"}},
	{name: "excon", kind: kindHTTP, all: []string{"excon/"}},
	{name: "Typhoeus", kind: kindHTTP, all: []string{"Typhoeus"}},
	{name: "HTTPClient", kind: kindHTTP, all: []string{"HTTPClient/"}, prefix: true},
	{name: "GuzzleHttp", kind: kindHTTP, all: []string{"GuzzleHttp/"}},
	{name: "Symfony HttpClient", kind: kindHTTP, all: []string{"Symfony HttpClient"}},
	{name: "Zend Http Client", kind: kindHTTP, all: []string{"Zend", "Http", "Client"}, prefix: true},
	{name: "PHP", kind: kindHTTP, all: []string{"PHP/"}, prefix: true},
	{name: "WordPress", kind: kindHTTP, all: []string{"WordPress/"}, prefix: true},
	{name: "Dart", kind: kindHTTP, all: []string{"Dart/"}, prefix: true},
	{name: "reqwest", kind: kindHTTP, all: []string{"reqwest/"}},
	{name: "hyper", kind: kindHTTP, all: []string{"hyper/"}, prefix: true},
	{name: "ureq", kind: kindHTTP, all: []string{"ureq/"}, prefix: true},
	{name: "isahc", kind: kindHTTP, all: []string{"isahc/"}},
	{name: "cpp-httplib", kind: kindHTTP, all: []string{"cpp-httplib/"}},
	{name: "libsoup", kind: kindHTTP, all: []string{"libsoup/"}},
	{name: "RestSharp", kind: kindHTTP, all: []string{"RestSharp/"}},
	{name: "WinHttp", kind: kindHTTP, all: []string{"WinHttp"}},
	{name: "Microsoft-CryptoAPI", kind: kindHTTP, all: []string{"Microsoft-CryptoAPI/"}},
	{name: "Microsoft BITS", kind: kindHTTP, all: []string{"Microsoft BITS/"}},
	{name: "lua-resty-http", kind: kindHTTP, all: []string{"lua-resty-http"}},
	{name: "Wget", kind: kindHTTP, all: []string{"GNU Wget"}},

	// SDKs and API command-line tools.
	{name: "aws-sdk", kind: kindSDK, all: []string{"aws-sdk-"}},
	{name: "aws-cli", kind: kindSDK, all: []string{"aws-cli/"}, prefix: true},
	{name: "Boto3", kind: kindSDK, all: []string{"Boto3/"}},
	{name: "Botocore", kind: kindSDK, all: []string{"Botocore/"}},
	{name: "google-api-client", kind: kindSDK, all: []string{"google-api-"}},
	{name: "gcloud", kind: kindSDK, all: []string{"gcloud-"}},
	{name: "azsdk", kind: kindSDK, all: []string{"azsdk-"}},
	{name: "Stripe", kind: kindSDK, all: []string{"Stripe/v1"}},
	{name: "Octokit", kind: kindSDK, all: []string{"Octokit"}},
	{name: "kubectl", kind: kindSDK, all: []string{"kubectl/"}, prefix: true},
	{name: "Terraform", kind: kindSDK, all: []string{"Terraform/"}},

	// Feed readers and aggregators.
	{name: "Feedly", kind: kindFeed, all: []string{"Feedly"}},
	{name: "Feedbin", kind: kindFeed, all: []string{"Feedbin"}},
	{name: "NewsBlur", kind: kindFeed, all: []string{"NewsBlur"}},
	{name: "Inoreader", kind: kindFeed, all: []string{"Inoreader"}},
	{name: "FreshRSS", kind: kindFeed, all: []string{"FreshRSS"}},
	{name: "Tiny Tiny RSS", kind: kindFeed, all: []string{"Tiny Tiny RSS"}},
	{name: "NetNewsWire", kind: kindFeed, all: []string{"NetNewsWire"}},
	{name: "Miniflux", kind: kindFeed, all: []string{"Miniflux"}},
	{name: "Feedspot", kind: kindFeed, all: []string{"Feedspot"}},
	{name: "Feedfetcher-Google", kind: kindFeed, all: []string{"Feedfetcher-Google"}},
	{name: "Flipboard", kind: kindFeed, all: []string{"Flipboard"}},
	{name: "theoldreader", kind: kindFeed, all: []string{"theoldreader"}},
	{name: "Superfeedr", kind: kindFeed, all: []string{"Superfeedr"}},
	{name: "SimplePie", kind: kindFeed, all: []string{"SimplePie"}},
	{name: "Liferea", kind: kindFeed, all: []string{"Liferea/"}},
	{name: "Akregator", kind: kindFeed, all: []string{"Akregator/"}},
	{name: "Newsboat", kind: kindFeed, all: []string{"Newsboat/"}},
	{name: "QuiteRSS", kind: kindFeed, all: []string{"QuiteRSS"}},
	{name: "RSSOwl", kind: kindFeed, all: []string{"RSSOwl"}},
	{name: "Bloglovin", kind: kindFeed, all: []string{"Bloglovin"}},
	{name: "feed reader", kind: kindFeed, all: []string{"Feed Reader"}},
	{name: "feed fetcher", kind: kindFeed, all: []string{"Feed Fetcher"}},
	{name: "feed parser", kind: kindFeed, all: []string{"FeedParser"}},
	{name: "rss reader", kind: kindFeed, all: []string{"RSS Reader"}},

	// Link unfurlers and previewers (chat, social networks, embeds).
	{name: "Slackbot", kind: kindPreview, all: []string{"Slackbot"}},
	{name: "Slack-ImgProxy", kind: kindPreview, all: []string{"Slack-ImgProxy"}},
	{name: "facebookexternalhit", kind: kindPreview, all: []string{"facebookexternalhit"}},
	{name: "facebookcatalog", kind: kindPreview, all: []string{"facebookcatalog"}},
	{name: "Facebot", kind: kindPreview, all: []string{"Facebot"}},
	{name: "Twitterbot", kind: kindPreview, all: []string{"Twitterbot"}},
	{name: "Discordbot", kind: kindPreview, all: []string{"Discordbot"}},
	{name: "TelegramBot", kind: kindPreview, all: []string{"TelegramBot"}},
	{name: "WhatsApp", kind: kindPreview, all: []string{"WhatsApp/"}, prefix: true},
	{name: "LinkedInBot", kind: kindPreview, all: []string{"LinkedInBot"}},
	{name: "SkypeUriPreview", kind: kindPreview, all: []string{"SkypeUriPreview"}},
	{name: "redditbot", kind: kindPreview, all: []string{"redditbot"}},
	{name: "Iframely", kind: kindPreview, all: []string{"Iframely"}},
	{name: "Embedly", kind: kindPreview, all: []string{"Embedly"}},
	{name: "vkShare", kind: kindPreview, all: []string{"vkShare"}},
	{name: "Viber", kind: kindPreview, all: []string{"Viber"}, none: []string{"Android", "iPhone"}},
	{name: "Mastodon", kind: kindPreview, all: []string{"Mastodon/"}},
	{name: "Pleroma", kind: kindPreview, all: []string{"Pleroma "}},
	{name: "Cardyb", kind: kindPreview, all: []string{"Cardyb"}},
	{name: "BingPreview", kind: kindPreview, all: []string{"BingPreview"}},
	{name: "Google-PageRenderer", kind: kindPreview, all: []string{"Google-PageRenderer"}},
	{name: "Quora Link Preview", kind: kindPreview, all: []string{"Quora Link Preview"}},
	{name: "Snap URL Preview", kind: kindPreview, all: []string{"Snap URL Preview"}},
	{name: "Teams link preview", kind: kindPreview, all: []string{"SkypeSpaces"}},
	{name: "Pinterest preview", kind: kindPreview, all: []string{"Pinterest/0."}},

	// Generic words, after every named client: what a feed reader or a
	// previewer says it is.
	{name: "feed fetcher", kind: kindFeed, all: []string{"FeedFetcher"}},
	{name: "feed fetcher", kind: kindFeed, all: []string{"Feed-Fetcher"}},
	{name: "feed reader", kind: kindFeed, all: []string{"FeedReader"}},
	{name: "feed bot", kind: kindFeed, all: []string{"FeedBot"}},
	{name: "FeedBurner", kind: kindFeed, all: []string{"FeedBurner"}},
	{name: "rss", kind: kindFeed, all: []string{"RSS"}},
	{name: "link preview", kind: kindPreview, all: []string{"Preview"}},
	{name: "link unfurler", kind: kindPreview, all: []string{"Unfurl"}},
	{name: "link expander", kind: kindPreview, all: []string{"LinkExpand"}},
	{name: "onebox", kind: kindPreview, all: []string{"Onebox"}},
	{name: "opengraph", kind: kindPreview, all: []string{"OpenGraph"}},
	{name: "metatag fetcher", kind: kindPreview, all: []string{"MetaTagFetcher"}},
	{name: "rich link", kind: kindPreview, all: []string{"RichLink"}},
	{name: "image proxy", kind: kindPreview, all: []string{"ImageProxy"}},
	{name: "image proxy", kind: kindPreview, all: []string{"ImgProxy"}},
	{name: "mail proxy", kind: kindPreview, all: []string{"MailProxy"}},
}

// Library kinds, reported in Result.Kind.
const (
	kindHTTP    = "http-client"
	kindSDK     = "sdk"
	kindFeed    = "feed-reader"
	kindPreview = "link-preview"
)

// automationRules are headless browsers and browser automation: a
// browser engine driven by a script.
var automationRules = []rule{
	{name: "HeadlessChrome", kind: "automation", all: []string{"HeadlessChrome"}},
	{name: "PhantomJS", kind: "automation", all: []string{"PhantomJS"}},
	{name: "SlimerJS", kind: "automation", all: []string{"SlimerJS"}},
	{name: "Puppeteer", kind: "automation", all: []string{"Puppeteer"}},
	{name: "Playwright", kind: "automation", all: []string{"Playwright"}},
	{name: "Selenium", kind: "automation", all: []string{"Selenium"}},
	{name: "WebDriver", kind: "automation", all: []string{"WebDriver"}},
	{name: "Lighthouse", kind: "automation", all: []string{"Chrome-Lighthouse"}},
	{name: "Electron test", kind: "automation", all: []string{"jsdom/"}},
}

// litIndex finds which of a set of literals (3+ ASCII bytes, compared
// upper case) occur in a User-Agent, in one pass: a trigram index
// selects the few literals starting at each position.
type litIndex struct {
	lits   []string
	litPat [][]int32 // literal id -> itself (scan reports literals)
	litID  map[string]int32
	tri    trigramIndex
}

func (x *litIndex) id(l string) (int32, error) {
	u := strings.ToUpper(l)
	if len(u) < 3 || !isASCII(u) {
		return 0, fmt.Errorf("literal %q: need 3+ ASCII bytes", l)
	}
	if id, ok := x.litID[u]; ok {
		return id, nil
	}
	if x.litID == nil {
		x.litID = map[string]int32{}
	}
	id := int32(len(x.lits))
	x.litID[u] = id
	x.lits = append(x.lits, u)
	x.litPat = append(x.litPat, []int32{id})
	return id, nil
}

func (x *litIndex) ids(ls []string) ([]int32, error) {
	out := make([]int32, len(ls))
	for i, l := range ls {
		id, err := x.id(l)
		if err != nil {
			return nil, err
		}
		out[i] = id
	}
	return out, nil
}

func (x *litIndex) build() { x.tri = newTrigramIndex(x.lits) }

// scan returns the sorted ids of the literals occurring in up (upper
// case), reusing found.
func (x *litIndex) scan(up []byte, found []int32) []int32 {
	found = x.tri.scan(up, x.lits, x.litPat, found[:0])
	if len(found) > 1 {
		slices.Sort(found)
		found = slices.Compact(found)
	}
	return found
}

func hasID(found []int32, id int32) bool {
	_, ok := slices.BinarySearch(found, id)
	return ok
}

func hasAnyID(found, ids []int32) bool {
	for _, id := range ids {
		if hasID(found, id) {
			return true
		}
	}
	return false
}

// ruleSet is an ordered rule list over a shared litIndex.
type ruleSet struct {
	rules     []rule
	all, none [][]int32 // per rule: literal ids
	prefix    []string  // per rule: all[0] upper case, when rule.prefix
}

func newRuleSet(x *litIndex, rules []rule) (*ruleSet, error) {
	s := &ruleSet{rules: rules}
	for _, r := range rules {
		if len(r.all) == 0 {
			return nil, fmt.Errorf("rule %s: no literal", r.name)
		}
		all, err := x.ids(r.all)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.name, err)
		}
		none, err := x.ids(r.none)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.name, err)
		}
		s.all = append(s.all, all)
		s.none = append(s.none, none)
		p := ""
		if r.prefix {
			p = strings.ToUpper(r.all[0])
		}
		s.prefix = append(s.prefix, p)
	}
	return s, nil
}

// find returns the index of the first rule matching up (the upper-cased
// User-Agent) whose literals found holds, or -1.
func (s *ruleSet) find(up []byte, found []int32) int {
	if len(found) == 0 {
		return -1
	}
next:
	for i := range s.rules {
		for _, id := range s.all[i] {
			if !hasID(found, id) {
				continue next
			}
		}
		if p := s.prefix[i]; p != "" && !strings.HasPrefix(string(up), p) {
			continue
		}
		if hasAnyID(found, s.none[i]) {
			continue
		}
		return i
	}
	return -1
}

// containsUpper reports whether up (upper case) contains lower (ASCII),
// ignoring case.
func containsUpper(up []byte, lower string) bool {
	n := len(lower)
outer:
	for i := 0; i+n <= len(up); i++ {
		for j := 0; j < n; j++ {
			c := lower[j]
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			if up[i+j] != c {
				continue outer
			}
		}
		return true
	}
	return false
}
