package orderflood

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Fleet-wide evaluation.
//
// Every shard writes a frontier item: the earliest event time (a second
// start) at which its counts may still change. The fleet's frontier W is
// the smallest of them; shards idle for `idle` (and ended shards) do not
// hold it back. Every order time t < W is final fleet-wide: its sliding
// count [t-window, t] reads only final per-second partials. Alarms follow
// deterministically from the final counts (the suppression chain and the
// trigger counts depend on nothing else), so any shard may decide them:
// a shard with orders not yet decided evaluates the span (D, W] from the
// chain item's D, the alarms one conditional put each, then moves D on.
// Two shards that evaluate one span find the same alarms.

// frontier is one shard's progress, in Unix milliseconds.
type frontier struct {
	At    int64 // counts of times >= At may still change
	Idle  bool  // the shard holds nothing back (idle or ended)
	WM    int64 // the shard's watermark (newest order time)
	First int64 // earliest order time of this lease not yet decided; 0 if none
}

// Attributes of frontier and chain items.
const (
	attrFrontier  = "frontier"    // N ms, or absent when idle
	attrIdle      = "idle"        // BOOL
	attrWM        = "watermark"   // N ms
	attrFirstOpen = "first"       // N ms
	attrDecided   = "decided"     // N ms: every order time before it is decided
	attrLastAlarm = "last_alarms" // M key -> N ms of the key's last alarm
)

func frontierPK(name string) string { return "orders#" + name + "#frontier" }
func chainPK(name string) string    { return "orders#" + name + "#chain" }

const (
	chainSK      = "chain"
	lastAlarmKey = "k#" // prefix of the keys in last_alarms
)

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// frontierNow returns this shard's frontier at clock time now.
//
// By arrival time a shard's watermark follows every record it reads
// (arrival times only grow within a shard) and every poll that found it
// caught up (CaughtUp). A shard whose orders are all decided and that has
// read to within Grace of the clock holds nothing back: an order it reads
// later arrives within Grace, before any other shard's frontier passes
// it. A shard further behind (a backlog, a stall) holds the fleet at its
// watermark minus Grace, as one with orders does.
func (p *processor) frontierNow(now time.Time, ended bool) frontier {
	cfg := &p.f.cfg
	f := frontier{WM: ms(p.ownLast), First: ms(p.firstOpen)}
	idleSince := p.lastOrder
	if idleSince.IsZero() {
		idleSince = p.started
	}
	open := p.tr.Open()
	switch {
	case ended:
		f.Idle = true
		return f
	case len(open) == 0 && cfg.Time == TimeArrival:
		// Not the clock: a shard with a backlog reads no orders for a while.
		f.Idle = !p.pending && now.Sub(p.tr.Watermark()) <= cfg.Grace
		if f.Idle {
			return f
		}
	case len(open) == 0 && now.Sub(idleSince) >= cfg.Idle:
		f.Idle = true
		return f
	}
	// A record is still counted unless its second is before the closed
	// horizon or it is Grace behind the watermark. Global counts are exact
	// to the millisecond (the tracker's floor makes older records late);
	// keyed counts are per second: an open second still changes.
	at := p.tr.ClosedUpTo()
	if wm := p.tr.Watermark(); !wm.IsZero() {
		lim := wm.Add(-cfg.Grace)
		if !p.f.msFrontier {
			lim = lim.Truncate(time.Second)
		}
		at = later(at, lim)
	}
	if !p.f.msFrontier && len(open) > 0 && open[0].Start.Before(at) {
		at = open[0].Start
	}
	f.At = ms(at)
	return f
}

