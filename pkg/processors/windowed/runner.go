package windowed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Aggregate is what a windowed plugin supplies: the state of one window
// on one shard, and how to combine, store and report it. The runner calls
// it from one goroutine per shard lease; it never sees the clock, the
// store or item keys.
type Aggregate[S any] interface {
	// New returns the empty state of a newly opened window.
	New() S
	// Add counts one record into the state of the window its event time
	// falls in. Records the runner rejects (late, replayed, undated, or
	// of another kind than Spec.Kinds) never reach Add.
	Add(s S, r *records.Record)
	// Merge folds src, another shard's state of the same window, into
	// dst and returns the result. States from Decode are merged in shard
	// order; dst may be modified.
	Merge(dst, src S) S
	// Encode writes s as the fields of its partial item. It runs on every
	// flush of a changed window, so it should not retain f.
	Encode(s S, f *Fields)
	// Decode reads a partial back: to restore an open window after a
	// failover and, for every shard, to merge the global result. An error
	// wrapping ErrIncompatible skips the partial (see ErrIncompatible).
	Decode(f *Fields) (S, error)
	// Result writes the fleet-wide result of a window from the merged
	// state: fields of the window's global item, or rows of another table.
	Result(s S, w Info, out *Output)
}

// Sizer is optionally implemented by an Aggregate to report the keys a
// state holds (the conformance kit checks state stays bounded).
type Sizer[S any] interface{ Size(s S) int }

// Reporter is optionally implemented by an Aggregate to emit metrics of
// a window as this shard saw it, once, when the window closes on this
// shard (together with its final partial). A window a previous owner
// already closed is not reported again, and a lost lease reports
// nothing, so CloudWatch, which adds datums of the same series and
// second, sums the shards' reports into fleet-wide values.
type Reporter[S any] interface {
	Report(s S, w Info, emit func(processors.Datum))
}

// Info describes a merged window to Aggregate.Result.
type Info struct {
	Start, End time.Time
	// Merged is the number of shard partials merged, Finals how many of
	// them were final (the result is final when all are), Skipped how many
	// were skipped as incompatible.
	Merged, Finals, Skipped int
}

// Final reports whether every merged partial was final.
func (w Info) Final() bool { return w.Merged > 0 && w.Finals == w.Merged }

// Output collects what Result writes.
type Output struct {
	// Global holds the fields of the window's global item (sort key
	// "global" next to the partials). Leave it empty to write no global
	// item.
	Global *Fields
	rows   []row
	head   func() map[string]types.AttributeValue
}

type row struct {
	table, key string
	f          *Fields
}

// Row adds a row to table under key (unique per table and window) and
// returns its fields, already holding window_start, window_end, merged,
// finals, final and expires_at. The plugin sets the table's key attributes.
func (o *Output) Row(table, key string) *Fields {
	f := newFields(o.head())
	o.rows = append(o.rows, row{table, key, f})
	return f
}

// Window is one tumbling window size of a Spec.
type Window struct {
	window.Config
	// Retention is how long its items live after the window ends; 0 means
	// the application's retention.
	Retention time.Duration
}

// Spec is what the runner needs to know besides the Aggregate.
type Spec struct {
	// Name prefixes every key ("NAME#60s#<window start>"); "" means the
	// instance name.
	Name string
	// Kinds lists the record kinds counted; nil counts every kind.
	Kinds []records.Kind
	// Windows are the window sizes kept, at least one; each has its own
	// keys, partials and global results.
	Windows []Window
	// UpdateInterval, when > 0, also merges and writes the running global
	// result of every open window that changed, at most this often.
	UpdateInterval time.Duration
	// Claims are key ranges written besides the Name prefix (for example a
	// whole table of rows); the registry refuses overlapping instances.
	Claims []processors.Claim
}

// mergeAttempts bounds the merges of one finalised window.
const mergeAttempts = 10

// pending is a window this shard finalised. Its global result is merged
// again on later flushes until every merged partial is final and the
// result stable, so a concurrent finalisation by another shard (which saw
// this shard's partial before it was final) cannot leave a stale global
// result behind.
type pending struct {
	own   map[string]types.AttributeValue // this shard's final partial
	hd    window.Header
	tries int
	last  []row // written last; nil = none yet
}

