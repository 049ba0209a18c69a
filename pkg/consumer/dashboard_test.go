package consumer

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDashboardFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"dashboard"}, "dashboard config: app: required"},
		{[]string{"dashboard", "--app", "shop", "--time", "utc"}, `dashboard config: time: must be "wall" or "data"`},
		{[]string{"dashboard", "--app", "shop", "--topn-window", "7s"}, "dashboard config: topn_window:"},
		{[]string{"dashboard", "--app", "shop", "--event", "a b"}, "dashboard config: event:"},
		{[]string{"dashboard", "--app", "shop", "extra"}, `dashboard: unexpected argument "extra"`},
		{[]string{"dashboard", "--app", "shop", "--addr", "127.0.0.1:99999"}, "dashboard: listen:"},
	}
	for _, tt := range tests {
		err := run(t.Context(), tt.args, noEnv, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}

// syncBuffer is an io.Writer the test reads while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The command prints its URL, serves the page and returns nil when its
// context ends (SIGINT/SIGTERM in main).
func TestDashboardServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dashboard", "--app", "shop", "--addr", "127.0.0.1:0"}, noEnv, &out, io.Discard)
	}()
	var url string
	deadline := time.Now().Add(60 * time.Second)
	for url == "" {
		if u, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "dashboard: "); ok {
			url = u
			break
		}
		select {
		case err := <-done:
			t.Fatalf("dashboard returned early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no URL printed in 60 s")
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dashboard: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("dashboard did not stop after its context ended")
	}
}

func TestBrowseURL(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8088}, "http://127.0.0.1:8088/"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8088}, "http://127.0.0.1:8088/"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 80}, "http://127.0.0.1:80/"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8088}, "http://[::1]:8088/"},
	}
	for _, tt := range tests {
		if got := browseURL(tt.addr); got != tt.want {
			t.Errorf("browseURL(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}
