package collector_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/gif"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/collector"
	"github.com/shardwatch/shardwatch/internal/putter"
	"github.com/shardwatch/shardwatch/internal/traffic"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var now = time.Date(2026, 11, 22, 9, 41, 7, 120_000_000, time.UTC)

// sink records entries; err, when set, is returned instead.
type sink struct {
	mu  sync.Mutex
	got []putter.Entry
	err error
}

func (s *sink) TryAdd(e putter.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.got = append(s.got, e)
	return nil
}

func (s *sink) entries() []putter.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]putter.Entry(nil), s.got...)
}

// hit is the decoded view of a record that tests compare.
type hit struct {
	IP, UA, Referer, Session, Path, Host, Event string
	Time                                        time.Time
	PartitionKey                                string
}

func decode(t *testing.T, e putter.Entry) hit {
	t.Helper()
	dec, err := records.NewDecoder(records.FormatClickstream)
	if err != nil {
		t.Fatal(err)
	}
	var r records.Record
	if err := dec.Decode(e.Data, &r); err != nil {
		t.Fatalf("record %s: %v", e.Data, err)
	}
	return hit{IP: r.ClientIP, UA: r.UserAgent, Referer: r.Referer, Session: r.SessionID, Path: r.Path,
		Host: r.Host, Event: r.Event, Time: r.Time, PartitionKey: e.PartitionKey}
}

const sid = "0123456789abcdef0123456789abcdef"