// emitFrontier writes the frontier f when it changed, at most every
// frontierEvery unless the shard goes idle (Urgent brings a flush for the
// rest). writtenFrom is the earliest second whose partial this flush
// writes: it goes out in the same write, with no order among the items,
// so the frontier stays at it until a later write. This shard's own
// evaluation uses the same frontier, and its records before it are late
// from now on.
func (p *processor) emitFrontier(out processors.Emitter, f frontier, writtenFrom, now time.Time) {
	if !writtenFrom.IsZero() && (f.Idle || ms(writtenFrom) < f.At) {
		f.Idle, f.At = false, ms(writtenFrom)
	}
	p.next = f
	if !f.Idle {
		p.tr.SetFloor(fromMS(f.At))
	}
	if !p.frontierDue(f, now) {
		return
	}
	p.log.Debug("frontier", zap.Time("at", fromMS(f.At)), zap.Bool("idle", f.Idle), zap.Time("watermark", p.tr.Watermark()))
	out.Put(p.frontierItem(f, now))
	p.sent, p.sentAt = f, now
}

// frontierDue reports whether f is worth a write now (at most every
// frontierEvery, unless the shard goes idle): when what other shards
// decide from it changes. Progress between order times decides nothing
// new, so progress alone is written when it passes the newest order this
// shard knows of (its own, or the fleet's as of its last evaluation), or
// moved a second.
func (p *processor) frontierDue(f frontier, now time.Time) bool {
	s := p.sent
	switch {
	case f == s:
		return false
	case f.Idle:
		return true
	case now.Sub(p.sentAt) < frontierEvery:
		return false
	case s.Idle || f.WM != s.WM || f.First != s.First || f.At < s.At:
		return true
	}
	newest := max(p.fleetWM, ms(p.ownLast))
	return (s.At <= newest && f.At > newest) || f.At-s.At >= time.Second.Milliseconds()
}

func (p *processor) frontierItem(f frontier, now time.Time) processors.Item {
	pk, sk := frontierPK(p.f.cfg.Name), window.ShardSK(p.env.Shard.ShardID)
	m := map[string]types.AttributeValue{
		window.AttrPK:        window.Str(pk),
		window.AttrSK:        window.Str(sk),
		window.AttrShard:     window.Str(p.env.Shard.ShardID),
		attrIdle:             window.Bool(f.Idle),
		attrWM:               window.Int(f.WM),
		attrFirstOpen:        window.Int(f.First),
		window.AttrExpiresAt: window.Int(now.Add(p.f.cfg.PartialTTL).Unix()),
	}
	if !f.Idle {
		m[attrFrontier] = window.Int(f.At)
	}
	return processors.Item{Table: p.f.results, Key: pk + "|" + sk, Attrs: m}
}

func parseFrontier(it map[string]types.AttributeValue) frontier {
	var f frontier
	f.Idle, _ = window.GetBool(it, attrIdle)
	f.At, _ = window.GetInt(it, attrFrontier)
	f.WM, _ = window.GetInt(it, attrWM)
	f.First, _ = window.GetInt(it, attrFirstOpen)
	return f
}

// evaluator is a shard's view of the fleet-wide evaluation.
type evaluator struct {
	decided   int64            // ms: order times before it are decided
	chainAt   string           // the chain item's decided as read ("" = absent)
	lastAlarm map[string]int64 // per key: time of the last alarm (ms)
	// breaches per key in the trigger window before decided; warm says
	// they are this shard's own (else the next span recounts them).
	breaches  map[string][]int64
	warm      bool
	cache     map[int64]shardData
	loadedTo  int64 // seconds before it (and from cacheFrom) are in cache
	cacheFrom int64
	// own holds this shard's closed seconds until they are decided: their
	// final partials may not be durable yet when this shard evaluates.
	own map[int64]*secState
}

// shardData is every shard's state of one second.
type shardData map[string]*secState

func newEvaluator() evaluator {
	return evaluator{lastAlarm: map[string]int64{}, breaches: map[string][]int64{}, cache: map[int64]shardData{}, own: map[int64]*secState{}}
}

func (e *evaluator) size() int {
	n := 0
	for _, d := range e.cache {
		for _, s := range d {
			n += s.size()
		}
	}
	for sec, s := range e.own {
		if _, cached := e.cache[sec]; !cached {
			n += s.size()
		}
	}
	return n
}

// decision is what one span of an evaluation decided, committed once its
// alarms are claimed.
type decision struct {
	to        int64
	lastAlarm map[string]int64
	breaches  map[string][]int64
}

