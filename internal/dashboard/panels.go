package dashboard

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors/cloudfront"
	"github.com/shardwatch/shardwatch/pkg/processors/counters"
	"github.com/shardwatch/shardwatch/pkg/processors/histogram"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
)

// MultiSeries is one chart with several events over the same buckets.
type MultiSeries struct {
	Resolution string    `json:"resolution"`
	Step       int64     `json:"step_seconds"`
	Now        time.Time `json:"now"`
	// Times are the bucket starts (Unix seconds), oldest first.
	Times  []int64       `json:"times"`
	Series []EventSeries `json:"series"`
}

// EventSeries is one event's counts over MultiSeries.Times (null: not
// written yet).
type EventSeries struct {
	Event  string   `json:"event"`
	Counts []*int64 `json:"counts"`
	Total  int64    `json:"total"`
	// Newest is the event's newest bucket when the span shows none of
	// its records (old data: the chart says where the data is).
	Newest string `json:"newest,omitempty"`
}

// MultiSeries reads n buckets of res for each event, ending at now.
func (r *Reader) MultiSeries(ctx context.Context, res counters.Resolution, n int, events []string, now time.Time) (MultiSeries, error) {
	m := MultiSeries{Resolution: res.Name, Step: int64(res.Size / time.Second), Now: now.UTC(), Series: make([]EventSeries, 0, len(events))}
	for _, ev := range events {
		s, err := r.Series(ctx, res, n, ev, now)
		if err != nil {
			return MultiSeries{}, err
		}
		if m.Times == nil {
			m.Times = make([]int64, len(s.Points))
			for i, p := range s.Points {
				m.Times[i] = p.Time
			}
		}
		es := EventSeries{Event: ev, Counts: make([]*int64, len(s.Points)), Total: s.Total}
		for i, p := range s.Points {
			es.Counts[i] = p.Count
		}
		if es.Total == 0 {
			if es.Newest, err = r.newestBucket(ctx, ev); err != nil {
				return MultiSeries{}, err
			}
		}
		m.Series = append(m.Series, es)
	}
	return m, nil
}

// TableRow is one hour counter: the DynamoDB "running counters" view.
type TableRow struct {
	Hour  string `json:"hour"` // 2026-11-22T09 (UTC)
	Event string `json:"event"`
	Count int64  `json:"count"`
	Final bool   `json:"final"`
}

// CounterTable lists the hour counters of events over the last hours
// (newest hour first, then by event); hours without records are left out.
func (r *Reader) CounterTable(ctx context.Context, events []string, hours int, now time.Time) ([]TableRow, error) {
	rows := []TableRow{}
	for _, ev := range events {
		s, err := r.Series(ctx, counters.Hour, hours, ev, now)
		if err != nil {
			return nil, err
		}
		for _, p := range s.Points {
			if p.Count != nil && *p.Count > 0 {
				rows = append(rows, TableRow{Hour: p.Bucket, Event: ev, Count: *p.Count, Final: p.Final})
			}
		}
	}
	slices.SortFunc(rows, func(a, b TableRow) int {
		if c := cmp.Compare(b.Hour, a.Hour); c != 0 {
			return c
		}
		return cmp.Compare(a.Event, b.Event)
	})
	return rows, nil
}

// Histogram is the response-size histogram summed over a period, or the
// newest window when the period has none.
type Histogram struct {
	WindowInfo
	// From, To: the period summed; Windows: windows found in it.
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Windows int       `json:"windows"`
	// Fallback: the period had no window, so the newest one is shown.
	Fallback bool        `json:"fallback"`
	Requests int64       `json:"requests"`
	Bytes    int64       `json:"bytes"`
	Buckets  []BucketBar `json:"buckets"`
	Hosts    []Talker    `json:"hosts"`
}

// BucketBar is one bar of a histogram.
type BucketBar struct {
	Label string `json:"label"`
	Count int64  `json:"count"`
}

// maxHistogramWindows bounds the windows one histogram request sums.
const maxHistogramWindows = 600

// maxListed bounds the rows of the lists the panels show.
const maxListed = 10

