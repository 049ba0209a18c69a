package collector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/shardwatch/shardwatch/internal/putter"
	"github.com/shardwatch/shardwatch/internal/traffic"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// CookieName is the session cookie.
const CookieName = "sw_sid"

// Field bounds: longer values are cut, so one hit stays a small record.
const (
	maxUserAgent = 512
	maxURL       = 2048
	maxEvent     = 32
)

// Sink takes records without blocking; putter.Producer implements it.
// It returns putter.ErrFull when it has no room.
type Sink interface {
	TryAdd(putter.Entry) error
}

// Config configures a Collector. Zero fields take defaults.
type Config struct {
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// CookieSecure marks the session cookie Secure. It is a plain bool
	// (no default): cmd/producer defaults its flag to true.
	CookieSecure bool
	// PartitionKey picks the record's partition key (ip or session; other
	// modes fall back to random keys).
	PartitionKey traffic.KeyMode
	// MaxBodyBytes bounds a POST body. Default 8 KiB.
	MaxBodyBytes int64
	// MaxHeaderBytes bounds the request headers. Default 8 KiB.
	MaxHeaderBytes int
	// Timeouts; defaults 5s, 10s, 10s, 60s.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout bounds the graceful shutdown in Serve. Default 10s.
	ShutdownTimeout time.Duration
	// RateLimit is the sustained requests per second one client IP may
	// make (default 20; negative disables the limit); RateBurst the burst
	// above it (default 2*RateLimit). Over the limit the collector answers
	// 429 with Retry-After.
	RateLimit float64
	RateBurst int
	// MaxClients bounds the client IPs whose rate is tracked (default
	// 10,000, least recently seen evicted): memory stays bounded under a
	// flood of spoofed or distinct addresses.
	MaxClients int
}

func (c *Config) setDefaults() error {
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 8 << 10
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 8 << 10
	}
	defDur(&c.ReadHeaderTimeout, 5*time.Second)
	defDur(&c.ReadTimeout, 10*time.Second)
	defDur(&c.WriteTimeout, 10*time.Second)
	defDur(&c.IdleTimeout, 60*time.Second)
	defDur(&c.ShutdownTimeout, 10*time.Second)
	if c.RateLimit == 0 {
		c.RateLimit = 20
	}
	if c.RateBurst == 0 {
		c.RateBurst = max(1, int(2*c.RateLimit))
	}
	if c.MaxClients == 0 {
		c.MaxClients = 10_000
	}
	if c.RateBurst < 0 || c.MaxClients < 0 {
		return errors.New("collector: negative rate burst or client bound")
	}
	if c.MaxBodyBytes < 0 || c.MaxHeaderBytes < 0 {
		return errors.New("collector: negative size limit")
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			return fmt.Errorf("collector: invalid trusted proxy prefix %v", p)
		}
	}
	return nil
}

// Stats are cumulative request counts.
type Stats struct {
	Accepted   int64 // hits handed to the sink
	Full       int64 // 503: sink full or closed
	BadRequest int64 // 400, 405, 413
	Limited    int64 // 429: client over its rate
}

// Collector turns tracking-pixel requests into records.
type Collector struct {
	cfg     Config
	sink    Sink
	log     *zap.Logger
	now     func() time.Time
	random  io.Reader     // session ids
	keyRand func() uint64 // random partition keys

	limits *lru.Cache[netip.Addr, *rate.Limiter] // nil: no rate limit

	accepted, full, bad, limited atomic.Int64
}

// Option configures a Collector.
type Option func(*Collector)

// WithClock sets the source of hit timestamps.
func WithClock(now func() time.Time) Option { return func(c *Collector) { c.now = now } }

// WithRandom sets the source of session ids (crypto/rand by default).
func WithRandom(r io.Reader) Option { return func(c *Collector) { c.random = r } }