// fleet returns the fleet's frontier W (ms) and the chain: every order
// time before W is final. This shard's own frontier is the one in memory:
// its seconds closed but not yet durable are in ev.own.
func (p *processor) fleet(ctx context.Context) (int64, error) {
	cfg, st := &p.f.cfg, p.env.Store
	fronts, err := st.Query(ctx, p.f.results, window.AttrPK, frontierPK(cfg.Name), window.AttrSK, "", "\U0010FFFF")
	if err != nil {
		return 0, fmt.Errorf("query frontiers: %w", err)
	}
	w, maxWM, first := int64(math.MaxInt64), int64(0), int64(math.MaxInt64)
	self := window.ShardSK(p.env.Shard.ShardID)
	seen := map[string]bool{}
	for _, it := range fronts {
		f := parseFrontier(it)
		sk, _ := window.GetStr(it, window.AttrSK)
		seen[sk] = true
		if sk == self {
			f = p.next
		}
		maxWM = max(maxWM, f.WM)
		if f.First > 0 {
			first = min(first, f.First)
		}
		if !f.Idle {
			w = min(w, f.At)
		}
	}
	p.fleetWM = max(p.fleetWM, maxWM)
	// An open shard no worker has started yet may hold any order time.
	if p.env.Shards != nil {
		ids, err := p.env.Shards(ctx)
		if err != nil {
			return 0, err
		}
		for _, id := range ids {
			if !seen[window.ShardSK(id)] {
				return 0, nil
			}
		}
	}
	// Nothing after the newest order can change a decision yet.
	switch {
	case maxWM > 0 && p.f.msFrontier:
		w = min(w, maxWM+1)
	case maxWM > 0:
		w = min(w, maxWM-mod(maxWM, 1000)+1000)
	}
	if w <= p.ev.decided {
		// Nothing new to decide: no other shard can have decided past w
		// either, so the chain need not be read.
		return w, nil
	}
	chain, err := st.Query(ctx, p.f.results, window.AttrPK, chainPK(cfg.Name), window.AttrSK, chainSK, chainSK)
	if err != nil {
		return 0, fmt.Errorf("query chain: %w", err)
	}
	p.ev.chainAt = ""
	if len(chain) == 1 {
		d, _ := window.GetInt(chain[0], attrDecided)
		p.ev.chainAt = strconv.FormatInt(d, 10)
		if d > p.ev.decided {
			// Another shard decided further: continue from its chain.
			p.ev.decided, p.ev.lastAlarm, p.ev.warm = d, lastAlarms(chain[0]), false
		}
	}
	if w == math.MaxInt64 {
		w = 0
	}
	// A fresh fleet starts at its first order, once every shard has
	// reported how far it got (until then some frontier holds w at 0).
	if p.ev.decided == 0 && w > 0 && first != math.MaxInt64 {
		p.ev.decided = first
	}
	return w, nil
}

// evaluate decides the order times in [ev.decided, min(w, +evalSpan)) and
// returns their alarms, oldest first; dec is nil when nothing is left.
func (p *processor) evaluate(ctx context.Context, out processors.Emitter, w int64, now time.Time) ([]*Alarm, *decision, error) {
	d := p.ev.decided
	if d == 0 || w <= d {
		return nil, nil, nil
	}
	to := min(w, d+evalSpan.Milliseconds())
	if err := p.load(ctx, d, to); err != nil {
		return nil, nil, err
	}
	dec := &decision{to: to, lastAlarm: maps.Clone(p.ev.lastAlarm), breaches: map[string][]int64{}}
	if p.ev.warm {
		for k, b := range p.ev.breaches {
			dec.breaches[k] = slices.Clone(b)
		}
	}
	alarms := p.decide(out, d, to, dec, now)
	return alarms, dec, nil
}

func lastAlarms(it map[string]types.AttributeValue) map[string]int64 {
	out := map[string]int64{}
	if m, ok := it[attrLastAlarm].(*types.AttributeValueMemberM); ok {
		for k, v := range m.Value {
			k, ok := strings.CutPrefix(k, lastAlarmKey)
			if n, isN := v.(*types.AttributeValueMemberN); ok && isN {
				if t, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
					out[k] = t
				}
			}
		}
	}
	return out
}

