package botdetect

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
	"github.com/shardwatch/shardwatch/pkg/useragent"
)

// Name is the plugin name used in configuration.
const Name = "botdetect"

// Metric names emitted per event-time second.
const (
	MetricBotShare        = "BotShare"        // Percent; Value/Count is the share of requests with a bot UA
	MetricBotRequests     = "BotRequests"     // Count: requests with a bot UA
	MetricLibraryRequests = "LibraryRequests" // Count: requests with a library UA (HTTP clients, SDKs, ...)
	MetricLate            = "LateRecords"     // Count, dimension Processor=botdetect
)

// maxPendingGlobals bounds the closed windows kept while their global
// merge waits for the store.
const maxPendingGlobals = 64

// Plugin returns the botdetect plugin for the consumer's registry.
func Plugin() processors.Plugin {
	return processors.Plugin{
		Name: Name,
		Doc:  "flags crawler User-Agents and bot-like client IPs (rate, robots.txt, crawling) per window",
		Build: func(settings *yaml.Node, app processors.AppInfo) (processors.Factory, error) {
			cfg, err := DecodeConfig(settings, "processors."+Name)
			if err != nil {
				return nil, err
			}
			det, err := NewDetector(cfg.UserAgents)
			if err != nil {
				return nil, fmt.Errorf("processors.%s: %w", Name, err)
			}
			return NewFactory(cfg, app, det)
		},
	}
}

// NewFactory returns the factory of botdetect processors. det is shared
// by every instance (one per shard lease), so its cache serves the whole
// worker. cfg must be valid (DecodeConfig validates).
func NewFactory(cfg Config, app processors.AppInfo, det *Detector) (processors.Factory, error) {
	if det == nil {
		return nil, fmt.Errorf("processors.%s: %w: nil detector", Name, processors.ErrInvalidPlugin)
	}
	table := app.Tables.Results
	if table == "" {
		if app.App == "" {
			return nil, fmt.Errorf("processors.%s: %w: no results table (application name unset)", Name, processors.ErrInvalidPlugin)
		}
		table = processors.TablesFor(app.App).Results
	}
	retention := cfg.Retention
	if retention == 0 {
		retention = app.RetentionOrDefault()
	}
	f := &factory{cfg: cfg, det: det, keys: keysFor(cfg.Size), table: table, retention: retention, crawlBits: 257,
		threshold: uint16(math.Round(cfg.Profile.Threshold * 100))}
	if cfg.CrawlPaths > 0 {
		f.crawlBits = bitsFor(cfg.CrawlPaths)
	}
	return f.new, nil
}

type factory struct {
	cfg       Config
	det       *Detector
	keys      window.Keys
	table     string
	retention time.Duration
	// crawlBits is the sketch fill at which "crawl" is decided; further
	// paths of that IP need not be hashed.
	crawlBits int
	// threshold is Profile.Threshold x100, as profile scores are kept.
	threshold uint16
}

// secCount counts one event-time second for the bot-share metric.
type secCount struct {
	sec           int64
	all, bot, lib int64
}

// pendingGlobal is a closed window whose global item is still to write.
type pendingGlobal struct {
	start time.Time
	// own are this shard's final items, which may not be durable yet; nil
	// when the window was restored as final (its items are durable).
	own []processors.Item
}

type processor struct {
	f       *factory
	env     processors.Env
	log     *zap.Logger
	tr      *window.Tracker[*winState]
	cursor  window.CursorKey // of the last cursor written
	secs    []secCount
	secIdx  map[int64]int
	pending []pendingGlobal
	buf     []byte
	closed  bool
	// lastUA memoises the previous record's verdict: a third to a half of
	// log lines repeat the previous User-Agent, and a string compare is
	// cheaper than the shared cache's hash, lock and list update.
	lastUA      string
	lastVerdict Verdict
	// prof holds the per-IP and per-session profiles (nil: disabled).
	prof *profiles
	// newestMS is the newest event time seen (unix ms); lastPersist the
	// clock time profiles were last written.
	newestMS    int64
	lastPersist time.Time
	// sawSessions: this shard's records carry session ids, so a request
	// without one is evidence ("no-cookie").
	sawSessions bool
	// profPos is the newest record fed to the profiles; profFrom the
	// position restored profiles cover: records at or below it (replayed
	// after a failover) are not fed again, records above it are, even
	// when their window already counted them.
	profPos, profFrom window.Position
	lastRef           string
	keyBuf            []byte
}

