package report

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/bench/e2e"
)

func TestSplice(t *testing.T) {
	doc := "# Performance\n\nhand-written\n\n" + BeginMarker + "\nold\n" + EndMarker + "\n\n## How to reproduce\n"
	got, err := Splice(doc, "new\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Performance\n\nhand-written\n\n" + BeginMarker + "\nnew\n" + EndMarker + "\n\n## How to reproduce\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("splice (-want +got):\n%s", diff)
	}
	if got, _ := Splice("# P\n", "x\n"); got != "# P\n\n"+BeginMarker+"\nx\n"+EndMarker+"\n" {
		t.Errorf("splice without markers = %q", got)
	}
	if _, err := Splice(EndMarker+BeginMarker, "x"); err == nil {
		t.Error("markers out of order: no error")
	}
}

// TestChecks: every budget gets a verdict from the inputs, misses say by
// how much and why.
func TestChecks(t *testing.T) {
	b := Bench{
		"BenchmarkChain/zaker/full/warm":        {"cpu-ns/record": {1500, 1400, 1600}, "allocs/record": {2.2}},
		"BenchmarkChain/zaker/full/cold":        {"cpu-ns/record": {1700}, "allocs/record": {2.5}},
		"BenchmarkCrawlerCheck/uncached/a":      {"cpu-ns/record": {3000}},
		"BenchmarkCrawlerCheck/uncached/b":      {"cpu-ns/record": {5700}},
		"BenchmarkCrawlerCheck/zaker":           {"ua-hit-%": {97.3}},
		"BenchmarkDecode/combined/zaker":        {"cpu-ns/record": {400}},
		"BenchmarkProcessor/topn":               {"cpu-ns/record": {350}},
		"BenchmarkChain/orders/recorded/warm":   {"cpu-ns/record": {9000}},
		"BenchmarkCrawlerCheck/uncached/zaker2": {"cpu-ns/record": {2000}},
	}
	run := func(kind e2e.Kind, workers int, cpu float64, rss int64, alarms []float64) e2e.Run {
		return e2e.Run{Kind: kind, Workers: workers, Rep: 1,
			Live:    e2e.Phase{Records: 1000, Seen: 1000, CPUPer1000: cpu},
			Max:     e2e.Phase{Records: 1000, Seen: 1000, CPUPer1000: cpu / 2},
			PeakRSS: rss, PeakRSSMax: 200 << 20, Alarms: e2e.Alarms{Bursts: len(alarms), SamplesMs: alarms}}
	}
	cfg := e2e.Defaults()
	s := &e2e.Session{Config: cfg, Runs: []e2e.Run{
		run(e2e.Consumer, 1, 0.30, 60<<20, []float64{400, 600, 900}),
		run(e2e.Baseline, 1, 0.20, 30<<20, nil),
		run(e2e.Consumer, 2, 0.21, 50<<20, []float64{2000}),
		run(e2e.Baseline, 2, 0.20, 30<<20, nil),
	}}
	got := map[string]string{}
	for _, c := range Checks(Inputs{Bench: b, Session: s}) {
		got[c.Name] = c.Verdict()
		if c.State == Missed && c.Why == "" {
			t.Errorf("%s: missed without a why", c.Name)
		}
	}
	want := map[string]string{
		"full chain, warm User-Agent cache (CPU per record, 1,000 rec/s shard)":            "**missed by 50% (0.50 us over)**",
		"full chain, cold User-Agent cache (CPU per record)":                               "met",
		"full chain allocations per record (worse of warm and cold)":                       "met",
		"crawler check, uncached User-Agent (slowest fixture set)":                         "met",
		"User-Agent cache hit ratio, Zaker log (cold start)":                               "met",
		"pipeline CPU over the counting baseline at the same rate (live, 1 worker(s))":     "**missed by 40 points**",
		"pipeline CPU over the counting baseline at the same rate (live, 2 worker(s))":     "met",
		"worker RSS holding 8 shards (peak VmHWM, 1 worker, live phase at 5000 records/s)": "met",
		"worker RSS holding 8 shards while draining a backlog (max phase, 1 worker)":       "**missed by 56% (72.00 MiB over)**",
		"put-to-alarm p99, 250ms polling (4 alarms)":                                       "**missed by 33% (0.50 s over)**",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}

	out := Generate(Inputs{Bench: b, Session: s, Generated: time.Unix(0, 0), Command: "make bench",
		Profiles: map[string]string{"chain-warm": "flat flat% ..."}})
	for _, want := range []string{"### Budgets", "### Full chain", "| zaker/full/warm | 1500 (±7%)", "### End to end",
		"| shardwatch | 1 |", "+50% (x1.50)", "### Profiles", "**chain-warm**"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
