package dashboard_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/dashboard"
)

// fakeDB answers every BatchGetItem with batch (or err) and counts calls.
type fakeDB struct {
	calls atomic.Int64
	batch func(in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error)
	err   error
}

func (f *fakeDB) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.calls.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	if f.batch != nil {
		return f.batch(in)
	}
	return &dynamodb.BatchGetItemOutput{}, nil
}

func (f *fakeDB) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	f.calls.Add(1)
	return &dynamodb.QueryOutput{}, f.err
}

func (f *fakeDB) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	f.calls.Add(1)
	return &dynamodb.ScanOutput{}, f.err
}

func fakeServer(t *testing.T, db *fakeDB) (*dashboard.Server, *httptest.Server) {
	t.Helper()
	srv, err := dashboard.New(dashboard.Config{App: "shop"}, dashboard.Deps{DynamoDB: db, Clock: &clock{now: t0}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return srv, ts
}

func do(t *testing.T, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// Every response carries the security headers; the page and assets come
// from the binary; the API only reads, only takes known parameters, and
// never echoes what a request sent.
func TestHTTPSurface(t *testing.T) {
	_, ts := fakeServer(t, &fakeDB{})
	const evil = `<script>alert(1)</script>`
	tests := []struct {
		name, method, path string
		status             int
		ctype              string
		bodyHas            string
	}{
		{"page", "GET", "/", 200, "text/html", `src="/assets/app.js"`},
		{"head page", "HEAD", "/", 200, "text/html", ""},
		{"app.js", "GET", "/assets/app.js", 200, "text/javascript", "textContent"},
		{"uPlot", "GET", "/assets/vendor/uPlot.iife.min.js", 200, "text/javascript", "uPlot"},
		{"uPlot css", "GET", "/assets/vendor/uPlot.min.css", 200, "text/css", ".uplot"},
		{"config", "GET", "/api/config", 200, "application/json", `"app":"shop"`},
		{"series", "GET", "/api/second?event=add_to_cart", 200, "application/json", `"event":"add_to_cart"`},
		{"post", "POST", "/api/top", 405, "application/json", "read-only"},
		{"delete", "DELETE", "/", 405, "application/json", "read-only"},
		{"unknown param", "GET", "/api/top?x=" + evil, 400, "application/json", "unknown query parameter"},
		{"bad event", "GET", "/api/minute?event=" + evil, 400, "application/json", "event: 1-64 characters"},
		{"long event", "GET", "/api/minute?event=" + strings.Repeat("a", 65), 400, "application/json", "event:"},
		{"repeated param", "GET", "/api/minute?event=hit&event=order", 400, "application/json", "once"},
		{"bad limit", "GET", "/api/alarms?limit=" + evil, 400, "application/json", "limit: a number from 1 to 100"},
		{"limit too big", "GET", "/api/alarms?limit=101", 400, "application/json", "limit:"},
		{"unknown api", "GET", "/api/" + evil, 404, "application/json", "no such API endpoint"},
		{"unknown page", "GET", "/nope", 404, "text/plain", ""},
		{"no directory listing", "GET", "/assets/", 404, "text/plain", ""},
		{"no vendor listing", "GET", "/assets/vendor/", 404, "text/plain", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, ts.URL+strings.ReplaceAll(tt.path, " ", "%20"), nil)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tt.ctype)
			}
			if !strings.Contains(body, tt.bodyHas) {
				t.Errorf("body %.200q lacks %q", body, tt.bodyHas)
			}
			if strings.Contains(body, "<script>alert") || strings.Contains(body, "alert(1)") {
				t.Errorf("request input echoed: %.200q", body)
			}
			h := resp.Header
			for k, want := range map[string]string{
				"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
		})
	}
}

