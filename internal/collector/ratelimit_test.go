package collector_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/collector"
)

func TestRateLimitPerClientIP(t *testing.T) {
	clock := now
	s := &sink{}
	c, err := collector.New(collector.Config{RateLimit: 2, RateBurst: 3, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		s, zap.NewNop(), collector.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Handler()
	get := func(peer, xff string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/collect?p=/x&e=<script>", nil)
		r.RemoteAddr = peer + ":5555"
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var codes []int
	for i := range 5 {
		// An untrusted peer cannot dodge its bucket with a forged header.
		codes = append(codes, get("203.0.113.9", "198.51.100."+strconv.Itoa(i)).Code)
	}
	if diff := cmp.Diff([]int{204, 204, 204, 429, 429}, codes); diff != "" {
		t.Errorf("status codes (-want +got):\n%s", diff)
	}
	w := get("203.0.113.9", "")
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Errorf("limited answer: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if strings.Contains(w.Body.String(), "script") || strings.Contains(w.Body.String(), "203.0.113.9") {
		t.Errorf("429 body reflects input: %q", w.Body.String())
	}
	// Other clients, including ones behind a trusted proxy, have their own bucket.
	if code := get("203.0.113.10", "").Code; code != 204 {
		t.Errorf("another client got %d", code)
	}
	for i := range 3 {
		if code := get("10.1.1.1", "198.51.100.77").Code; code != 204 {
			t.Errorf("proxied client request %d: %d", i, code)
		}
	}
	if code := get("10.1.1.1", "198.51.100.77").Code; code != 429 {
		t.Errorf("proxied client over its burst: %d; want 429 (limited by its X-Forwarded-For address)", code)
	}
	// The bucket refills with time (2 per second).
	clock = clock.Add(time.Second)
	if code := get("203.0.113.9", "").Code; code != 204 {
		t.Errorf("after a second: %d; want 204", code)
	}
	st := c.Stats()
	if st.Limited != 4 || st.Accepted != int64(len(s.entries())) {
		t.Errorf("stats %+v; want 4 limited and accepted = %d sink entries", st, len(s.entries()))
	}
}

func TestRateLimitDisabled(t *testing.T) {
	c, err := collector.New(collector.Config{RateLimit: -1}, &sink{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	h := c.Handler()
	for i := range 100 {
		r := httptest.NewRequest(http.MethodGet, "/collect", nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 204 {
			t.Fatalf("request %d: %d with the limit disabled", i, w.Code)
		}
	}
}
