package histogram

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Name is the plugin name (the key under "processors:" in the config).
const Name = "histogram"

// Plugin returns the histogram plugin for a processors.Registry.
func Plugin() processors.Plugin {
	return processors.Plugin{
		Name: Name,
		Doc:  "response-size histogram per tumbling window and host, plus the largest responses by path, global across shards",
		Build: func(settings *yaml.Node, app processors.AppInfo) (processors.Factory, error) {
			cfg := DefaultConfig()
			if err := processors.DecodeStrict(settings, "processors."+Name, &cfg); err != nil {
				return nil, err
			}
			if err := cfg.Validate("processors." + Name); err != nil {
				return nil, err
			}
			return NewFactory(cfg, app), nil
		},
	}
}

// NewFactory returns the Factory of processors with a validated cfg.
func NewFactory(cfg Config, app processors.AppInfo) processors.Factory {
	return func(ctx context.Context, env processors.Env) (processors.Processor, error) {
		return New(ctx, cfg, app, env)
	}
}

// mergeAttempts bounds the merges of one finalised window.
const mergeAttempts = 10

// pending is a window this shard finalised. Its global item is merged
// again on later Flushes until every merged partial is final and the
// result stable, so a concurrent finalisation by another shard (which
// saw this shard's partial before it was final) cannot leave a stale
// global item behind.
type pending struct {
	own            Partial
	tries          int
	merged, finals int   // of the global written last; merged 0 = none yet
	requests       int64 // ditto
}

// Processor is one shard lease's histogram instance.
type Processor struct {
	cfg     Config
	edges   []int64
	app     processors.AppInfo
	env     processors.Env
	log     *zap.Logger
	keys    window.Keys
	windows *window.Tracker[*state]
	pending []*pending
	late    int64 // late records not yet reported
}

var _ processors.Processor = (*Processor)(nil)

// New builds a processor for env.Shard and restores what a previous owner
// of the shard wrote.
func New(ctx context.Context, cfg Config, app processors.AppInfo, env processors.Env) (*Processor, error) {
	p := &Processor{
		cfg: cfg, edges: cfg.Edges(), app: app, env: env,
		log:  env.Logger.With(zap.String("processor", Name), zap.String("shard_id", env.Shard.ShardID)),
		keys: Keys(cfg.Name, cfg.Size),
	}
	p.windows = window.NewTracker(cfg.Config, p.newState)
	if err := p.restore(ctx); err != nil {
		return nil, fmt.Errorf("histogram: shard %s: %w", env.Shard.ShardID, err)
	}
	return p, nil
}

func (p *Processor) newState() *state { return newState(len(p.edges)+1, p.cfg.MaxHosts, p.cfg.TopK) }

func (p *Processor) restore(ctx context.Context) error {
	cur, items, found, err := window.Load(ctx, p.env.Store, p.app.Tables.Results, p.keys, p.env.Shard.ShardID)
	if err != nil || !found {
		return err
	}
	p.windows.RestoreCursor(cur)
	for _, it := range items {
		part, err := ParsePartial(it)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if !part.Final && !slices.Equal(part.Edges, p.edges) {
			// The bucket bounds changed since the partial was written: its
			// counts cannot be re-bucketed. Keep it as it is and close the
			// window, so its later records count as late, not twice.
			p.log.Warn("bucket bounds changed: window closed as restored",
				zap.String("window", window.FormatTime(part.Start)), zap.Int64s("partial_edges", part.Edges))
			part.Final = true
		}
		if part.Final {
			p.windows.Restore(part.Start, nil, part.Pos, true)
			continue
		}
		st := p.newState()
		st.restore(&part)
		p.windows.Restore(part.Start, st, part.Pos, false)
	}
	p.log.Debug("restored", zap.Int("partials", len(items)), zap.Stringer("windows", p.windows))
	return nil
}

// Process counts the hits of recs per window, host and size bucket.
func (p *Processor) Process(_ context.Context, recs []records.Record, _ processors.Emitter) error {
	for i := range recs {
		r := &recs[i]
		if r.Kind != records.KindHit {
			continue
		}
		w, v := p.windows.Add(r.EventTime(), window.PositionOf(&r.Meta))
		if v != window.Accepted {
			continue
		}
		b := max(r.Bytes, 0)
		st := w.State
		st.add(r.Host, bucketOf(p.edges, b), b)
		st.top.offer(r.Path, r.Host, b)
	}
	p.windows.Seal()
	return nil
}

// Flush emits partials of changed windows, final partials and global
// items of closed ones, and the cursor.
func (p *Processor) Flush(ctx context.Context, out processors.Emitter) error {
	p.flush(ctx, out, p.windows.Expire(p.env.Clock.Now()))
	return nil
}