// Histogram sums the global histogram items of the windows in the
// period before now.
func (r *Reader) Histogram(ctx context.Context, period time.Duration, now time.Time) (Histogram, error) {
	size := r.cfg.HistogramWindow
	keys := histogram.Keys(r.cfg.HistogramName, size)
	it, info, err := r.newestGlobal(ctx, keys, size, now, "histogram")
	if err != nil {
		return Histogram{}, err
	}
	h := Histogram{WindowInfo: info, To: now.UTC(), Buckets: []BucketBar{}, Hosts: []Talker{}}
	if it == nil {
		return h, nil
	}
	end := now.UTC().Truncate(size)
	from := now.UTC().Add(-period).Truncate(size)
	h.From = from
	var keyList []map[string]types.AttributeValue
	for s := from; !s.After(end) && len(keyList) < maxHistogramWindows; s = s.Add(size) {
		keyList = append(keyList, map[string]types.AttributeValue{window.AttrPK: window.Str(keys.Window(s)), window.AttrSK: window.Str(window.GlobalSK)})
	}
	items, err := r.batchGet(ctx, r.cfg.Tables.Results, keyList)
	if err != nil {
		return Histogram{}, err
	}
	if len(items) == 0 {
		items, h.Fallback = []map[string]types.AttributeValue{it}, true
	}
	var edges []int64
	var total histogram.Row
	hosts := map[string]*Talker{}
	for _, item := range items {
		g, err := histogram.ParseGlobal(item)
		if err != nil {
			return Histogram{}, fmt.Errorf("%s: %w", r.cfg.Tables.Results, err)
		}
		if edges == nil {
			edges = g.Edges
		} else if !slices.Equal(edges, g.Edges) {
			continue // other bucket bounds: cannot be summed
		}
		h.Windows++
		total.Add(g.Total)
		for _, hr := range g.Hosts {
			t := hosts[hr.Host]
			if t == nil {
				t = &Talker{Key: hr.Host}
				hosts[hr.Host] = t
			}
			t.Requests += hr.Requests()
			t.Bytes += hr.Bytes
		}
	}
	h.Requests, h.Bytes = total.Requests(), total.Bytes
	for i := range len(edges) + 1 {
		var n int64
		if i < len(total.Counts) {
			n = total.Counts[i]
		}
		h.Buckets = append(h.Buckets, BucketBar{Label: bucketLabel(edges, i), Count: n})
	}
	for _, t := range hosts {
		h.Hosts = append(h.Hosts, *t)
	}
	slices.SortFunc(h.Hosts, func(a, b Talker) int {
		if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	h.Hosts = h.Hosts[:min(len(h.Hosts), maxListed)]
	return h, nil
}

// bucketLabel names bucket i of a histogram with upper bounds edges.
func bucketLabel(edges []int64, i int) string {
	if i < len(edges) {
		return "<=" + histogram.ByteSize(edges[i]).String()
	}
	if len(edges) == 0 {
		return "all"
	}
	return ">" + histogram.ByteSize(edges[len(edges)-1]).String()
}

// Edges is the newest cloudfront-bytes window: bytes per distribution
// and edge location.
type Edges struct {
	WindowInfo
	Bytes    int64      `json:"bytes"`
	Requests int64      `json:"requests"`
	Rows     []EdgeRow  `json:"rows"`
	Other    EdgeRow    `json:"other"`
	PerDist  []EdgeRow  `json:"distributions"`
	PerEdge  []EdgeRow  `json:"edges"`
	Steps    int        `json:"steps"`
	PerStep  []StepSums `json:"per_step"`
}

// EdgeRow is one (distribution, edge) pair, summed over the window.
type EdgeRow struct {
	Distribution string `json:"distribution"`
	Edge         string `json:"edge"`
	Bytes        int64  `json:"bytes"`
	Requests     int64  `json:"requests"`
}

// StepSums is one step of the window (all pairs).
type StepSums struct {
	Time  int64 `json:"time"`
	Bytes int64 `json:"bytes"`
}

// Edges reads the newest closed cloudfront-bytes window.
func (r *Reader) Edges(ctx context.Context, now time.Time) (Edges, error) {
	size := r.cfg.EdgesWindow
	it, info, err := r.newestGlobal(ctx, window.NewKeys("cloudfront-bytes", size), size, now, "cloudfront-bytes")
	e := Edges{WindowInfo: info, Rows: []EdgeRow{}, PerDist: []EdgeRow{}, PerEdge: []EdgeRow{}, PerStep: []StepSums{}}
	if err != nil || it == nil {
		return e, err
	}
	step, _ := window.GetInt(it, "step_seconds")
	if step < 1 || time.Duration(step)*time.Second > size {
		return Edges{}, fmt.Errorf("%s: cloudfront-bytes item: bad step_seconds", r.cfg.Tables.Results)
	}
	cfg := cloudfront.BytesConfig{Config: window.Config{Size: size}, Step: time.Duration(step) * time.Second}
	eb, err := cloudfront.ParseEdgeBytes(it, cfg)
	if err != nil {
		return Edges{}, fmt.Errorf("%s: %w", r.cfg.Tables.Results, err)
	}
	e.Bytes, e.Requests = eb.Total.Bytes, eb.Total.Requests
	e.Steps = int(size / cfg.Step)
	pairs := map[[2]string]*EdgeRow{}
	dists := map[string]*EdgeRow{}
	edges := map[string]*EdgeRow{}
	steps := make([]int64, e.Steps)
	bump := func(m map[string]*EdgeRow, k string, mk func() *EdgeRow, s cloudfront.Sum) {
		x := m[k]
		if x == nil {
			x = mk()
			m[k] = x
		}
		x.Bytes += s.Bytes
		x.Requests += s.Requests
	}
	for k, s := range eb.Rows {
		p := pairs[[2]string{k.Distribution, k.Edge}]
		if p == nil {
			p = &EdgeRow{Distribution: k.Distribution, Edge: k.Edge}
			pairs[[2]string{k.Distribution, k.Edge}] = p
		}
		p.Bytes += s.Bytes
		p.Requests += s.Requests
		bump(dists, k.Distribution, func() *EdgeRow { return &EdgeRow{Distribution: k.Distribution} }, s)
		bump(edges, k.Edge, func() *EdgeRow { return &EdgeRow{Edge: k.Edge} }, s)
		if int(k.Step) < len(steps) {
			steps[k.Step] += s.Bytes
		}
	}
	for st, s := range eb.Other {
		e.Other.Bytes += s.Bytes
		e.Other.Requests += s.Requests
		if int(st) < len(steps) {
			steps[st] += s.Bytes
		}
	}
	e.Rows = sortedRows(pairs)
	e.PerDist = sortedRows(dists)
	e.PerEdge = sortedRows(edges)
	for i, b := range steps {
		e.PerStep = append(e.PerStep, StepSums{Time: info.WindowStart.Add(time.Duration(i) * cfg.Step).Unix(), Bytes: b})
	}
	return e, nil
}

func sortedRows[K comparable](m map[K]*EdgeRow) []EdgeRow {
	out := make([]EdgeRow, 0, len(m))
	for _, r := range m {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b EdgeRow) int {
		if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Distribution, b.Distribution); c != 0 {
			return c
		}
		return cmp.Compare(a.Edge, b.Edge)
	})
	return out[:min(len(out), maxListed)]
}

