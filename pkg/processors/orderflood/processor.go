package orderflood

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Name is the plugin name used in configuration.
const Name = "orderflood"

// Metric names. Both carry the dimension Alarm=<name>.
const (
	// MetricAlarm is 1 for an event-time second whose sliding window
	// (ending with it) breached the threshold, else 0. Several shards may
	// report the same second: alarm on its Maximum over 10 s.
	MetricAlarm = "OrderFloodAlarm"
	// MetricOrders counts this shard's orders per event-time second.
	MetricOrders = "Orders"
	// MetricLate counts late records (dimension Processor=orderflood).
	MetricLate = "LateRecords"
)

const (
	// markerTTL bounds how long a pending alarm can be resumed by a later
	// owner of the shard.
	markerTTL = 24 * time.Hour
	// maxRetryAlarms bounds alarms waiting for the store to recover.
	maxRetryAlarms = 100
	// warnEvery rate-limits store-error logs (clock time).
	warnEvery = 30 * time.Second
)

// Plugin returns the orderflood plugin for the consumer's registry.
func Plugin() processors.Plugin {
	return processors.Plugin{
		Name: Name,
		Doc:  "alarms (SNS, once per period fleet-wide) when orders in a sliding window reach a threshold",
		Build: func(settings *yaml.Node, app processors.AppInfo) (processors.Factory, error) {
			cfg, err := DecodeConfig(settings, "processors."+Name)
			if err != nil {
				return nil, err
			}
			return NewFactory(cfg, app)
		},
	}
}

// NewFactory returns the factory of orderflood processors; cfg must be
// valid (DecodeConfig validates).
func NewFactory(cfg Config, app processors.AppInfo) (processors.Factory, error) {
	tables := app.Tables
	if tables.Results == "" || tables.Alarms == "" {
		if app.App == "" {
			return nil, fmt.Errorf("processors.%s: %w: no tables (application name unset)", Name, processors.ErrInvalidPlugin)
		}
		def := processors.TablesFor(app.App)
		tables.Results = cmp.Or(tables.Results, def.Results)
		tables.Alarms = cmp.Or(tables.Alarms, def.Alarms)
	}
	f := &factory{
		cfg:       cfg,
		results:   tables.Results,
		alarms:    tables.Alarms,
		topic:     cmp.Or(cfg.TopicARN, app.AlarmTopicARN),
		stream:    app.Stream,
		retention: cmp.Or(cfg.Retention, app.RetentionOrDefault()),
		keys:      window.NewKeys("orders#"+cfg.Name, time.Second),
		dims:      []processors.Dim{{Name: "Alarm", Value: cfg.Name}},
		width:     int64(cfg.Window / time.Second),
	}
	if cfg.Path != "" {
		re, err := regexp.Compile(cfg.Path)
		if err != nil {
			return nil, processors.FieldError("processors."+Name+".path", "bad regexp: %v", err)
		}
		f.path = re
	}
	return f.new, nil
}

type factory struct {
	cfg             Config
	results, alarms string
	topic, stream   string
	retention       time.Duration
	keys            window.Keys // cursor items
	path            *regexp.Regexp
	dims            []processors.Dim
	width           int64 // window in seconds
}

// pendingAlarm is an alarm a previous owner left unconfirmed, or one this
// instance could not finish on a store or SNS error.
type pendingAlarm struct {
	a     *Alarm
	body  []byte
	state string // history state when queued (unsent)
}

type processor struct {
	f   *factory
	env processors.Env
	log *zap.Logger
	tr  *window.Tracker[*secState]

	// recent keeps this shard's closed seconds for evaluation: their
	// final items are durable only after the batch.
	recent map[int64]*secState
	// changed lists, per key ("" in global mode), the seconds that got
	// orders since the last flush; recheck is the previous flush's list,
	// evaluated once more when the other shards' concurrent writes are
	// durable (see the package doc).
	changed, recheck map[string][]int64
	orders           map[int64]int64   // per-second counts for MetricOrders
	reported         map[int64]float64 // MetricAlarm value last emitted per second
	raised           map[string]time.Time
	resume           []pendingAlarm // left unconfirmed by a previous owner
	retry            []*Alarm       // raising failed on a store error
	unsent           []pendingAlarm // claimed by this lease, not yet out
	unconfirmed      []pendingAlarm // published; recording that failed
	lastWarn         time.Time
	closed           bool
	// token tells this lease's claims on alarm-history items apart from
	// an earlier owner's of the same shard (a zombie that resumes after
	// its lease was taken over finds its claim gone and does not publish).
	token string
}

