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
	"slices"
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
	s.mux.HandleFunc("GET /api/alarms", s.api([]string{"limit", "page"}, s.alarms))
	s.mux.HandleFunc("GET /api/series", s.api([]string{"res", "events", "points"}, s.multiSeries))
	s.mux.HandleFunc("GET /api/table", s.api([]string{"events", "hours"}, s.table))
	s.mux.HandleFunc("GET /api/histogram", s.api([]string{"minutes"}, s.histogram))
	s.mux.HandleFunc("GET /api/edges", s.api(nil, s.edges))
	s.mux.HandleFunc("GET /api/visitors", s.api(nil, s.visitors))
	s.mux.HandleFunc("GET /api/anomaly", s.api(nil, s.anomaly))
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
	App              string           `json:"app"`
	Event            string           `json:"event"`
	RefreshMS        int64            `json:"refresh_ms"`
	Time             TimeBase         `json:"time"`
	TopNWindowS      int64            `json:"topn_window_seconds"`
	BotWindowS       int64            `json:"bot_window_seconds"`
	Alarms           []string         `json:"alarms"`
	SecondPoints     int              `json:"second_points"`
	MinutePoints     int              `json:"minute_points"`
	HourPoints       int              `json:"hour_points"`
	Events           []string         `json:"events"`
	Windows          map[string]int64 `json:"window_seconds"`
	HistogramPeriods []int            `json:"histogram_periods"`
}

