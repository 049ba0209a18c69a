package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Check is one readiness dependency (engine started, Kinesis reachable,
// DynamoDB reachable). It must honour ctx.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Server serves /healthz, /readyz and /metrics on one port.
type Server struct {
	addr     string
	gatherer prometheus.Gatherer
	checks   []Check
	before   func() // called before each scrape
	log      *zap.Logger
	// Readiness results are cached so a tight probe loop cannot hammer AWS.
	cacheFor time.Duration

	mu      sync.Mutex
	last    time.Time
	lastRes map[string]string
	lastOK  bool
	extra   map[string]http.Handler
}

// New builds a server; Serve starts it.
func New(addr string, g prometheus.Gatherer, checks []Check, beforeScrape func(), log *zap.Logger) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	return &Server{addr: addr, gatherer: g, checks: checks, before: beforeScrape, log: log, cacheFor: 2 * time.Second, extra: map[string]http.Handler{}}
}

// Handle adds a handler (for example a status page) before Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.extra[pattern] = h }

// PprofMaxSeconds is the longest CPU profile or trace /debug/pprof serves:
// the server's write timeout (30 s) minus a margin, since net/http/pprof
// refuses a duration beyond the write timeout.
const PprofMaxSeconds = 25

// EnablePprof serves the runtime profiles under /debug/pprof/ (config
// `pprof: true`, default off): CPU profiles and traces cost CPU while they
// run and heap dumps show payload fragments, so they are opt-in and the
// ops port must stay private. Call it before Serve.
func (s *Server) EnablePprof() {
	s.extra["GET /debug/pprof/"] = http.HandlerFunc(pprof.Index)
	s.extra["GET /debug/pprof/cmdline"] = http.HandlerFunc(pprof.Cmdline)
	s.extra["GET /debug/pprof/profile"] = http.HandlerFunc(pprof.Profile)
	s.extra["GET /debug/pprof/symbol"] = http.HandlerFunc(pprof.Symbol)
	s.extra["GET /debug/pprof/trace"] = http.HandlerFunc(pprof.Trace)
}

// Handler returns the mux (tests use it with httptest).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.ready)
	metrics := promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if s.before != nil {
			s.before()
		}
		metrics.ServeHTTP(w, r)
	})
	for p, h := range s.extra {
		mux.Handle(p, h)
	}
	return mux
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.last) > s.cacheFor || s.lastRes == nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		res := make(map[string]string, len(s.checks))
		ok := true
		for _, c := range s.checks {
			if err := c.Run(ctx); err != nil {
				res[c.Name] = err.Error()
				ok = false
			} else {
				res[c.Name] = "ok"
			}
		}
		s.last, s.lastRes, s.lastOK = time.Now(), res, ok
	}
	w.Header().Set("Content-Type", "application/json")
	if !s.lastOK {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": s.lastOK, "checks": s.lastRes})
}

// Serve listens on the address and serves until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("ops: listen %s: %w", s.addr, err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx ends.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ops: %w", err)
	case <-ctx.Done():
	}
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		return fmt.Errorf("ops: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ops: %w", err)
	}
	return nil
}

// Probe GETs url and reports whether it answered 200 within timeout: the
// container health check of an image without a shell or curl.
func Probe(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return nil
}
