package bench_test

import (
	"testing"

	"github.com/shardwatch/shardwatch/pkg/processors/botdetect"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// BenchmarkCrawlerCheck is the User-Agent verdict botdetect needs per hit.
// "uncached" classifies distinct User-Agents through a one-entry cache, so
// every lookup misses (the budget: <= 25 us); "zaker" runs the Zaker log's
// User-Agents in order through a cache that starts empty on every pass
// (the cold hit ratio, budget >= 95%, is reported as ua-hit-%).
func BenchmarkCrawlerCheck(b *testing.B) {
	uncached := func(uas []string) func(*testing.B) {
		return func(b *testing.B) {
			det, err := botdetect.NewDetector(botdetect.UAConfig{CacheSize: 1})
			if err != nil {
				b.Fatal(err)
			}
			runBatches(b, workload{n: len(uas), batch: func(lo, hi int) {
				for _, ua := range uas[lo:hi] {
					det.Classify(ua)
				}
			}})
			if s := det.Stats(); s.Hits > s.Misses/100 {
				b.Fatalf("%d cache hits of %d lookups: the input repeats User-Agents", s.Hits, s.Hits+s.Misses)
			}
		}
	}
	b.Run("uncached/devices", uncached(distinct(toStrings(lines(b, devicesFile)))))
	b.Run("uncached/crawlers", uncached(distinct(toStrings(lines(b, crawlersFile)))))
	b.Run("uncached/zaker", func(b *testing.B) { uncached(distinct(zakerAgents(b)))(b) })
	b.Run("zaker", func(b *testing.B) {
		uas := zakerAgents(b)
		var det *botdetect.Detector
		var hits, misses uint64
		runBatches(b, workload{
			n: len(uas),
			start: func() {
				var err error
				if det, err = botdetect.NewDetector(botdetect.UAConfig{}); err != nil {
					b.Fatal(err)
				}
			},
			batch: func(lo, hi int) {
				for _, ua := range uas[lo:hi] {
					det.Classify(ua)
				}
			},
			end: func() {
				s := det.Stats()
				hits, misses = hits+s.Hits, misses+s.Misses
			},
		})
		b.ReportMetric(100*float64(hits)/float64(hits+misses), "ua-hit-%")
	})
}

func toStrings(ls [][]byte) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = string(l)
	}
	return out
}

func distinct(in []string) []string {
	seen := make(map[string]bool, len(in))
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// zakerAgents returns the User-Agent of every Zaker log line, in order.
func zakerAgents(tb testing.TB) []string {
	tb.Helper()
	var d records.CombinedDecoder
	var out []string
	for _, l := range lines(tb, zakerFile) {
		var r records.Record
		if d.Decode(l, &r) == nil {
			out = append(out, r.UserAgent)
		}
	}
	return out
}