// Visitors is the newest visitors window: hits per User-Agent class,
// browser family, OS family and device class.
type Visitors struct {
	WindowInfo
	Hits    int64   `json:"hits"`
	Class   []Share `json:"class"`
	Browser []Share `json:"browser"`
	OS      []Share `json:"os"`
	Device  []Share `json:"device"`
}

// Share is one name's hits and share of the window's hits.
type Share struct {
	Name  string  `json:"name"`
	Hits  int64   `json:"hits"`
	Share float64 `json:"share"`
}

// Visitors reads the newest closed visitors window.
func (r *Reader) Visitors(ctx context.Context, now time.Time) (Visitors, error) {
	size := r.cfg.VisitorsWindow
	it, info, err := r.newestGlobal(ctx, window.NewKeys("visitors", size), size, now, "visitors")
	v := Visitors{WindowInfo: info, Class: []Share{}, Browser: []Share{}, OS: []Share{}, Device: []Share{}}
	if err != nil || it == nil {
		return v, err
	}
	f := windowed.FieldsOf(it)
	if v.Hits, err = f.Int("hits"); err != nil {
		return Visitors{}, fmt.Errorf("%s: visitors item: %w", r.cfg.Tables.Results, err)
	}
	for _, d := range []struct {
		name string
		dst  *[]Share
	}{{"class", &v.Class}, {"browser", &v.Browser}, {"os", &v.OS}, {"device", &v.Device}} {
		m, err := f.Counts(d.name)
		if err != nil {
			return Visitors{}, fmt.Errorf("%s: visitors item: %w", r.cfg.Tables.Results, err)
		}
		*d.dst = shares(m, v.Hits)
	}
	return v, nil
}