func (f *factory) new(ctx context.Context, env processors.Env) (processors.Processor, error) {
	log := env.Logger
	if log == nil {
		log = zap.NewNop()
	}
	p := &processor{
		f:        f,
		env:      env,
		log:      log,
		tr:       window.NewTracker(f.cfg.windowConfig(), newSecState),
		recent:   map[int64]*secState{},
		changed:  map[string][]int64{},
		recheck:  map[string][]int64{},
		orders:   map[int64]int64{},
		reported: map[int64]float64{},
		raised:   map[string]time.Time{},
		token:    fmt.Sprintf("%s/%s/%016x", env.Shard.WorkerID, env.Shard.ShardID, rand.Uint64()),
	}
	switch {
	case f.topic == "":
		log.Warn("no alarm topic configured: order floods are recorded in the alarm history but not published")
	case env.Publisher == nil && env.Store != nil:
		log.Warn("no SNS publisher: order floods are recorded in the alarm history but not published")
	}
	if env.Store != nil {
		if err := p.restore(ctx); err != nil {
			return nil, fmt.Errorf("%s: shard %s: restore: %w", Name, env.Shard.ShardID, err)
		}
	}
	return p, nil
}

// restore loads the previous owner's cursor, per-second partials and
// unconfirmed alarms. Restored seconds are re-evaluated on the first flush
// (the previous owner may have crashed before evaluating them).
func (p *processor) restore(ctx context.Context) error {
	st, shard := p.env.Store, p.env.Shard.ShardID
	sk := window.ShardSK(shard)
	items, err := st.Query(ctx, p.f.results, window.AttrPK, p.f.keys.Cursor(), window.AttrSK, sk, sk)
	if err != nil {
		return fmt.Errorf("load cursor: %w", err)
	}
	if len(items) > 0 {
		c, err := window.ParseCursor(items[0])
		if err != nil {
			return fmt.Errorf("load cursor: %w", err)
		}
		p.tr.RestoreCursor(c)
		if err := p.restoreSeconds(ctx, c.Windows); err != nil {
			return err
		}
	}
	name := p.f.cfg.Name
	markers, err := st.Query(ctx, p.f.results, window.AttrPK, pendingPK(name, shard), window.AttrSK, name, name+"\U0010FFFF")
	if err != nil {
		return fmt.Errorf("load pending alarms: %w", err)
	}
	for _, it := range markers {
		a, body, done, err := parseMarker(it)
		if err != nil {
			p.log.Warn("skipping unreadable alarm marker", zap.Error(err))
			continue
		}
		if !done {
			p.resume = append(p.resume, pendingAlarm{a: a, body: body})
		}
	}
	return nil
}

func (p *processor) restoreSeconds(ctx context.Context, secs []time.Time) error {
	shard := p.env.Shard.ShardID
	want := map[int64]bool{}
	buckets := map[string][2]time.Time{}
	for _, s := range secs {
		want[s.Unix()] = true
		pk := bucketPK(p.f.cfg.Name, s)
		b, ok := buckets[pk]
		if !ok || s.Before(b[0]) {
			b[0] = s
		}
		if !ok || s.After(b[1]) {
			b[1] = s
		}
		buckets[pk] = b
	}
	for _, pk := range slices.Sorted(maps.Keys(buckets)) {
		b := buckets[pk]
		items, err := p.env.Store.Query(ctx, p.f.results, window.AttrPK, pk, window.AttrSK,
			window.FormatTime(b[0]), window.FormatTime(b[1])+"#~")
		if err != nil {
			return fmt.Errorf("load partials %s: %w", pk, err)
		}
		for _, it := range items {
			h, s, err := parsePartial(it)
			if err != nil {
				return fmt.Errorf("load partials %s: %w", pk, err)
			}
			if h.Shard != shard || !want[h.Start.Unix()] {
				continue
			}
			p.tr.Restore(h.Start, s, h.Pos, h.Final)
			p.markChangedAll(h.Start.Unix(), s)
		}
	}
	return nil
}

// counts reports whether r is an order for this configuration.
func (p *processor) counts(r *records.Record) bool {
	cfg := &p.f.cfg
	if cfg.Source == SourceHits {
		return r.Kind == records.KindHit && p.f.path.MatchString(r.Path) && cfg.countsMethod(r.Method)
	}
	if r.Kind != records.KindOrder {
		return false
	}
	return cfg.IncludeCancellations || !strings.HasPrefix(r.InvoiceNo, "C")
}

