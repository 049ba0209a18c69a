package cloudfront_test

import (
	"testing"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/cloudfront"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
)

// BenchmarkProcess measures Process (no Flush) per record on the
// synthetic traffic, warm (caches and maps filled), in batches of 500.
func BenchmarkProcess(b *testing.B) {
	for _, p := range []processors.Plugin{cloudfront.BytesPlugin(), cloudfront.BotsPlugin(), cloudfront.CachePlugin()} {
		b.Run(p.Name, func(b *testing.B) {
			recs := traffic()
			h := &processortest.Harness{Factory: build(b, p, "grace: 1h\n"), Store: processortest.NewStore(),
				Clock: processortest.NewClock(recs[0].Time), Shard: processors.Shard{Stream: "web", ShardID: "shardId-000000000001"}}
			proc, err := h.Start(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			rec := &processortest.Recorder{}
			if err := proc.Process(b.Context(), recs, rec); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for n := 1; b.Loop(); n++ {
				b.StopTimer() // new positions: the runner skips replayed records
				for i := range recs {
					recs[i].Meta.SequenceNumber = processortest.SeqNum(n*len(recs) + i)
				}
				b.StartTimer()
				for off := 0; off < len(recs); off += 500 {
					_ = proc.Process(b.Context(), recs[off:min(off+500, len(recs))], rec)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
		})
	}
}