type tracker[S any] struct {
	Window
	keys    window.Keys
	windows *window.Tracker[S]
	pending []*pending
	// written is what the last cursor written decides.
	written window.CursorKey
}

type runner[S any] struct {
	spec        Spec
	agg         Aggregate[S]
	kinds       uint64 // bit per records.Kind; 0 = all
	table       string
	retention   time.Duration
	env         processors.Env
	log         *zap.Logger
	trackers    []*tracker[S]
	lastPublish time.Time
	late        int64
}

func newRunner[S any](ctx context.Context, spec Spec, agg Aggregate[S], app processors.AppInfo, env processors.Env) (*runner[S], error) {
	r := &runner[S]{spec: spec, agg: agg, table: app.Tables.Results, retention: app.RetentionOrDefault(), env: env, log: env.Logger}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	for _, k := range spec.Kinds {
		r.kinds |= 1 << (k & 63)
	}
	for _, w := range spec.Windows {
		t := &tracker[S]{Window: w, keys: window.NewKeys(spec.Name, w.Size), windows: window.NewTracker(w.Config, agg.New)}
		if err := r.restore(ctx, t); err != nil {
			return nil, fmt.Errorf("%s: shard %s: restore %s windows: %w", spec.Name, env.Shard.ShardID, w.Size, err)
		}
		r.trackers = append(r.trackers, t)
	}
	return r, nil
}

func (r *runner[S]) restore(ctx context.Context, t *tracker[S]) error {
	cur, items, found, err := window.Load(ctx, r.env.Store, r.table, t.keys, r.env.Shard.ShardID)
	if err != nil || !found {
		return err
	}
	t.windows.RestoreCursor(cur)
	var zero S
	for _, it := range items {
		h, err := window.ParseHeader(it)
		if err != nil {
			return err
		}
		if h.Final {
			t.windows.Restore(h.Start, zero, h.Pos, true)
			continue
		}
		s, err := r.decode(it)
		if errors.Is(err, ErrIncompatible) {
			r.log.Warn("partial incompatible with the settings: window closed as restored",
				zap.String("window", window.FormatTime(h.Start)), zap.Error(err))
			t.windows.Restore(h.Start, zero, h.Pos, true)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", h.PK, h.SK, err)
		}
		t.windows.Restore(h.Start, s, h.Pos, false)
	}
	return nil
}

// staleMerges is how many running-result merges a change to an open
// window earns: one at once and two more on the next publishes.
const staleMerges = 3

func (r *runner[S]) Process(_ context.Context, recs []records.Record, _ processors.Emitter) error {
	for i := range recs {
		rec := &recs[i]
		if r.kinds != 0 && r.kinds&(1<<(rec.Kind&63)) == 0 {
			continue
		}
		et, pos := rec.EventTime(), window.PositionOf(&rec.Meta)
		for _, t := range r.trackers {
			if w, v := t.windows.Add(et, pos); v == window.Accepted {
				// Merge the running result now and twice more: another
				// shard may write its partial just after this merge read
				// it, and the last global write must see every shard's
				// newest partial, or the open window's result stays
				// short until it closes.
				w.Stale = staleMerges
				r.agg.Add(w.State, rec)
			}
		}
	}
	for _, t := range r.trackers {
		t.windows.Seal()
	}
	return nil
}

func (r *runner[S]) Flush(ctx context.Context, out processors.Emitter) error {
	now := r.env.Clock.Now()
	publish := r.spec.UpdateInterval > 0 && now.Sub(r.lastPublish) >= r.spec.UpdateInterval
	if publish {
		r.lastPublish = now
	}
	for _, t := range r.trackers {
		r.flush(ctx, out, t, t.windows.Expire(now), publish)
	}
	r.reportLate(out, now)
	return nil
}

// Urgent asks the pipeline for a flush between cadence flushes when a
// window is due to close, so a closed window's result is written as soon
// as its last records are read (processors.Urgent).
func (r *runner[S]) Urgent() bool {
	for _, t := range r.trackers {
		if t.windows.Due() {
			return true
		}
	}
	return false
}