// Process implements processors.Processor.
func (p *processor) Process(_ context.Context, recs []records.Record, _ processors.Emitter) error {
	if p.closed {
		return nil
	}
	cfg := &p.f.cfg
	for i := range recs {
		r := &recs[i]
		if !p.counts(r) {
			continue
		}
		ev := r.EventTime()
		w, v := p.tr.Add(ev, window.PositionOf(&r.Meta))
		if v != window.Accepted {
			continue
		}
		s := w.State
		if cfg.Source == SourceOrders && cfg.Count == CountInvoices && r.InvoiceNo != "" {
			if _, dup := s.Invoices[r.InvoiceNo]; dup {
				continue // another line of a counted invoice
			}
			if s.Invoices == nil {
				s.Invoices = map[string]struct{}{}
			}
			if len(s.Invoices) < cfg.MaxKeys && len(r.InvoiceNo) <= maxKeyLen {
				s.Invoices[strings.Clone(r.InvoiceNo)] = struct{}{}
			} else {
				s.Overflow++ // its further lines will count again
			}
		}
		s.Orders++
		s.seen(ev)
		sec := w.Start.Unix()
		p.orders[sec]++
		var key string
		keyOK := true
		if cfg.Source == SourceOrders {
			if r.CustomerID != "" {
				keyOK = inc(&s.Customers, r.CustomerID, 1, cfg.MaxKeys)
				key = r.CustomerID
			}
			if r.Country != "" && !inc(&s.Countries, r.Country, 1, cfg.MaxKeys) {
				s.Overflow++
			}
		} else if r.ClientIP != "" {
			keyOK = inc(&s.IPs, r.ClientIP, 1, cfg.MaxKeys)
			key = r.ClientIP
		}
		if !keyOK {
			s.Overflow++
		}
		switch {
		case cfg.Mode == ModeGlobal:
			p.markChanged("", sec)
		case key != "" && keyOK:
			p.markChanged(key, sec)
		}
	}
	p.tr.Seal()
	return nil
}

func (p *processor) markChanged(key string, sec int64) {
	secs, ok := p.changed[key]
	if ok && len(secs) > 0 && secs[len(secs)-1] == sec {
		return
	}
	if !ok {
		key = strings.Clone(key)
	}
	p.changed[key] = append(secs, sec)
}

// markChangedAll marks every key of a restored second.
func (p *processor) markChangedAll(sec int64, s *secState) {
	if p.f.cfg.Mode == ModeGlobal {
		p.markChanged("", sec)
		return
	}
	for k := range s.keyed(p.f.cfg.Mode) {
		p.markChanged(k, sec)
	}
}

// Flush implements processors.Processor.
func (p *processor) Flush(ctx context.Context, out processors.Emitter) error {
	if p.closed {
		return nil
	}
	now := p.env.Clock.Now()
	p.emitPartials(out, p.tr.Expire(now), now)
	return p.evaluateAndRaise(ctx, out, now, true)
}

// Close implements processors.Processor. Shutdown claims new alarms
// without publishing them: the lease is being handed over, and the next
// owner publishes a claimed alarm exactly once (its state says nothing
// went out yet), without a shutdown deadline cutting the publish short.
func (p *processor) Close(ctx context.Context, reason processors.Reason, out processors.Emitter) error {
	if p.closed {
		return nil
	}
	p.closed = true
	now := p.env.Clock.Now()
	var err error
	switch reason {
	case processors.ShardEnded:
		p.emitPartials(out, p.tr.CloseAll(), now)
		err = p.evaluateAndRaise(ctx, out, now, true)
	case processors.Shutdown:
		p.emitPartials(out, p.tr.Expire(now), now)
		err = p.evaluateAndRaise(ctx, out, now, false)
	default: // LeaseLost: emit nothing
	}
	p.tr.Drop()
	clear(p.recent)
	clear(p.changed)
	clear(p.recheck)
	p.resume, p.retry, p.unsent, p.unconfirmed = nil, nil, nil, nil
	return err
}