// repeatReader is an endless random source of one byte value: session
// ids are predictable and never run out.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func newCollector(t *testing.T, cfg collector.Config, s collector.Sink) *collector.Collector {
	t.Helper()
	c, err := collector.New(cfg, s, zap.NewNop(),
		collector.WithClock(func() time.Time { return now }),
		collector.WithRandom(repeatReader(0xab)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientIP(t *testing.T) {
	proxies, err := records.ParsePrefixes("10.0.0.0/8, 2001:db8::/32,192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer ignores xff", "198.51.100.7:5555", []string{"203.0.113.9"}, "198.51.100.7"},
		{"trusted peer, one hop", "10.1.2.3:80", []string{"203.0.113.9"}, "203.0.113.9"},
		{"rightmost untrusted wins over spoofed left", "10.1.2.3:80", []string{"6.6.6.6, 203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"several headers read right to left", "10.1.2.3:80", []string{"6.6.6.6", "203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"all trusted: leftmost", "10.1.2.3:80", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"garbage stops at the trusted hop", "10.1.2.3:80", []string{"203.0.113.9, <script>, 10.0.0.5"}, "10.0.0.5"},
		{"trusted single address", "192.0.2.1:80", []string{"203.0.113.9"}, "203.0.113.9"},
		{"no xff from trusted peer", "10.1.2.3:80", nil, "10.1.2.3"},
		{"ipv6 peer and hop with port", "[2001:db8::1]:443", []string{"[2001:db8:ffff::9]:1234, 203.0.113.10:999"}, "203.0.113.10"},
		{"mapped ipv4 peer", "[::ffff:10.1.2.3]:80", []string{"203.0.113.11"}, "203.0.113.11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{}
			c := newCollector(t, collector.Config{TrustedProxies: proxies}, s)
			req := httptest.NewRequest(http.MethodGet, "/collect?p=/x", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			rec := httptest.NewRecorder()
			c.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusNoContent {
				t.Fatalf("status %d", rec.Code)
			}
			if got := decode(t, s.entries()[0]).IP; got != tt.want {
				t.Errorf("client IP %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHitRecord(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		target  string
		ctype   string
		body    string
		referer string
		want    hit
	}{
		{
			name: "pixel with url", method: http.MethodGet,
			target: "/collect.gif?url=" + url.QueryEscape("https://shop.example.com/cart?id=7") + "&r=" + url.QueryEscape("https://www.google.com/") + "&e=add_to_cart",
			want:   hit{Host: "shop.example.com", Path: "/cart?id=7", Referer: "https://www.google.com/", Event: "add_to_cart"},
		},
		{
			name: "path with host from referer", method: http.MethodGet, target: "/collect?p=/product/12", referer: "https://blog.example.com/x",
			want: hit{Host: "blog.example.com", Path: "/product/12", Event: "pageview"},
		},
		{
			name: "plain img: page is the referer", method: http.MethodGet, target: "/collect.gif", referer: "https://shop.example.com/p?q=1",
			want: hit{Host: "shop.example.com", Path: "/p?q=1", Event: "pageview"},
		},
		{
			name: "invalid event falls back", method: http.MethodGet, target: "/collect?p=/&e=" + url.QueryEscape("Bad Event!"),
			want: hit{Path: "/", Event: "pageview"},
		},
		{
			name: "json beacon", method: http.MethodPost, target: "/collect", ctype: "text/plain;charset=UTF-8",
			body: `{"url":"https://shop.example.com/checkout","r":"https://shop.example.com/cart","e":"checkout"}`,
			want: hit{Host: "shop.example.com", Path: "/checkout", Referer: "https://shop.example.com/cart", Event: "checkout"},
		},
		{
			name: "form post", method: http.MethodPost, target: "/collect", ctype: "application/x-www-form-urlencoded",
			body: "p=%2Fsearch%3Fq%3Dmug&e=search", referer: "https://shop.example.com/",
			want: hit{Host: "shop.example.com", Path: "/search?q=mug", Event: "search"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{}
			c := newCollector(t, collector.Config{PartitionKey: traffic.KeySession}, s)
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			req.RemoteAddr = "203.0.113.5:4444"
			req.Header.Set("User-Agent", "Mozilla/5.0 test")
			req.AddCookie(&http.Cookie{Name: collector.CookieName, Value: sid})
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			if tt.referer != "" {
				req.Header.Set("Referer", tt.referer)
			}
			rec := httptest.NewRecorder()
			c.Handler().ServeHTTP(rec, req)
			if rec.Code/100 != 2 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			want := tt.want
			want.IP, want.UA, want.Session, want.Time, want.PartitionKey = "203.0.113.5", "Mozilla/5.0 test", sid, now, sid
			if diff := cmp.Diff(want, decode(t, s.entries()[0])); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
			if c := rec.Header().Values("Set-Cookie"); len(c) != 0 {
				t.Errorf("valid session cookie was replaced: %v", c)
			}
		})
	}
}

func TestPixelResponse(t *testing.T) {
	c := newCollector(t, collector.Config{}, &sink{})
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/collect.gif?p=/", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/gif" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	img, err := gif.Decode(rec.Body)
	if err != nil {
		t.Fatalf("not a GIF: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1 || b.Dy() != 1 {
		t.Errorf("GIF is %dx%d, want 1x1", b.Dx(), b.Dy())
	}
	if got := rec.Header().Get("Cache-Control"); !strings.Contains(got, "no-store") {
		t.Errorf("Cache-Control %q: pixels must not be cached", got)
	}
}

func TestSessionCookie(t *testing.T) {
	tests := []struct {
		name       string
		secure     bool
		cookie     string // "" = none
		wantFresh  bool
		wantSecure bool
	}{
		{"new visitor gets a secure cookie", true, "", true, true},
		{"insecure for plain-http demos", false, "", true, false},
		{"valid cookie kept", true, sid, false, false},
		{"forged cookie replaced", true, "<script>alert(1)</script>", true, true},
		{"uppercase hex is not ours", true, strings.ToUpper(sid), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{}
			c := newCollector(t, collector.Config{CookieSecure: tt.secure}, s)
			req := httptest.NewRequest(http.MethodGet, "/collect?p=/", nil)
			if tt.cookie != "" {
				req.Header.Set("Cookie", collector.CookieName+"="+tt.cookie)
			}
			rec := httptest.NewRecorder()
			c.Handler().ServeHTTP(rec, req)
			cookies := rec.Result().Cookies()
			session := decode(t, s.entries()[0]).Session
			if !tt.wantFresh {
				if len(cookies) != 0 || session != tt.cookie {
					t.Fatalf("cookies %v, session %q; want none and %q", cookies, session, tt.cookie)
				}
				return
			}
			if len(cookies) != 1 {
				t.Fatalf("Set-Cookie: %v, want one cookie", rec.Header().Values("Set-Cookie"))
			}
			ck := cookies[0]
			want := http.Cookie{Name: collector.CookieName, Value: strings.Repeat("ab", 16), Path: "/",
				HttpOnly: true, Secure: tt.wantSecure, SameSite: http.SameSiteLaxMode}
			got := http.Cookie{Name: ck.Name, Value: ck.Value, Path: ck.Path, HttpOnly: ck.HttpOnly, Secure: ck.Secure, SameSite: ck.SameSite}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("cookie (-want +got):\n%s", diff)
			}
			if session != ck.Value {
				t.Errorf("record session %q, cookie %q", session, ck.Value)
			}
		})
	}
}

func TestSinkFullAnswers503(t *testing.T) {
	for _, err := range []error{putter.ErrFull, putter.ErrClosed} {
		s := &sink{err: err}
		c := newCollector(t, collector.Config{}, s)
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/collect?p=/", nil))
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%v: status %d, Retry-After %q; want 503 with Retry-After", err, rec.Code, rec.Header().Get("Retry-After"))
		}
		if len(rec.Result().Cookies()) != 0 {
			t.Errorf("%v: cookie set for a hit that was not recorded", err)
		}
		if diff := cmp.Diff(collector.Stats{Full: 1}, c.Stats()); diff != "" {
			t.Errorf("%v: stats (-want +got):\n%s", err, diff)
		}
	}
}

// TestWithProducerBackpressure wires the collector to a real Producer
// whose stream never answers: once the bounded buffer is full, hits get
// 503 and memory stays bounded.
func TestWithProducerBackpressure(t *testing.T) {
	block := make(chan struct{})
	p, err := putter.New(blockingKinesis(block), putter.Config{Stream: "s"})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := putter.NewProducer(p, putter.ProducerConfig{Buffer: 10, Concurrency: 1, Linger: time.Millisecond}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- prod.Run(ctx) }()
	// One client sends every hit: without the per-client limit, so the
	// buffer (not the 429 limiter, whose refill depends on timing) decides.
	c := newCollector(t, collector.Config{RateLimit: -1}, prod)
	codes := map[int]int{}
	for range 10 + 2*putter.MaxBatchRecords + 200 {
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/collect?p=/", nil))
		codes[rec.Code]++
	}
	// At most buffer + one batch in the run loop + one in flight.
	if codes[http.StatusNoContent] > 10+2*putter.MaxBatchRecords || codes[http.StatusServiceUnavailable] == 0 {
		t.Errorf("status counts %v: want 503s once the buffer is full", codes)
	}
	if st := c.Stats(); st.Full != int64(codes[http.StatusServiceUnavailable]) || st.Accepted != int64(codes[http.StatusNoContent]) {
		t.Errorf("stats %+v do not match responses %v", st, codes)
	}
	cancel()
	close(block)
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if st := prod.Stats(); st.Failed != int64(codes[http.StatusNoContent]) {
		t.Errorf("producer failed %d, want every accepted hit (%d) reported", st.Failed, codes[http.StatusNoContent])
	}
}

// TestLimits runs a real server: the header limit is enforced by net/http.
func TestLimits(t *testing.T) {
	s := &sink{}
	c := newCollector(t, collector.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 1024}, s)
	base, stop := serve(t, c)
	defer stop()

	post := func(body string, chunked bool) int {
		var r io.Reader = strings.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // hides the length: no Content-Length
		}
		req, err := http.NewRequest(http.MethodPost, base+"/collect", r)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	big := `{"p":"/` + strings.Repeat("a", 2000) + `"}`
	small := `{"p":"/ok"}`
	tests := []struct {
		name string
		code int
	}{
		{"small body", post(small, false)},
		{"big body with length", post(big, false)},
		{"big body chunked", post(big, true)},
	}
	want := []int{http.StatusNoContent, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge}
	for i, tt := range tests {
		if tt.code != want[i] {
			t.Errorf("%s: status %d, want %d", tt.name, tt.code, want[i])
		}
	}

	// net/http allows 4 KiB over MaxHeaderBytes before answering 431.
	req, _ := http.NewRequest(http.MethodGet, base+"/collect?p=/", nil)
	req.Header.Set("X-Big", strings.Repeat("h", 1024+4096+100))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("big header: status %d, want 431", resp.StatusCode)
	}
	if got := len(s.entries()); got != 1 {
		t.Errorf("%d records, want only the small one", got)
	}
}

// TestNoReflection sends a marker in every input and checks that no
// response, error or not, carries it back.
func TestNoReflection(t *testing.T) {
	const marker = "zzMARKERzz"
	evil := "<script>" + marker + "</script>"
	s := &sink{}
	c := newCollector(t, collector.Config{MaxBodyBytes: 256}, s)
	base, stop := serve(t, c)
	defer stop()

	q := "?p=/" + url.QueryEscape(evil) + "&url=" + url.QueryEscape("https://"+marker+".example/"+evil) +
		"&r=" + url.QueryEscape(evil) + "&e=" + url.QueryEscape(evil)
	reqs := []struct {
		method, path, ctype, body string
	}{
		{http.MethodGet, "/collect" + q, "", ""},
		{http.MethodGet, "/collect.gif" + q, "", ""},
		{http.MethodPost, "/collect", "application/json", `{"p":"` + evil + `"}`},
		{http.MethodPost, "/collect", "application/json", `{"p":` + evil},              // 400
		{http.MethodPost, "/collect", "application/" + marker, "x"},                    // 415
		{http.MethodPost, "/collect", "application/json", strings.Repeat(marker, 100)}, // 413
		{http.MethodPut, "/collect" + q, "", ""},                                       // 405
		{http.MethodGet, "/" + marker, "", ""},                                         // 404
	}
	for _, r := range reqs {
		req, err := http.NewRequest(r.method, base+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if r.ctype != "" {
			req.Header.Set("Content-Type", r.ctype)
		}
		req.Header.Set("User-Agent", evil)
		req.Header.Set("Referer", "https://x.example/"+evil)
		req.Header.Set("Cookie", collector.CookieName+"="+marker)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var head bytes.Buffer
		if err := resp.Header.Write(&head); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(body, []byte(marker)) || bytes.Contains(head.Bytes(), []byte(marker)) {
			t.Errorf("%s %s (%d) reflects input:\n%s\n%s", r.method, r.path, resp.StatusCode, head.Bytes(), body)
		}
	}
	// The hits themselves were recorded, input escaped as JSON.
	if got := len(s.entries()); got != 3 {
		t.Errorf("%d records, want 3", got)
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	c := newCollector(t, collector.Config{}, &sink{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Serve(ctx, ln) }()
	resp, err := http.Get(fmt.Sprintf("http://%s/collect?p=/", ln.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(fmt.Sprintf("http://%s/collect", ln.Addr())); err == nil {
		t.Error("server still answers after shutdown")
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestConfigValidation(t *testing.T) {
	if _, err := collector.New(collector.Config{}, nil, nil); err == nil {
		t.Error("nil sink accepted")
	}
	if _, err := collector.New(collector.Config{MaxBodyBytes: -1}, &sink{}, nil); err == nil {
		t.Error("negative body limit accepted")
	}
	if _, err := records.ParsePrefixes("10.0.0.0/8,nonsense"); err == nil {
		t.Error("ParsePrefixes accepted nonsense")
	}
	got, err := records.ParsePrefixes(" 10.1.2.3/8 , ::1 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("ParsePrefixes (-want +got):\n%s", diff)
	}
}

// serve starts c on a loopback listener and returns its base URL and a
// stop function that shuts it down.
func serve(t *testing.T, c *collector.Collector) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Serve(ctx, ln) }()
	return "http://" + ln.Addr().String(), func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	}
}

type blockingKinesis chan struct{}

func (b blockingKinesis) PutRecords(ctx context.Context, _ *putRecordsInput, _ ...putRecordsOpt) (*putRecordsOutput, error) {
	select {
	case <-b:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return nil, errors.New("unblocked without a context end")
}

type (
	putRecordsInput  = kinesis.PutRecordsInput
	putRecordsOutput = kinesis.PutRecordsOutput
	putRecordsOpt    = func(*kinesis.Options)
)