// commit records dec: the chain item (unless another shard moved it
// first, having decided the same) and this shard's view.
func (p *processor) commit(ctx context.Context, dec *decision) error {
	cfg := &p.f.cfg
	// Keys whose last alarm can no longer suppress anything are dropped.
	for k, t := range dec.lastAlarm {
		if dec.to-t >= cfg.Suppression.Milliseconds() {
			delete(dec.lastAlarm, k)
		}
	}
	la := make(map[string]types.AttributeValue, len(dec.lastAlarm))
	for k, t := range dec.lastAlarm {
		la[lastAlarmKey+k] = window.Int(t) // map keys must not be empty (global mode's key is "")
	}
	item := map[string]types.AttributeValue{
		window.AttrPK:        window.Str(chainPK(cfg.Name)),
		window.AttrSK:        window.Str(chainSK),
		attrDecided:          window.Int(dec.to),
		attrLastAlarm:        &types.AttributeValueMemberM{Value: la},
		window.AttrExpiresAt: window.Int(later(fromMS(dec.to), p.env.Clock.Now()).Add(cfg.PartialTTL).Unix()),
	}
	var err error
	if p.ev.chainAt == "" {
		_, err = p.env.Store.PutIfAbsent(ctx, p.f.results, window.AttrPK, item)
	} else {
		_, err = p.env.Store.PutIf(ctx, p.f.results, window.AttrPK, item,
			map[string]types.AttributeValue{attrDecided: &types.AttributeValueMemberN{Value: p.ev.chainAt}})
	}
	if err != nil {
		return fmt.Errorf("write chain: %w", err)
	}
	p.ev.decided, p.ev.lastAlarm, p.ev.breaches, p.ev.warm = dec.to, dec.lastAlarm, dec.breaches, true
	p.ev.chainAt = strconv.FormatInt(dec.to, 10)
	if ms(p.ownLast) < dec.to {
		p.pending = false
		p.firstOpen = time.Time{}
	}
	// Keep the seconds the next span's windows reach.
	keep := (dec.to-cfg.Window.Milliseconds())/1000 - 1
	for sec := range p.ev.cache {
		if sec < keep {
			delete(p.ev.cache, sec)
		}
	}
	for sec := range p.ev.own {
		if sec < keep {
			delete(p.ev.own, sec)
		}
	}
	p.ev.cacheFrom = max(p.ev.cacheFrom, keep)
	return nil
}

// load caches every shard's final partials of the seconds the windows
// and trigger counts of the order times in [from, to) reach.
func (p *processor) load(ctx context.Context, from, to int64) error {
	lo := p.reach(from) / 1000
	hi := (to + 999) / 1000 // exclusive
	if p.ev.loadedTo < lo || p.ev.cacheFrom > lo {
		clear(p.ev.cache)
		p.ev.loadedTo, p.ev.cacheFrom = lo, lo
	}
	if p.ev.loadedTo >= hi {
		return nil
	}
	items, err := p.queryPartials(ctx, [][2]int64{{p.ev.loadedTo, hi - 1}})
	if err != nil {
		return err
	}
	for _, it := range items {
		h, s, err := parsePartial(it)
		if err != nil {
			p.log.Warn("skipping unreadable partial", zap.Error(err))
			continue
		}
		sec := h.Start.Unix()
		if p.ev.cache[sec] == nil {
			p.ev.cache[sec] = shardData{}
		}
		p.ev.cache[sec][h.Shard] = s
	}
	for sec, s := range p.ev.own {
		if sec >= p.ev.loadedTo && sec < hi {
			if p.ev.cache[sec] == nil {
				p.ev.cache[sec] = shardData{}
			}
			p.ev.cache[sec][p.env.Shard.ShardID] = s
		}
	}
	// A second `to` falls in may still change after `to`: load it again.
	p.ev.loadedTo = to / 1000
	return nil
}

// point is an order time of one key: n orders at ms, or one line of an
// invoice (inv set).
type point struct {
	ms    int64
	n     int64
	inv   string
	shard string
}

