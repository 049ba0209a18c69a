package anomaly

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
	"github.com/shardwatch/shardwatch/pkg/useragent"
)

// Name is the plugin name.
const Name = "anomaly"

// Plugin returns the anomaly processor plugin.
func Plugin() processors.Plugin {
	prepare := func(settings *yaml.Node, app processors.AppInfo) (Config, processors.AppInfo, error) {
		if app.Instance == "" {
			app.Instance = Name
		}
		path := "processors." + app.Instance
		cfg := DefaultConfig()
		if err := processors.DecodeStrict(settings, path, &cfg); err != nil {
			return cfg, app, err
		}
		if err := cfg.Validate(path); err != nil {
			return cfg, app, err
		}
		if app.Tables.Results == "" || app.Tables.Alarms == "" {
			if app.App == "" {
				return cfg, app, fmt.Errorf("%s: %w: no tables (application name unset)", path, processors.ErrInvalidPlugin)
			}
			def := processors.TablesFor(app.App)
			app.Tables.Results = cmp.Or(app.Tables.Results, def.Results)
			app.Tables.Alarms = cmp.Or(app.Tables.Alarms, def.Alarms)
		}
		return cfg, app, nil
	}
	return processors.Plugin{
		Name: Name,
		Doc:  "Random Cut Forest anomaly scores per key (json values or per-host traffic series): top points per second, score distribution, max-score metric, SNS alarm",
		Build: func(settings *yaml.Node, app processors.AppInfo) (processors.Factory, error) {
			cfg, app, err := prepare(settings, app)
			if err != nil {
				return nil, err
			}
			return NewFactory(cfg, app)
		},
		Claims: func(settings *yaml.Node, app processors.AppInfo) ([]processors.Claim, error) {
			cfg, app, err := prepare(settings, app)
			if err != nil {
				return nil, err
			}
			out := []processors.Claim{{Table: app.Tables.Results, Prefix: app.Instance + "#model#"}}
			for _, w := range windows(cfg) {
				out = append(out, processors.Claim{Table: app.Tables.Results, Prefix: window.NewKeys(app.Instance, w.Size).Prefix()})
			}
			return out, nil
		},
	}
}

// windows are the runner's windows: one second (top lists) and the
// distribution window.
func windows(cfg Config) []windowed.Window {
	ws := []windowed.Window{{Config: window.Config{Size: time.Second, Grace: cfg.Grace, Idle: cfg.Idle}}}
	if cfg.Distribution != time.Second {
		ws = append(ws, windowed.Window{Config: window.Config{Size: cfg.Distribution, Grace: cfg.Grace, Idle: cfg.Idle}})
	}
	return ws
}

// NewFactory returns the factory of anomaly processors for a validated
// cfg (app.Instance names the instance, app.Tables its tables).
func NewFactory(cfg Config, app processors.AppInfo) (processors.Factory, error) {
	if app.Instance == "" {
		app.Instance = Name
	}
	inner, err := windowed.Define(Name, "", func() struct{} { return struct{}{} },
		func(struct{}, processors.AppInfo) (windowed.Spec, windowed.Aggregate[*state], error) {
			return windowed.Spec{Name: app.Instance, Kinds: []records.Kind{records.KindEvent}, Windows: windows(cfg)}, aggregate{cfg}, nil
		}).Build(nil, app)
	if err != nil {
		return nil, err
	}
	var ua *useragent.Classifier
	if cfg.Input == InputTraffic && slices.Contains(cfg.Series, SeriesBots) {
		if ua, err = useragent.New(useragent.Config{}); err != nil {
			return nil, fmt.Errorf("processors.%s: bot classifier: %w", app.Instance, err)
		}
	}
	return func(ctx context.Context, env processors.Env) (processors.Processor, error) {
		in, err := inner(ctx, env)
		if err != nil {
			return nil, err
		}
		p := &proc{
			cfg: cfg, name: app.Instance, table: app.Tables.Results, alarms: app.Tables.Alarms,
			topic: cmp.Or(cfg.TopicARN, app.AlarmTopicARN), retention: app.RetentionOrDefault(),
			env: env, log: env.Logger, inner: in, ua: ua, models: map[string]*model{},
			x: make([]float64, len(cfg.Series)),
		}
		if p.log == nil {
			p.log = zap.NewNop()
		}
		items, err := env.Store.Query(ctx, p.table, window.AttrPK, modelPK(p.name, env.Shard.ShardID), window.AttrSK, "", "\U0010FFFF")
		if err != nil {
			return nil, fmt.Errorf("%s: shard %s: restore models: %w", p.name, env.Shard.ShardID, err)
		}
		for _, pr := range p.restoreModels(items) {
			p.log.Warn("model snapshot not restored", zap.String("problem", pr))
		}
		return p, nil
	}, nil
}

