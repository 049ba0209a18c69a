package traffic_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/traffic"
)

func TestAttack(t *testing.T) {
	start := time.Date(2019, 1, 22, 0, 0, 0, 0, time.UTC)
	cfg := traffic.AttackConfig{Seed: 19, Start: start}
	a, err := traffic.Attack(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := traffic.Attack(cfg)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same seed, different attack:\n%s", diff)
	}
	perIP := map[string]int{}
	perMinute := map[string]int{}
	for i, h := range a {
		if i > 0 && h.Time.Before(a[i-1].Time) {
			t.Fatalf("hit %d out of order", i)
		}
		if h.Time.Before(start) || h.Time.After(start.Add(50*time.Hour)) {
			t.Errorf("hit at %v outside the two days", h.Time)
		}
		if h.Referer == "" || h.UserAgent == "" {
			t.Errorf("hit %d without referer or User-Agent", i)
		}
		perIP[h.IP]++
		perMinute[h.IP+h.Time.Truncate(time.Minute).String()]++
	}
	heavy := 0
	for _, n := range perIP {
		if n >= 20 {
			heavy++
		}
	}
	if len(perIP) != 20 || heavy < 14 {
		t.Errorf("%d IPs, %d with >= 20 requests; want 20 and >= 14", len(perIP), heavy)
	}
	for k, n := range perMinute {
		if n > 15 { // 11/min with -25% jitter on the gaps
			t.Errorf("%s: %d requests in a minute", k, n)
		}
	}
	if _, err := traffic.Attack(traffic.AttackConfig{}); err == nil {
		t.Error("no start time: want an error")
	}
}
