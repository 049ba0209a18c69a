package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Kind is what a rule does to a request it selects.
type Kind string

// Fault kinds. The error kinds answer without forwarding the request, as a
// throttled service does (the request had no effect).
const (
	// Throughput answers 400 ProvisionedThroughputExceededException.
	Throughput Kind = "throughput"
	// Throttling answers 400 ThrottlingException.
	Throttling Kind = "throttling"
	// KMSThrottling answers 400 KMSThrottlingException (Kinesis with
	// server-side encryption).
	KMSThrottling Kind = "kms-throttling"
	// Internal answers 500 InternalFailure (InternalServerError for
	// DynamoDB).
	Internal Kind = "internal"
	// Unavailable answers 503 ServiceUnavailable.
	Unavailable Kind = "unavailable"
	// Slow forwards the request after Delay.
	Slow Kind = "slow"
	// Hold keeps the request until Release is called, then forwards it:
	// a test orders a stale write after a newer one without sleeping.
	Hold Kind = "hold"
	// Drop closes the client connection without an answer, after the
	// request was forwarded or not (DropAfter): the client cannot know
	// whether it took effect.
	Drop Kind = "drop"
)

// Rule selects requests and says what to do with them.
type Rule struct {
	// Service is "Kinesis", "DynamoDB" or "" (any), matched against the
	// X-Amz-Target prefix.
	Service string
	// Operations limits the rule (e.g. "GetRecords"); empty means all.
	Operations []string
	Kind       Kind
	// Rate is the probability in [0, 1] that a selected request is hit.
	Rate float64
	// Delay is the added latency of Slow.
	Delay time.Duration
	// DropAfter makes Drop forward the request first.
	DropAfter bool
}

func (r *Rule) validate() error {
	switch r.Kind {
	case Throughput, Throttling, KMSThrottling, Internal, Unavailable, Drop, Hold:
	case Slow:
		if r.Delay <= 0 {
			return errors.New("faultproxy: slow rule without delay")
		}
	default:
		return fmt.Errorf("faultproxy: unknown fault kind %q", r.Kind)
	}
	if r.Rate < 0 || r.Rate > 1 {
		return fmt.Errorf("faultproxy: rate %v outside [0, 1]", r.Rate)
	}
	return nil
}

func (r *Rule) matches(service, op string) bool {
	if r.Service != "" && !strings.EqualFold(r.Service, service) {
		return false
	}
	return len(r.Operations) == 0 || slices.Contains(r.Operations, op)
}

// Config configures a Proxy.
type Config struct {
	// Target is the base URL of the real server, e.g. http://127.0.0.1:4567.
	Target string
	Rules  []Rule
	// Seed makes the fault draws repeatable (per request order).
	Seed uint64
	// Logger receives one line per injected fault at Debug level.
	Logger *zap.Logger
}

// Stats counts requests by outcome.
type Stats struct {
	Requests  int64
	Forwarded int64
	// Injected counts faults by "Kind Operation", e.g. "throughput GetRecords".
	Injected map[string]int64
}

// Proxy is an http.Handler that forwards to Target, injecting faults.
type Proxy struct {
	target *url.URL
	rp     *httputil.ReverseProxy
	log    *zap.Logger

	mu       sync.Mutex
	rules    []Rule
	rnd      *rand.Rand
	injected map[string]int64

	requests, forwarded atomic.Int64

	gate chan struct{} // closed by Release; guarded by mu
	held atomic.Int64
}

// New builds a proxy; it serves nothing until used as a handler or Serve.
func New(cfg Config) (*Proxy, error) {
	u, err := url.Parse(cfg.Target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q is not a base URL", cfg.Target)
	}
	p := &Proxy{
		target:   u,
		log:      cfg.Logger,
		rnd:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		injected: map[string]int64{},
		gate:     make(chan struct{}),
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	if err := p.SetRules(cfg.Rules); err != nil {
		return nil, err
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = u.Host
		},
		// The SDK signs the Host header; keep the client's so signatures
		// of a real endpoint would still match (the local servers do not
		// check them).
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			p.log.Debug("upstream error", zap.Error(err))
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return p, nil
}

// SetRules replaces the rules, e.g. to end a fault phase.
func (p *Proxy) SetRules(rules []Rule) error {
	for i := range rules {
		if err := rules[i].validate(); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.rules = slices.Clone(rules)
	p.mu.Unlock()
	return nil
}

// Held is the number of requests a Hold rule is holding now.
func (p *Proxy) Held() int64 { return p.held.Load() }

// Release forwards every request held so far; later ones wait for the
// next Release.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.gate)
	p.gate = make(chan struct{})
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	inj := make(map[string]int64, len(p.injected))
	for k, v := range p.injected {
		inj[k] = v
	}
	return Stats{Requests: p.requests.Load(), Forwarded: p.forwarded.Load(), Injected: inj}
}

// Total is the number of faults injected so far.
func (s Stats) Total() int64 {
	var n int64
	for _, v := range s.Injected {
		n += v
	}
	return n
}

// pick draws the fault for one request: the first matching rule whose draw
// hits wins.
func (p *Proxy) pick(service, op string) (Rule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if !r.matches(service, op) {
			continue
		}
		if p.rnd.Float64() < r.Rate {
			p.injected[string(r.Kind)+" "+op]++
			return r, true
		}
	}
	return Rule{}, false
}