// points returns the order times per key ("" in global mode) of the
// cached seconds in [lo, hi), sorted by time; approx lists the seconds
// that lost keys to max_keys.
func (p *processor) points(lo, hi int64) (map[string][]point, map[int64]bool) {
	cfg := &p.f.cfg
	pts := map[string][]point{}
	approx := map[int64]bool{}
	for sec := lo; sec < hi; sec++ {
		for shard, s := range p.ev.cache[sec] {
			base := sec * 1000
			if s.Overflow > 0 && (cfg.Mode != ModeGlobal || cfg.Count == CountInvoices) {
				approx[sec] = true
			}
			switch {
			case cfg.Mode != ModeGlobal:
				for k, n := range s.keyed(cfg.Mode) {
					pts[k] = append(pts[k], point{ms: base, n: n, shard: shard})
				}
			case cfg.Source == SourceOrders && cfg.Count == CountInvoices:
				for inv, sp := range s.Invoices {
					pts[""] = append(pts[""], point{ms: base + int64(sp.First), inv: inv, shard: shard})
					if sp.Last != sp.First {
						pts[""] = append(pts[""], point{ms: base + int64(sp.Last), inv: inv, shard: shard})
					}
				}
				if s.Overflow > 0 {
					pts[""] = append(pts[""], point{ms: base, n: s.Overflow, shard: shard})
				}
			case len(s.Millis) > 0:
				for off, n := range s.Millis {
					pts[""] = append(pts[""], point{ms: base + int64(off), n: n, shard: shard})
				}
			case s.Orders > 0: // a partial written without millis
				pts[""] = append(pts[""], point{ms: base, n: s.Orders, shard: shard})
			}
		}
	}
	for k := range pts {
		slices.SortFunc(pts[k], func(a, b point) int {
			return cmp.Or(cmp.Compare(a.ms, b.ms), cmp.Compare(a.shard, b.shard), cmp.Compare(a.inv, b.inv))
		})
	}
	return pts, approx
}

// slide calls visit for each distinct time t in pts (sorted) at or after
// from, with the count over [t-width, t]: the weights plus the distinct
// invoices there, and the index of the window's first point.
func slide(pts []point, width, from int64, visit func(t, count int64, first int)) {
	var sum int64
	invs := map[string]int{}
	j := 0
	for i := 0; i < len(pts); {
		t := pts[i].ms
		for ; i < len(pts) && pts[i].ms == t; i++ {
			if pts[i].inv != "" {
				invs[pts[i].inv]++
			} else {
				sum += pts[i].n
			}
		}
		for ; pts[j].ms < t-width; j++ {
			if inv := pts[j].inv; inv != "" {
				if invs[inv]--; invs[inv] == 0 {
					delete(invs, inv)
				}
			} else {
				sum -= pts[j].n
			}
		}
		if t >= from {
			visit(t, sum+int64(len(invs)), j)
		}
	}
}

// reach is the earliest time (ms) a span from `from` needs: its
// windows, and the trigger window before it unless the breaches there
// are known (warm).
func (p *processor) reach(from int64) int64 {
	cfg := &p.f.cfg
	r := from - cfg.Window.Milliseconds() - 1000
	if !p.ev.warm {
		r -= cfg.TriggerWindow.Milliseconds()
	}
	return r - mod(r, 1000)
}