func (p *processor) emitPartials(out processors.Emitter, closed []*window.Window[*secState], now time.Time) {
	cfg, shard := &p.f.cfg, p.env.Shard.ShardID
	changed := len(closed) > 0
	for _, w := range closed {
		out.Put(partialItem(p.f.results, cfg.Name, shard, w.Start, w.Covered, true, later(w.Start, now).Add(cfg.PartialTTL), w.State))
		p.recent[w.Start.Unix()] = w.State
	}
	for _, w := range p.tr.Open() {
		if w.Dirty() {
			changed = true
			out.Put(partialItem(p.f.results, cfg.Name, shard, w.Start, w.Covered, false, later(w.Start, now).Add(cfg.PartialTTL), w.State))
		}
	}
	if changed {
		out.Put(window.CursorItem(p.f.results, p.f.keys, shard, p.tr.Cursor(), now.Add(cfg.PartialTTL)))
	}
	p.tr.MarkClean()
	for _, sec := range slices.Sorted(maps.Keys(p.orders)) {
		out.Metric(processors.Datum{Name: MetricOrders, Unit: "Count", Dims: p.f.dims, Time: time.Unix(sec, 0).UTC(),
			Value: float64(p.orders[sec]), Count: 1})
	}
	clear(p.orders)
	if late := p.tr.TakeCounts().Late; late > 0 {
		out.Metric(processors.Datum{Name: MetricLate, Unit: "Count", Dims: []processors.Dim{{Name: "Processor", Value: Name}},
			Time: now.UTC().Truncate(time.Second), Value: float64(late), Count: 1})
	}
}

// evaluateAndRaise evaluates the changed and re-checked seconds against
// every shard's counts and raises the breaches.
func (p *processor) evaluateAndRaise(ctx context.Context, out processors.Emitter, now time.Time, publish bool) error {
	work := make(map[string][]int64, len(p.changed)+len(p.recheck))
	for _, m := range []map[string][]int64{p.changed, p.recheck} {
		for k, secs := range m {
			work[k] = append(work[k], secs...)
		}
	}
	for k, secs := range work {
		slices.Sort(secs)
		work[k] = slices.Compact(secs)
	}
	// This flush's changes are re-checked by the next flush.
	old := p.recheck
	p.recheck = p.changed
	clear(old)
	p.changed = old

	var alarms []*Alarm
	if len(work) > 0 {
		data, err := p.load(ctx, work)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: shard %s: evaluate: %w", Name, p.env.Shard.ShardID, err)
			}
			p.warn(now, "evaluation deferred", err)
			p.recheck = work // everything again next flush
			return nil
		}
		alarms = p.evaluate(out, work, data, now)
	}

	// Records of messages already out first (never publish them again),
	// then messages SNS failed, then alarms a previous owner left
	// unconfirmed, then those that failed on a store error, then the new
	// ones.
	unconfirmed := p.unconfirmed
	p.unconfirmed = nil
	for _, pa := range unconfirmed {
		if err := p.confirm(ctx, out, pa.a, pa.body); err != nil {
			return err
		}
	}
	if publish {
		unsent := p.unsent
		p.unsent = nil
		for _, pa := range unsent {
			if err := p.deliver(ctx, out, pa.a, pa.body, pa.state); err != nil {
				return err
			}
		}
	}
	resume := p.resume
	p.resume = nil
	for _, pa := range resume {
		if err := p.raise(ctx, out, pa.a, pa.body, publish); err != nil {
			return err
		}
	}
	retry := p.retry
	p.retry = nil
	for _, a := range append(retry, alarms...) {
		if err := p.raise(ctx, out, a, nil, publish); err != nil {
			return err
		}
	}
	p.prune()
	return nil
}

// shardData is every shard's state of one second.
type shardData map[string]*secState

// load returns, for every second a window over work needs, the durable
// per-shard states with this shard's replaced by its in-memory ones.
func (p *processor) load(ctx context.Context, work map[string][]int64) (map[int64]shardData, error) {
	ivs := neededSeconds(work, p.f.width)
	data := map[int64]shardData{}
	add := func(sec int64, shard string, s *secState) {
		if data[sec] == nil {
			data[sec] = shardData{}
		}
		data[sec][shard] = s
	}
	if p.env.Store != nil {
		for _, q := range bucketRanges(ivs) {
			ta, tb := time.Unix(q[0], 0).UTC(), time.Unix(q[1], 0).UTC()
			pk := bucketPK(p.f.cfg.Name, ta)
			items, err := p.env.Store.Query(ctx, p.f.results, window.AttrPK, pk, window.AttrSK,
				window.FormatTime(ta), window.FormatTime(tb)+"#~")
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", pk, err)
			}
			for _, it := range items {
				h, s, err := parsePartial(it)
				if err != nil {
					p.log.Warn("skipping unreadable partial", zap.Error(err))
					continue
				}
				if sec := h.Start.Unix(); covers(ivs, sec) {
					add(sec, h.Shard, s)
				}
			}
		}
	}
	shard := p.env.Shard.ShardID
	for sec, s := range p.recent {
		if covers(ivs, sec) {
			add(sec, shard, s)
		}
	}
	for _, w := range p.tr.Open() {
		if sec := w.Start.Unix(); covers(ivs, sec) {
			add(sec, shard, w.State)
		}
	}
	return data, nil
}

