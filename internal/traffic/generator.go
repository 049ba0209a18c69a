package traffic

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Kind says what an Event carries.
type Kind uint8

// Event kinds.
const (
	KindHit Kind = iota + 1
	KindOrder
)

// Config configures a Generator. Zero fields take defaults.
type Config struct {
	// Seed makes the sequence reproducible.
	Seed uint64
	// Start is the timestamp of offset 0. Required: the caller passes the
	// clock's now, or a fixed time for fully reproducible payloads.
	Start time.Time
	// Rate is the mean number of regular records per second (Poisson
	// arrivals). Default 100.
	Rate float64
	// BotShare is the share of hits made by crawlers. Default 0.2; set
	// NoBots for none.
	BotShare float64
	NoBots   bool
	// OrderShare is the share of regular records that are orders. Default
	// 0.02 (real shops see a few orders per hundred hits); set NoOrders
	// for none.
	OrderShare float64
	NoOrders   bool
	// FloodEvery starts an order flood every FloodEvery (0 = never):
	// FloodSize extra orders (default 40) spread evenly over FloodSpread
	// (default 3s), enough to breach the consumer's default order-flood
	// threshold (30 orders in 15 s).
	FloodEvery  time.Duration
	FloodSize   int
	FloodSpread time.Duration
	// Users and Bots size the pools of simulated visitors and crawler
	// IPs. Defaults 500 and 24.
	Users int
	Bots  int
	// Hosts are the virtual hosts hits go to. Default shop.example.com and
	// blog.example.com.
	Hosts []string
	// SpikeHost, when set, gets a traffic spike: from SpikeAt for SpikeFor
	// its hit rate is SpikeFactor times its normal share of Rate (extra
	// human hits, Poisson, marked Event.Anomaly). SpikeFor must be
	// positive and SpikeFactor above 1.
	SpikeHost   string
	SpikeAt     time.Duration
	SpikeFor    time.Duration
	SpikeFactor float64
}

func (c *Config) setDefaults() error {
	if c.Start.IsZero() {
		return errors.New("traffic: start time required")
	}
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.BotShare == 0 && !c.NoBots {
		c.BotShare = 0.2
	}
	if c.NoBots {
		c.BotShare = 0
	}
	if c.OrderShare == 0 && !c.NoOrders {
		c.OrderShare = 0.02
	}
	if c.NoOrders {
		c.OrderShare = 0
	}
	if c.FloodSize == 0 {
		c.FloodSize = 40
	}
	if c.FloodSpread == 0 {
		c.FloodSpread = 3 * time.Second
	}
	if c.Users == 0 {
		c.Users = 500
	}
	if c.Bots == 0 {
		c.Bots = 24
	}
	if len(c.Hosts) == 0 {
		c.Hosts = []string{"shop.example.com", "blog.example.com"}
	}
	switch {
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("traffic: rate %v must be positive", c.Rate)
	case c.BotShare < 0 || c.BotShare > 1:
		return fmt.Errorf("traffic: bot share %v outside [0, 1]", c.BotShare)
	case c.OrderShare < 0 || c.OrderShare > 1:
		return fmt.Errorf("traffic: order share %v outside [0, 1]", c.OrderShare)
	case c.FloodEvery < 0 || (c.FloodEvery > 0 && c.FloodEvery <= c.FloodSpread):
		return fmt.Errorf("traffic: flood every %v must exceed the flood spread %v", c.FloodEvery, c.FloodSpread)
	case c.FloodSize < 1 || c.FloodSpread < 0:
		return fmt.Errorf("traffic: flood size %d / spread %v invalid", c.FloodSize, c.FloodSpread)
	case c.Users < 1 || c.Bots < 1:
		return fmt.Errorf("traffic: users %d and bots %d must be positive", c.Users, c.Bots)
	case c.SpikeHost != "" && (c.SpikeAt < 0 || c.SpikeFor <= 0 || !(c.SpikeFactor > 1) || math.IsInf(c.SpikeFactor, 0)):
		return fmt.Errorf("traffic: spike at %v for %v by %v: want a start >= 0, a positive length and a factor above 1",
			c.SpikeAt, c.SpikeFor, c.SpikeFactor)
	}
	return nil
}

// Event is one generated record.
type Event struct {
	// Offset is when to send the event, from the start of generation.
	Offset time.Duration
	// Time is the event timestamp in the payload: Config.Start + Offset.
	Time    time.Time
	Kind    Kind
	Payload []byte
	// Keys are the partition key candidates of the event.
	Keys Keys
	// Key is the series of an IoT reading (its sensor); "" for others.
	Key string
	// Anomaly marks an injected anomaly: an IoT reading from the
	// anomalous range, or a hit added by a traffic spike.
	Anomaly bool
}

type visitor struct {
	ip, ua, host, session string
	page                  string // current path, "" before the first hit
	hits                  int    // hits in the current session
}