// New returns a Collector writing to sink.
func New(cfg Config, sink Sink, log *zap.Logger, opts ...Option) (*Collector, error) {
	if sink == nil {
		return nil, errors.New("collector: nil sink")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	c := &Collector{cfg: cfg, sink: sink, log: log, now: time.Now, random: rand.Reader, keyRand: randUint64}
	if cfg.RateLimit > 0 {
		l, err := lru.New[netip.Addr, *rate.Limiter](cfg.MaxClients)
		if err != nil {
			return nil, fmt.Errorf("collector: %w", err)
		}
		c.limits = l
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	var x uint64
	for _, v := range b {
		x = x<<8 | uint64(v)
	}
	return x
}

// Stats returns the counts so far.
func (c *Collector) Stats() Stats {
	return Stats{Accepted: c.accepted.Load(), Full: c.full.Load(), BadRequest: c.bad.Load(), Limited: c.limited.Load()}
}

// Handler returns the collector's routes.
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/collect", func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, false) })
	mux.HandleFunc("/collect.gif", func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, true) })
	return mux
}

// Server returns an http.Server for the handler with the configured limits
// and timeouts.
func (c *Collector) Server() *http.Server {
	return &http.Server{
		Handler:           c.Handler(),
		MaxHeaderBytes:    c.cfg.MaxHeaderBytes,
		ReadHeaderTimeout: c.cfg.ReadHeaderTimeout,
		ReadTimeout:       c.cfg.ReadTimeout,
		WriteTimeout:      c.cfg.WriteTimeout,
		IdleTimeout:       c.cfg.IdleTimeout,
		ErrorLog:          zap.NewStdLog(c.log.Named("http")),
	}
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully:
// it stops accepting and waits (up to ShutdownTimeout) for requests in
// flight, so every accepted hit has reached the sink when Serve returns.
func (c *Collector) Serve(ctx context.Context, ln net.Listener) error {
	srv := c.Server()
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("collector: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // http.ErrServerClosed once Shutdown began
	if err != nil {
		return fmt.Errorf("collector: shutdown: %w", err)
	}
	return nil
}

// The responses are fixed texts: request input is never reflected.
var gif = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

func (c *Collector) fail(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusServiceUnavailable:
		c.full.Add(1)
		w.Header().Set("Retry-After", "1")
	case http.StatusTooManyRequests:
		c.limited.Add(1)
		w.Header().Set("Retry-After", "1")
	default:
		c.bad.Add(1)
	}
	http.Error(w, http.StatusText(status), status)
}

func (c *Collector) serve(w http.ResponseWriter, r *http.Request, pixel bool) {
	h := w.Header()
	h.Set("Cache-Control", "no-store, max-age=0")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		h.Set("Allow", "GET, POST")
		c.fail(w, http.StatusMethodNotAllowed)
		return
	}
	ip := c.clientIP(r)
	if !c.allow(ip) {
		c.fail(w, http.StatusTooManyRequests)
		return
	}
	params, status := c.params(w, r)
	if status != 0 {
		c.fail(w, status)
		return
	}

	session, fresh := c.session(r)
	if session == "" {
		c.log.Error("session id: random source failed")
		c.fail(w, http.StatusInternalServerError)
		return
	}
	hit := traffic.Hit{
		IP:        ip,
		UserAgent: truncate(r.UserAgent(), maxUserAgent),
		Referer:   truncate(params.referrer, maxURL),
		SessionID: session,
		Time:      c.now(),
		Event:     event(params.event),
	}
	hit.Host, hit.Path = page(params, r.Referer())
	entry := putter.Entry{
		PartitionKey: c.cfg.PartitionKey.Key(traffic.Keys{IP: hit.IP, Session: session}, c.keyRand),
		Data:         hit.AppendJSON(make([]byte, 0, 512)),
	}
	if err := c.sink.TryAdd(entry); err != nil {
		if errors.Is(err, putter.ErrFull) || errors.Is(err, putter.ErrClosed) {
			c.fail(w, http.StatusServiceUnavailable)
			return
		}
		c.log.Warn("hit not queued", zap.Error(err))
		c.fail(w, http.StatusBadRequest)
		return
	}
	c.accepted.Add(1)
	if fresh {
		http.SetCookie(w, &http.Cookie{
			Name:     CookieName,
			Value:    session,
			Path:     "/",
			HttpOnly: true,
			Secure:   c.cfg.CookieSecure,
			SameSite: http.SameSiteLaxMode,
		})
	}
	if pixel {
		h.Set("Content-Type", "image/gif")
		h.Set("Content-Length", fmt.Sprint(len(gif)))
		_, _ = w.Write(gif) // the client went away: nothing to do
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type hitParams struct {
	url, path, referrer, event string
}

// params reads the query and, for POST, the body. status != 0 is the error
// to answer.
func (c *Collector) params(w http.ResponseWriter, r *http.Request) (hitParams, int) {
	q := r.URL.Query()
	p := hitParams{url: q.Get("url"), path: q.Get("p"), referrer: q.Get("r"), event: q.Get("e")}
	if r.Method != http.MethodPost {
		return p, 0
	}
	if r.ContentLength > c.cfg.MaxBodyBytes {
		return p, http.StatusRequestEntityTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, c.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return p, http.StatusRequestEntityTooLarge
		}
		return p, http.StatusBadRequest
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return p, 0
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	switch ct {
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return p, http.StatusBadRequest
		}
		set(&p.url, form.Get("url"))
		set(&p.path, form.Get("p"))
		set(&p.referrer, form.Get("r"))
		set(&p.event, form.Get("e"))
	case "application/json", "text/plain", "":
		var b struct {
			URL  string `json:"url"`
			Path string `json:"p"`
			Ref  string `json:"r"`
			Evt  string `json:"e"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			return p, http.StatusBadRequest
		}
		set(&p.url, b.URL)
		set(&p.path, b.Path)
		set(&p.referrer, b.Ref)
		set(&p.event, b.Evt)
	default:
		return p, http.StatusUnsupportedMediaType
	}
	return p, 0
}

// page returns the host and path (query included) of the page viewed: the
// url parameter, else p (host from the Referer header), else the Referer
// header.
func page(p hitParams, referer string) (host, path string) {
	if p.url == "" && p.path == "" {
		p.url = referer
	}
	if p.url != "" {
		if u, err := url.Parse(p.url); err == nil && u.Host != "" {
			return truncate(u.Hostname(), 255), truncate(u.RequestURI(), maxURL)
		}
	}
	if !strings.HasPrefix(p.path, "/") {
		return "", ""
	}
	if u, err := url.Parse(referer); err == nil {
		host = truncate(u.Hostname(), 255)
	}
	return host, truncate(p.path, maxURL)
}

func event(e string) string {
	if e == "" || len(e) > maxEvent {
		return "pageview"
	}
	for i := 0; i < len(e); i++ {
		switch c := e[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return "pageview"
		}
	}
	return e
}

// allow takes one token from the client's bucket. Buckets live in a
// bounded LRU: a flood of distinct addresses evicts old buckets (those
// clients start afresh) instead of growing memory.
func (c *Collector) allow(ip string) bool {
	if c.limits == nil {
		return true
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		addr = netip.Addr{} // unknown peers share one bucket
	}
	l, ok := c.limits.Get(addr)
	if !ok {
		l = rate.NewLimiter(rate.Limit(c.cfg.RateLimit), c.cfg.RateBurst)
		if prev, found, _ := c.limits.PeekOrAdd(addr, l); found {
			l = prev // a concurrent request of the same client won
		}
	}
	return l.AllowN(c.now(), 1)
}

// session returns the request's valid session id, or a new one (fresh).
// "" means the random source failed.
func (c *Collector) session(r *http.Request) (id string, fresh bool) {
	if ck, err := r.Cookie(CookieName); err == nil && validSession(ck.Value) {
		return ck.Value, false
	}
	var b [16]byte
	if _, err := io.ReadFull(c.random, b[:]); err != nil {
		return "", false
	}
	return hex.EncodeToString(b[:]), true
}

func validSession(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// clientIP returns the client address by the shared rule
// (records.ClientPolicy, ClientForwarded): the peer, or when the peer is a
// trusted proxy the rightmost untrusted X-Forwarded-For entry.
func (c *Collector) clientIP(r *http.Request) string {
	addr, ok := parseHost(r.RemoteAddr)
	if !ok {
		return ""
	}
	p := records.ClientPolicy{Source: records.ClientForwarded, TrustedProxies: c.cfg.TrustedProxies}
	return p.Resolve(addr, r.Header.Values("X-Forwarded-For")).String()
}

// parseHost reads "ip", "ip:port" or "[ipv6]:port", dropping zones and
// IPv4-in-IPv6 mapping.
func parseHost(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