func (f *factory) new(ctx context.Context, env processors.Env) (processors.Processor, error) {
	log := env.Logger
	if log == nil {
		log = zap.NewNop()
	}
	p := &processor{
		f:      f,
		env:    env,
		log:    log,
		tr:     window.NewTracker(f.cfg.Config, newWinState),
		secIdx: map[int64]int{},
	}
	if f.cfg.Profile.Enabled {
		p.prof = newProfiles(f.cfg.Profile)
	}
	p.lastPersist = env.Clock.Now()
	if env.Store != nil {
		if err := p.restore(ctx); err != nil {
			return nil, fmt.Errorf("%s: shard %s: restore: %w", Name, env.Shard.ShardID, err)
		}
		if p.prof != nil {
			meta, err := restoreProfiles(ctx, env.Store, f.table, env.Shard.ShardID, p.prof)
			if err != nil {
				return nil, fmt.Errorf("%s: shard %s: restore: %w", Name, env.Shard.ShardID, err)
			}
			p.newestMS, p.profFrom, p.profPos, p.sawSessions = meta.eventMS, meta.pos, meta.pos, meta.sawSessions
		}
	}
	return p, nil
}

// restore loads the previous owner's cursor and partials: open windows
// continue from their totals, final ones only mark records as replayed
// and get their global item rewritten (it may not have been durable).
func (p *processor) restore(ctx context.Context) error {
	shard := p.env.Shard.ShardID
	c, partials, found, err := window.Load(ctx, p.env.Store, p.f.table, p.f.keys, shard)
	if err != nil || !found {
		return err
	}
	p.tr.RestoreCursor(c)
	for _, it := range partials {
		h, err := window.ParseHeader(it)
		if err != nil {
			return err
		}
		if h.Final {
			p.tr.Restore(h.Start, nil, h.Pos, true)
			p.pending = append(p.pending, pendingGlobal{start: h.Start})
			continue
		}
		items := []map[string]types.AttributeValue{it}
		if n, _ := window.GetInt(it, attrChunks); n > 1 {
			more, err := p.env.Store.Query(ctx, p.f.table, window.AttrPK, h.PK, window.AttrSK,
				chunkSK(shard, 1), chunkSK(shard, int(n)-1))
			if err != nil {
				return fmt.Errorf("load chunks of %s: %w", h.PK, err)
			}
			items = append(items, more...)
		}
		if gen, _ := window.GetStr(it, attrGen); gen != "" {
			from := deltaPrefix(shard, gen)
			deltas, err := p.env.Store.Query(ctx, p.f.table, window.AttrPK, deltaPK(h.PK), window.AttrSK, from, from+"~")
			if err != nil {
				return fmt.Errorf("load deltas of %s: %w", h.PK, err)
			}
			items = append(items, deltas...)
		}
		parts, err := decodePartials(items)
		if err != nil {
			return err
		}
		sp := parts[shard]
		if sp == nil {
			return fmt.Errorf("%w: partial %s %s names another shard", window.ErrBadItem, h.PK, h.SK)
		}
		p.tr.Restore(h.Start, restoreState(sp), sp.header.Pos, false)
	}
	return nil
}

