package orderflood

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

func TestZZCPU(t *testing.T) {
	recs := loadRecords(t, ordersFile, records.FormatOrdersCSV)
	for _, mode := range []string{ModeGlobal, ModeCustomer} {
		cfg := DefaultConfig()
		cfg.Mode = mode
		f := newFactory(t, cfg)
		clock := processortest.NewClock(recs[0].Time)
		store := processortest.NewStore()
		var pst processors.Store
		if mode == ModeCustomer {
			pst = store
		}
		p, _ := f(context.Background(), processors.Env{Shard: processors.Shard{ShardID: "s"}, Clock: clock, Store: pst})
		out := &processortest.Recorder{}
		span := recs[len(recs)-1].Time.Sub(recs[0].Time) + time.Hour
		const batch = 500
		var storeCPU, procCPU time.Duration
		run := func(passes int) {
			for pass := 0; pass < passes; pass++ {
				for lo := 0; lo < len(recs); lo += batch {
					bt := recs[lo:min(lo+batch, len(recs))]
					ps := cpuNow()
					_ = p.Process(context.Background(), bt, out)
					procCPU += cpuNow() - ps
					clock.Set(bt[len(bt)-1].Time.Add(time.Second))
					_ = p.Flush(context.Background(), out)
					s := cpuNow()
					_ = store.Apply(out.Items)
					storeCPU += cpuNow() - s
					out.Reset()
				}
				for j := range recs {
					recs[j].Time = recs[j].Time.Add(span)
				}
			}
		}
		runtime.LockOSThread()
		run(1)
		storeCPU, procCPU = 0, 0
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		a0 := ms.Mallocs
		st := cpuNow()
		run(3)
		c := cpuNow() - st - storeCPU
		runtime.ReadMemStats(&ms)
		runtime.UnlockOSThread()
		n := 3 * len(recs)
		t.Logf("%s: process alone %v/record", mode, procCPU/time.Duration(3*len(recs)))
		t.Logf("%s: process+flush %v/record (excluding the fake store's writes), %.2f allocs/record incl. store", mode, c/time.Duration(n), float64(ms.Mallocs-a0)/float64(n))
	}
}