func (p *Processor) flush(ctx context.Context, out processors.Emitter, closed []*window.Window[*state]) {
	emitted := false
	// Re-merge windows finalised by an earlier Flush first.
	kept := p.pending[:0]
	for _, pd := range p.pending {
		if p.merge(ctx, out, pd) {
			emitted = true
		}
		switch {
		case pd.tries < mergeAttempts:
			kept = append(kept, pd)
		case pd.merged == 0:
			p.log.Error("global merge abandoned", zap.String("window", window.FormatTime(pd.own.Start)), zap.Int("tries", pd.tries))
		}
	}
	clear(p.pending[len(kept):])
	p.pending = kept

	for _, w := range closed {
		part := p.partial(w, true)
		out.Put(PartialItem(p.app.Tables.Results, p.keys, &part, p.expires(w.End)))
		pd := &pending{own: part}
		p.merge(ctx, out, pd)
		p.pending = append(p.pending, pd)
		emitted = true
	}
	for _, w := range p.windows.Open() {
		if !w.Dirty() {
			continue
		}
		part := p.partial(w, false)
		out.Put(PartialItem(p.app.Tables.Results, p.keys, &part, p.expires(w.End)))
		emitted = true
	}
	p.windows.MarkClean()
	if emitted {
		out.Put(window.CursorItem(p.app.Tables.Results, p.keys, p.env.Shard.ShardID, p.windows.Cursor(),
			p.expires(p.windows.Watermark())))
	}
	p.late += p.windows.TakeCounts().Late
	if p.late > 0 {
		out.Metric(processors.Datum{
			Name: "LateRecords", Unit: "Count", Time: p.env.Clock.Now().Truncate(time.Second),
			Dims:  []processors.Dim{{Name: "Stream", Value: p.env.Shard.Stream}, {Name: "Processor", Value: Name}},
			Value: float64(p.late), Count: 1,
		})
		p.late = 0
	}
}

// merge writes the global item of pd's window from every shard's partial,
// pd.own standing in for this shard's (not yet durable) final. It reports
// whether it emitted; a failed query is retried on the next Flush.
func (p *Processor) merge(ctx context.Context, out processors.Emitter, pd *pending) bool {
	pd.tries++
	pk := p.keys.Window(pd.own.Start)
	items, err := p.env.Store.Query(ctx, p.app.Tables.Results, window.AttrPK, pk, window.AttrSK,
		window.ShardSK(""), window.ShardSK("\U0010FFFF"))
	if err != nil {
		p.log.Warn("global merge: query partials", zap.String("pk", pk), zap.Int("try", pd.tries), zap.Error(err))
		return false
	}
	parts := make([]Partial, 0, len(items)+1)
	for _, it := range items {
		part, err := ParsePartial(it)
		if err != nil {
			p.log.Warn("global merge: skip malformed partial", zap.String("pk", pk), zap.Error(err))
			continue
		}
		if part.Shard != pd.own.Shard {
			parts = append(parts, part)
		}
	}
	// This shard's partial first: the merge keeps the bucket bounds of the
	// first partial, and ours are the configured ones.
	parts = append([]Partial{pd.own}, parts...)
	g := Merge(parts, p.cfg.MaxHosts, p.cfg.TopK)
	if pd.merged == g.Merged && pd.finals == g.Finals && pd.requests == g.Total.Requests() {
		if g.Finals == g.Merged {
			pd.tries = mergeAttempts // complete and stable: done
		}
		return false
	}
	out.Put(GlobalItem(p.app.Tables.Results, p.keys, &g, pd.own.Pos, p.expires(g.End)))
	pd.merged, pd.finals, pd.requests = g.Merged, g.Finals, g.Total.Requests()
	return true
}

func (p *Processor) partial(w *window.Window[*state], final bool) Partial {
	part := Partial{Shard: p.env.Shard.ShardID, Start: w.Start, End: w.End, Pos: w.Covered, Final: final, Edges: p.edges}
	w.State.partial(&part)
	return part
}

func (p *Processor) expires(t time.Time) time.Time { return t.Add(p.app.RetentionOrDefault()) }

// Close ends the lease: finals for every window when the shard ended,
// partials for the next owner on shutdown, nothing when the lease was lost.
func (p *Processor) Close(ctx context.Context, reason processors.Reason, out processors.Emitter) error {
	switch reason {
	case processors.LeaseLost:
		p.windows.Drop()
		p.pending = nil
		return nil
	case processors.ShardEnded:
		p.flush(ctx, out, p.windows.CloseAll())
		return nil
	default:
		return p.Flush(ctx, out)
	}
}

// StateSize returns the hosts and largest responses held over all open
// windows (for the conformance kit's bounded-state check).
func (p *Processor) StateSize() int {
	n := 0
	for _, w := range p.windows.Open() {
		n += w.State.size()
	}
	return n
}
