package dashboard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/shardwatch/shardwatch/internal/dashboard"
	"github.com/shardwatch/shardwatch/internal/testenv"
)

// The SDK's and the test client's idle keep-alive connections are not
// leaks; anything else the server starts must end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
}

// apiServer serves the dashboard for app with its clock at now.
func apiServer(t *testing.T, cfg dashboard.Config, now time.Time) (*httptest.Server, *clock) {
	t.Helper()
	clk := &clock{now: now}
	srv, err := dashboard.New(cfg, dashboard.Deps{DynamoDB: testenv.DynamoDB(t), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, clk
}

func get(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", url, ct)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("%s: %v: %s", url, err, body)
		}
	}
	return resp.StatusCode
}

type point struct {
	Bucket string
	Count  *int64
}

func i64(n int64) *int64 { return &n }

// wantSeries lists n buckets of layout/step ending at end: counts from
// have, 0 before the newest one in have, null after it.
func wantSeries(end time.Time, step time.Duration, n int, layout string, have map[string]int64) []point {
	var out []point
	newest := ""
	for i := range n {
		b := end.Add(-time.Duration(n-1-i) * step).Format(layout)
		if _, ok := have[b]; ok {
			newest = b
		}
		out = append(out, point{Bucket: b})
	}
	for i := range out {
		if out[i].Bucket <= newest {
			out[i].Count = i64(have[out[i].Bucket])
		}
	}
	return out
}