// neededSeconds returns the seconds windows over work need, as sorted
// disjoint [lo, hi] intervals: a window ending at e covers [e-w+1, e] and
// a changed second s affects the windows ending in [s, s+w-1].
func neededSeconds(work map[string][]int64, w int64) [][2]int64 {
	var ivs [][2]int64
	for _, secs := range work {
		for _, s := range secs {
			ivs = append(ivs, [2]int64{s - w + 1, s + w - 1})
		}
	}
	slices.SortFunc(ivs, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	out := ivs[:0]
	for _, iv := range ivs {
		if n := len(out); n > 0 && iv[0] <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], iv[1])
			continue
		}
		out = append(out, iv)
	}
	return out
}

// covers reports whether sec lies in one of the sorted intervals.
func covers(ivs [][2]int64, sec int64) bool {
	i, _ := slices.BinarySearchFunc(ivs, sec, func(iv [2]int64, s int64) int {
		switch {
		case iv[1] < s:
			return -1
		case iv[0] > s:
			return 1
		}
		return 0
	})
	return i < len(ivs) && ivs[i][0] <= sec && sec <= ivs[i][1]
}

// bucketRanges splits intervals at minute boundaries and joins the parts
// that fall into the same minute: one Query per minute bucket.
func bucketRanges(ivs [][2]int64) [][2]int64 {
	var out [][2]int64
	for _, iv := range ivs {
		for lo := iv[0]; lo <= iv[1]; {
			hi := min(iv[1], lo-mod(lo, 60)+59)
			if n := len(out); n > 0 && out[n-1][0]-mod(out[n-1][0], 60) == lo-mod(lo, 60) {
				out[n-1][1] = hi
			} else {
				out = append(out, [2]int64{lo, hi})
			}
			lo = hi + 1
		}
	}
	return out
}

// later returns the later of an event time and the clock: items of a
// replay of old data must not expire the moment they are written.
func later(event, now time.Time) time.Time {
	if now.After(event) {
		return now
	}
	return event
}

func mod(a, b int64) int64 { return ((a % b) + b) % b }

// evaluate slides the window over the seconds each changed key needs,
// emits MetricAlarm for the window ends up to the watermark and returns
// one alarm per (alarm ID, suppression period): the breaching window with
// the most orders, the earliest on ties.
func (p *processor) evaluate(out processors.Emitter, work map[string][]int64, data map[int64]shardData, now time.Time) []*Alarm {
	cfg, w := &p.f.cfg, p.f.width
	wm := p.tr.Watermark().Unix()
	type best struct {
		end    int64
		orders int64
		key    string
	}
	found := map[string]*best{} // alarm ID + period
	breached := map[int64]bool{}
	for _, key := range slices.Sorted(maps.Keys(work)) {
		secs := work[key]
		count := func(sec int64) int64 {
			var n int64
			for _, s := range data[sec] {
				n += s.count(cfg.Mode, key)
			}
			return n
		}
		// Window ends affected by the changed seconds, in runs.
		for i := 0; i < len(secs); {
			from, to := secs[i], secs[i]+w-1
			for i++; i < len(secs) && secs[i] <= to+1; i++ {
				to = secs[i] + w - 1
			}
			var sum int64
			for x := from - w + 1; x < from; x++ {
				sum += count(x)
			}
			for e := from; e <= to; e++ {
				sum += count(e)
				if e > from {
					sum -= count(e - w)
				}
				// Ends past the watermark repeat earlier windows minus their
				// oldest seconds; the shard holding the newest order of a
				// window evaluates it.
				if e > wm {
					continue
				}
				hit := sum >= cfg.Threshold
				breached[e] = breached[e] || hit
				if !hit {
					continue
				}
				period := time.Unix(e, 0).UTC().Truncate(cfg.Suppression)
				id := p.alarmID(key) + "#" + periodKey(period)
				if _, done := p.raised[id]; done {
					continue
				}
				if b := found[id]; b == nil || sum > b.orders {
					found[id] = &best{end: e, orders: sum, key: key}
				}
			}
		}
	}
	for _, e := range slices.Sorted(maps.Keys(breached)) {
		v := 0.0
		if breached[e] {
			v = 1
		}
		// A re-evaluation repeats a second's value unless it rose to 1:
		// report each second once, and again only when it breaches.
		if last, seen := p.reported[e]; seen && v <= last {
			continue
		}
		p.reported[e] = v
		out.Metric(processors.Datum{Name: MetricAlarm, Unit: "Count", Dims: p.f.dims, Time: time.Unix(e, 0).UTC(), Value: v, Count: 1})
	}
	ids := slices.Sorted(maps.Keys(found))
	if len(ids) > cfg.MaxAlarms {
		p.log.Warn("alarms over max_alarms not raised", zap.Int("breaches", len(ids)), zap.Int("max_alarms", cfg.MaxAlarms))
		// Keep the largest floods.
		slices.SortStableFunc(ids, func(a, b string) int { return cmp.Compare(found[b].orders, found[a].orders) })
		ids = ids[:cfg.MaxAlarms]
		slices.Sort(ids)
	}
	alarms := make([]*Alarm, 0, len(ids))
	for _, id := range ids {
		b := found[id]
		alarms = append(alarms, p.details(b.key, b.end, b.orders, data, now))
	}
	return alarms
}

