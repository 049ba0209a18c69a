package ops

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "shardwatch_test_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(3)
	ready := errors.New("not started")
	scrapes := 0
	s := New("", reg, []Check{
		{Name: "engine", Run: func(context.Context) error { return ready }},
		{Name: "dynamodb", Run: func(context.Context) error { return nil }},
	}, func() { scrapes++ }, nil)
	s.cacheFor = 0
	h := s.Handler()

	if code, body := get(t, h, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body := get(t, h, "/readyz")
	var res struct {
		Ready  bool
		Checks map[string]string
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable || res.Ready || res.Checks["engine"] != "not started" || res.Checks["dynamodb"] != "ok" {
		t.Errorf("/readyz before start = %d %s", code, body)
	}
	ready = nil
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Errorf("/readyz after start = %d; want 200", code)
	}
	code, body = get(t, h, "/metrics")
	if code != 200 || !strings.Contains(body, "shardwatch_test_total 3") || scrapes != 1 {
		t.Errorf("/metrics = %d (scrapes %d):\n%s", code, scrapes, body)
	}
}

func TestServeAndProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := New("", prometheus.NewRegistry(), nil, nil, nil)
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(ctx, ln) }()
	url := "http://" + ln.Addr().String() + "/healthz"
	if err := Probe(context.Background(), url, time.Second); err != nil {
		t.Errorf("probe of a live server: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if err := Probe(context.Background(), url, time.Second); err == nil {
		t.Error("probe of a stopped server succeeded")
	}
}
