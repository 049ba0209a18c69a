package collector

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shardwatch/shardwatch/internal/putter"
)

type nopSink struct{}

func (nopSink) TryAdd(putter.Entry) error { return nil }

// A flood of distinct client addresses keeps at most MaxClients buckets.
func TestRateLimitMemoryIsBounded(t *testing.T) {
	c, err := New(Config{MaxClients: 100}, nopSink{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Handler()
	for i := range 5000 {
		r := httptest.NewRequest(http.MethodGet, "/collect", nil)
		r.RemoteAddr = fmt.Sprintf("[2001:db8::%x]:1", i)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if n := c.limits.Len(); n > 100 {
		t.Fatalf("%d rate buckets kept; want at most MaxClients=100", n)
	}
}