// Process implements processors.Processor.
func (p *processor) Process(_ context.Context, recs []records.Record, _ processors.Emitter) error {
	if p.closed {
		return nil
	}
	maxIPs := p.f.cfg.MaxIPs
	var lastPos window.Position
	for i := range recs {
		r := &recs[i]
		if r.Kind != records.KindHit {
			continue
		}
		ev := r.EventTime()
		pos := window.PositionOf(&r.Meta)
		w, verdict := p.tr.Add(ev, pos)
		if verdict == window.Replayed && p.prof != nil && !p.profFrom.IsZero() && pos.Compare(p.profFrom) > 0 {
			// Counted by the previous owner's partial, not by its profiles.
			if ua := p.classify(r.UserAgent); !ua.Bot && r.ClientIP != "" {
				p.observe(r, ev, &ipStat{}, p.f.kindOf(r.Method, r.Path), r.Referer != "" && r.Referer != "-")
			}
			lastPos = pos
			continue
		}
		if verdict != window.Accepted {
			continue
		}
		lastPos = pos
		ua := p.classify(r.UserAgent)
		s := w.State
		lib := ua.Class == useragent.Library
		s.totals.Requests++
		if ua.Bot {
			s.totals.BotRequests++
		}
		if lib {
			s.totals.LibRequests++
		}
		p.countSecond(ev.Unix(), ua.Bot, lib)
		if r.ClientIP == "" {
			continue
		}
		st := s.stat(r.ClientIP, maxIPs)
		if st == nil {
			s.totals.Overflow++
			continue
		}
		st.Requests++
		if r.Bytes > 0 {
			st.Bytes = satAdd(st.Bytes, r.Bytes)
		}
		if ua.Bot || lib {
			if ua.Bot {
				st.BotRequests++
			} else {
				st.LibRequests++
			}
			if st.UA == 0 {
				st.UA = s.names.id(ua.Name)
			}
		}
		kind := p.f.kindOf(r.Method, r.Path)
		referred := r.Referer != "" && r.Referer != "-"
		if kind == kindAsset {
			st.Assets++
		}
		if referred {
			st.Referred++
		}
		if p.prof != nil && !ua.Bot && (p.profFrom.IsZero() || pos.Compare(p.profFrom) > 0) {
			p.observe(r, ev, st, kind, referred)
		}
		if st.Host == 0 && r.Host != "" {
			st.Host = s.hosts.id(r.Host)
		}
		if isRobots(r.Path) {
			st.Robots = true
		}
		if r.Referer == "" || r.Referer == "-" {
			st.NoRef = true
			if st.Paths.bits() < p.f.crawlBits {
				st.Paths.add(r.Path)
			}
		}
	}
	if p.prof != nil && !lastPos.IsZero() && lastPos.Compare(p.profPos) > 0 {
		p.profPos = lastPos.Clone()
		if p.profFrom.Compare(p.profPos) <= 0 {
			p.profFrom = window.Position{} // past the restored profiles
		}
	}
	p.tr.Seal()
	p.lastUA, p.lastRef = "", "" // do not keep the batch payload alive
	return nil
}

// satAdd adds two non-negative counters, saturating: a forged byte count
// must not wrap negative (the state encoding rejects negatives).
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func isRobots(path string) bool {
	rest, ok := strings.CutPrefix(path, "/robots.txt")
	return ok && (rest == "" || rest[0] == '?')
}

// classify returns ua's verdict, memoising the previous record's: a
// third to a half of log lines repeat the previous User-Agent.
func (p *processor) classify(ua string) Verdict {
	if ua == p.lastUA && p.lastUA != "" {
		return p.lastVerdict
	}
	v := p.f.det.Classify(ua)
	// Aliases the batch; only compared within this batch.
	p.lastUA, p.lastVerdict = ua, v
	return v
}

// observe feeds one request of a non-bot User-Agent to its IP's (and
// session's) profile and records the verdict in the window's IP state:
// a profile that flags in this window is reported for this window.
func (p *processor) observe(r *records.Record, ev time.Time, st *ipStat, kind reqKind, referred bool) {
	ms := ev.UnixMilli()
	if ms > p.newestMS {
		p.newestMS = ms
	}
	if referred && r.Referer != p.lastRef {
		p.prof.advertise(refererPath(r.Referer))
		p.lastRef = r.Referer // aliases the batch; reset after it
	}
	if r.SessionID != "" {
		p.sawSessions = true
	}
	o := observe{at: ms, kind: kind, referred: referred, status: r.Status,
		session: r.SessionID != "", noCookie: p.sawSessions && r.SessionID == ""}
	if kind == kindPage || kind == kindForm {
		o.path = stripQuery(r.Path)
	}
	p.record(st, p.prof.add(p.prof.get(r.ClientIP), &o))
	if r.SessionID != "" && p.f.cfg.Profile.Sessions && len(r.SessionID) <= 128 {
		p.keyBuf = append(append(p.keyBuf[:0], "s:"...), r.SessionID...)
		p.record(st, p.prof.add(p.prof.getBytes(p.keyBuf), &o))
	}
}

func (p *processor) record(st *ipStat, v profileVerdict) {
	st.PScore = max(st.PScore, v.Score)
	if v.Score >= p.f.threshold {
		st.PSignals |= v.Signals
	}
}

func (p *processor) countSecond(sec int64, bot, lib bool) {
	i := len(p.secs) - 1
	if i < 0 || p.secs[i].sec != sec {
		var ok bool
		if i, ok = p.secIdx[sec]; !ok {
			i = len(p.secs)
			p.secs = append(p.secs, secCount{sec: sec})
			p.secIdx[sec] = i
		}
	}
	p.secs[i].all++
	if bot {
		p.secs[i].bot++
	}
	if lib {
		p.secs[i].lib++
	}
}

