package windowed_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// hitsConfig is the plugin's settings: the window keys, and one of its own.
type hitsConfig struct {
	window.Config `yaml:",inline"`
	Status        int `yaml:"status"` // count only this status; 0 counts all
}

// hits counts hits per window, fleet-wide: the whole plugin.
type hits struct{ status int }

func (h hits) New() *int64 { return new(int64) }
func (h hits) Add(n *int64, r *records.Record) {
	if h.status == 0 || r.Status == h.status {
		*n++
	}
}
func (h hits) Merge(dst, src *int64) *int64                           { *dst += *src; return dst }
func (h hits) Encode(n *int64, f *windowed.Fields)                    { f.SetInt("count", *n) }
func (h hits) Decode(f *windowed.Fields) (*int64, error)              { n, err := f.Int("count"); return &n, err }
func (h hits) Result(n *int64, _ windowed.Info, out *windowed.Output) { out.Global.SetInt("count", *n) }

func hitsPlugin() processors.Plugin {
	return windowed.Define("hits", "hits per window",
		func() hitsConfig { return hitsConfig{Config: windowed.DefaultWindow()} },
		func(cfg hitsConfig, _ processors.AppInfo) (windowed.Spec, windowed.Aggregate[*int64], error) {
			return windowed.Tumbling(cfg.Config, records.KindHit), hits{status: cfg.Status}, nil
		})
}

var app = processors.AppInfo{App: "demo", Stream: "web", Tables: processors.TablesFor("demo")}

func Example() {
	var node yaml.Node
	_ = yaml.Unmarshal([]byte("window: 1m\ngrace: 2s\n"), &node)
	factory, err := hitsPlugin().Build(&node, app)
	if err != nil {
		fmt.Println(err)
		return
	}
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	h := &processortest.Harness{Factory: factory, Store: processortest.NewStore(), Clock: processortest.NewClock(t0),
		Shard: processors.Shard{Stream: "web", ShardID: "shardId-000000000001"}}
	ctx := context.Background()
	p, err := h.Start(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	recs := processortest.Sequence("shardId-000000000001", []records.Record{
		{Kind: records.KindHit, Time: t0.Add(1 * time.Second)},
		{Kind: records.KindHit, Time: t0.Add(30 * time.Second)},
		{Kind: records.KindHit, Time: t0.Add(61 * time.Second)}, // next window; 9:41 is in its grace
		{Kind: records.KindHit, Time: t0.Add(59 * time.Second)}, // within grace: counted in 9:41
		{Kind: records.KindHit, Time: t0.Add(70 * time.Second)}, // watermark passes 9:41:02: 9:41 is due
		{Kind: records.KindHit, Time: t0.Add(10 * time.Second)}, // late: 9:41 has closed
	})
	for _, batch := range [][]records.Record{recs[:5], recs[5:]} {
		if _, err := h.Batch(ctx, p, batch); err != nil {
			fmt.Println(err)
			return
		}
	}
	if _, err := h.Close(ctx, p, processors.ShardEnded); err != nil {
		fmt.Println(err)
		return
	}
	for _, it := range h.Store.Items(app.Tables.Results) {
		if sk, _ := window.GetStr(it, window.AttrSK); sk == window.GlobalSK {
			pk, _ := window.GetStr(it, window.AttrPK)
			n, _ := window.GetInt(it, "count")
			final, _ := window.GetBool(it, window.AttrFinal)
			fmt.Println(pk, n, final)
		}
	}
	// Output:
	// hits#60s#2026-11-22T09:41:00Z 3 true
	// hits#60s#2026-11-22T09:42:00Z 2 true
}

// TestHitsConformance runs the shared kit on the example plugin, which is
// also how a real plugin's test looks.
func TestHitsConformance(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	recs := make([]records.Record, 2000)
	for i := range recs {
		recs[i] = records.Record{Kind: records.KindHit, Time: t0.Add(time.Duration(i)*300*time.Millisecond - time.Duration(i%5)*time.Second), Status: 200 + i%3}
	}
	factory, err := hitsPlugin().Build(nil, app)
	if err != nil {
		t.Fatal(err)
	}
	processortest.Run(t, processortest.Suite{
		Factory: factory, Records: processortest.Sequence("shardId-000000000001", recs),
		Window: windowed.DefaultWindow(), ExactMetrics: true,
	})
}