func shares(m map[string]int64, total int64) []Share {
	out := make([]Share, 0, len(m))
	for k, n := range m {
		s := Share{Name: k, Hits: n}
		if total > 0 {
			s.Share = float64(n) / float64(total)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Share) int {
		if c := cmp.Compare(b.Hits, a.Hits); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out[:min(len(out), maxListed+1)]
}

// Anomaly is the newest window of the anomaly processor's score
// distribution, with its top-scored points.
type Anomaly struct {
	WindowInfo
	Points   int64        `json:"points"`
	Warming  int64        `json:"warming"`
	Above    int64        `json:"above_threshold"`
	MaxScore *float64     `json:"max_score"`
	Buckets  []BucketBar  `json:"buckets"`
	Top      []AnomalyTop `json:"top"`
}

// AnomalyTop is one top-scored record (or traffic second).
type AnomalyTop struct {
	Key    string    `json:"key"`
	Time   time.Time `json:"time"`
	Score  float64   `json:"score"`
	Values []float64 `json:"values,omitempty"`
}

// Anomaly reads the newest closed window of the anomaly processor.
func (r *Reader) Anomaly(ctx context.Context, now time.Time) (Anomaly, error) {
	size := r.cfg.AnomalyWindow
	it, info, err := r.newestGlobal(ctx, window.NewKeys(r.cfg.AnomalyName, size), size, now, "anomaly")
	a := Anomaly{WindowInfo: info, Buckets: []BucketBar{}, Top: []AnomalyTop{}}
	if err != nil || it == nil {
		return a, err
	}
	f := windowed.FieldsOf(it)
	a.Points, _ = f.Int("points")
	a.Warming, _ = f.Int("warming")
	a.Above, _ = f.Int("above_threshold")
	if ms, err := f.Int("max_score_milli"); err == nil && it["max_score_milli"] != nil {
		x := float64(ms) / 1000
		a.MaxScore = &x
	}
	if counts, err := f.Ints("buckets"); err == nil {
		for i, n := range counts {
			a.Buckets = append(a.Buckets, BucketBar{Label: scoreLabel(r.cfg.AnomalyBuckets, i), Count: n})
		}
	}
	if s, err := f.Str("top"); err == nil && s != "" {
		var top []AnomalyTop
		if err := json.Unmarshal([]byte(s), &top); err != nil {
			return Anomaly{}, fmt.Errorf("%s: anomaly item top: %w", r.cfg.Tables.Results, err)
		}
		a.Top = top[:min(len(top), maxListed)]
	}
	return a, nil
}

func scoreLabel(bounds []float64, i int) string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	switch {
	case i < len(bounds):
		return "<=" + f(bounds[i])
	case i == len(bounds) && len(bounds) > 0:
		return ">" + f(bounds[len(bounds)-1])
	}
	return "#" + strconv.Itoa(i)
}

// newestBucket returns the newest counters bucket of event ("" if none).
func (r *Reader) newestBucket(ctx context.Context, event string) (string, error) {
	out, err := r.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(r.cfg.Tables.Counters),
		KeyConditionExpression:    aws.String("#e = :e"),
		ExpressionAttributeNames:  map[string]string{"#e": counters.AttrEvent},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": window.Str(event)},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return "", fmt.Errorf("newest %s bucket in %s: %w", event, r.cfg.Tables.Counters, err)
	}
	if len(out.Items) == 0 {
		return "", nil
	}
	b, _ := window.GetStr(out.Items[0], counters.AttrBucket)
	return b, nil
}
