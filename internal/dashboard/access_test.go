package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/shardwatch/shardwatch/internal/dashboard"
)

const testToken = "s3cret-token-0123456789"

func accessServer(t *testing.T, a dashboard.Access) (*httptest.Server, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	srv, err := dashboard.New(dashboard.Config{App: "shop"}, dashboard.Deps{DynamoDB: &fakeDB{}, Clock: &clock{now: t0}, Logger: zap.New(core), Access: a})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, logs
}

// noRedirect returns responses as they are, redirects included.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func fetch(t *testing.T, url string, mod func(*http.Request)) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(req)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestTokenAccess(t *testing.T) {
	ts, logs := accessServer(t, dashboard.Access{Token: testToken})
	if r := fetch(t, ts.URL+"/api/config", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", r.StatusCode)
	}
	if r := fetch(t, ts.URL+"/?token=wrong-token-0123456789", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", r.StatusCode)
	}
	// The token once in the URL: a cookie, and a redirect that drops it.
	r := fetch(t, ts.URL+"/?token="+testToken, nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("token in URL: %d Location %q, want 303 to /", r.StatusCode, r.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range r.Cookies() {
		cookie = c
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/", cookie)
	}
	for _, path := range []string{"/", "/api/config", "/api/alarms"} {
		if r := fetch(t, ts.URL+path, func(q *http.Request) { q.AddCookie(cookie) }); r.StatusCode != http.StatusOK {
			t.Errorf("%s with the cookie: %d", path, r.StatusCode)
		}
	}
	if r := fetch(t, ts.URL+"/api/config", func(q *http.Request) { q.Header.Set("Authorization", "Bearer "+testToken) }); r.StatusCode != http.StatusOK {
		t.Errorf("bearer token: %d", r.StatusCode)
	}
	if r := fetch(t, ts.URL+"/api/config", func(q *http.Request) { q.AddCookie(&http.Cookie{Name: cookie.Name, Value: "x" + testToken}) }); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged cookie: %d, want 401", r.StatusCode)
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, testToken) || strings.Contains(fmt.Sprint(e.ContextMap()), testToken) {
			t.Errorf("the token was logged: %v", e)
		}
	}
}

func TestAllowListAccess(t *testing.T) {
	ts, _ := accessServer(t, dashboard.Access{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if r := fetch(t, ts.URL+"/api/config", nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("client outside the allow-list: %d, want 403", r.StatusCode)
	}
	ts, _ = accessServer(t, dashboard.Access{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	if r := fetch(t, ts.URL+"/api/config", nil); r.StatusCode != http.StatusOK {
		t.Errorf("client on the allow-list: %d, want 200", r.StatusCode)
	}
	// Both: the network and the token.
	ts, _ = accessServer(t, dashboard.Access{Token: testToken, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if r := fetch(t, ts.URL+"/api/config", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("allowed network without token: %d, want 401", r.StatusCode)
	}
}

// Beyond loopback the dashboard refuses to start with neither a token nor
// an allow-list; a short token is refused anywhere.
func TestServeBeyondLoopbackNeedsAccessControl(t *testing.T) {
	srv, err := dashboard.New(dashboard.Config{App: "shop"}, dashboard.Deps{DynamoDB: &fakeDB{}, Clock: &clock{now: t0}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := srv.Serve(ctx, l); !errors.Is(err, dashboard.ErrConfig) || !strings.Contains(err.Error(), "token") {
		t.Errorf("Serve on 0.0.0.0 without access control: %v, want a config error naming the token", err)
	}
	if _, err := dashboard.New(dashboard.Config{App: "shop"}, dashboard.Deps{DynamoDB: &fakeDB{}, Clock: &clock{now: t0}, Access: dashboard.Access{Token: "short"}}); !errors.Is(err, dashboard.ErrConfig) {
		t.Errorf("short token: %v, want a config error", err)
	}
}