// Only the embedded assets are served, never a file outside assets/.
func TestNoFilesOutsideAssets(t *testing.T) {
	_, ts := fakeServer(t, &fakeDB{})
	for _, p := range []string{"/assets/../server.go", "/assets/%2e%2e/server.go", "/server.go", "/assets/../README.md"} {
		resp, body := do(t, "GET", ts.URL+p, nil)
		if resp.StatusCode == 200 && strings.Contains(body, "package dashboard") {
			t.Errorf("%s served a source file", p)
		}
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"missing table", &types.ResourceNotFoundException{Message: aws.String("Cannot do operations on a non-existent table")},
			"a result table does not exist: run `consumer setup` for this app, or check --app"},
		{"other", errors.New("connection refused to 10.1.2.3"), "reading DynamoDB failed (details in the dashboard's log)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := fakeServer(t, &fakeDB{err: tt.err})
			for _, p := range []string{"/api/second", "/api/minute", "/api/hour", "/api/top", "/api/bots", "/api/alarms"} {
				resp, body := do(t, "GET", ts.URL+p, nil)
				if resp.StatusCode != http.StatusBadGateway {
					t.Errorf("%s: status %d", p, resp.StatusCode)
				}
				if diff := cmp.Diff(`{"error":"`+tt.want+`"}`+"\n", body); diff != "" {
					t.Errorf("%s body (-want +got):\n%s", p, diff)
				}
			}
		})
	}
}

// Throttled keys come back as UnprocessedKeys and are asked for again, a
// bounded number of times.
func TestUnprocessedKeysRetried(t *testing.T) {
	item := func(key map[string]types.AttributeValue, n string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"event": key["event"], "bucket": key["bucket"], "count": &types.AttributeValueMemberN{Value: n}}
	}
	db := &fakeDB{}
	db.batch = func(in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
		keys := in.RequestItems["shop-counters"].Keys
		out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
		if db.calls.Load() == 1 { // first call: one key answered, the rest throttled
			out.Responses["shop-counters"] = append(out.Responses["shop-counters"], item(keys[0], "7"))
			out.UnprocessedKeys = map[string]types.KeysAndAttributes{"shop-counters": {Keys: keys[1:]}}
			return out, nil
		}
		for _, k := range keys {
			out.Responses["shop-counters"] = append(out.Responses["shop-counters"], item(k, "1"))
		}
		return out, nil
	}
	_, ts := fakeServer(t, db)
	var s dashboard.Series
	if code := get(t, ts.URL+"/api/hour", &s); code != 200 {
		t.Fatalf("status %d", code)
	}
	if calls := db.calls.Load(); calls != 2 || s.Total != 7+23 || len(s.Points) != 24 {
		t.Errorf("calls %d, total %d over %d points; want 2 calls, 30 over 24", calls, s.Total, len(s.Points))
	}

	// Keys that stay throttled fail the request after 5 calls.
	stuck := &fakeDB{}
	stuck.batch = func(in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
		return &dynamodb.BatchGetItemOutput{UnprocessedKeys: in.RequestItems}, nil
	}
	_, ts = fakeServer(t, stuck)
	if code := get(t, ts.URL+"/api/hour", nil); code != http.StatusBadGateway || stuck.calls.Load() != 5 {
		t.Errorf("stuck keys: status %d after %d calls; want 502 after 5", code, stuck.calls.Load())
	}
}