type bot struct {
	ip, ua, host string
	hits         int
}

// Generator produces Events. It is not safe for concurrent use.
type Generator struct {
	cfg      Config
	rng      *rand.Rand
	visitors []visitor
	bots     []bot

	next      time.Duration // offset of the next regular record
	flood     int           // index of the current flood (1-based), 0 = none yet
	floodLeft int           // orders left in the current flood
	invoice   int
	// Spike: extra hits for cfg.SpikeHost at spikeRate, from their own
	// random source so the regular sequence is unchanged until the spike.
	spikeRng  *rand.Rand
	spikeRate float64
	spikeNext time.Duration
	forceHost string
	hit       Hit
	order     Order
}

// New returns a Generator for cfg.
func New(cfg Config) (*Generator, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), invoice: 700000}
	g.visitors = make([]visitor, cfg.Users)
	for i := range g.visitors {
		g.visitors[i] = visitor{
			ip:   g.ip(humanNets),
			ua:   humanAgents[g.rng.IntN(len(humanAgents))],
			host: g.host(),
		}
	}
	g.bots = make([]bot, cfg.Bots)
	for i := range g.bots {
		c := crawlers[i%len(crawlers)]
		g.bots[i] = bot{ip: g.ip([]netip.Prefix{c.net}), ua: c.ua, host: g.host()}
	}
	g.next = g.gap()
	if cfg.SpikeHost != "" {
		g.spikeRng = rand.New(rand.NewPCG(cfg.Seed, 0x7370696b65))
		hostRate := cfg.Rate * (1 - cfg.OrderShare) / float64(len(cfg.Hosts))
		g.spikeRate = (cfg.SpikeFactor - 1) * hostRate
		g.spikeNext = cfg.SpikeAt + g.spikeGap()
	}
	return g, nil
}

func (g *Generator) spikeGap() time.Duration {
	return time.Duration(g.spikeRng.ExpFloat64() / g.spikeRate * float64(time.Second))
}

// nextSpikeOffset returns the offset of the next spike hit, if any is left.
func (g *Generator) nextSpikeOffset() (time.Duration, bool) {
	if g.spikeRng == nil || g.spikeNext >= g.cfg.SpikeAt+g.cfg.SpikeFor {
		return 0, false
	}
	return g.spikeNext, true
}

// Next fills ev with the next event, appending its payload to
// ev.Payload[:0] (pass an Event with a nil Payload to get a fresh slice).
func (g *Generator) Next(ev *Event) {
	ev.Payload = ev.Payload[:0]
	ev.Key, ev.Anomaly = "", false
	floodOff, flood := g.nextFloodOffset()
	if off, ok := g.nextSpikeOffset(); ok && off <= g.next && (!flood || off < floodOff) {
		g.spikeNext += g.spikeGap()
		g.forceHost = g.cfg.SpikeHost
		g.emitHumanHit(ev, off)
		g.forceHost = ""
		ev.Anomaly = true
		return
	}
	if off, ok := floodOff, flood; ok && off <= g.next {
		g.floodLeft--
		g.emitOrder(ev, off)
		return
	}
	off := g.next
	g.next += g.gap()
	if g.rng.Float64() < g.cfg.OrderShare {
		g.emitOrder(ev, off)
		return
	}
	if g.rng.Float64() < g.cfg.BotShare {
		g.emitBotHit(ev, off)
		return
	}
	g.emitHumanHit(ev, off)
}

// nextFloodOffset returns the offset of the next flood order, starting a
// new flood when the previous one is done.
func (g *Generator) nextFloodOffset() (time.Duration, bool) {
	if g.cfg.FloodEvery <= 0 {
		return 0, false
	}
	if g.floodLeft == 0 {
		if start := time.Duration(g.flood+1) * g.cfg.FloodEvery; start > g.next {
			return 0, false
		}
		g.flood++
		g.floodLeft = g.cfg.FloodSize
	}
	j := g.cfg.FloodSize - g.floodLeft
	step := g.cfg.FloodSpread / time.Duration(g.cfg.FloodSize)
	return time.Duration(g.flood)*g.cfg.FloodEvery + time.Duration(j)*step, true
}

// gap is an exponential inter-arrival time: Poisson arrivals at Rate.
func (g *Generator) gap() time.Duration {
	return time.Duration(g.rng.ExpFloat64() / g.cfg.Rate * float64(time.Second))
}

func (g *Generator) host() string { return g.cfg.Hosts[g.rng.IntN(len(g.cfg.Hosts))] }

