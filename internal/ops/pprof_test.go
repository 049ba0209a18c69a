package ops

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPprof: /debug/pprof/ is absent unless enabled, then lists the
// profiles and serves them.
func TestPprof(t *testing.T) {
	s := New("", prometheus.NewRegistry(), nil, nil, nil)
	if code, _ := get(t, s.Handler(), "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without EnablePprof = %d; want 404", code)
	}
	s.EnablePprof()
	h := s.Handler()
	code, body := get(t, h, "/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "heap") || !strings.Contains(body, "profile") {
		t.Errorf("/debug/pprof/ = %d %.200q; want the profile index", code, body)
	}
	if code, body := get(t, h, "/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap = %d %.100q", code, body)
	}
	if code, _ := get(t, h, "/debug/pprof/cmdline"); code != http.StatusOK {
		t.Errorf("/debug/pprof/cmdline = %d", code)
	}
}