// proc serves one shard lease: the models of the keys seen on the shard
// (restored from their snapshots) in front of a window runner that keeps
// the top points per second and the score distribution.
type proc struct {
	cfg                  Config
	name, table, alarms  string
	topic                string
	retention            time.Duration
	env                  processors.Env
	log                  *zap.Logger
	inner                processors.Processor
	ua                   *useragent.Classifier
	models               map[string]*model
	order                []*model // creation order
	pos                  window.Position
	meta                 records.Meta // of the newest record (points' position)
	watermark            time.Time    // traffic: newest event time
	closedSec            int64        // traffic: seconds below are scored
	lastSnapshot         time.Time
	unmodelled, rejected int64
	late                 int64
	buf                  []records.Record
	x                    []float64
}

// model returns the model of key, creating it while under max_keys.
func (p *proc) model(raw string) *model {
	if m, ok := p.models[raw]; ok {
		return m
	}
	key := cleanKey(raw)
	if key == "" {
		return nil
	}
	if m, ok := p.models[key]; ok {
		return m
	}
	if len(p.models) >= p.cfg.MaxKeys {
		return nil
	}
	f, err := newForest(p.cfg, key)
	if err != nil { // validated config: cannot happen
		p.log.Error("new model", zap.Error(err))
		return nil
	}
	key = strings.Clone(key)
	m := &model{key: key, ordinal: len(p.order), forest: f}
	p.models[key] = m
	p.order = append(p.order, m)
	return m
}

func (p *proc) Process(ctx context.Context, recs []records.Record, out processors.Emitter) error {
	p.buf = p.buf[:0]
	for i := range recs {
		r := &recs[i]
		et := r.EventTime()
		if et.IsZero() {
			continue
		}
		if pos := window.PositionOf(&r.Meta); pos.Compare(p.pos) > 0 {
			p.pos = pos.Clone()
			p.meta = r.Meta
			p.meta.SequenceNumber = p.pos.Seq
		}
		if p.cfg.Input == InputTraffic {
			p.addHit(ctx, r, et, out)
		} else {
			p.addEvent(ctx, r, et, out)
		}
	}
	return p.forward(ctx, out)
}

// forward hands the points scored so far to the window runner.
func (p *proc) forward(ctx context.Context, out processors.Emitter) error {
	if len(p.buf) == 0 {
		return nil
	}
	err := p.inner.Process(ctx, p.buf, out)
	clear(p.buf)
	p.buf = p.buf[:0]
	return err
}

func replayed(m *model, r *records.Record) bool {
	return !m.skipTo.IsZero() && window.PositionOf(&r.Meta).Compare(m.skipTo) <= 0
}

func (p *proc) addEvent(ctx context.Context, r *records.Record, et time.Time, out processors.Emitter) {
	if r.Kind != records.KindEvent {
		return
	}
	m := p.model(r.Key)
	if m == nil {
		p.unmodelled++
		return
	}
	if replayed(m, r) {
		return
	}
	score, err := m.forest.ScoreUpdate(r.ValueSlice())
	if err != nil { // wrong number of values, NaN or Inf
		p.rejected++
		return
	}
	m.dirty = true
	pt := records.Record{Kind: records.KindEvent, Time: et, Meta: r.Meta, Key: m.key}
	pt.Values[0] = score
	n := copy(pt.Values[1:], r.ValueSlice())
	pt.NumValues = uint8(1 + n)
	p.scored(ctx, out, m, pt, r.ValueSlice())
}

