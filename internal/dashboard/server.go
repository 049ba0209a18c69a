package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors/counters"
)

//go:embed assets
var assetFS embed.FS

// contentSecurityPolicy allows only the dashboard's own scripts, styles and
// API: no inline script, no third-party origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Timeouts of the HTTP server and of one API request's DynamoDB reads.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	requestTimeout    = 10 * time.Second
	shutdownTimeout   = 5 * time.Second
	maxCacheEntries   = 64
)

// Deps are a Server's collaborators.
type Deps struct {
	DynamoDB DynamoDB
	Clock    Clock
	Logger   *zap.Logger
	// Access guards a listener beyond loopback (see Access).
	Access Access
}

// Server serves the dashboard page, its assets and the JSON API. It only
// reads DynamoDB.
type Server struct {
	cfg    Config
	reader *Reader
	access Access
	log    *zap.Logger
	clock  Clock
	mux    *http.ServeMux
	// loopbackOnly makes the server refuse Host headers other than
	// loopback names (DNS rebinding); set by Serve for loopback listeners.
	loopbackOnly bool

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	at     time.Time
	status int
	body   []byte
}

// New returns a Server for cfg (defaults applied, then validated).
func New(cfg Config, deps Deps) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DynamoDB == nil || deps.Clock == nil {
		return nil, fmt.Errorf("%w: DynamoDB client and clock are required", ErrConfig)
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if err := deps.Access.validate(true); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, reader: NewReader(cfg, deps.DynamoDB, deps.Clock), access: deps.Access, log: deps.Logger, clock: deps.Clock,
		mux: http.NewServeMux(), cache: map[string]cached{}}
	static, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, fmt.Errorf("dashboard assets: %w", err)
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(static))
	s.mux.HandleFunc("GET /assets/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	})
	s.mux.HandleFunc("GET /api/config", s.api(nil, s.config))
	s.mux.HandleFunc("GET /api/second", s.api([]string{"event"}, s.series(counters.Second, SecondPoints)))
	s.mux.HandleFunc("GET /api/minute", s.api([]string{"event"}, s.series(counters.Minute, MinutePoints)))
	s.mux.HandleFunc("GET /api/hour", s.api([]string{"event"}, s.series(counters.Hour, HourPoints)))
	s.mux.HandleFunc("GET /api/top", s.api(nil, s.top))
	s.mux.HandleFunc("GET /api/bots", s.api(nil, s.bots))
	s.mux.HandleFunc("GET /api/alarms", s.api([]string{"limit"}, s.alarms))
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint")
	})
	return s, nil
}

// Handler returns the HTTP handler with the security headers applied.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "read-only: GET and HEAD only")
			return
		}
		if s.loopbackOnly && !loopbackHost(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, "this dashboard answers to localhost addresses only")
			return
		}
		if !s.access.check(w, r) {
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names this machine by a
// loopback name: a page on another origin that rebinds its DNS name to
// 127.0.0.1 still sends its own name and is refused.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve serves on l until ctx ends, then shuts down gracefully (bounded).
// A listener beyond loopback needs Deps.Access set: Serve refuses to start
// without a token or an allow-list.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if tcp, ok := l.Addr().(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		s.loopbackOnly = true
	}
	if err := s.access.validate(s.loopbackOnly); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("dashboard: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("dashboard: shutdown: %w", err)
	}
	return nil
}

// apiFunc answers one API request with a value to encode as JSON.
type apiFunc func(ctx context.Context, q url.Values) (any, error)

// errBadParam is an invalid query parameter; its message is fixed text
// (the request's values are never echoed back).
type errBadParam struct{ msg string }

func (e errBadParam) Error() string { return e.msg }