// Close ends the lease: final results for every window when the shard
// ended, partials for the next owner on shutdown, nothing when the lease
// was lost.
func (r *runner[S]) Close(ctx context.Context, reason processors.Reason, out processors.Emitter) error {
	switch reason {
	case processors.LeaseLost:
		for _, t := range r.trackers {
			t.windows.Drop()
			t.pending = nil
		}
		return nil
	case processors.ShardEnded:
		for _, t := range r.trackers {
			r.flush(ctx, out, t, t.windows.CloseAll(), false)
		}
		r.reportLate(out, r.env.Clock.Now())
		return nil
	default:
		return r.Flush(ctx, out)
	}
}

// StateSize reports the keys held over all open windows, when the
// Aggregate is a Sizer.
func (r *runner[S]) StateSize() int {
	sz, ok := r.agg.(Sizer[S])
	if !ok {
		return 0
	}
	n := 0
	for _, t := range r.trackers {
		for _, w := range t.windows.Open() {
			n += sz.Size(w.State)
		}
	}
	return n
}

func (r *runner[S]) flush(ctx context.Context, out processors.Emitter, t *tracker[S], closed []*window.Window[S], publish bool) {
	emitted := false
	kept := t.pending[:0]
	for _, pd := range t.pending {
		if r.merge(ctx, out, t, pd) {
			emitted = true
		}
		switch {
		case pd.tries < mergeAttempts:
			kept = append(kept, pd)
		case pd.last == nil:
			r.log.Error("global merge abandoned", zap.String("window", window.FormatTime(pd.hd.Start)), zap.Int("tries", pd.tries))
		}
	}
	clear(t.pending[len(kept):])
	t.pending = kept

	rep, reports := r.agg.(Reporter[S])
	for _, w := range closed {
		pd := r.partial(out, t, w, true)
		if reports {
			rep.Report(w.State, Info{Start: w.Start, End: w.End, Merged: 1, Finals: 1}, out.Metric)
		}
		r.merge(ctx, out, t, pd)
		t.pending = append(t.pending, pd)
		emitted = true
	}
	for _, w := range t.windows.Open() {
		var pd *pending
		if w.Dirty() {
			pd = r.partial(out, t, w, false)
			emitted = true
		}
		if publish && w.Stale > 0 {
			if pd == nil {
				pd = r.partial(nil, t, w, false)
			}
			pd.tries = mergeAttempts
			r.merge(ctx, out, t, pd)
			w.Stale--
		}
	}
	t.windows.MarkClean()
	if emitted {
		c := t.windows.Cursor()
		if k := c.Key(t.Config); k != t.written {
			out.Put(window.CursorItem(r.table, t.keys, r.env.Shard.ShardID, c, r.expires(t, t.windows.Watermark())))
			t.written = k
		}
	}
	r.late += t.windows.TakeCounts().Late
}

// partial encodes w as this shard's partial item and emits it (unless out
// is nil).
func (r *runner[S]) partial(out processors.Emitter, t *tracker[S], w *window.Window[S], final bool) *pending {
	shard := r.env.Shard.ShardID
	hd := window.Header{
		PK: t.keys.Window(w.Start), SK: window.ShardSK(shard), Kind: window.KindPartial, Shard: shard,
		Start: w.Start, End: w.End, Pos: w.Covered, Final: final, ExpiresAt: r.expires(t, w.End),
	}
	attrs := hd.Attrs(16)
	header := make(map[string]bool, len(attrs))
	for k := range attrs {
		header[k] = true
	}
	r.agg.Encode(w.State, newFields(attrs))
	pack(attrs, header)
	if out != nil {
		out.Put(processors.Item{Table: r.table, Key: hd.PK + "|" + hd.SK, Attrs: attrs})
	}
	return &pending{own: attrs, hd: hd}
}

// decode decodes a partial item, packed or not.
func (r *runner[S]) decode(attrs map[string]types.AttributeValue) (S, error) {
	f := FieldsOf(attrs)
	if f.err != nil {
		var zero S
		return zero, f.err
	}
	return r.agg.Decode(f)
}