// Flush implements processors.Processor: partials of changed windows,
// finals and global items of windows that closed, metrics.
func (p *processor) Flush(ctx context.Context, out processors.Emitter) error {
	if p.closed {
		return nil
	}
	return p.emit(ctx, out, p.tr.Expire(p.env.Clock.Now()))
}

// Close implements processors.Processor.
func (p *processor) Close(ctx context.Context, reason processors.Reason, out processors.Emitter) error {
	if p.closed {
		return nil
	}
	var err error
	switch reason {
	case processors.ShardEnded:
		err = p.emit(ctx, out, p.tr.CloseAll())
		// The child shards' owners start afresh: nothing to hand over.
	case processors.Shutdown:
		err = p.emit(ctx, out, p.tr.Expire(p.env.Clock.Now()))
		p.persistProfiles(out)
	default: // LeaseLost: the new owner redoes the work
	}
	p.closed = true
	p.tr.Drop()
	p.pending, p.secs = nil, nil
	p.prof = nil
	clear(p.secIdx)
	return err
}

func (p *processor) emit(ctx context.Context, out processors.Emitter, closed []*window.Window[*winState]) error {
	shard := p.env.Shard.ShardID
	changed := len(closed) > 0
	for _, w := range closed {
		var items []processors.Item
		items, p.buf = partialItems(p.f.table, p.f.keys, shard, w.Start, w.End, w.Covered, true,
			p.expires(w.End), w.State, p.gen(w), p.buf)
		for _, it := range items {
			out.Put(it)
		}
		p.pending = append(p.pending, pendingGlobal{start: w.Start, own: items})
	}
	for _, w := range p.tr.Open() {
		if !w.Dirty() {
			continue
		}
		changed = true
		for _, it := range p.openItems(w) {
			out.Put(it)
		}
	}
	if c := p.tr.Cursor(); changed && c.Key(p.tr.Config()) != p.cursor {
		out.Put(window.CursorItem(p.f.table, p.f.keys, shard, c, p.env.Clock.Now().Add(p.f.retention)))
		p.cursor = c.Key(p.tr.Config())
	}
	p.tr.MarkClean()
	if now := p.env.Clock.Now(); p.prof != nil && now.Sub(p.lastPersist) >= p.f.cfg.Profile.PersistEvery {
		p.persistProfiles(out)
	}
	p.emitMetrics(out)
	return p.mergeGlobals(ctx, out)
}

// openItems returns what a flush writes of an open window: a delta with
// the IPs changed since the last write (a few KB where the whole state
// is 10-20 KB), or a whole new base when this lease wrote none yet, when
// the deltas since the base outweigh it (a restore reads base + deltas),
// or when more IPs changed than a chunk holds.
func (p *processor) openItems(w *window.Window[*winState]) []processors.Item {
	s := w.State
	defer s.untouch()
	if s.gen != "" && s.deltaBytes < s.baseBytes && len(s.touched) <= chunkIPs {
		s.seq++
		var it processors.Item
		it, p.buf = deltaItem(p.f.table, p.f.keys, p.env.Shard.ShardID, w.Start, w.End, w.Covered,
			p.expires(w.End), s, s.gen, s.seq, p.buf)
		s.deltaBytes += stateBytes(it)
		return []processors.Item{it}
	}
	s.gen, s.seq, s.deltaBytes = p.gen(w), 0, 0
	var items []processors.Item
	items, p.buf = partialItems(p.f.table, p.f.keys, p.env.Shard.ShardID, w.Start, w.End, w.Covered, false,
		p.expires(w.End), s, s.gen, p.buf)
	s.baseBytes = stateBytes(items...)
	return items
}

// gen returns the generation of a base of window w written now: unique
// per base (this lease's worker and tenure, and the position it covers),
// so no delta of an earlier owner, or of an earlier base, applies to it;
// and the same in two runs over the same records (deterministic output).
func (p *processor) gen(w *window.Window[*winState]) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d|%s|%s", p.env.Shard.WorkerID, p.env.Shard.Tenure, w.Start.Format(time.RFC3339), w.Covered)
	return fmt.Sprintf("%016x", h.Sum64())
}

