package counters

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Name is the plugin name.
const Name = "counters"

// Event names counted for every record, besides clickstream event names.
const (
	EventHit      = "hit"    // every web hit
	EventOrder    = "order"  // every order line
	Event4xx      = "4xx"    // hits with a 4xx status
	Event5xx      = "5xx"    // hits with a 5xx status
	EventOther    = "_other" // clickstream names beyond max_events
	EventInvalid  = "_invalid"
	reservedAlias = "event_" // prefix for clickstream names equal to the above
	maxEventLen   = 64
)

// Plugin returns the counters plugin for a processors.Registry.
func Plugin() processors.Plugin {
	return processors.Plugin{
		Name: Name,
		Doc:  "running counts per event name (hit, order, 4xx, 5xx, clickstream events) per minute and hour, summed over shards",
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

// NewFactory returns the Factory for a validated cfg.
func NewFactory(cfg Config, app processors.AppInfo) processors.Factory {
	return func(ctx context.Context, env processors.Env) (processors.Processor, error) {
		return New(ctx, cfg, app, env)
	}
}

// counts is one bucket's per-shard state.
type counts struct {
	hit, order, c4xx, c5xx, other, invalid int64
	events                                 map[string]int64
	unpublished                            bool // changed since its running totals were merged
}

func (c *counts) snapshot() map[string]int64 {
	m := make(map[string]int64, len(c.events)+6)
	for k, v := range map[string]int64{EventHit: c.hit, EventOrder: c.order, Event4xx: c.c4xx, Event5xx: c.c5xx, EventOther: c.other, EventInvalid: c.invalid} {
		if v != 0 {
			m[k] = v
		}
	}
	for k, v := range c.events {
		m[k] = v
	}
	return m
}

// mergeAttempts bounds the re-merges of a finalised bucket.
const mergeAttempts = 10

// pending is a bucket this shard finalised; it is merged again on later
// Flushes until every merged partial is final and the result stable, so a
// concurrent finalisation by another shard cannot leave a stale total.
type pending struct {
	own   Partial
	tries int
	last  *Totals // last written
}

type resolution struct {
	Resolution
	keys    window.Keys
	windows *window.Tracker[*counts]
	pending []*pending
}

// Processor is one shard lease's counters instance.
type Processor struct {
	cfg         Config
	app         processors.AppInfo
	env         processors.Env
	log         *zap.Logger
	res         []*resolution
	lastPublish time.Time
	late        int64
}

var _ processors.Processor = (*Processor)(nil)

// New builds a processor for env.Shard, restoring a previous owner's
// partials.
func New(ctx context.Context, cfg Config, app processors.AppInfo, env processors.Env) (*Processor, error) {
	p := &Processor{cfg: cfg, app: app, env: env,
		log: env.Logger.With(zap.String("processor", Name), zap.String("shard_id", env.Shard.ShardID))}
	for _, r := range []struct {
		on  bool
		res Resolution
	}{{cfg.Seconds, Second}, {cfg.Minutes, Minute}, {cfg.Hours, Hour}} {
		if !r.on {
			continue
		}
		wc := window.Config{Size: r.res.Size, Grace: cfg.Grace, Idle: cfg.Idle}
		res := &resolution{Resolution: r.res, keys: r.res.Keys(),
			windows: window.NewTracker(wc, func() *counts { return &counts{} })}
		if err := p.restore(ctx, res); err != nil {
			return nil, fmt.Errorf("counters: shard %s: restore %s buckets: %w", env.Shard.ShardID, r.res.Name, err)
		}
		p.res = append(p.res, res)
	}
	return p, nil
}

func (p *Processor) restore(ctx context.Context, res *resolution) error {
	cur, items, found, err := window.Load(ctx, p.env.Store, p.app.Tables.Results, res.keys, p.env.Shard.ShardID)
	if err != nil || !found {
		return err
	}
	res.windows.RestoreCursor(cur)
	for _, it := range items {
		part, err := ParsePartial(it)
		if err != nil {
			return err
		}
		if part.Final {
			res.windows.Restore(part.Start, nil, part.Pos, true)
			continue
		}
		c := &counts{events: map[string]int64{}}
		for k, n := range part.Counts {
			switch k {
			case EventHit:
				c.hit = n
			case EventOrder:
				c.order = n
			case Event4xx:
				c.c4xx = n
			case Event5xx:
				c.c5xx = n
			case EventOther:
				c.other = n
			case EventInvalid:
				c.invalid = n
			default:
				c.events[k] = n
			}
		}
		res.windows.Restore(part.Start, c, part.Pos, false)
	}
	return nil
}

// Process counts recs into the open buckets.
func (p *Processor) Process(_ context.Context, recs []records.Record, _ processors.Emitter) error {
	for i := range recs {
		r := &recs[i]
		if r.Kind != records.KindHit && r.Kind != records.KindOrder {
			continue
		}
		et, pos := r.EventTime(), window.PositionOf(&r.Meta)
		for _, res := range p.res {
			if w, v := res.windows.Add(et, pos); v == window.Accepted {
				p.count(w.State, r)
			}
		}
	}
	for _, res := range p.res {
		res.windows.Seal()
	}
	return nil
}

func (p *Processor) count(c *counts, r *records.Record) {
	c.unpublished = true
	if r.Kind == records.KindOrder {
		c.order++
		return
	}
	c.hit++
	switch {
	case r.Status >= 400 && r.Status < 500:
		c.c4xx++
	case r.Status >= 500 && r.Status < 600:
		c.c5xx++
	}
	if r.Event == "" {
		return
	}
	if n, ok := c.events[r.Event]; ok { // aliased lookup: no allocation
		c.events[r.Event] = n + 1
		return
	}
	name, ok := eventName(r.Event)
	switch {
	case !ok:
		c.invalid++
		return
	case len(c.events) >= p.cfg.MaxEvents:
		if _, seen := c.events[name]; !seen {
			c.other++
			return
		}
	}
	if c.events == nil {
		c.events = make(map[string]int64, 8)
	}
	c.events[name]++
}

// eventName vets a clickstream event name for use as a partition key:
// valid UTF-8, no control characters, at most 64 bytes; names of the
// built-in counters get a prefix so they cannot be mixed up.
func eventName(s string) (string, bool) {
	if len(s) > maxEventLen || !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return "", false
	}
	switch s {
	case EventHit, EventOrder, Event4xx, Event5xx, EventOther, EventInvalid:
		return reservedAlias + s, true
	}
	if strings.HasPrefix(s, reservedAlias) {
		return reservedAlias + s, true
	}
	return strings.Clone(s), true
}

// Flush writes partials of changed buckets, final partials and counter
// items of closed buckets, and (every update_interval) the running totals
// of open buckets.
func (p *Processor) Flush(ctx context.Context, out processors.Emitter) error {
	now := p.env.Clock.Now()
	publish := now.Sub(p.lastPublish) >= p.cfg.UpdateInterval
	if publish {
		p.lastPublish = now
	}
	for _, res := range p.res {
		p.flush(ctx, out, res, res.windows.Expire(now), publish)
	}
	p.reportLate(out, now)
	return nil
}

func (p *Processor) flush(ctx context.Context, out processors.Emitter, res *resolution, closed []*window.Window[*counts], publish bool) {
	emitted := false
	kept := res.pending[:0]
	for _, pd := range res.pending {
		if p.merge(ctx, out, res, pd) {
			emitted = true
		}
		if pd.tries < mergeAttempts {
			kept = append(kept, pd)
		}
	}
	clear(res.pending[len(kept):])
	res.pending = kept

	for _, w := range closed {
		part := p.partial(w, true)
		out.Put(PartialItem(p.app.Tables.Results, res.Resolution, &part, p.expires(res, w.End)))
		pd := &pending{own: part}
		p.merge(ctx, out, res, pd)
		res.pending = append(res.pending, pd)
		emitted = true
	}
	for _, w := range res.windows.Open() {
		if w.Dirty() {
			part := p.partial(w, false)
			out.Put(PartialItem(p.app.Tables.Results, res.Resolution, &part, p.expires(res, w.End)))
			emitted = true
		}
		if publish && w.State.unpublished {
			// Running totals of an open bucket; they are not final.
			part := p.partial(w, false)
			p.merge(ctx, out, res, &pending{own: part, tries: mergeAttempts})
			w.State.unpublished = false
		}
	}
	res.windows.MarkClean()
	if emitted {
		out.Put(window.CursorItem(p.app.Tables.Results, res.keys, p.env.Shard.ShardID, res.windows.Cursor(),
			p.expires(res, res.windows.Watermark())))
	}
	p.late += res.windows.TakeCounts().Late
}

// merge sums every shard's partial of pd's bucket, pd.own standing in for
// this shard's, and writes the counter items when they changed. Query
// failures are logged and retried on the next Flush.
func (p *Processor) merge(ctx context.Context, out processors.Emitter, res *resolution, pd *pending) bool {
	pd.tries++
	pk := res.keys.Window(pd.own.Start)
	items, err := p.env.Store.Query(ctx, p.app.Tables.Results, window.AttrPK, pk, window.AttrSK,
		window.ShardSK(""), window.ShardSK("\U0010FFFF"))
	if err != nil {
		p.log.Warn("merge: query partials", zap.String("pk", pk), zap.Int("try", pd.tries), zap.Error(err))
		return false
	}
	parts := make([]Partial, 0, len(items)+1)
	for _, it := range items {
		part, err := ParsePartial(it)
		if err != nil {
			p.log.Warn("merge: skip malformed partial", zap.String("pk", pk), zap.Error(err))
			continue
		}
		if part.Shard != pd.own.Shard {
			parts = append(parts, part)
		}
	}
	parts = append(parts, pd.own)
	t := Merge(parts)
	if pd.last != nil && sameTotals(pd.last, &t) {
		if t.Finals == t.Merged {
			pd.tries = mergeAttempts // complete and stable: done
		}
		return false
	}
	for _, it := range CounterItems(p.app.Tables.Counters, res.Resolution, &t, p.expires(res, t.End)) {
		out.Put(it)
	}
	pd.last = &t
	return true
}

func sameTotals(a, b *Totals) bool {
	if a.Merged != b.Merged || a.Finals != b.Finals || len(a.Counts) != len(b.Counts) {
		return false
	}
	for k, v := range a.Counts {
		if b.Counts[k] != v {
			return false
		}
	}
	return true
}

func (p *Processor) partial(w *window.Window[*counts], final bool) Partial {
	return Partial{Shard: p.env.Shard.ShardID, Start: w.Start, End: w.End, Pos: w.Covered, Final: final, Counts: w.State.snapshot()}
}

func (p *Processor) expires(res *resolution, t time.Time) time.Time {
	if res.Size == Second.Size {
		return t.Add(p.cfg.SecondsRetention)
	}
	if p.cfg.Retention > 0 {
		return t.Add(p.cfg.Retention)
	}
	return t.Add(p.app.RetentionOrDefault())
}

func (p *Processor) reportLate(out processors.Emitter, now time.Time) {
	if p.late == 0 {
		return
	}
	out.Metric(processors.Datum{
		Name: "LateRecords", Unit: "Count", Time: now.Truncate(time.Second),
		Dims:  []processors.Dim{{Name: "Stream", Value: p.env.Shard.Stream}, {Name: "Processor", Value: Name}},
		Value: float64(p.late), Count: 1,
	})
	p.late = 0
}

// Close ends the lease: final buckets when the shard ended, partials for
// the next owner on shutdown, nothing when the lease was lost.
func (p *Processor) Close(ctx context.Context, reason processors.Reason, out processors.Emitter) error {
	switch reason {
	case processors.LeaseLost:
		for _, res := range p.res {
			res.windows.Drop()
			res.pending = nil
		}
		return nil
	case processors.ShardEnded:
		for _, res := range p.res {
			p.flush(ctx, out, res, res.windows.CloseAll(), false)
		}
		p.reportLate(out, p.env.Clock.Now())
		return nil
	default:
		return p.Flush(ctx, out)
	}
}

// StateSize returns the event names held over all open buckets.
func (p *Processor) StateSize() int {
	n := 0
	for _, res := range p.res {
		for _, w := range res.windows.Open() {
			n += len(w.State.events) + 6
		}
	}
	return n
}