func (s *Server) config(context.Context, url.Values) (any, error) {
	return ConfigInfo{
		App: s.cfg.App, Event: s.cfg.Event, RefreshMS: s.cfg.Refresh.Milliseconds(), Time: s.cfg.Time,
		TopNWindowS: int64(s.cfg.TopNWindow / time.Second), BotWindowS: int64(s.cfg.BotWindow / time.Second),
		Alarms: s.cfg.Alarms, SecondPoints: SecondPoints, MinutePoints: MinutePoints, HourPoints: HourPoints,
		Events: s.cfg.Events, HistogramPeriods: histogramPeriods,
		Windows: map[string]int64{
			"topn": secs(s.cfg.TopNWindow), "botdetect": secs(s.cfg.BotWindow), "histogram": secs(s.cfg.HistogramWindow),
			"visitors": secs(s.cfg.VisitorsWindow), "cloudfront-bytes": secs(s.cfg.EdgesWindow), "anomaly": secs(s.cfg.AnomalyWindow),
		},
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

func secs(d time.Duration) int64 { return int64(d / time.Second) }

// defaultAlarmList is how many alarms /api/alarms returns without limit.
const defaultAlarmList = 10

func (s *Server) alarms(ctx context.Context, q url.Values) (any, error) {
	limit, err := intParam(q, "limit", defaultAlarmList, 1, maxAlarmList)
	if err != nil {
		return nil, err
	}
	page, err := intParam(q, "page", 1, 1, maxAlarmPages)
	if err != nil {
		return nil, err
	}
	if limit*page > maxAlarmScan {
		return nil, errBadParam{fmt.Sprintf("limit x page: at most %d alarms back", maxAlarmScan)}
	}
	list, err := s.reader.Alarms(ctx, limit*page+1)
	if err != nil {
		return nil, err
	}
	more := len(list) > limit*page
	list = list[min(len(list), (page-1)*limit):min(len(list), page*limit)]
	return map[string]any{"alarms": list, "page": page, "limit": limit, "has_more": more}, nil
}

// maxAlarmPages bounds alarm paging.
const maxAlarmPages = 100

// intParam reads an optional integer parameter in [lo, hi].
func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	if !q.Has(name) {
		return def, nil
	}
	n, err := strconv.Atoi(q.Get(name))
	if err != nil || n < lo || n > hi {
		return 0, errBadParam{fmt.Sprintf("%s: a number from %d to %d", name, lo, hi)}
	}
	return n, nil
}

// eventsParam reads the comma-separated events parameter (default: the
// configured event), at most maxEvents distinct valid names.
func (s *Server) eventsParam(q url.Values) ([]string, error) {
	if !q.Has("events") {
		return []string{s.cfg.Event}, nil
	}
	parts := strings.Split(q.Get("events"), ",")
	if len(parts) > maxEvents {
		return nil, errBadParam{fmt.Sprintf("events: at most %d", maxEvents)}
	}
	out := make([]string, 0, len(parts))
	for _, e := range parts {
		if !ValidEvent(e) {
			return nil, errBadParam{"events: comma-separated names of 1-64 characters of A-Z a-z 0-9 _ . : -"}
		}
		if !contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Point limits of /api/series per resolution: default, maximum.
var seriesPoints = map[string]struct {
	res      counters.Resolution
	def, max int
}{
	"second": {counters.Second, SecondPoints, 300},
	"minute": {counters.Minute, MinutePoints, 360},
	"hour":   {counters.Hour, HourPoints, 168},
}

func (s *Server) multiSeries(ctx context.Context, q url.Values) (any, error) {
	sp, ok := seriesPoints[q.Get("res")]
	if !ok {
		return nil, errBadParam{"res: second, minute or hour"}
	}
	events, err := s.eventsParam(q)
	if err != nil {
		return nil, err
	}
	n, err := intParam(q, "points", sp.def, 1, sp.max)
	if err != nil {
		return nil, err
	}
	now, err := s.reader.Now(ctx, events[0])
	if err != nil {
		return nil, err
	}
	return s.reader.MultiSeries(ctx, sp.res, n, events, now)
}

// maxTableHours bounds /api/table (a week of hour buckets).
const maxTableHours = 168

func (s *Server) table(ctx context.Context, q url.Values) (any, error) {
	events, err := s.eventsParam(q)
	if err != nil {
		return nil, err
	}
	hours, err := intParam(q, "hours", HourPoints, 1, maxTableHours)
	if err != nil {
		return nil, err
	}
	now, err := s.reader.Now(ctx, events[0])
	if err != nil {
		return nil, err
	}
	rows, err := s.reader.CounterTable(ctx, events, hours, now)
	if err != nil {
		return nil, err
	}
	return map[string]any{"rows": rows, "hours": hours, "now": now.UTC()}, nil
}

// histogramPeriods are the periods (minutes) /api/histogram sums.
var histogramPeriods = []int{1, 5, 15, 60, 180, 360, 1440}

func (s *Server) histogram(ctx context.Context, q url.Values) (any, error) {
	minutes, err := intParam(q, "minutes", 15, 1, 1440)
	if err != nil || !slices.Contains(histogramPeriods, minutes) {
		return nil, errBadParam{"minutes: one of 1, 5, 15, 60, 180, 360, 1440"}
	}
	period := time.Duration(minutes) * time.Minute
	if int(period/s.cfg.HistogramWindow) > maxHistogramWindows {
		return nil, errBadParam{"minutes: too many histogram windows in this period; choose a shorter one"}
	}
	now, err := s.reader.Now(ctx, s.cfg.Event)
	if err != nil {
		return nil, err
	}
	return s.reader.Histogram(ctx, period, now)
}

func (s *Server) edges(ctx context.Context, _ url.Values) (any, error) {
	now, err := s.reader.Now(ctx, s.cfg.Event)
	if err != nil {
		return nil, err
	}
	return s.reader.Edges(ctx, now)
}

func (s *Server) visitors(ctx context.Context, _ url.Values) (any, error) {
	now, err := s.reader.Now(ctx, s.cfg.Event)
	if err != nil {
		return nil, err
	}
	return s.reader.Visitors(ctx, now)
}

func (s *Server) anomaly(ctx context.Context, _ url.Values) (any, error) {
	now, err := s.reader.Now(ctx, s.cfg.Event)
	if err != nil {
		return nil, err
	}
	return s.reader.Anomaly(ctx, now)
}
