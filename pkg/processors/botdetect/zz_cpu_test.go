package botdetect

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func cpuPer(n int, f func(i int)) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := cpuNow()
	for i := 0; i < n; i++ {
		f(i)
	}
	return (cpuNow() - st) / time.Duration(n)
}

func TestZZCPU(t *testing.T) {
	m := sharedMatcher()
	for _, f := range []string{devicesFile, crawlersFile} {
		uas := readLines(t, f)
		m.match(uas[0])
		t.Logf("%s fast: %v/UA", f, cpuPer(len(uas)*2, func(i int) { m.match(uas[i%len(uas)]) }))
		t.Logf("%s crawlerdetect: %v/UA", f, cpuPer(500, func(i int) { crawlerdetectIsCrawler(uas[(i*7)%len(uas)]) }))
	}
	recs := loadRecords(t, zakerFile, records.FormatCombined)
	d := newTestDetector(t, UAConfig{})
	for i := range recs { d.Classify(recs[i].UserAgent) }
	t.Logf("cached classify: %v", cpuPer(200000, func(i int) { d.Classify(recs[i%len(recs)].UserAgent) }))

	f := newFactory(t, DefaultConfig())
	clock := processortest.NewClock(recs[0].Time)
	p, _ := f(context.Background(), processors.Env{Shard: processors.Shard{ShardID: "s"}, Clock: clock})
	out := &processortest.Recorder{}
	span := recs[len(recs)-1].Time.Sub(recs[0].Time) + time.Minute
	const batch = 500
	run := func(passes int) {
		for pass := 0; pass < passes; pass++ {
			for lo := 0; lo < len(recs); lo += batch {
				bt := recs[lo:min(lo+batch, len(recs))]
				_ = p.Process(context.Background(), bt, out)
				clock.Set(bt[len(bt)-1].Time)
				_ = p.Flush(context.Background(), out)
				out.Reset()
			}
			for j := range recs { recs[j].Time = recs[j].Time.Add(span) }
		}
	}
	run(1)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	a0 := ms.Mallocs
	c := cpuPer(1, func(int) { run(10) })
	runtime.ReadMemStats(&ms)
	t.Logf("process+flush: %v/record, %.2f allocs/record", c/time.Duration(10*len(recs)), float64(ms.Mallocs-a0)/float64(10*len(recs)))
}
