package cloudfront_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/cloudfront"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func TestBytesConfig(t *testing.T) {
	for in, want := range map[string]string{
		"":                                       "",
		"window: 10s\nstep: 5s\ntop_k: 0\n":      "",
		"window: 1m\nstep: 7s\n":                 "processors.cloudfront-bytes.step: must divide the window (1m0s)",
		"step: 500ms\n":                          "processors.cloudfront-bytes.step: must be whole seconds, at least 1s",
		"window: 1h\n":                           "processors.cloudfront-bytes.step: at most 600 steps per window (window 1h0m0s)",
		"max_rows: 0\n":                          "processors.cloudfront-bytes.max_rows: must be >= 1",
		"max_rows: 2000\n":                       "processors.cloudfront-bytes.max_rows: must be <= 1645 with 60 steps per window (item size)",
		"window: 1s\nstep: 1s\nmax_rows: 1600\n": "",
		"top_k: 51\n":                            "processors.cloudfront-bytes.top_k: must be between 0 (no metric) and 50",
		"topk: 5\n":                              "processors.cloudfront-bytes.topk: unknown field (line 1)",
	} {
		if got := configError(t, cloudfront.BytesPlugin(), in); got != want {
			t.Errorf("config %q: error %q, want %q", in, got, want)
		}
	}
}

// pairSecond is one row of the offline sum.
type pairSecond struct {
	Second     time.Time
	Dist, Edge string
}

// TestBytesEqualOfflineSum is the acceptance test of issue 17 part 2: on
// the CloudFront sample, bytes per distribution per edge per second of
// the global items (three shards) equal an independent offline sum.
func TestBytesEqualOfflineSum(t *testing.T) {
	recs := sampleLog(t)
	want := map[pairSecond]cloudfront.Sum{}
	for _, r := range recs {
		k := pairSecond{r.Time.Truncate(time.Second), r.Host, r.Edge}
		s := want[k]
		s.Bytes += r.Bytes
		s.Requests++
		want[k] = s
	}
	cfg := cloudfront.DefaultBytesConfig()
	got := map[pairSecond]cloudfront.Sum{}
	store := runShards(t, build(t, cloudfront.BytesPlugin(), "grace: 2m\n"), recs, 3)
	for _, it := range globals(t, store, cloudfront.BytesName, 3) {
		eb, err := cloudfront.ParseEdgeBytes(it, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(eb.Other) != 0 {
			t.Errorf("rows summed as other: %v", eb.Other)
		}
		start := windowStart(t, it)
		for k, v := range eb.Rows {
			got[pairSecond{start.Add(time.Duration(k.Step) * cfg.Step), k.Distribution, k.Edge}] = v
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bytes per distribution, edge and second (-offline +processor):\n%s", diff)
	}
	var total int64
	for _, v := range want {
		total += v.Bytes
	}
	t.Logf("%d records, %d (second, distribution, edge) rows, %d bytes: equal", len(recs), len(want), total)
}

// TestBytesMetric checks the EdgeBytes datums: per second at most top_k
// pairs plus other per shard, and their sum equals the bytes per second.
func TestBytesMetric(t *testing.T) {
	recs := traffic()
	h := &processortest.Harness{Factory: build(t, cloudfront.BytesPlugin(), "top_k: 2\n"), Store: processortest.NewStore(),
		Clock: processortest.NewClock(recs[0].Time), Shard: processors.Shard{Stream: "web", ShardID: "shardId-000000000001"}}
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var data []processors.Datum
	for off := 0; off < len(recs); off += 50 {
		rec, err := h.Batch(t.Context(), p, recs[off:min(off+50, len(recs))])
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, rec.Data...)
	}
	rec, err := h.Close(t.Context(), p, processors.ShardEnded)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, rec.Data...)
	want := map[time.Time]float64{}
	for _, r := range recs {
		if r.Edge != "" {
			want[r.Time.Truncate(time.Second)] += float64(r.Bytes)
		}
	}
	got := map[time.Time]float64{}
	series := map[time.Time]int{}
	for _, d := range data {
		if d.Name != cloudfront.MetricEdgeBytes {
			continue
		}
		got[d.Time] += d.Value
		series[d.Time]++
		if len(d.Dims) != 3 || d.Dims[0] != (processors.Dim{Name: "Stream", Value: "web"}) {
			t.Fatalf("dims %v", d.Dims)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EdgeBytes per second (-want +got):\n%s", diff)
	}
	for s, n := range series {
		if n > 3 {
			t.Errorf("%s: %d series, want at most top_k + other = 3", s, n)
		}
	}
}

func TestBytesConformance(t *testing.T) {
	recs := traffic()
	processortest.Run(t, processortest.Suite{
		Factory: build(t, cloudfront.BytesPlugin(), "max_rows: 500\n"),
		Records: recs,
		Window:  windowed.DefaultWindow(),
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindHit, Time: trafficT, Bytes: int64(i),
				Host: fmt.Sprintf("d%d.cloudfront.net", i), Edge: edges[i%len(edges)]}
		},
		FloodSize:    20_000,
		MaxStateKeys: 500,
		ExactMetrics: true,
	})
}