// decide finds the breaches among the order times in [from, to) and their
// alarms: a breach raises an alarm when its key's last alarm is at least
// the suppression older. At most max_alarms alarms: the span then ends
// early (dec.to) and the next evaluation goes on from there.
func (p *processor) decide(out processors.Emitter, from, to int64, dec *decision, now time.Time) []*Alarm {
	cfg := &p.f.cfg
	width, trig, supp := cfg.Window.Milliseconds(), cfg.TriggerWindow.Milliseconds(), cfg.Suppression.Milliseconds()
	start := from
	if !p.ev.warm {
		start = from - trig // recount the breaches before the span
	}
	pts, approx := p.points(p.reach(from)/1000, (to+999)/1000)
	type breach struct {
		key         string
		t, n        int64
		first, last int // the window's points in pts[key]
	}
	var all []breach
	for key, kp := range pts {
		slide(kp, width, start, func(t, n int64, first int) {
			if t >= to || n < cfg.Threshold {
				return
			}
			last := first
			for last < len(kp) && kp[last].ms <= t {
				last++
			}
			all = append(all, breach{key: key, t: t, n: n, first: first, last: last})
		})
	}
	slices.SortFunc(all, func(a, b breach) int { return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.key, b.key)) })
	var res []*Alarm
	breachSecs := map[int64]bool{}
	for _, b := range all {
		if b.t >= from && len(res) >= cfg.MaxAlarms && (len(res) == 0 || b.t > res[len(res)-1].Time.UnixMilli()) {
			p.log.Warn("alarms over max_alarms in one evaluation: the rest waits for the next", zap.Int("max_alarms", cfg.MaxAlarms))
			dec.to = b.t
			break
		}
		h := append(dec.breaches[b.key], b.t)
		k := 0
		for k < len(h) && h[k] < b.t-trig {
			k++
		}
		dec.breaches[b.key] = h[k:]
		if b.t < from {
			continue
		}
		breachSecs[b.t/1000] = true
		if last, ok := dec.lastAlarm[b.key]; ok && b.t-last < supp {
			continue // suppressed: counted in the next alarm's trigger_count
		}
		dec.lastAlarm[b.key] = b.t
		a := p.details(b.key, b.t, b.n, pts[b.key][b.first:b.last], now)
		a.TriggerCount = int64(len(dec.breaches[b.key]))
		for sec := (b.t - width) / 1000; sec <= b.t/1000; sec++ {
			a.Approximate = a.Approximate || approx[sec]
		}
		a.Text = shortText(a, cfg.Window, cfg.TriggerWindow)
		res = append(res, a)
	}
	for k, h := range dec.breaches {
		i := 0
		for i < len(h) && h[i] < dec.to-trig {
			i++
		}
		if i == len(h) {
			delete(dec.breaches, k)
		} else {
			dec.breaches[k] = h[i:]
		}
	}
	for _, sec := range slices.Sorted(maps.Keys(breachSecs)) {
		if p.reported[sec] == 1 {
			continue
		}
		p.reported[sec] = 1
		out.Metric(processors.Datum{Name: MetricAlarm, Unit: "Count", Dims: p.f.dims, Time: time.Unix(sec, 0).UTC(), Value: 1, Count: 1})
	}
	return res
}

// unit names what the count counts.
func (c *Config) unit() string {
	switch {
	case c.Source == SourceHits:
		return "requests"
	case c.Count == CountInvoices:
		return "orders"
	}
	return "order lines"
}

// details builds the alarm of key at time t (ms) from the points of its
// window.
func (p *processor) details(key string, t, n int64, win []point, now time.Time) *Alarm {
	cfg := &p.f.cfg
	at := fromMS(t)
	a := &Alarm{
		ID:             p.alarmID(key),
		Name:           cfg.Name,
		Mode:           cfg.Mode,
		Key:            key,
		Period:         at.Truncate(time.Second),
		Time:           at,
		WindowStart:    at.Add(-cfg.Window),
		WindowEnd:      at,
		Orders:         n,
		Unit:           cfg.unit(),
		Threshold:      cfg.Threshold,
		Severity:       cfg.Severity,
		Stream:         p.f.stream,
		RaisedByShard:  p.env.Shard.ShardID,
		RaisedByWorker: p.env.Shard.WorkerID,
		DetectedAt:     now.UTC(),
	}
	shards := map[string]bool{}
	for _, pt := range win {
		shards[pt.shard] = true
	}
	if len(win) > 0 {
		a.FirstOrder, a.LastOrder = fromMS(win[0].ms), fromMS(win[len(win)-1].ms)
	}
	a.Shards = len(shards)
	// Top lists cover the whole seconds the window touches.
	customers, countries, ips := map[string]int64{}, map[string]int64{}, map[string]int64{}
	for sec := (t - cfg.Window.Milliseconds()) / 1000; sec <= t/1000; sec++ {
		for _, s := range p.ev.cache[sec] {
			if cfg.Mode != ModeGlobal && s.count(cfg.Mode, key) == 0 {
				continue
			}
			for k, n := range s.Customers {
				if cfg.Mode != ModeCustomer || k == key {
					customers[k] += n
				}
			}
			for k, n := range s.Countries {
				countries[k] += n
			}
			for k, n := range s.IPs {
				if cfg.Mode != ModeIP || k == key {
					ips[k] += n
				}
			}
		}
	}
	a.TopCustomers = topOf(customers, cfg.Top)
	a.TopCountries = topOf(countries, cfg.Top)
	a.TopIPs = topOf(ips, cfg.Top)
	return a
}

