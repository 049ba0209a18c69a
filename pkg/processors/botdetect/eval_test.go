package botdetect

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/internal/traffic"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Evaluation (issue 19, make eval-bots): the behaviour detector on real
// background traffic (../shared/data access logs) with a scripted
// low-rate form attack injected by internal/traffic.Attack.

// evalRecoveryHours: an attacking IP counts as caught when a window that
// starts within this long after its first request flags it.
const evalRecoveryHours = 6

// ipEval is what the evaluation knows about one client IP.
type ipEval struct {
	requests  int
	first     time.Time
	crawlerUA bool // sent a bot User-Agent at least once
	attack    bool
	flagged   time.Time // start of the first window that flagged it
	reasons   map[string]bool
	score     float64
}

// evalRun feeds recs (any order) through one shard in batches of 500 with
// the clock following event time, lets every window close, and returns
// what the global items say per IP.
func evalRun(t *testing.T, cfg Config, recs []records.Record) (map[string]*ipEval, []Result) {
	t.Helper()
	slices.SortStableFunc(recs, func(a, b records.Record) int { return a.Time.Compare(b.Time) })
	recs = processortest.Sequence("shardId-000000000001", recs)
	det, err := NewDetector(cfg.UserAgents)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFactory(cfg, testApp, det)
	if err != nil {
		t.Fatal(err)
	}
	store := processortest.NewStore()
	h := &processortest.Harness{Factory: f, Store: store, Clock: processortest.NewClock(recs[0].Time),
		Shard: processors.Shard{Stream: "stream", ShardID: "shardId-000000000001", WorkerID: "w"}}
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(recs); i += 500 {
		b := recs[i:min(i+500, len(recs))]
		h.Clock.Set(b[len(b)-1].Time)
		if _, err := h.Batch(t.Context(), p, b); err != nil {
			t.Fatal(err)
		}
	}
	h.Clock.Advance(10 * time.Minute)
	if _, err := h.Flush(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Close(t.Context(), p, processors.Shutdown); err != nil {
		t.Fatal(err)
	}
	ips := map[string]*ipEval{}
	for i := range recs {
		r := &recs[i]
		e := ips[r.ClientIP]
		if e == nil {
			e = &ipEval{first: r.Time, reasons: map[string]bool{}}
			ips[r.ClientIP] = e
		}
		e.requests++
		if det.Classify(r.UserAgent).Bot {
			e.crawlerUA = true
		}
	}
	var results []Result
	for _, it := range store.Items(testApp.Tables.Results) {
		if sk, _ := window.GetStr(it, window.AttrSK); sk != window.GlobalSK {
			continue
		}
		r, err := ParseGlobal(it)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
		for _, fl := range r.Flagged {
			e := ips[fl.IP]
			if e == nil {
				continue
			}
			if e.flagged.IsZero() || r.Start.Before(e.flagged) {
				e.flagged = r.Start
			}
			for _, rs := range fl.Reasons {
				e.reasons[rs] = true
			}
			e.score = max(e.score, fl.Score)
		}
	}
	return ips, results
}

// attackRecords returns the scripted attack as records, starting at
// start.
func attackRecords(t *testing.T, seed uint64, start time.Time) []records.Record {
	t.Helper()
	hits, err := traffic.Attack(traffic.AttackConfig{Seed: seed, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]records.Record, len(hits))
	for i, h := range hits {
		out[i] = records.Record{Kind: records.KindHit, Time: h.Time, ClientIP: h.IP, Method: h.Method, Path: h.Path,
			Protocol: "HTTP/1.1", Status: h.Status, Bytes: h.Bytes, Referer: h.Referer, UserAgent: h.UserAgent}
	}
	return out
}

type evalSource struct {
	name                          string
	ips, nonCrawler, falsePos     int
	attackIPs, caught             int
	requests, libRequests, botReq int64
	misses, fps                   []string
}

func (s *evalSource) specificity() float64 {
	if s.nonCrawler == 0 {
		return 1
	}
	return 1 - float64(s.falsePos)/float64(s.nonCrawler)
}

func (s *evalSource) recall() float64 {
	if s.attackIPs == 0 {
		return 0
	}
	return float64(s.caught) / float64(s.attackIPs)
}

// score summarises a run: background IPs without a bot User-Agent that
// were flagged are false positives; attacking IPs with >= 20 requests
// flagged within evalRecoveryHours of their first request are caught.
func score(name string, ips map[string]*ipEval, results []Result) *evalSource {
	s := &evalSource{name: name}
	for _, r := range results {
		s.requests += r.Requests
		s.libRequests += r.LibRequests
		s.botReq += r.BotRequests
	}
	for _, ip := range slices.Sorted(maps.Keys(ips)) {
		e := ips[ip]
		if e.attack {
			if e.requests < 20 {
				continue
			}
			s.attackIPs++
			if !e.flagged.IsZero() && e.flagged.Before(e.first.Add(evalRecoveryHours*time.Hour)) {
				s.caught++
			} else {
				s.misses = append(s.misses, fmt.Sprintf("%s (%d requests, score %.2f, flagged %v)", ip, e.requests, e.score, !e.flagged.IsZero()))
			}
			continue
		}
		s.ips++
		if e.crawlerUA {
			continue
		}
		s.nonCrawler++
		if !e.flagged.IsZero() {
			s.falsePos++
			s.fps = append(s.fps, fmt.Sprintf("%s (%d requests, score %.2f: %s)", ip, e.requests, e.score,
				strings.Join(slices.Sorted(maps.Keys(e.reasons)), ",")))
		}
	}
	return s
}

func (s *evalSource) log(t *testing.T) {
	t.Helper()
	lib := 0.0
	if s.requests > 0 {
		lib = 100 * float64(s.libRequests) / float64(s.requests)
	}
	line := fmt.Sprintf("%-22s IPs %4d, non-crawler %4d, flagged %3d: specificity %.2f%%; library share %.2f%% of requests",
		s.name, s.ips, s.nonCrawler, s.falsePos, 100*s.specificity(), lib)
	if s.attackIPs > 0 {
		line += fmt.Sprintf("; attack recall %d/%d = %.1f%% (within %dh)", s.caught, s.attackIPs, 100*s.recall(), evalRecoveryHours)
	}
	t.Log(line)
	for _, m := range s.misses {
		t.Logf("  missed attacker: %s", m)
	}
	for _, m := range s.fps {
		t.Logf("  flagged non-crawler: %s", m)
	}
}

func TestEval(t *testing.T) {
	_ = testenv.SharedDataDir(t) // skips without ../shared/data
	cfg := DefaultConfig()
	type src struct {
		name   string
		file   string
		attack bool
	}
	var zaker, attacked *evalSource
	for _, sc := range []src{
		{"zaker", zakerFile, false},
		{"elastic-apache", elasticFile, false},
		{"zaker+attack", zakerFile, true},
		{"elastic+attack", elasticFile, true},
	} {
		recs := loadRecords(t, sc.file, records.FormatCombined)
		var attackIPs map[string]bool
		if sc.attack {
			start := slices.MinFunc(recs, func(a, b records.Record) int { return a.Time.Compare(b.Time) }).Time
			atk := attackRecords(t, 19, start)
			attackIPs = map[string]bool{}
			for _, r := range atk {
				attackIPs[r.ClientIP] = true
			}
			recs = append(recs, atk...)
		}
		ips, results := evalRun(t, cfg, recs)
		for ip := range attackIPs {
			ips[ip].attack = true
		}
		s := score(sc.name, ips, results)
		s.log(t)
		switch sc.name {
		case "zaker":
			zaker = s
		case "zaker+attack":
			attacked = s
		}
	}
	if fp := 1 - zaker.specificity(); fp > 0.02 {
		t.Errorf("Zaker: %.2f%% of non-crawler IPs flagged, target <= 2%%", 100*fp)
	}
	if attacked.recall() < 0.6 {
		t.Errorf("attack recall %.1f%%, target >= 60%%", 100*attacked.recall())
	}
}

// TestProfileMemory measures the profile memory per 10,000 IPs (the
// README's bound) and the size of their persisted encoding.
func TestProfileMemory(t *testing.T) {
	cfg := defaultProfileConfig()
	f := &factory{cfg: DefaultConfig()}
	var before, after runtime.MemStats
	// Two collections: the first moves sync.Pool contents to the victim
	// cache, the second frees them. With one, a pool emptied between the
	// readings made the heap shrink and the difference wrap around.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	ps := newProfiles(cfg)
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := range 10_000 {
		p := ps.get(fmt.Sprintf("203.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		for j := range 5 {
			o := observe{at: t0 + int64(i*10+j*1000), kind: f.kindOf("GET", "/p"), path: fmt.Sprintf("/p/%d", j), referred: j > 0, status: 200}
			ps.add(p, &o)
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	per10k := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if per10k <= 0 {
		t.Fatalf("heap shrank by %d B while building 10,000 profiles: the measurement is disturbed", -per10k)
	}
	enc := len(appendProfiles(nil, ps.list))
	t.Logf("profiles: %.2f MiB heap per 10,000 IPs (%d B each); persisted %.0f KiB (%d B each)",
		float64(per10k)/(1<<20), per10k/10_000, float64(enc)/1024, enc/10_000)
	if per10k > 4<<20 {
		t.Errorf("profile memory %d B per 10,000 IPs, README says <= 4 MiB", per10k)
	}
	runtime.KeepAlive(ps)
}