func (p *processor) alarmID(key string) string {
	if p.f.cfg.Mode == ModeGlobal {
		return p.f.cfg.Name
	}
	return p.f.cfg.Name + "#" + p.f.cfg.Mode + "#" + key
}

// details builds the alarm of key for the window ending with second end.
func (p *processor) details(key string, end, orders int64, data map[int64]shardData, now time.Time) *Alarm {
	cfg := &p.f.cfg
	a := &Alarm{
		ID:             p.alarmID(key),
		Name:           cfg.Name,
		Mode:           cfg.Mode,
		Key:            key,
		Period:         time.Unix(end, 0).UTC().Truncate(cfg.Suppression),
		WindowStart:    time.Unix(end-p.f.width+1, 0).UTC(),
		WindowEnd:      time.Unix(end+1, 0).UTC(),
		Orders:         orders,
		Threshold:      cfg.Threshold,
		Severity:       cfg.Severity,
		Stream:         p.f.stream,
		RaisedByShard:  p.env.Shard.ShardID,
		RaisedByWorker: p.env.Shard.WorkerID,
		DetectedAt:     now.UTC(),
	}
	customers, countries, ips := map[string]int64{}, map[string]int64{}, map[string]int64{}
	shards := map[string]bool{}
	for sec := end - p.f.width + 1; sec <= end; sec++ {
		for shard, s := range data[sec] {
			if s.count(cfg.Mode, key) > 0 {
				shards[shard] = true
			}
			if !s.First.IsZero() && (a.FirstOrder.IsZero() || s.First.Before(a.FirstOrder)) {
				a.FirstOrder = s.First.UTC()
			}
			if s.Last.After(a.LastOrder) {
				a.LastOrder = s.Last.UTC()
			}
			for k, n := range s.Customers {
				customers[k] += n
			}
			for k, n := range s.Countries {
				countries[k] += n
			}
			for k, n := range s.IPs {
				ips[k] += n
			}
		}
	}
	a.Shards = len(shards)
	a.TopCustomers = topOf(customers, cfg.Top)
	a.TopCountries = topOf(countries, cfg.Top)
	a.TopIPs = topOf(ips, cfg.Top)
	return a
}