// merge writes the global result of pd's window from every shard's
// partial, pd.own standing in for this shard's (maybe not yet durable)
// one. It reports whether it emitted; a failed query is retried on the
// next flush.
func (r *runner[S]) merge(ctx context.Context, out processors.Emitter, t *tracker[S], pd *pending) bool {
	pd.tries++
	pk := pd.hd.PK
	items, err := r.env.Store.Query(ctx, r.table, window.AttrPK, pk, window.AttrSK, window.ShardSK(""), window.ShardSK("\U0010FFFF"))
	if err != nil {
		r.log.Warn("global merge: query partials", zap.String("pk", pk), zap.Int("try", pd.tries), zap.Error(err))
		return false
	}
	type part struct {
		hd    window.Header
		attrs map[string]types.AttributeValue
	}
	parts := make([]part, 0, len(items)+1)
	parts = append(parts, part{pd.hd, pd.own})
	for _, it := range items {
		hd, err := window.ParseHeader(it)
		if err != nil {
			r.log.Warn("global merge: skip malformed partial", zap.String("pk", pk), zap.Error(err))
			continue
		}
		if hd.Shard != pd.hd.Shard {
			parts = append(parts, part{hd, it})
		}
	}
	slices.SortStableFunc(parts, func(a, b part) int { return strings.Compare(a.hd.Shard, b.hd.Shard) })
	info := Info{Start: pd.hd.Start, End: pd.hd.End}
	var acc S
	for _, p := range parts {
		s, err := r.decode(p.attrs)
		switch {
		case errors.Is(err, ErrIncompatible):
			info.Skipped++
			continue
		case err != nil:
			r.log.Warn("global merge: skip malformed partial", zap.String("pk", pk), zap.String("partial_shard", p.hd.Shard), zap.Error(err))
			continue
		}
		if info.Merged == 0 {
			acc = s
		} else {
			acc = r.agg.Merge(acc, s)
		}
		info.Merged++
		if p.hd.Final {
			info.Finals++
		}
	}
	if info.Merged == 0 {
		return false
	}
	rows := r.result(t, pd, acc, info)
	if pd.last != nil && slices.EqualFunc(pd.last, rows, func(a, b row) bool {
		return a.table == b.table && a.key == b.key && equalAttrs(a.f.m, b.f.m)
	}) {
		if info.Final() {
			pd.tries = mergeAttempts // complete and stable: done
		}
		return false
	}
	for _, rw := range rows {
		out.Put(processors.Item{Table: rw.table, Key: rw.key, Attrs: rw.f.m})
	}
	pd.last = rows
	return true
}

// result runs Aggregate.Result and returns the rows to write, the global
// item first.
func (r *runner[S]) result(t *tracker[S], pd *pending, acc S, info Info) []row {
	expires := r.expires(t, info.End)
	o := &Output{head: func() map[string]types.AttributeValue {
		return map[string]types.AttributeValue{
			window.AttrWindowStart: window.Str(window.FormatTime(info.Start)),
			window.AttrWindowEnd:   window.Str(window.FormatTime(info.End)),
			window.AttrMerged:      window.Int(int64(info.Merged)),
			attrFinals:             window.Int(int64(info.Finals)),
			window.AttrFinal:       window.Bool(info.Final()),
			window.AttrExpiresAt:   window.Int(expires.Unix()),
		}
	}}
	hd := window.Header{PK: pd.hd.PK, SK: window.GlobalSK, Kind: window.KindGlobal, Start: info.Start, End: info.End,
		Pos: pd.hd.Pos, Final: info.Final(), ExpiresAt: expires}
	global := hd.Attrs(16)
	global[window.AttrMerged] = window.Int(int64(info.Merged))
	global[attrFinals] = window.Int(int64(info.Finals))
	n := len(global)
	o.Global = newFields(global)
	r.agg.Result(acc, info, o)
	var rows []row
	if len(global) > n {
		rows = append(rows, row{r.table, hd.PK + "|" + hd.SK, o.Global})
	}
	return append(rows, o.rows...)
}

// attrFinals is the number of final partials merged into a result.
const attrFinals = "finals"

func (r *runner[S]) expires(t *tracker[S], end time.Time) time.Time {
	if t.Retention > 0 {
		return end.Add(t.Retention)
	}
	return end.Add(r.retention)
}

func (r *runner[S]) reportLate(out processors.Emitter, now time.Time) {
	if r.late == 0 {
		return
	}
	out.Metric(processors.Datum{
		Name: "LateRecords", Unit: "Count", Time: now.Truncate(time.Second),
		Dims:  []processors.Dim{{Name: "Stream", Value: r.env.Shard.Stream}, {Name: "Processor", Value: r.spec.Name}},
		Value: float64(r.late), Count: 1,
	})
	r.late = 0
}