func (p *proc) addHit(ctx context.Context, r *records.Record, et time.Time, out processors.Emitter) {
	if r.Kind != records.KindHit {
		return
	}
	if et.After(p.watermark) {
		p.watermark = et
		if due := p.dueSec(); due > p.closedSec {
			p.closeSeconds(ctx, out, due)
		}
	}
	sec := et.Unix()
	if sec < p.closedSec {
		p.late++
		return
	}
	m := p.model(r.Host)
	if m == nil {
		p.unmodelled++
		return
	}
	if replayed(m, r) {
		return
	}
	i := len(m.pending)
	for i > 0 && m.pending[i-1].Sec > sec {
		i--
	}
	if i == 0 || m.pending[i-1].Sec != sec {
		m.pending = append(m.pending, acc{})
		copy(m.pending[i+1:], m.pending[i:])
		m.pending[i] = acc{Sec: sec}
	} else {
		i--
	}
	a := &m.pending[i]
	a.Requests++
	a.Bytes += max(0, min(r.Bytes, math.MaxInt64/1024-a.Bytes))
	if r.Status >= 500 && r.Status <= 599 {
		a.E5xx++
	}
	if p.ua != nil && p.ua.Classify(r.UserAgent).IsBot() {
		a.Bots++
	}
	m.dirty = true
}

// dueSec is the first second not yet due: a second is scored when the
// newest event time reaches its end + point_grace.
func (p *proc) dueSec() int64 {
	return p.watermark.Add(-p.cfg.PointGrace).Unix()
}

// closeSeconds scores every pending second below upTo, in second order
// then key creation order.
func (p *proc) closeSeconds(ctx context.Context, out processors.Emitter, upTo int64) {
	if p.closedSec == 0 {
		// First second on this lease: nothing of earlier seconds is pending
		// except restored ones, which are scored below.
		p.closedSec = upTo
	}
	for {
		next := int64(math.MaxInt64)
		for _, m := range p.order {
			if len(m.pending) > 0 {
				next = min(next, m.pending[0].Sec)
			}
		}
		if next >= upTo {
			break
		}
		for _, m := range p.order {
			if len(m.pending) == 0 || m.pending[0].Sec != next {
				continue
			}
			a := m.pending[0]
			m.pending = append(m.pending[:0], m.pending[1:]...)
			p.scoreSecond(ctx, out, m, a)
		}
	}
	p.closedSec = max(p.closedSec, upTo)
}

func (p *proc) scoreSecond(ctx context.Context, out processors.Emitter, m *model, a acc) {
	req := float64(a.Requests)
	for i, s := range p.cfg.Series {
		switch s {
		case SeriesRequests:
			p.x[i] = math.Log1p(req)
		case SeriesBytes:
			p.x[i] = math.Log1p(float64(a.Bytes) / 1024)
		case Series5xx:
			p.x[i] = float64(a.E5xx) / req
		case SeriesBots:
			p.x[i] = float64(a.Bots) / req
		}
	}
	score, err := m.forest.ScoreUpdate(p.x)
	if err != nil {
		p.rejected++
		return
	}
	m.dirty = true
	pt := records.Record{Kind: records.KindEvent, Time: time.Unix(a.Sec, 0).UTC(), Meta: p.meta, Key: m.key,
		Status: int(min(a.Requests, math.MaxInt32)), Bytes: a.Bytes, NumValues: 3}
	pt.Values = [records.MaxValues]float64{score, float64(a.E5xx) / req, float64(a.Bots) / req}
	p.scored(ctx, out, m, pt, []float64{req, float64(a.Bytes), pt.Values[1], pt.Values[2]})
}

// scored records a point's score: the max-score metric, the alarm, and
// the point for the window runner.
func (p *proc) scored(ctx context.Context, out processors.Emitter, m *model, pt records.Record, values []float64) {
	score := pt.Values[0]
	if score > m.maxScore {
		m.maxScore, m.maxAt = score, pt.Time
	}
	if score > p.cfg.Threshold {
		p.alarm(ctx, out, m, pt.Time, score, values)
	}
	p.buf = append(p.buf, pt)
}