// api wraps f: only the allowed query parameters, each at most once;
// responses cached for half the refresh interval; errors as JSON.
func (s *Server) api(allowed []string, f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		q := r.URL.Query()
		for k, v := range q {
			if !contains(allowed, k) {
				writeError(w, http.StatusBadRequest, "unknown query parameter (allowed: "+strings.Join(allowed, ", ")+")")
				return
			}
			if len(v) != 1 {
				writeError(w, http.StatusBadRequest, "query parameters may appear once")
				return
			}
		}
		// Only validated keys reach the cache key, so its size is bounded
		// by maxCacheEntries, not by what clients send.
		key := r.URL.Path + "?" + q.Encode()
		if c, ok := s.cached(key); ok {
			writeBody(w, c.status, c.body)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		v, err := f(ctx, q)
		status := http.StatusOK
		var body []byte
		var bad errBadParam
		switch {
		case errors.As(err, &bad):
			writeError(w, http.StatusBadRequest, bad.msg)
			return
		case err != nil:
			s.log.Warn("dashboard api", zap.String("path", r.URL.Path), zap.Error(err))
			status, body = http.StatusBadGateway, errorBody(publicError(err))
		default:
			if body, err = encode(v); err != nil {
				s.log.Error("dashboard api: encode", zap.String("path", r.URL.Path), zap.Error(err))
				writeError(w, http.StatusInternalServerError, "encoding the response failed")
				return
			}
		}
		s.store(key, cached{at: s.clock.Now(), status: status, body: body})
		writeBody(w, status, body)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Server) cacheTTL() time.Duration { return s.cfg.Refresh / 2 }

func (s *Server) cached(key string) (cached, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[key]
	if age := s.clock.Now().Sub(c.at); !ok || age < 0 || age >= s.cacheTTL() {
		return cached{}, false
	}
	return c, true
}

func (s *Server) store(key string, c cached) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= maxCacheEntries {
		clear(s.cache)
	}
	s.cache[key] = c
}

// publicError is what a client is told about a failed read: enough to act
// on (a missing table), without internals.
func publicError(err error) string {
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return "a result table does not exist: run `consumer setup` for this app, or check --app"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "DynamoDB did not answer in time"
	}
	return "reading DynamoDB failed (details in the dashboard's log)"
}

func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b) // escapes <, > and & too
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func errorBody(msg string) []byte {
	b, _ := encode(map[string]string{"error": msg}) // a string map always encodes
	return b
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, status, errorBody(msg))
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away: nothing to do
}

// ConfigInfo is /api/config: what the page needs to know.
type ConfigInfo struct {
	App          string   `json:"app"`
	Event        string   `json:"event"`
	RefreshMS    int64    `json:"refresh_ms"`
	Time         TimeBase `json:"time"`
	TopNWindowS  int64    `json:"topn_window_seconds"`
	BotWindowS   int64    `json:"bot_window_seconds"`
	Alarms       []string `json:"alarms"`
	SecondPoints int      `json:"second_points"`
	MinutePoints int      `json:"minute_points"`
	HourPoints   int      `json:"hour_points"`
}

func (s *Server) config(context.Context, url.Values) (any, error) {
	return ConfigInfo{
		App: s.cfg.App, Event: s.cfg.Event, RefreshMS: s.cfg.Refresh.Milliseconds(), Time: s.cfg.Time,
		TopNWindowS: int64(s.cfg.TopNWindow / time.Second), BotWindowS: int64(s.cfg.BotWindow / time.Second),
		Alarms: s.cfg.Alarms, SecondPoints: SecondPoints, MinutePoints: MinutePoints, HourPoints: HourPoints,
	}, nil
}

func (s *Server) series(res counters.Resolution, n int) apiFunc {
	return func(ctx context.Context, q url.Values) (any, error) {
		event := s.cfg.Event
		if q.Has("event") {
			if event = q.Get("event"); !ValidEvent(event) {
				return nil, errBadParam{"event: 1-64 characters of A-Z a-z 0-9 _ . : -"}
			}
		}
		now, err := s.reader.Now(ctx, event)
		if err != nil {
			return nil, err
		}
		return s.reader.Series(ctx, res, n, event, now)
	}
}

func (s *Server) top(ctx context.Context, _ url.Values) (any, error) {
	now, err := s.reader.Now(ctx, s.cfg.Event)
	if err != nil {
		return nil, err
	}
	return s.reader.Top(ctx, now)
}

func (s *Server) bots(ctx context.Context, _ url.Values) (any, error) {
	now, err := s.reader.Now(ctx, s.cfg.Event)
	if err != nil {
		return nil, err
	}
	return s.reader.Bots(ctx, now)
}

// defaultAlarmList is how many alarms /api/alarms returns without limit.
const defaultAlarmList = 10

func (s *Server) alarms(ctx context.Context, q url.Values) (any, error) {
	limit := defaultAlarmList
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxAlarmList {
			return nil, errBadParam{fmt.Sprintf("limit: a number from 1 to %d", maxAlarmList)}
		}
		limit = n
	}
	list, err := s.reader.Alarms(ctx, limit)
	if err != nil {
		return nil, err
	}
	return map[string]any{"alarms": list}, nil
}
