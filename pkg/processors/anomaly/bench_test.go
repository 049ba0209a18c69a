package anomaly_test

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/rcf"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// benchRun feeds b.N records (cycled from recs, re-timed so event time
// keeps advancing) through one lease, Process and Flush per 500 records.
func benchRun(b *testing.B, f processors.Factory, recs []records.Record, step time.Duration) {
	ctx := b.Context()
	h := &processortest.Harness{Factory: f, Store: processortest.NewStore(), Clock: processortest.NewClock(t0),
		Shard: processors.Shard{Stream: "web", ShardID: "shardId-000000000001", WorkerID: "w1"}}
	p, err := h.Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]records.Record, 0, 500)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		batch = batch[:0]
		for ; i < b.N && len(batch) < cap(batch); i++ {
			r := recs[i%len(recs)]
			r.Time = t0.Add(time.Duration(i) * step)
			r.Meta.SequenceNumber = processortest.SeqNum(i)
			batch = append(batch, r)
		}
		h.Clock.Set(batch[len(batch)-1].Time.Add(time.Second))
		if _, err := h.Batch(ctx, p, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSON is the cost per scored record (input json, KDA default
// forest, four keys, IoT readings).
func BenchmarkJSON(b *testing.B) {
	recs, _ := iot(b, 10_000, 100)
	benchRun(b, build(b, "snapshot_interval: 1h\n"), recs, 10*time.Millisecond)
}

// BenchmarkTraffic is the cost per hit (input traffic, default forest,
// one host at 10 hits per second: one scored point per 10 hits).
func BenchmarkTraffic(b *testing.B) {
	recs := accessLog(b)
	benchRun(b, build(b, "input: traffic\nsnapshot_interval: 1h\n"), slices.Clip(recs[:5000]), 100*time.Millisecond)
}

// TestModelMemory reports the measured heap of one model of each input's
// default forest (logged; bounded by rcf.MemoryBytes).
func TestModelMemory(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  rcf.Config
	}{
		{"json", rcf.Config{}},
		{"traffic", rcf.Config{Trees: 50, SampleSize: 128, ShingleSize: 3, Dimensions: 4}},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f, err := rcf.New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float64, tc.cfg.Dimensions+1)
		for i := range 5000 {
			x[0] = float64(i % 97)
			if _, err := f.ScoreUpdate(x[:max(1, tc.cfg.Dimensions)]); err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		snap, err := f.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: model %.2f MB measured (MemoryBytes %.2f MB), snapshot %d KB (bound %d KB)", tc.name,
			float64(after.HeapAlloc-before.HeapAlloc)/1e6, float64(rcf.MemoryBytes(tc.cfg.WithDefaults()))/1e6,
			len(snap)>>10, rcf.MaxSnapshotBytes(tc.cfg.WithDefaults())>>10)
		runtime.KeepAlive(f)
	}
}