// Alarm is the SNS message body (JSON) of an anomaly alarm.
type Alarm struct {
	ID        string    `json:"alarm"` // instance#key
	Processor string    `json:"processor"`
	Input     string    `json:"input"`
	Key       string    `json:"key"`
	Period    time.Time `json:"period"`
	Time      time.Time `json:"time"` // event time of the point
	Score     float64   `json:"score"`
	Threshold float64   `json:"threshold"`
	Values    []float64 `json:"values"`
	Series    []string  `json:"series,omitempty"`
	Severity  string    `json:"severity"`
	Stream    string    `json:"stream,omitempty"`
	// Watermark is the shard's newest event time when the alarm was
	// raised (Watermark - Time is the detection delay in event time).
	Watermark      time.Time `json:"watermark"`
	RaisedByShard  string    `json:"raised_by_shard"`
	RaisedByWorker string    `json:"raised_by_worker,omitempty"`
	DetectedAt     time.Time `json:"detected_at"`
}

// alarm raises an alarm for m unless the key alarmed within the
// suppression on this shard, or another worker claimed the period.
//
// De-duplication is orderflood's (DESIGN section 2): a conditional put of
// the alarm-history item (alarm = instance#key, period) with
// attribute_not_exists decides the one publisher. It is the smallest
// equivalent, not a shared mechanism (orderflood's is not factored out):
// claim, then publish through the emitter. A crash between the claim and
// the write of the batch's messages loses that alarm (at most once),
// where orderflood's pending markers publish at least once.
func (p *proc) alarm(ctx context.Context, out processors.Emitter, m *model, t time.Time, score float64, values []float64) {
	if !m.lastAlarm.IsZero() && t.Sub(m.lastAlarm) < p.cfg.Suppression {
		return
	}
	a := &Alarm{
		ID: p.name + "#" + m.key, Processor: p.name, Input: p.cfg.Input, Key: m.key,
		Period: t.Truncate(p.cfg.Suppression).UTC(), Time: t.UTC(), Score: score, Threshold: p.cfg.Threshold,
		Values: append([]float64(nil), values...), Series: p.cfg.Series, Severity: p.cfg.Severity,
		Stream: p.env.Shard.Stream, Watermark: p.watermarkOr(t).UTC(), RaisedByShard: p.env.Shard.ShardID,
		RaisedByWorker: p.env.Shard.WorkerID, DetectedAt: p.env.Clock.Now().UTC(),
	}
	body, err := json.Marshal(a)
	if err != nil {
		p.log.Warn("alarm body", zap.Error(err))
		return
	}
	item := map[string]types.AttributeValue{
		"alarm":              window.Str(a.ID),
		"period":             window.Str(window.FormatTime(a.Period)),
		"name":               window.Str(p.name),
		"key":                window.Str(m.key),
		"time":               window.Str(window.FormatTime(a.Time)),
		"score":              &types.AttributeValueMemberN{Value: strconv.FormatFloat(score, 'g', -1, 64)},
		"severity":           window.Str(a.Severity),
		"raised_by_shard":    window.Str(a.RaisedByShard),
		"body":               window.Str(string(body)),
		window.AttrExpiresAt: window.Int(a.Period.Add(p.retention).Unix()),
	}
	won, err := p.env.Store.PutIfAbsent(ctx, p.alarms, "alarm", item)
	if err != nil {
		p.log.Warn("alarm claim failed; alarm dropped", zap.String("alarm", a.ID), zap.Error(err))
		return
	}
	m.lastAlarm, m.dirty = t, true
	if !won {
		return // another worker publishes this period's alarm
	}
	// Printable ASCII under 100 characters, as SNS requires: the same
	// clean-up as orderflood's message (to share in the alarm refactor).
	subject := fmt.Sprintf("anomaly %s key %s: score %.2f > %.2f", p.name, m.key, score, p.cfg.Threshold)
	subject = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, subject)
	if len(subject) > 99 {
		subject = subject[:99]
	}
	out.Publish(processors.Message{Topic: p.topic, Subject: subject, Body: body, Attributes: map[string]string{
		"alarm": p.name, "severity": a.Severity, "key": m.key, "period": window.FormatTime(a.Period),
	}})
}

func (p *proc) watermarkOr(t time.Time) time.Time {
	if p.cfg.Input == InputTraffic && !p.watermark.IsZero() {
		return p.watermark
	}
	return t
}

func (p *proc) Flush(ctx context.Context, out processors.Emitter) error {
	if err := p.flushOwn(ctx, out, false); err != nil {
		return err
	}
	return p.inner.Flush(ctx, out)
}