// raise makes a the fleet's one alarm of its period if no other worker
// did, and publishes it when publish is set. body is nil for new alarms
// (it is rendered here) and the stored body for resumed ones.
//
// The sequence survives a crash at any step: (1) a pending marker for this
// shard goes to the results table; (2) a conditional put of the
// alarm-history item (state claimed, this lease's token) elects one
// raiser fleet-wide; (3) deliver moves the claim to publishing, publishes
// synchronously and at once records it published. A later owner of the
// shard resumes every marker not done: it retries (2) and, if this shard
// won but never recorded the message as published, takes the claim over
// (a conditional put on the old token, so the old owner, should it wake
// up, publishes nothing) and delivers it: exactly once from claimed,
// again with the same de-duplication id from publishing (see deliver).
func (p *processor) raise(ctx context.Context, out processors.Emitter, a *Alarm, body []byte, publish bool) error {
	id := a.ID + "#" + periodKey(a.Period)
	if _, done := p.raised[id]; done {
		return nil
	}
	if a.DedupID == "" {
		a.DedupID = dedupID(a.ID, a.Period)
	}
	if body == nil {
		var err error
		if body, err = json.Marshal(a); err != nil {
			return fmt.Errorf("%s: encode alarm %s: %w", Name, id, err)
		}
	}
	now := p.env.Clock.Now()
	st, shard := p.env.Store, p.env.Shard.ShardID
	if st == nil { // no store: no fleet-wide de-duplication
		p.raised[id] = a.Period
		if publish && p.f.topic != "" {
			out.Publish(message(p.f.topic, a, body))
		}
		return nil
	}
	marker := markerItem(p.f.results, p.f.cfg.Name, shard, a, body, false, now.Add(markerTTL))
	if _, err := st.PutIfAbsent(ctx, p.f.results, window.AttrPK, marker.Attrs); err != nil {
		return p.retryLater(ctx, a, now, err)
	}
	won, err := st.PutIfAbsent(ctx, p.f.alarms, attrAlarm, p.history(a, body, stateClaimed, now))
	if err != nil {
		return p.retryLater(ctx, a, now, err)
	}
	state := stateClaimed
	if !won {
		period := periodKey(a.Period)
		items, err := st.Query(ctx, p.f.alarms, attrAlarm, a.ID, attrPeriod, period, period)
		if err != nil {
			return p.retryLater(ctx, a, now, err)
		}
		ours := false
		if len(items) == 1 {
			it := items[0]
			by, _ := window.GetStr(it, "raised_by_shard")
			stored, _ := window.GetStr(it, attrBody)
			state = stateOf(it)
			if by == shard && state != statePublished && stored != "" {
				// This shard won before a crash or hand-over and never
				// recorded the message as out: take the claim over and
				// deliver what the history item says.
				var sa Alarm
				if err := json.Unmarshal([]byte(stored), &sa); err == nil {
					if sa.DedupID == "" {
						sa.DedupID = dedupID(sa.ID, sa.Period)
					}
					ok, err := p.takeOver(ctx, &sa, []byte(stored), state, it)
					if err != nil {
						return p.retryLater(ctx, a, now, err)
					}
					ours, a, body = ok, &sa, []byte(stored)
				}
			}
		}
		if !ours {
			out.Put(markerItem(p.f.results, p.f.cfg.Name, shard, a, body, true, now.Add(markerTTL)))
			p.raised[id] = a.Period
			return nil
		}
	}
	p.raised[id] = a.Period
	if p.f.topic == "" || p.env.Publisher == nil {
		// Recorded in the history, never published: nothing to resume.
		out.Put(markerItem(p.f.results, p.f.cfg.Name, shard, a, body, true, now.Add(markerTTL)))
		return nil
	}
	if !publish {
		return nil // the marker stays pending for the next owner
	}
	return p.deliver(ctx, out, a, body, state)
}

// takeOver moves the claim of the history item it (this shard's, not
// published) to this lease. It fails when someone else moved it first.
func (p *processor) takeOver(ctx context.Context, a *Alarm, body []byte, state string, it map[string]types.AttributeValue) (bool, error) {
	old, _ := window.GetStr(it, attrClaim)
	if old == p.token {
		return true, nil
	}
	cond := map[string]types.AttributeValue{attrPublished: window.Bool(false)}
	if old != "" {
		cond[attrClaim] = window.Str(old)
	}
	return p.env.Store.PutIf(ctx, p.f.alarms, attrAlarm, p.history(a, body, state, p.env.Clock.Now()), cond)
}

