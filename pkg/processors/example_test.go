package processors_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// hitsConfig is the plugin's settings. The window keys come from
// window.Config, inlined.
type hitsConfig struct {
	window.Config `yaml:",inline"`
	Status        int `yaml:"status"` // count only this status; 0 counts all
}

// hits counts one shard's hits per window. It shows the shape every
// windowed processor has: a Tracker, one partial item per changed window
// on each Flush, a cursor item, and restore in the Factory.
type hits struct {
	cfg     hitsConfig
	app     processors.AppInfo
	env     processors.Env
	keys    window.Keys
	windows *window.Tracker[*int64]
}

func newHits(ctx context.Context, cfg hitsConfig, app processors.AppInfo, env processors.Env) (*hits, error) {
	h := &hits{cfg: cfg, app: app, env: env, keys: window.NewKeys("hits", cfg.Size)}
	h.windows = window.NewTracker(cfg.Config, func() *int64 { return new(int64) })
	// Restore what a previous owner of the shard wrote, so replayed
	// records are skipped instead of counted twice.
	cur, partials, found, err := window.Load(ctx, env.Store, app.Tables.Results, h.keys, env.Shard.ShardID)
	if err != nil || !found {
		return h, err
	}
	h.windows.RestoreCursor(cur)
	for _, it := range partials {
		hd, err := window.ParseHeader(it)
		if err != nil {
			return nil, err
		}
		n, _ := window.GetInt(it, "count")
		h.windows.Restore(hd.Start, &n, hd.Pos, hd.Final)
	}
	return h, nil
}

func (h *hits) Process(_ context.Context, recs []records.Record, _ processors.Emitter) error {
	for i := range recs {
		r := &recs[i]
		if r.Kind != records.KindHit || (h.cfg.Status != 0 && r.Status != h.cfg.Status) {
			continue
		}
		if w, v := h.windows.Add(r.EventTime(), window.PositionOf(&r.Meta)); v == window.Accepted {
			*w.State++
		}
	}
	h.windows.Seal()
	return nil
}

func (h *hits) Flush(_ context.Context, out processors.Emitter) error {
	h.emit(out, h.windows.Expire(h.env.Clock.Now()), true)
	h.emit(out, h.windows.Open(), false)
	h.windows.MarkClean()
	out.Put(window.CursorItem(h.app.Tables.Results, h.keys, h.env.Shard.ShardID, h.windows.Cursor(), h.expires()))
	return nil
}

func (h *hits) emit(out processors.Emitter, ws []*window.Window[*int64], final bool) {
	for _, w := range ws {
		if !final && !w.Dirty() {
			continue
		}
		hd := window.Header{
			PK: h.keys.Window(w.Start), SK: window.ShardSK(h.env.Shard.ShardID), Kind: window.KindPartial,
			Shard: h.env.Shard.ShardID, Start: w.Start, End: w.End, Pos: w.Covered, Final: final,
			ExpiresAt: w.End.Add(h.app.RetentionOrDefault()),
		}
		attrs := hd.Attrs(1)
		attrs["count"] = window.Int(*w.State)
		out.Put(processors.Item{Table: h.app.Tables.Results, Key: hd.PK + "|" + hd.SK, Attrs: attrs})
	}
}

func (h *hits) expires() time.Time {
	return h.windows.Watermark().Add(h.app.RetentionOrDefault())
}

func (h *hits) Close(ctx context.Context, reason processors.Reason, out processors.Emitter) error {
	switch reason {
	case processors.LeaseLost:
		h.windows.Drop() // the new owner redoes the work: emit nothing
		return nil
	case processors.ShardEnded:
		h.emit(out, h.windows.CloseAll(), true)
	}
	return h.Flush(ctx, out) // Shutdown: partials for the next owner
}

// hitsPlugin is how the processor is registered.
func hitsPlugin() processors.Plugin {
	return processors.Plugin{
		Name: "hits",
		Doc:  "hits per window and shard",
		Build: func(settings *yaml.Node, app processors.AppInfo) (processors.Factory, error) {
			cfg := hitsConfig{Config: window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 10 * time.Second}}
			if err := processors.DecodeStrict(settings, "processors.hits", &cfg); err != nil {
				return nil, err
			}
			if err := cfg.Validate("processors.hits"); err != nil {
				return nil, err
			}
			return func(ctx context.Context, env processors.Env) (processors.Processor, error) {
				return newHits(ctx, cfg, app, env)
			}, nil
		},
	}
}

// Example shows a processor written against the API: configured through
// a Registry, driven like the pipeline drives it, results read back.
func Example() {
	reg, err := processors.NewRegistry(hitsPlugin())
	if err != nil {
		fmt.Println(err)
		return
	}
	var settings yaml.Node
	if err := yaml.Unmarshal([]byte("window: 1m\ngrace: 2s\n"), &settings); err != nil {
		fmt.Println(err)
		return
	}
	app := processors.AppInfo{App: "demo", Tables: processors.TablesFor("demo")}
	factory, err := reg.Build("hits", &settings, app)
	if err != nil {
		fmt.Println(err)
		return
	}

	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	h := &processortest.Harness{
		Factory: factory, Store: processortest.NewStore(), Clock: processortest.NewClock(t0),
		Shard: processors.Shard{Stream: "web", ShardID: "shardId-000000000001"}, Logger: zap.NewNop(),
	}
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
		{Kind: records.KindHit, Time: t0.Add(70 * time.Second)}, // watermark passes 9:42:02: 9:41 is due
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
		if kind, _ := window.GetStr(it, window.AttrKind); kind != window.KindPartial {
			continue
		}
		pk, _ := window.GetStr(it, "pk")
		n, _ := window.GetInt(it, "count")
		final, _ := window.GetBool(it, "final")
		fmt.Println(pk, n, final)
	}
	// Output:
	// hits#60s#2026-11-22T09:41:00Z 3 true
	// hits#60s#2026-11-22T09:42:00Z 2 true
}

var _ = types.AttributeValueMemberS{} // the dynamodb types are what items are made of

// TestHitsConformance runs the shared kit on the example processor, which
// is also how a real processor's test looks.
func TestHitsConformance(t *testing.T) {
	app := processors.AppInfo{App: "demo", Tables: processors.TablesFor("demo")}
	factory, err := hitsPlugin().Build(nil, app)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	recs := make([]records.Record, 2000)
	for i := range recs {
		// ~3.3 records/s over 10 minutes, up to 4 s out of order.
		recs[i] = records.Record{Kind: records.KindHit, Status: 200 + i%2*204, Time: t0.Add(time.Duration(i)*300*time.Millisecond - time.Duration(i%5)*time.Second)}
	}
	processortest.Run(t, processortest.Suite{
		Factory: factory,
		Records: processortest.Sequence("shardId-000000000001", recs),
		Window:  window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 10 * time.Second},
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindHit, Time: t0.Add(time.Duration(i) * time.Microsecond)}
		},
		FloodSize: 10_000,
	})
}