// TestAPI runs the real processors over the fixture traffic into DynamoDB
// Local and checks every endpoint against the traffic itself.
func TestAPI(t *testing.T) {
	app := writeFixture(t)
	cfg := dashboard.Config{App: app, TopNWindow: 10 * time.Second, BotWindow: 10 * time.Second}
	now := t0.Add(50 * time.Second) // 09:41:50
	ts, clk := apiServer(t, cfg, now)

	t.Run("series", func(t *testing.T) {
		perSecond := map[string]int64{}
		for s := range 10 {
			perSecond[t0.Add(time.Duration(s)*time.Second).Format("2006-01-02T15:04:05")] = int64(s + 1)
		}
		for s := 40; s < 45; s++ {
			perSecond[t0.Add(time.Duration(s)*time.Second).Format("2006-01-02T15:04:05")] = 1
		}
		tests := []struct {
			path  string
			want  []point
			total int64
		}{
			{"/api/second", wantSeries(now.Truncate(time.Second), time.Second, 60, "2006-01-02T15:04:05", perSecond), 60},
			{"/api/minute", wantSeries(now.Truncate(time.Minute), time.Minute, 60, "2006-01-02T15:04", map[string]int64{"2026-11-22T09:41": 60}), 60},
			{"/api/hour", wantSeries(now.Truncate(time.Hour), time.Hour, 24, "2006-01-02T15", map[string]int64{"2026-11-22T09": 60}), 60},
			{"/api/minute?event=order", wantSeries(now.Truncate(time.Minute), time.Minute, 60, "2006-01-02T15:04", map[string]int64{"2026-11-22T09:41": 6}), 6},
			{"/api/hour?event=pageview", wantSeries(now.Truncate(time.Hour), time.Hour, 24, "2006-01-02T15", map[string]int64{"2026-11-22T09": 60}), 60},
		}
		for _, tt := range tests {
			var got dashboard.Series
			if code := get(t, ts.URL+tt.path, &got); code != http.StatusOK {
				t.Fatalf("%s: status %d", tt.path, code)
			}
			pts := make([]point, len(got.Points))
			for i, p := range got.Points {
				pts[i] = point{p.Bucket, p.Count}
				if p.Count != nil && *p.Count > 0 && !p.Final {
					t.Errorf("%s: bucket %s not final after every shard ended", tt.path, p.Bucket)
				}
			}
			if diff := cmp.Diff(tt.want, pts); diff != "" {
				t.Errorf("%s points (-want +got):\n%s", tt.path, diff)
			}
			if got.Total != tt.total || !got.Now.Equal(now) {
				t.Errorf("%s: total %d now %s, want %d %s", tt.path, got.Total, got.Now, tt.total, now)
			}
		}
	})

	t.Run("top", func(t *testing.T) {
		// At 09:41:50 the newest closed 10 s window is 09:41:40 (the
		// late talker alone); at 09:41:15 it is 09:41:00 (the other five).
		tests := []struct {
			now       time.Time
			start     time.Time
			requests  []string
			bytes     []string
			hosts     []string
			totalReqs int64
		}{
			{now, t0.Add(40 * time.Second), []string{"203.0.113.9 5 5000"}, []string{"203.0.113.9 5 5000"}, []string{"api.example.com 5 5000"}, 5},
			{t0.Add(15 * time.Second), t0,
				[]string{"198.51.100.1 15 1500", "198.51.100.2 13 2600", "198.51.100.3 11 3300", "198.51.100.4 9 3600", "198.51.100.5 7 3500"},
				[]string{"198.51.100.4 9 3600", "198.51.100.5 7 3500", "198.51.100.3 11 3300", "198.51.100.2 13 2600", "198.51.100.1 15 1500"},
				[]string{"img.example.com 16 7100", "www.example.com 39 7400"}, 55},
		}
		for _, tt := range tests {
			clk.Set(tt.now)
			var got dashboard.Top
			if code := get(t, ts.URL+"/api/top", &got); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if !got.Found || !got.WindowStart.Equal(tt.start) || !got.WindowEnd.Equal(tt.start.Add(10*time.Second)) ||
				!got.Final || !got.Exact || got.Requests != tt.totalReqs {
				t.Errorf("at %s: top window %+v", tt.now, got)
			}
			// Hosts are ranked by bytes.
			for name, pair := range map[string]struct {
				want []string
				got  []dashboard.Talker
			}{"top_requests": {tt.requests, got.TopRequests}, "top_bytes": {tt.bytes, got.TopBytes}, "hosts": {tt.hosts, got.Hosts}} {
				var rows []string
				for _, r := range pair.got {
					rows = append(rows, r.Key+" "+itoa(r.Requests)+" "+itoa(r.Bytes))
				}
				want := pair.want
				if name == "hosts" {
					slices.Sort(rows)
				}
				if diff := cmp.Diff(want, rows); diff != "" {
					t.Errorf("at %s: %s (-want +got):\n%s", tt.now, name, diff)
				}
			}
		}
		// An hour later the panel still shows the newest closed window
		// (found through the shards' cursors), with its age.
		clk.Set(t0.Add(time.Hour))
		var old map[string]any
		get(t, ts.URL+"/api/top", &old)
		if old["found"] != true || old["window_end"] != "2026-11-22T09:41:50Z" || old["age_seconds"] != float64(3550) {
			t.Errorf("top an hour later: %v", old)
		}
	})

	t.Run("bots", func(t *testing.T) {
		clk.Set(t0.Add(15 * time.Second))
		var got dashboard.Bots
		if code := get(t, ts.URL+"/api/bots", &got); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		want := dashboard.Bots{WindowInfo: dashboard.WindowInfo{Found: true, Configured: true, Processor: "botdetect",
			WindowStart: &t0, WindowEnd: ptr(t0.Add(10 * time.Second)), Final: true, Now: got.Now, AgeSeconds: got.AgeSeconds},
			Requests: 55, BotRequests: 7, BotShare: 7.0 / 55, IPs: 5, FlaggedIPs: 1, FlaggedRequests: 7,
			Flagged: []dashboard.BotIP{{IP: "198.51.100.5", Reasons: []string{"ua:crawlerdetect:Googlebot"}, Requests: 7, Bytes: 3500,
				Host: "img.example.com", UA: "crawlerdetect:Googlebot"}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("bots (-want +got):\n%s", diff)
		}
	})

	t.Run("alarms", func(t *testing.T) {
		for _, alarms := range [][]string{nil, {dashboard.ScanAll}} {
			c := cfg
			c.Alarms = alarms
			ts, _ := apiServer(t, c, now)
			var got struct{ Alarms []dashboard.Alarm }
			if code := get(t, ts.URL+"/api/alarms?limit=5", &got); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if len(got.Alarms) != 1 {
				t.Fatalf("alarms %v: got %d alarms, want 1: %+v", alarms, len(got.Alarms), got.Alarms)
			}
			a := got.Alarms[0]
			if a.Alarm != "order-flood" || a.Period != "2026-11-22T09:41:02Z" || a.TriggerCount != 1 || !strings.Contains(a.Text, "6 order lines in 15 s") || a.Mode != "global" || a.Orders < 5 ||
				a.Threshold != 5 || a.RaisedBy == "" || len(a.Top) == 0 {
				t.Errorf("alarms %v: %+v", alarms, a)
			}
		}
	})

	t.Run("data time", func(t *testing.T) {
		// The clock is a year later; the data time base still ends the
		// charts at the newest hit (09:41:44).
		c := cfg
		c.Time = dashboard.DataClock
		ts, _ := apiServer(t, c, t0.AddDate(1, 0, 0))
		var s dashboard.Series
		get(t, ts.URL+"/api/second", &s)
		if want := t0.Add(44 * time.Second); !s.Now.Equal(want) || s.Total != 60 {
			t.Errorf("data time: now %s total %d, want %s 60", s.Now, s.Total, want)
		}
		var top dashboard.Top
		get(t, ts.URL+"/api/top", &top)
		if !top.Found || !top.WindowStart.Equal(t0.Add(40*time.Second)) {
			t.Errorf("data time top: %+v", top)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