// mergeGlobals writes the global item of every closed window: the other
// shards' durable partials with this shard's own final items in place of
// its stored ones. A store error leaves the window pending for the next
// flush (the global item is derived data; the partials are safe).
func (p *processor) mergeGlobals(ctx context.Context, out processors.Emitter) error {
	if len(p.pending) == 0 {
		return nil
	}
	if p.env.Store == nil {
		p.pending = p.pending[:0]
		return nil
	}
	shard := p.env.Shard.ShardID
	done := 0
	for _, pg := range p.pending {
		pk := p.f.keys.Window(pg.start)
		items, err := p.env.Store.Query(ctx, p.f.table, window.AttrPK, pk, window.AttrSK, "shard#", "shard#~")
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: global %s: %w", Name, pk, err)
			}
			p.log.Warn("global merge deferred", zap.String("pk", pk), zap.Error(err))
			break
		}
		if pg.own != nil {
			items = slices.DeleteFunc(items, func(it map[string]types.AttributeValue) bool {
				s, _ := window.GetStr(it, window.AttrShard)
				return s == shard
			})
			for _, it := range pg.own {
				items = append(items, it.Attrs)
			}
		}
		r, err := Merge(p.f.cfg.Signals, p.f.cfg.MaxReport, items)
		if err != nil {
			// Corrupt stored partials: nothing a retry fixes.
			p.log.Error("global merge failed", zap.String("pk", pk), zap.Error(err))
			done++
			continue
		}
		if r.Shards > 0 {
			out.Put(globalItem(p.f.table, p.f.keys, r, p.expires(r.End)))
		}
		done++
	}
	p.pending = slices.Delete(p.pending, 0, done)
	if n := len(p.pending) - maxPendingGlobals; n > 0 {
		p.log.Warn("dropping deferred global merges", zap.Int("windows", n))
		p.pending = slices.Delete(p.pending, 0, n)
	}
	return nil
}

// persistProfiles writes every profile (on the persist_every cadence,
// not per batch), after dropping those idle beyond twice the long
// horizon.
func (p *processor) persistProfiles(out processors.Emitter) {
	if p.prof == nil {
		return
	}
	now := p.env.Clock.Now()
	p.lastPersist = now
	p.prof.expire(p.newestMS)
	if !p.prof.dirty {
		return
	}
	var items []processors.Item
	meta := profileMeta{eventMS: p.newestMS, pos: p.profPos, sawSessions: p.sawSessions}
	items, p.buf = profileItems(p.f.table, p.env.Shard.ShardID, p.prof, meta,
		now.Add(max(p.f.retention, 2*p.f.cfg.Profile.Long)), p.buf)
	for _, it := range items {
		out.Put(it)
	}
	p.prof.dirty = false
}

// expires returns the TTL of a window's items: retention after the
// window's end, or after now when that is later (a replay of old data
// must not write items that expire at once).
func (p *processor) expires(end time.Time) time.Time {
	if now := p.env.Clock.Now(); now.After(end) {
		end = now
	}
	return end.Add(p.f.retention)
}

func (p *processor) emitMetrics(out processors.Emitter) {
	slices.SortFunc(p.secs, func(a, b secCount) int { return cmp.Compare(a.sec, b.sec) })
	for _, s := range p.secs {
		t := time.Unix(s.sec, 0).UTC()
		out.Metric(processors.Datum{Name: MetricBotShare, Unit: "Percent", Time: t, Value: 100 * float64(s.bot), Count: float64(s.all)})
		out.Metric(processors.Datum{Name: MetricBotRequests, Unit: "Count", Time: t, Value: float64(s.bot), Count: 1})
		if s.lib > 0 { // most logs have few: no datum for the seconds without
			out.Metric(processors.Datum{Name: MetricLibraryRequests, Unit: "Count", Time: t, Value: float64(s.lib), Count: 1})
		}
	}
	p.secs = p.secs[:0]
	clear(p.secIdx)
	if late := p.tr.TakeCounts().Late; late > 0 {
		out.Metric(processors.Datum{Name: MetricLate, Unit: "Count", Dims: []processors.Dim{{Name: "Processor", Value: Name}},
			Time: p.env.Clock.Now().UTC().Truncate(time.Second), Value: float64(late), Count: 1})
	}
}

// StateSize returns the client IPs held across open windows (the
// conformance kit's bounded-state check).
func (p *processor) StateSize() int {
	n := 0
	for _, w := range p.tr.Open() {
		n += len(w.State.ips)
	}
	return n
}