func (g *Generator) ip(nets []netip.Prefix) string {
	p := nets[g.rng.IntN(len(nets))]
	a := p.Addr().As4()
	host := g.rng.Uint32() & (1<<(32-p.Bits()) - 1)
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	if v&0xff == 0 || v&0xff == 255 {
		v ^= 1 // no network or broadcast addresses
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

func (g *Generator) session() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		x := g.rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	out := make([]byte, 32)
	for i, c := range b {
		out[2*i], out[2*i+1] = hexDigits[c>>4], hexDigits[c&0xf]
	}
	return string(out)
}

func (g *Generator) emitHumanHit(ev *Event, off time.Duration) {
	// A skewed pick (u^3) makes a few visitors heavy: top talkers exist.
	u := g.rng.Float64()
	v := &g.visitors[int(u*u*u*float64(len(g.visitors)))]
	if v.session == "" || v.hits >= 30 || g.rng.IntN(40) == 0 {
		v.session, v.page, v.hits = g.session(), "", 0
	}
	h := &g.hit
	*h = Hit{IP: v.ip, UserAgent: v.ua, SessionID: v.session, Host: v.host, Method: "GET", Event: "pageview", Status: 200}
	if g.forceHost != "" {
		h.Host = g.forceHost
	}
	if v.page == "" {
		h.Referer = externalReferers[g.rng.IntN(len(externalReferers))]
	} else {
		h.Referer = "https://" + v.host + v.page
	}
	switch r := g.rng.IntN(100); {
	case r < 15:
		h.Path = "/"
	case r < 40:
		h.Path = "/category/" + categories[g.rng.IntN(len(categories))]
	case r < 80:
		h.Path = "/product/" + strconv.Itoa(1+g.rng.IntN(2000))
	case r < 90 && strings.HasPrefix(v.page, "/product/"):
		h.Path, h.Method, h.Event = "/cart/add", "POST", "add_to_cart"
	case r < 95:
		h.Path = "/cart"
	default:
		h.Path, h.Method, h.Event = "/checkout", "POST", "checkout"
	}
	h.Bytes = int64(2000 + g.rng.IntN(60000))
	switch r := g.rng.IntN(100); {
	case r < 4:
		h.Status, h.Bytes = 304, 0
	case r < 7:
		h.Status, h.Bytes = 404, 512
	case r < 8:
		h.Status, h.Bytes = 500, 256
	}
	v.page = h.Path
	v.hits++
	g.finishHit(ev, off)
}

func (g *Generator) emitBotHit(ev *Event, off time.Duration) {
	b := &g.bots[g.rng.IntN(len(g.bots))]
	h := &g.hit
	// Crawlers keep no cookies and send no referer; they start with
	// robots.txt, fetch it again now and then, and crawl many distinct
	// paths: the behaviour signals the bot processor looks for.
	*h = Hit{IP: b.ip, UserAgent: b.ua, Host: b.host, Method: "GET", Event: "pageview", Status: 200}
	switch {
	case b.hits%200 == 0:
		h.Path, h.Bytes = "/robots.txt", 180
	case g.rng.IntN(4) == 0:
		h.Path = "/category/" + categories[g.rng.IntN(len(categories))] + "?page=" + strconv.Itoa(1+g.rng.IntN(50))
	default:
		h.Path = "/product/" + strconv.Itoa(1+g.rng.IntN(50000))
	}
	if h.Bytes == 0 {
		h.Bytes = int64(8000 + g.rng.IntN(40000))
	}
	if g.rng.IntN(10) == 0 {
		h.Status, h.Bytes = 404, 512
	}
	b.hits++
	g.finishHit(ev, off)
}

func (g *Generator) finishHit(ev *Event, off time.Duration) {
	g.hit.Time = g.cfg.Start.Add(off)
	ev.Offset, ev.Time, ev.Kind = off, g.hit.Time, KindHit
	ev.Keys = Keys{IP: g.hit.IP, Session: g.hit.SessionID}
	ev.Payload = g.hit.AppendJSON(ev.Payload)
}

func (g *Generator) emitOrder(ev *Event, off time.Duration) {
	g.invoice++
	p := &products[g.rng.IntN(len(products))]
	o := &g.order
	*o = Order{
		InvoiceNo:   strconv.Itoa(g.invoice),
		StockCode:   p.code,
		Description: p.desc,
		Quantity:    int64(1 + g.rng.IntN(12)),
		Time:        g.cfg.Start.Add(off),
		UnitPrice:   p.price,
		Country:     countries[g.pickCountry()],
	}
	if g.rng.IntN(10) != 0 { // one in ten orders is a guest checkout
		o.CustomerID = strconv.Itoa(12346 + g.rng.IntN(400))
	}
	ev.Offset, ev.Time, ev.Kind = off, o.Time, KindOrder
	ev.Keys = Keys{Customer: o.CustomerID}
	ev.Payload = o.AppendJSON(ev.Payload)
}

func (g *Generator) pickCountry() int {
	if g.rng.IntN(100) < 80 {
		return 0 // like the UCI data: mostly United Kingdom
	}
	return 1 + g.rng.IntN(len(countries)-1)
}