// Responses are cached for half the refresh interval: many open pages
// cost one set of reads.
func TestResponsesCached(t *testing.T) {
	db := &fakeDB{}
	clk := &clock{now: t0}
	srv, err := dashboard.New(dashboard.Config{App: "shop", Refresh: 2 * time.Second}, dashboard.Deps{DynamoDB: db, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for range 3 {
		get(t, ts.URL+"/api/minute", nil)
	}
	if n := db.calls.Load(); n != 1 {
		t.Errorf("3 requests within the TTL made %d reads, want 1", n)
	}
	get(t, ts.URL+"/api/minute?event=order", nil) // another key
	clk.Set(t0.Add(time.Second))                  // TTL is 1 s
	get(t, ts.URL+"/api/minute", nil)
	if n := db.calls.Load(); n != 3 {
		t.Errorf("after expiry: %d reads, want 3", n)
	}
}

// Served on a loopback address, the dashboard refuses requests for other
// host names (DNS rebinding) and stops when its context ends.
func TestServeLoopbackOnly(t *testing.T) {
	srv, err := dashboard.New(dashboard.Config{App: "shop"}, dashboard.Deps{DynamoDB: &fakeDB{}, Clock: &clock{now: t0}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	url := "http://" + l.Addr().String()
	for _, tt := range []struct {
		host   string
		status int
	}{
		{"", 200}, {"localhost:8088", 200}, {"127.0.0.1", 200}, {"[::1]:8088", 200},
		{"attacker.example:8088", http.StatusMisdirectedRequest}, {"127.0.0.1.attacker.example", http.StatusMisdirectedRequest},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", url+"/api/config", nil)
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("Host %q: status %d, want %d", tt.host, resp.StatusCode, tt.status)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  dashboard.Config
		want string
	}{
		{"defaults", dashboard.Config{App: "shop"}, ""},
		{"no app", dashboard.Config{}, "dashboard config: app: required"},
		{"event", dashboard.Config{App: "a", Event: "page view"}, "dashboard config: event: 1-64 characters of A-Z a-z 0-9 _ . : -"},
		{"window", dashboard.Config{App: "a", TopNWindow: 7 * time.Second}, "dashboard config: topn_window: whole seconds dividing 24h, as in the processor's config"},
		{"bot window", dashboard.Config{App: "a", BotWindow: 1500 * time.Millisecond}, "dashboard config: bot_window: whole seconds dividing 24h, as in the processor's config"},
		{"refresh", dashboard.Config{App: "a", Refresh: time.Millisecond}, "dashboard config: refresh: must be between 100ms and 1h"},
		{"time", dashboard.Config{App: "a", Time: "utc"}, `dashboard config: time: must be "wall" or "data"`},
		{"lookback", dashboard.Config{App: "a", Lookback: 51}, "dashboard config: lookback: must be between 1 and 50"},
		{"alarms", dashboard.Config{App: "a", Alarms: []string{"*", "x"}}, "dashboard config: alarms: names must not be empty; * stands alone"},
		{"no alarms", dashboard.Config{App: "a", Alarms: []string{}}, "dashboard config: alarms: at least one alarm name (or *)"},
	}
	for _, tt := range tests {
		err := tt.cfg.WithDefaults().Validate()
		got := ""
		if err != nil {
			got = err.Error()
			if !errors.Is(err, dashboard.ErrConfig) {
				t.Errorf("%s: %v is not ErrConfig", tt.name, err)
			}
		}
		if got != tt.want {
			t.Errorf("%s: error %q, want %q", tt.name, got, tt.want)
		}
	}
}

// BenchmarkSeries is the dashboard's own cost of one /api/minute answer
// (60 items decoded and encoded), DynamoDB excluded; the cache is bypassed
// by advancing the clock.
func BenchmarkSeries(b *testing.B) {
	db := &fakeDB{}
	db.batch = func(in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
		var items []map[string]types.AttributeValue
		for _, k := range in.RequestItems["shop-counters"].Keys {
			items = append(items, map[string]types.AttributeValue{"event": k["event"], "bucket": k["bucket"],
				"count": &types.AttributeValueMemberN{Value: "1234"}, "final": &types.AttributeValueMemberBOOL{Value: true}})
		}
		return &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{"shop-counters": items}}, nil
	}
	clk := &clock{now: t0}
	srv, err := dashboard.New(dashboard.Config{App: "shop"}, dashboard.Deps{DynamoDB: db, Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	req := httptest.NewRequest("GET", "/api/minute", nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		clk.Set(t0.Add(time.Duration(i) * time.Hour))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