// Target splits X-Amz-Target "Kinesis_20131202.GetRecords" into service
// ("Kinesis") and operation ("GetRecords").
func Target(h http.Header) (service, op string) {
	t := h.Get("X-Amz-Target")
	prefix, op, ok := strings.Cut(t, ".")
	if !ok {
		return "", ""
	}
	service, _, _ = strings.Cut(prefix, "_")
	return service, op
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	service, op := Target(r.Header)
	rule, hit := p.pick(service, op)
	if hit {
		p.log.Debug("injecting fault", zap.String("kind", string(rule.Kind)), zap.String("service", service), zap.String("op", op))
	}
	switch {
	case !hit:
	case rule.Kind == Slow:
		t := time.NewTimer(rule.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	case rule.Kind == Hold:
		p.mu.Lock()
		gate := p.gate
		p.mu.Unlock()
		p.held.Add(1)
		select {
		case <-gate:
			p.held.Add(-1)
		case <-r.Context().Done():
			p.held.Add(-1)
			return
		}
	case rule.Kind == Drop:
		if rule.DropAfter {
			p.forward(discard{h: http.Header{}}, r)
		} else {
			// Read the body so the client is not blocked writing it.
			_, _ = io.Copy(io.Discard, r.Body)
		}
		p.drop(w)
		return
	default:
		_, _ = io.Copy(io.Discard, r.Body)
		writeError(w, service, rule.Kind)
		return
	}
	p.forward(w, r)
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	p.forwarded.Add(1)
	p.rp.ServeHTTP(w, r)
}

// drop closes the connection without writing a response.
func (p *Proxy) drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2 cannot hijack: the closest thing is a gateway error.
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST: the client sees "connection reset"
	}
	_ = conn.Close()
}

// discard is a ResponseWriter that throws the upstream answer away.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// writeError answers like the service would. Codes and messages follow
// the Kinesis and DynamoDB API references; DynamoDB prefixes __type with
// its namespace, which the SDK strips.
func writeError(w http.ResponseWriter, service string, k Kind) {
	status, code, msg := http.StatusBadRequest, "", ""
	switch k {
	case Throughput:
		code, msg = "ProvisionedThroughputExceededException", "Rate exceeded for shard shardId-000000000000 in stream."
		if strings.EqualFold(service, "DynamoDB") {
			msg = "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
		}
	case Throttling:
		code, msg = "ThrottlingException", "Rate of requests exceeds the allowed throughput."
	case KMSThrottling:
		code, msg = "KMSThrottlingException", "The request was denied due to request throttling by AWS KMS."
	case Internal:
		status, code, msg = http.StatusInternalServerError, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure."
		if strings.EqualFold(service, "DynamoDB") {
			code = "InternalServerError"
		}
	case Unavailable:
		status, code, msg = http.StatusServiceUnavailable, "ServiceUnavailable", "Service Unavailable"
	}
	typ := code
	ctype := "application/x-amz-json-1.1"
	if strings.EqualFold(service, "DynamoDB") {
		typ = "com.amazonaws.dynamodb.v20120810#" + code
		ctype = "application/x-amz-json-1.0"
	}
	body := `{"__type":` + strconv.Quote(typ) + `,"message":` + strconv.Quote(msg) + `}`
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("x-amzn-ErrorType", code)
	h.Set("x-amzn-RequestId", "faultproxy-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// Serve answers on ln until ctx ends.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(p.log)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("faultproxy: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("faultproxy: shutdown: %w", err)
	}
	return nil
}