func (p *processor) alarmID(key string) string {
	if p.f.cfg.Mode == ModeGlobal {
		return p.f.cfg.Name
	}
	return p.f.cfg.Name + "#" + p.f.cfg.Mode + "#" + key
}

// evaluateAndRaise finishes the alarms left pending, evaluates what the
// fleet's frontier allows when due (or closing), and raises the new
// alarms; publish is false on shutdown (the next owner publishes).
func (p *processor) evaluateAndRaise(ctx context.Context, out processors.Emitter, now time.Time, publish, closing bool) error {
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
	for _, a := range retry {
		if err := p.raise(ctx, out, a, nil, publish); err != nil {
			return err
		}
	}
	if p.env.Store != nil && p.pending && len(p.retry) == 0 && (now.Sub(p.lastEval) >= evalEvery || closing) {
		p.lastEval = now
		if err := p.evaluateSpans(ctx, out, now, publish); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: shard %s: evaluate: %w", Name, p.env.Shard.ShardID, err)
			}
			p.warn(now, "evaluation deferred", err)
		}
	}
	p.prune()
	return nil
}

// evaluateSpans decides span after span up to the fleet's frontier. A
// span is decided once its alarms are claimed; otherwise the next
// evaluation decides it again (the same alarms).
func (p *processor) evaluateSpans(ctx context.Context, out processors.Emitter, now time.Time, publish bool) error {
	w, err := p.fleet(ctx)
	if err != nil {
		return err
	}
	p.log.Debug("evaluate", zap.Time("decided", fromMS(p.ev.decided)), zap.Time("frontier", fromMS(w)), zap.Bool("warm", p.ev.warm))
	for p.ev.decided != 0 && p.ev.decided < w {
		alarms, dec, err := p.evaluate(ctx, out, w, now)
		if err != nil || dec == nil {
			return err
		}
		for _, a := range alarms {
			if err := p.raise(ctx, out, a, nil, publish); err != nil {
				return err
			}
		}
		if len(p.retry) > 0 {
			return nil
		}
		if err := p.commit(ctx, dec); err != nil {
			return err
		}
	}
	if ms(p.ownLast) < p.ev.decided {
		p.pending = false
	}
	return nil
}

// queryPartials returns every shard's per-second partials of the seconds
// in ivs (sorted, disjoint intervals): one Query per minute bucket.
func (p *processor) queryPartials(ctx context.Context, ivs [][2]int64) ([]map[string]types.AttributeValue, error) {
	var out []map[string]types.AttributeValue
	for _, q := range bucketRanges(ivs) {
		ta, tb := time.Unix(q[0], 0).UTC(), time.Unix(q[1], 0).UTC()
		pk := bucketPK(p.f.cfg.Name, ta)
		items, err := p.env.Store.Query(ctx, p.f.results, window.AttrPK, pk, window.AttrSK,
			window.FormatTime(ta), window.FormatTime(tb)+"#~")
		if err != nil {
			return nil, fmt.Errorf("query partials %s: %w", pk, err)
		}
		out = append(out, items...)
	}
	return out, nil
}

// bucketRanges splits intervals of seconds at minute boundaries and joins
// the parts that fall into the same minute: one Query per minute bucket.
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

func mod(a, b int64) int64 { return ((a % b) + b) % b }