// flushOwn scores traffic seconds of an idle shard, reports metrics and
// writes due snapshots.
func (p *proc) flushOwn(ctx context.Context, out processors.Emitter, forceSnapshot bool) error {
	now := p.env.Clock.Now()
	if p.cfg.Input == InputTraffic && !p.watermark.IsZero() &&
		!now.Before(p.watermark.Add(p.cfg.PointGrace+p.cfg.Idle+time.Second)) {
		p.closeSeconds(ctx, out, p.watermark.Unix()+1)
	}
	if err := p.forward(ctx, out); err != nil {
		return err
	}
	p.metrics(out, now)
	if forceSnapshot || p.cfg.SnapshotInterval == 0 || now.Sub(p.lastSnapshot) >= p.cfg.SnapshotInterval {
		p.lastSnapshot = now
		return p.snapshot(out, now)
	}
	return nil
}

func (p *proc) snapshot(out processors.Emitter, now time.Time) error {
	for _, m := range p.order {
		if !m.dirty {
			continue
		}
		items, err := p.snapshotItems(m, p.pos, now)
		if err != nil {
			return fmt.Errorf("%s: snapshot: %w", p.name, err)
		}
		for _, it := range items {
			out.Put(it)
		}
		m.dirty = false
	}
	return nil
}

func (p *proc) metrics(out processors.Emitter, now time.Time) {
	dims := func(key string) []processors.Dim {
		return []processors.Dim{{Name: "Stream", Value: p.env.Shard.Stream}, {Name: "Processor", Value: p.name}, {Name: "Key", Value: key}}
	}
	var other float64
	var otherAt time.Time
	for _, m := range p.order {
		if m.maxScore <= 0 {
			continue
		}
		if m.ordinal < p.cfg.MetricKeys {
			out.Metric(processors.Datum{Name: "MaxAnomalyScore", Unit: "None", Time: m.maxAt.Truncate(time.Second),
				Dims: dims(m.key), Value: m.maxScore, Count: 1})
		} else if m.maxScore > other {
			other, otherAt = m.maxScore, m.maxAt
		}
		m.maxScore = 0
	}
	if other > 0 {
		out.Metric(processors.Datum{Name: "MaxAnomalyScore", Unit: "None", Time: otherAt.Truncate(time.Second),
			Dims: dims("_other"), Value: other, Count: 1})
	}
	for _, c := range []struct {
		name string
		n    *int64
	}{{"UnmodelledRecords", &p.unmodelled}, {"RejectedRecords", &p.rejected}, {"LatePoints", &p.late}} {
		if *c.n > 0 {
			out.Metric(processors.Datum{Name: c.name, Unit: "Count", Time: now.Truncate(time.Second),
				Dims: dims("_all")[:2], Value: float64(*c.n), Count: 1})
			*c.n = 0
		}
	}
}

// Close ends the lease. Lease lost: drop everything, emit nothing.
// Shutdown: snapshot every changed model for the next owner, then the
// runner writes its partials. Shard ended: score the open seconds and
// finalise every window.
func (p *proc) Close(ctx context.Context, reason processors.Reason, out processors.Emitter) error {
	switch reason {
	case processors.LeaseLost:
		p.models, p.order, p.buf = map[string]*model{}, nil, nil
		return p.inner.Close(ctx, reason, out)
	case processors.Shutdown:
		if err := p.flushOwn(ctx, out, true); err != nil {
			return err
		}
	default:
		if p.cfg.Input == InputTraffic && !p.watermark.IsZero() {
			p.closeSeconds(ctx, out, p.watermark.Unix()+1)
		}
		if err := p.forward(ctx, out); err != nil {
			return err
		}
		p.metrics(out, p.env.Clock.Now())
	}
	return p.inner.Close(ctx, reason, out)
}

// StateSize reports the models, their open seconds and the runner's
// top-list entries (the conformance kit checks it stays bounded).
func (p *proc) StateSize() int {
	n := len(p.models)
	for _, m := range p.order {
		n += len(m.pending)
	}
	if s, ok := p.inner.(interface{ StateSize() int }); ok {
		n += s.StateSize()
	}
	return n
}
