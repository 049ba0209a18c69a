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
	// MetricAlarm is 1 for an event-time second holding a breach (an
	// order whose sliding count reached the threshold). Several workers
	// may report the same second: alarm on its Maximum.
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
	// evalEvery spaces the fleet-wide evaluations of a shard with orders
	// not yet decided, and frontierEvery the writes of its frontier
	// (clock time): each costs a read or a write unit.
	evalEvery     = time.Second
	frontierEvery = 100 * time.Millisecond
	// evalEveryArrival: by arrival time a shard's frontier follows its
	// poll, so an evaluation per poll decides an alarm within a second.
	// Below the poll interval: a poll cycle (wait, GetRecords, processing)
	// must not fall a few milliseconds short and skip a poll.
	evalEveryArrival = 100 * time.Millisecond
	// evalSpan bounds the event time one evaluation decides (and loads).
	evalSpan = 10 * time.Minute
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
		cfg:        cfg,
		results:    tables.Results,
		alarms:     tables.Alarms,
		topic:      cmp.Or(cfg.TopicARN, app.AlarmTopicARN),
		stream:     app.Stream,
		keys:       window.NewKeys("orders#"+cfg.Name, time.Second),
		dims:       []processors.Dim{{Name: "Alarm", Value: cfg.Name}},
		windowMS:   cfg.Window.Milliseconds(),
		triggerMS:  cfg.TriggerWindow.Milliseconds(),
		msFrontier: cfg.Mode == ModeGlobal && cfg.Time == TimeArrival,
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
	keys            window.Keys // cursor items
	path            *regexp.Regexp
	dims            []processors.Dim
	windowMS        int64 // window in milliseconds
	triggerMS       int64 // trigger window in milliseconds
	// msFrontier: frontiers move by the millisecond (global counts by
	// arrival time, where they must follow each poll), not by the second
	// (keyed counts are per second; by event time a record is late only
	// once its second closed, as the offline rule counts).
	msFrontier bool
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

	// Fleet-wide evaluation (eval.go): this shard's orders are decided
	// once every shard's frontier has passed them.
	next      frontier // last computed (this shard's own evaluation uses it)
	fleetWM   int64    // newest order time (ms) of any shard, as last read
	sent      frontier // last written
	sentAt    time.Time
	firstOpen time.Time // earliest order time of this lease not yet decided
	lastOrder time.Time // clock time of the last accepted order
	ownLast   time.Time // latest order time of this lease
	pending   bool      // orders of this lease not yet decided
	lastEval  time.Time
	started   time.Time // clock time the lease began
	ev        evaluator

	orders      map[int64]int64   // per-second counts for MetricOrders
	reported    map[int64]float64 // MetricAlarm value last emitted per second
	raised      map[string]time.Time
	resume      []pendingAlarm // left unconfirmed by a previous owner
	retry       []*Alarm       // raising failed on a store error
	unsent      []pendingAlarm // claimed by this lease, not yet out
	unconfirmed []pendingAlarm // published; recording that failed
	lastWarn    time.Time
	closed      bool
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
		ev:       newEvaluator(),
		started:  env.Clock.Now(),
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
// unconfirmed alarms, and writes this shard's frontier before any record
// is processed.
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
		// The previous owner's orders may not be decided yet.
		p.pending = true
		p.ownLast = c.Watermark
	}
	// The fleet waits for this lease from now on: its frontier replaces a
	// previous owner's (which may say idle while records wait unread).
	now := p.env.Clock.Now()
	f := p.frontierNow(now, false)
	it := p.frontierItem(f, now).Attrs
	wrote, err := st.PutIfAbsent(ctx, p.f.results, window.AttrPK, it)
	if err == nil && !wrote {
		_, err = st.PutIf(ctx, p.f.results, window.AttrPK, it, nil)
	}
	if err != nil {
		return fmt.Errorf("write frontier: %w", err)
	}
	p.next, p.sent, p.sentAt = f, f, now
	if !f.Idle {
		p.tr.SetFloor(fromMS(f.At))
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
	for _, s := range secs {
		want[s.Unix()] = true
	}
	ivs := make([][2]int64, 0, len(secs))
	for _, s := range secs {
		ivs = append(ivs, [2]int64{s.Unix(), s.Unix()})
	}
	items, err := p.queryPartials(ctx, ivs)
	if err != nil {
		return err
	}
	for _, it := range items {
		h, s, err := parsePartial(it)
		if err != nil {
			return fmt.Errorf("load partials: %w", err)
		}
		if h.Shard != shard || !want[h.Start.Unix()] {
			continue
		}
		p.tr.Restore(h.Start, s, h.Pos, h.Final)
		if p.firstOpen.IsZero() || h.Start.Before(p.firstOpen) {
			p.firstOpen = h.Start
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

// timeOf is the time r is counted at.
func (p *processor) timeOf(r *records.Record) time.Time {
	if p.f.cfg.Time == TimeArrival {
		return r.Meta.ArrivalTime
	}
	return r.EventTime()
}

// Process implements processors.Processor.
func (p *processor) Process(_ context.Context, recs []records.Record, _ processors.Emitter) error {
	if p.closed {
		return nil
	}
	cfg := &p.f.cfg
	accepted := false
	for i := range recs {
		r := &recs[i]
		if !p.counts(r) {
			// By arrival time every record shows how far the shard got.
			if cfg.Time == TimeArrival && !r.Meta.ArrivalTime.IsZero() {
				p.tr.Advance(r.Meta.ArrivalTime.UTC())
			}
			continue
		}
		ev := p.timeOf(r).UTC()
		w, v := p.tr.Add(ev, window.PositionOf(&r.Meta))
		if v != window.Accepted {
			continue
		}
		accepted = true
		if p.firstOpen.IsZero() || ev.Before(p.firstOpen) {
			p.firstOpen = ev
		}
		if ev.After(p.ownLast) {
			p.ownLast = ev
		}
		s := w.State
		ms := int32(ev.Sub(w.Start) / time.Millisecond)
		switch {
		case cfg.Source == SourceOrders && cfg.Count == CountInvoices && r.InvoiceNo != "":
			if sp, dup := s.Invoices[r.InvoiceNo]; dup {
				// Another line of a counted invoice.
				s.Invoices[r.InvoiceNo] = span{min(sp.First, ms), max(sp.Last, ms)}
				continue
			}
			if s.Invoices == nil {
				s.Invoices = map[string]span{}
			}
			if len(s.Invoices) < cfg.MaxKeys && len(r.InvoiceNo) <= maxKeyLen {
				s.Invoices[strings.Clone(r.InvoiceNo)] = span{ms, ms}
			} else {
				s.Overflow++ // its further lines will count again
			}
		case cfg.Mode == ModeGlobal:
			if s.Millis == nil {
				s.Millis = map[int32]int64{}
			}
			s.Millis[ms]++
		}
		s.Orders++
		s.seen(ev)
		p.orders[w.Start.Unix()]++
		keyOK := true
		if cfg.Source == SourceOrders {
			if r.CustomerID != "" {
				keyOK = inc(&s.Customers, r.CustomerID, 1, cfg.MaxKeys)
			}
			if r.Country != "" {
				inc(&s.Countries, r.Country, 1, cfg.MaxKeys) // tops only: a full map loses no count
			}
		} else if r.ClientIP != "" {
			keyOK = inc(&s.IPs, r.ClientIP, 1, cfg.MaxKeys)
		}
		if !keyOK && cfg.Mode != ModeGlobal {
			s.Overflow++
		}
	}
	if accepted {
		p.pending = true
		p.lastOrder = p.env.Clock.Now()
	}
	p.tr.Seal()
	return nil
}

// Flush implements processors.Processor.
func (p *processor) Flush(ctx context.Context, out processors.Emitter) error {
	if p.closed {
		return nil
	}
	now := p.env.Clock.Now()
	p.emitPartials(out, p.tr.Expire(now), now, false)
	return p.evaluateAndRaise(ctx, out, now, true, false)
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
		p.emitPartials(out, p.tr.CloseAll(), now, true)
		err = p.evaluateAndRaise(ctx, out, now, true, true)
	case processors.Shutdown:
		p.emitPartials(out, p.tr.Expire(now), now, false)
		err = p.evaluateAndRaise(ctx, out, now, false, true)
	default: // LeaseLost: emit nothing
	}
	p.tr.Drop()
	p.ev = newEvaluator()
	p.resume, p.retry, p.unsent, p.unconfirmed = nil, nil, nil, nil
	return err
}

// emitPartials writes the closed seconds' final partials, the open ones
// that changed, the cursor and this shard's frontier.
func (p *processor) emitPartials(out processors.Emitter, closed []*window.Window[*secState], now time.Time, ended bool) {
	cfg, shard := &p.f.cfg, p.env.Shard.ShardID
	changed := len(closed) > 0
	// Seconds whose counts changed go out in this write, with no order
	// among its items: the frontier must not pass them until a later
	// write. (A second closed unchanged is durable as it is: only its
	// final flag is new.)
	var writtenFrom time.Time
	for _, w := range closed {
		out.Put(partialItem(p.f.results, cfg.Name, shard, w.Start, w.Covered, true, later(w.Start, now).Add(cfg.PartialTTL), w.State))
		p.ev.own[w.Start.Unix()] = w.State
		if w.Dirty() {
			writtenFrom = earliest(writtenFrom, w.Start)
		}
	}
	for _, w := range p.tr.Open() {
		if w.Dirty() {
			changed = true
			out.Put(partialItem(p.f.results, cfg.Name, shard, w.Start, w.Covered, false, later(w.Start, now).Add(cfg.PartialTTL), w.State))
			writtenFrom = earliest(writtenFrom, w.Start)
		}
	}
	if changed {
		out.Put(window.CursorItem(p.f.results, p.f.keys, shard, p.tr.Cursor(), now.Add(cfg.PartialTTL)))
	}
	p.tr.MarkClean()
	p.emitFrontier(out, p.frontierNow(now, ended), writtenFrom, now)
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

// earliest returns the earlier of a and t, a zero a standing for none.
func earliest(a, t time.Time) time.Time {
	if a.IsZero() || t.Before(a) {
		return t
	}
	return a
}

// later returns the later of an event time and the clock: items of a
// replay of old data must not expire the moment they are written.
func later(event, now time.Time) time.Time {
	if now.After(event) {
		return now
	}
	return event
}

// raise makes a the fleet's one alarm of its time if no other worker
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
	if p.f.cfg.Blocklist {
		for _, it := range blocklistItems(p.f.alarms, a, now, p.f.cfg.BlocklistTTL) {
			out.Put(it)
		}
	}
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
	fields := []zap.Field{zap.String("alarm", a.ID), zap.Time("time", a.Time), zap.Int64("orders", a.Orders)}
	if p.f.cfg.Time == TimeArrival {
		// From the newest order's arrival at Kinesis: the alarm's latency.
		fields = append(fields, zap.Duration("decided_after", a.DetectedAt.Sub(a.Time)), zap.Duration("published_after", p.env.Clock.Now().Sub(a.Time)))
	}
	p.log.Info("alarm published", fields...)
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
// It expires after retention, or never when retention is 0.
func (p *processor) history(a *Alarm, body []byte, state string, now time.Time) map[string]types.AttributeValue {
	var expires time.Time
	if r := p.f.cfg.Retention; r > 0 {
		expires = later(a.Period, now).Add(r)
	}
	return historyItem(a, body, state, p.token, now, expires)
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

// prune drops alarm memos no evaluation can raise again.
func (p *processor) prune() {
	horizon := fromMS(p.ev.decided).Add(-p.f.cfg.Suppression - p.f.cfg.TriggerWindow - time.Minute)
	for id, at := range p.raised {
		if at.Before(horizon) {
			delete(p.raised, id)
		}
	}
	for sec := range p.reported {
		if sec < horizon.Unix() {
			delete(p.reported, sec)
		}
	}
}

// StateSize returns the keys held (the conformance kit's bounded-state
// check): customers, countries, IPs, invoices and milliseconds of open
// seconds and of the seconds the evaluation keeps.
func (p *processor) StateSize() int {
	n := 0
	for _, w := range p.tr.Open() {
		n += w.State.size()
	}
	return n + p.ev.size()
}

// Urgent implements processors.Urgent: orders not yet decided are
// evaluated as soon as the fleet's frontier may allow it, and a frontier
// that moved is written without waiting for the flush cadence.
func (p *processor) Urgent() bool {
	now := p.env.Clock.Now()
	return (p.pending && now.Sub(p.lastEval) >= p.evalEvery()) ||
		p.frontierDue(p.next, now)
}

// CaughtUp implements processors.CaughtUp: by arrival time, a poll that
// found the shard read to its end moves the watermark to the clock.
func (p *processor) CaughtUp(now time.Time) {
	if p.f.cfg.Time == TimeArrival && !p.closed {
		p.tr.Advance(now.UTC())
	}
}

// evalEvery spaces this shard's fleet-wide evaluations.
func (p *processor) evalEvery() time.Duration {
	if p.f.cfg.Time == TimeArrival {
		return evalEveryArrival
	}
	return evalEvery
}
