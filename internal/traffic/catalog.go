package traffic

import "net/netip"

// crawler is a real crawler User-Agent with a network it crawls from (the
// operators' published ranges, or close to them), so bot traffic looks
// like what access logs show.
type crawler struct {
	ua  string
	net netip.Prefix
}

var crawlers = []crawler{
	{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", netip.MustParsePrefix("66.249.64.0/19")},
	{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", netip.MustParsePrefix("157.55.39.0/24")},
	{"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", netip.MustParsePrefix("54.36.148.0/23")},
	{"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", netip.MustParsePrefix("5.255.253.0/24")},
	{"Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", netip.MustParsePrefix("185.191.171.0/24")},
	{"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", netip.MustParsePrefix("220.181.108.0/24")},
	{"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", netip.MustParsePrefix("20.191.45.0/24")},
	{"Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)", netip.MustParsePrefix("144.76.0.0/16")},
	{"Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)", netip.MustParsePrefix("114.119.128.0/19")},
	{"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", netip.MustParsePrefix("69.171.224.0/19")},
}

// humanAgents are common browser User-Agents.
var humanAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
}

// humanNets are the networks visitors come from: the RFC 5737
// documentation ranges, so generated IPs never name a real customer.
var humanNets = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
}

var externalReferers = []string{
	"-",
	"https://www.google.com/",
	"https://www.bing.com/",
	"https://duckduckgo.com/",
	"https://t.co/",
	"https://www.facebook.com/",
}

var categories = []string{"kitchen", "garden", "lighting", "gifts", "toys", "stationery", "bags", "party"}

type product struct {
	code, desc string
	price      float64
}

var products = []product{
	{"SW1001", "ENAMEL MUG RED", 2.95},
	{"SW1002", "GLASS STAR LANTERN", 4.25},
	{"SW1003", "PAPER CHAIN KIT", 2.55},
	{"SW1004", "WOODEN PICTURE FRAME", 3.75},
	{"SW1005", "HEART T-LIGHT HOLDER", 2.55},
	{"SW1006", "JUMBO SHOPPER BAG", 1.95},
	{"SW1007", "CAKE STAND 3 TIER", 9.95},
	{"SW1008", "SET OF 6 SPICE TINS", 4.95},
	{"SW1009", "DOORMAT UNION FLAG", 7.95},
	{"SW1010", "ALARM CLOCK BAKELIKE", 3.75},
	{"SW1011", "LUNCH BOX WITH CUTLERY", 1.65},
	{"SW1012", "PARTY BUNTING", 4.95},
}

var countries = []string{"United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands", "Belgium", "Switzerland", "Portugal", "Norway"}