// deliver publishes a, claimed by this lease and in state claimed or
// publishing, and records it published right after the publish returns:
//
//   - claimed -> publishing (conditional on this lease's token: a lease
//     that lost the claim publishes nothing);
//   - publish synchronously (Env.Publisher), with a.DedupID as the
//     MessageDeduplicationId on FIFO topics and in the attributes and
//     body on every topic;
//   - publishing -> published (conditional on the token).
//
// A claim found in publishing may or may not have gone out (the owner
// died between the publish and its record): it is published again with
// the same de-duplication id. A FIFO topic drops that repeat when it comes
// within its 5-minute de-duplication interval of the first; a standard
// topic delivers it, and subscribers drop it by dedup_id.
func (p *processor) deliver(ctx context.Context, out processors.Emitter, a *Alarm, body []byte, state string) error {
	now := p.env.Clock.Now()
	own := map[string]types.AttributeValue{attrClaim: window.Str(p.token)}
	if state == stateClaimed {
		ok, err := p.env.Store.PutIf(ctx, p.f.alarms, attrAlarm, p.history(a, body, statePublishing, now), own)
		if err != nil {
			return p.later(ctx, &p.unsent, a, body, stateClaimed, now, err)
		}
		if !ok {
			p.log.Info("alarm claim taken over by a later owner of the shard; not publishing",
				zap.String("alarm", a.ID), zap.String("period", periodKey(a.Period)))
			return nil
		}
	} else {
		p.log.Info("publishing again an alarm that may have gone out (same de-duplication id)",
			zap.String("alarm", a.ID), zap.String("period", periodKey(a.Period)), zap.String("dedup_id", a.DedupID),
			zap.Bool("fifo", isFIFO(p.f.topic)))
	}
	if err := p.env.Publisher.Publish(ctx, []processors.Message{message(p.f.topic, a, body)}); err != nil {
		return p.later(ctx, &p.unsent, a, body, statePublishing, now, err)
	}
	return p.confirm(ctx, out, a, body)
}

// confirm records a as published: the history item (conditional on this
// lease's claim) and the shard's marker.
func (p *processor) confirm(ctx context.Context, out processors.Emitter, a *Alarm, body []byte) error {
	now := p.env.Clock.Now()
	own := map[string]types.AttributeValue{attrClaim: window.Str(p.token)}
	if _, err := p.env.Store.PutIf(ctx, p.f.alarms, attrAlarm, p.history(a, body, statePublished, now), own); err != nil {
		// Retried before anything else on the next flush; the message is
		// out and is not published again by this lease.
		return p.later(ctx, &p.unconfirmed, a, body, statePublishing, now, err)
	}
	out.Put(markerItem(p.f.results, p.f.cfg.Name, p.env.Shard.ShardID, a, body, true, now.Add(markerTTL)))
	return nil
}

// later queues a for the next flush after a store or SNS error, unless
// ctx ended (the lease is going away: the next owner resumes it).
func (p *processor) later(ctx context.Context, q *[]pendingAlarm, a *Alarm, body []byte, state string, now time.Time, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: alarm %s: %w", Name, a.ID, err)
	}
	p.warn(now, "alarm delivery deferred", err)
	if len(*q) < maxRetryAlarms {
		*q = append(*q, pendingAlarm{a: a, body: body, state: state})
	}
	return nil
}

// history returns a's alarm-history item in state, claimed by this lease.
func (p *processor) history(a *Alarm, body []byte, state string, now time.Time) map[string]types.AttributeValue {
	return historyItem(a, body, state, p.token, now, later(a.Period, now).Add(p.f.retention))
}

func (p *processor) retryLater(ctx context.Context, a *Alarm, now time.Time, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: raise %s: %w", Name, a.ID, err)
	}
	p.warn(now, "alarm deferred", err)
	if len(p.retry) < maxRetryAlarms {
		p.retry = append(p.retry, a)
	}
	return nil
}

func (p *processor) warn(now time.Time, msg string, err error) {
	if now.Sub(p.lastWarn) < warnEvery && !p.lastWarn.IsZero() {
		return
	}
	p.lastWarn = now
	p.log.Warn(msg, zap.Error(err))
}

// prune drops closed seconds no window can need any more and alarm
// memos of past periods.
func (p *processor) prune() {
	wm := p.tr.Watermark().Unix()
	keep := wm - p.f.width - int64(p.f.cfg.Grace/time.Second) - 2
	for sec := range p.recent {
		if sec < keep {
			delete(p.recent, sec)
		}
	}
	for sec := range p.reported {
		if sec < keep {
			delete(p.reported, sec)
		}
	}
	horizon := time.Unix(keep, 0).Add(-p.f.cfg.Suppression)
	for id, period := range p.raised {
		if period.Before(horizon) {
			delete(p.raised, id)
		}
	}
}

// StateSize returns the keys held (the conformance kit's bounded-state
// check): customers, countries, IPs and invoices of open and recently
// closed seconds.
func (p *processor) StateSize() int {
	n := 0
	for _, w := range p.tr.Open() {
		n += w.State.size()
	}
	for _, s := range p.recent {
		n += s.size()
	}
	return n
}

func (p *processor) Urgent() bool { return len(p.changed) > 0 } // processors.Urgent: evaluate new orders at once, not on the flush cadence
