package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors/botdetect"
	"github.com/shardwatch/shardwatch/pkg/processors/counters"
	"github.com/shardwatch/shardwatch/pkg/processors/topn"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// DynamoDB is the part of the DynamoDB API the dashboard reads with. It
// never writes.
type DynamoDB interface {
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Clock is the dashboard's source of wall-clock time.
type Clock interface{ Now() time.Time }

// Series spans of the three charts.
const (
	SecondPoints = 60 // per second for the last minute
	MinutePoints = 60 // per minute for the last hour
	HourPoints   = 24 // per hour for the last day
)

// Series is one chart: an event's count per bucket, oldest first.
type Series struct {
	Event      string `json:"event"`
	Resolution string `json:"resolution"` // second, minute or hour
	Step       int64  `json:"step_seconds"`
	// Now is the time the series ends at (wall clock, or the newest
	// bucket's start with the data time base).
	Now    time.Time `json:"now"`
	Points []Point   `json:"points"`
	// Total sums the points' counts.
	Total int64 `json:"total"`
}

// Point is one bucket. Count is null for buckets after the newest one
// written (not known yet: still open, or waiting for the grace period);
// a missing bucket before it had no records and counts 0.
type Point struct {
	Bucket string `json:"bucket"`
	Time   int64  `json:"time"` // bucket start, Unix seconds
	Count  *int64 `json:"count"`
	// Final: every shard that counted the bucket has closed it.
	Final bool `json:"final"`
}

// Top is the newest merged top-N result of the topn processor.
type Top struct {
	// WindowInfo: Final means every merged shard partial was final (the
	// window is complete); Merged counts them.
	WindowInfo
	Merged   int   `json:"merged"`
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
	// Exact: every listed count is exact (topn.Global.Exact).
	Exact       bool     `json:"exact"`
	TopRequests []Talker `json:"top_requests"`
	TopBytes    []Talker `json:"top_bytes"`
	Hosts       []Talker `json:"hosts"`
}

// Talker is one ranked key (client IP or host); true counts lie in
// [Requests, Requests+ErrRequests] and [Bytes, Bytes+ErrBytes].
type Talker struct {
	Key         string `json:"key"`
	Requests    int64  `json:"requests"`
	Bytes       int64  `json:"bytes"`
	ErrRequests int64  `json:"err_requests"`
	ErrBytes    int64  `json:"err_bytes"`
}

// Bots is the newest merged result of the botdetect processor.
type Bots struct {
	WindowInfo
	Requests int64 `json:"requests"`
	// BotRequests are requests with a crawler User-Agent; BotShare is
	// BotRequests / Requests.
	BotRequests     int64   `json:"bot_requests"`
	BotShare        float64 `json:"bot_share"`
	IPs             int     `json:"ips"`
	FlaggedIPs      int     `json:"flagged_ips"`
	FlaggedRequests int64   `json:"flagged_requests"`
	Flagged         []BotIP `json:"flagged"`
}

// BotIP is one flagged IP.
type BotIP struct {
	IP       string   `json:"ip"`
	Reasons  []string `json:"reasons"`
	Requests int64    `json:"requests"`
	Bytes    int64    `json:"bytes"`
	Host     string   `json:"host,omitempty"`
	UA       string   `json:"ua,omitempty"`
}

// maxFlagged bounds the flagged IPs /api/bots lists.
const maxFlagged = 10

// Alarm is one alarm-history item (orderflood).
type Alarm struct {
	Alarm     string `json:"alarm"`
	Period    string `json:"period"`
	Name      string `json:"name"`
	Mode      string `json:"mode"`
	Key       string `json:"key,omitempty"`
	Orders    int64  `json:"orders"`
	Threshold int64  `json:"threshold"`
	// TriggerCount is the breaches in the minute before the alarm, the
	// suppressed ones included; Text its SMS form.
	TriggerCount int64      `json:"trigger_count"`
	Text         string     `json:"text,omitempty"`
	WindowStart  string     `json:"window_start"`
	WindowEnd    string     `json:"window_end"`
	Severity     string     `json:"severity"`
	Published    bool       `json:"published"`
	RaisedBy     string     `json:"raised_by"`
	DetectedAt   string     `json:"detected_at"`
	Top          []AlarmTop `json:"top"`
}

// AlarmTop is one entry of an alarm's top customers, countries or IPs.
type AlarmTop struct {
	Kind   string `json:"kind"` // customer, country or ip
	Key    string `json:"key"`
	Orders int64  `json:"orders"`
}

// Reader reads the result tables.
type Reader struct {
	cfg   Config
	db    DynamoDB
	clock Clock
}

// NewReader returns a Reader for a validated cfg.
func NewReader(cfg Config, db DynamoDB, clock Clock) *Reader {
	return &Reader{cfg: cfg, db: db, clock: clock}
}

// Now returns the time the charts end at: the clock, or with DataClock
// the start of the newest bucket of event (the clock when it has none).
func (r *Reader) Now(ctx context.Context, event string) (time.Time, error) {
	now := r.clock.Now().UTC()
	if r.cfg.Time != DataClock {
		return now, nil
	}
	out, err := r.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(r.cfg.Tables.Counters),
		KeyConditionExpression:    aws.String("#e = :e"),
		ExpressionAttributeNames:  map[string]string{"#e": counters.AttrEvent},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": window.Str(event)},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("newest %s bucket in %s: %w", event, r.cfg.Tables.Counters, err)
	}
	if len(out.Items) == 0 {
		return now, nil
	}
	bucket, _ := window.GetStr(out.Items[0], counters.AttrBucket)
	_, start, err := counters.ParseBucket(bucket)
	if err != nil {
		return time.Time{}, fmt.Errorf("newest %s bucket in %s: %w", event, r.cfg.Tables.Counters, err)
	}
	return start, nil
}

// Series reads n buckets of res for event ending with the bucket that
// holds now: one BatchGetItem of known keys, so the second and minute
// items sharing the partition are never read.
func (r *Reader) Series(ctx context.Context, res counters.Resolution, n int, event string, now time.Time) (Series, error) {
	end := now.UTC().Truncate(res.Size)
	s := Series{Event: event, Resolution: res.Name, Step: int64(res.Size / time.Second), Now: now.UTC(), Points: make([]Point, n)}
	keys := make([]map[string]types.AttributeValue, n)
	for i := range n {
		t := end.Add(-time.Duration(n-1-i) * res.Size)
		s.Points[i] = Point{Bucket: res.Bucket(t), Time: t.Unix()}
		keys[i] = map[string]types.AttributeValue{counters.AttrEvent: window.Str(event), counters.AttrBucket: window.Str(s.Points[i].Bucket)}
	}
	items, err := r.batchGet(ctx, r.cfg.Tables.Counters, keys)
	if err != nil {
		return Series{}, err
	}
	type value struct {
		n     int64
		final bool
	}
	got := make(map[string]value, len(items))
	for _, it := range items {
		_, bucket, count, final, err := counters.ParseCounter(it)
		if err != nil {
			return Series{}, fmt.Errorf("%s: %w", r.cfg.Tables.Counters, err)
		}
		got[bucket] = value{count, final}
	}
	newest := -1
	for i := range s.Points {
		if _, ok := got[s.Points[i].Bucket]; ok {
			newest = i
		}
	}
	for i := range s.Points {
		p := &s.Points[i]
		v, ok := got[p.Bucket]
		if !ok && i > newest {
			continue // not written yet: unknown, not zero
		}
		p.Count, p.Final = &v.n, v.final
		s.Total += v.n
	}
	return s, nil
}

// newest returns the item whose window starts last.
func newest(items []map[string]types.AttributeValue) map[string]types.AttributeValue {
	var best map[string]types.AttributeValue
	var bestPK string
	for _, it := range items {
		// The partition keys differ only in the RFC 3339 UTC start,
		// which sorts chronologically.
		if pk, _ := window.GetStr(it, window.AttrPK); best == nil || pk > bestPK {
			best, bestPK = it, pk
		}
	}
	return best
}

// Top returns the newest global top-N item among the last Lookback
// windows up to now. A window's global item is written when a shard
// closes the window, so this is the last closed window, not the open one.
func (r *Reader) Top(ctx context.Context, now time.Time) (Top, error) {
	it, info, err := r.newestGlobal(ctx, topn.Keys(r.cfg.TopNWindow), r.cfg.TopNWindow, now, "topn")
	if err != nil {
		return Top{}, err
	}
	if it == nil {
		return Top{WindowInfo: info, TopRequests: []Talker{}, TopBytes: []Talker{}, Hosts: []Talker{}}, nil
	}
	g, err := topn.ParseGlobal(it)
	if err != nil {
		return Top{}, fmt.Errorf("%s: %w", r.cfg.Tables.Results, err)
	}
	info.Final = g.Merged > 0 && g.Finals == g.Merged
	return Top{
		WindowInfo: info, Merged: g.Merged,
		Requests: g.Requests, Bytes: g.Bytes, Exact: g.Exact(),
		TopRequests: talkers(g.TopRequests), TopBytes: talkers(g.TopBytes), Hosts: talkers(g.Hosts),
	}, nil
}

func talkers(rs []topn.Ranked) []Talker {
	out := make([]Talker, len(rs))
	for i, r := range rs {
		out[i] = Talker{Key: r.Key, Requests: r.Requests, Bytes: r.Bytes, ErrRequests: r.ErrRequests, ErrBytes: r.ErrBytes}
	}
	return out
}

// botKeys are botdetect's result keys ("bot#60s#...").
func botKeys(size time.Duration) window.Keys { return window.NewKeys("bot", size) }

// Bots returns the newest global botdetect item among the last Lookback
// windows up to now.
func (r *Reader) Bots(ctx context.Context, now time.Time) (Bots, error) {
	it, info, err := r.newestGlobal(ctx, botKeys(r.cfg.BotWindow), r.cfg.BotWindow, now, "botdetect")
	if err != nil {
		return Bots{}, err
	}
	if it == nil {
		return Bots{WindowInfo: info, Flagged: []BotIP{}}, nil
	}
	res, err := botdetect.ParseGlobal(it)
	if err != nil {
		return Bots{}, fmt.Errorf("%s: %w", r.cfg.Tables.Results, err)
	}
	info.Final = res.Shards > 0 && res.FinalShards == res.Shards
	b := Bots{
		WindowInfo: info,
		Requests:   res.Requests, BotRequests: res.BotRequests, BotShare: res.BotShare(),
		IPs: res.IPs, FlaggedIPs: res.FlaggedIPs, FlaggedRequests: res.FlaggedRequests,
		Flagged: make([]BotIP, 0, min(len(res.Flagged), maxFlagged)),
	}
	for _, f := range res.Flagged[:min(len(res.Flagged), maxFlagged)] {
		b.Flagged = append(b.Flagged, BotIP{IP: f.IP, Reasons: f.Reasons, Requests: f.Requests, Bytes: f.Bytes, Host: f.Host, UA: f.UA})
	}
	return b, nil
}

// Alarms returns up to limit alarms, newest period first: a Query per
// configured name, or a bounded Scan with ScanAll.
func (r *Reader) Alarms(ctx context.Context, limit int) ([]Alarm, error) {
	var items []map[string]types.AttributeValue
	if len(r.cfg.Alarms) == 1 && r.cfg.Alarms[0] == ScanAll {
		var err error
		if items, err = r.scanAlarms(ctx); err != nil {
			return nil, err
		}
	} else {
		for _, name := range r.cfg.Alarms {
			out, err := r.db.Query(ctx, &dynamodb.QueryInput{
				TableName:                 aws.String(r.cfg.Tables.Alarms),
				KeyConditionExpression:    aws.String("#a = :a"),
				ExpressionAttributeNames:  map[string]string{"#a": "alarm"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":a": window.Str(name)},
				ScanIndexForward:          aws.Bool(false),
				Limit:                     aws.Int32(int32(limit)),
			})
			if err != nil {
				return nil, fmt.Errorf("alarms %s in %s: %w", name, r.cfg.Tables.Alarms, err)
			}
			items = append(items, out.Items...)
		}
	}
	out := make([]Alarm, 0, len(items))
	for _, it := range items {
		out = append(out, parseAlarm(it))
	}
	slices.SortFunc(out, func(a, b Alarm) int {
		if c := cmp.Compare(b.Period, a.Period); c != 0 {
			return c
		}
		return cmp.Compare(a.Alarm, b.Alarm)
	})
	return out[:min(len(out), limit)], nil
}

func (r *Reader) scanAlarms(ctx context.Context) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	in := &dynamodb.ScanInput{TableName: aws.String(r.cfg.Tables.Alarms), Limit: aws.Int32(maxAlarmScan)}
	for len(items) < maxAlarmScan {
		in.Limit = aws.Int32(int32(maxAlarmScan - len(items)))
		out, err := r.db.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", r.cfg.Tables.Alarms, err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	return items, nil
}

// parseAlarm reads the alarm-history attributes listed in
// pkg/processors/orderflood/README.md; missing ones stay empty.
func parseAlarm(it map[string]types.AttributeValue) Alarm {
	var a Alarm
	for name, dst := range map[string]*string{
		"alarm": &a.Alarm, "period": &a.Period, "name": &a.Name, "mode": &a.Mode, "key": &a.Key,
		window.AttrWindowStart: &a.WindowStart, window.AttrWindowEnd: &a.WindowEnd,
		"severity": &a.Severity, "detected_at": &a.DetectedAt, "text": &a.Text,
	} {
		*dst, _ = window.GetStr(it, name)
	}
	a.Orders, _ = window.GetInt(it, "orders")
	a.Threshold, _ = window.GetInt(it, "threshold")
	a.TriggerCount, _ = window.GetInt(it, "trigger_count")
	a.Published, _ = window.GetBool(it, "published")
	if a.RaisedBy, _ = window.GetStr(it, "raised_by_worker"); a.RaisedBy == "" {
		a.RaisedBy, _ = window.GetStr(it, "raised_by_shard")
	}
	a.Top = []AlarmTop{}
	for _, l := range []struct{ attr, kind string }{{"top_customers", "customer"}, {"top_countries", "country"}, {"top_ips", "ip"}} {
		list, _ := it[l.attr].(*types.AttributeValueMemberL)
		if list == nil {
			continue
		}
		for _, v := range list.Value {
			m, _ := v.(*types.AttributeValueMemberM)
			if m == nil {
				continue
			}
			t := AlarmTop{Kind: l.kind}
			t.Key, _ = window.GetStr(m.Value, "key")
			t.Orders, _ = window.GetInt(m.Value, "orders")
			a.Top = append(a.Top, t)
		}
	}
	return a
}

// maxBatchGet is DynamoDB's BatchGetItem limit.
const maxBatchGet = 100

// batchGetAttempts bounds the calls spent on unprocessed keys (throttling).
const batchGetAttempts = 5

// batchGet reads the items with keys from table (missing ones are
// absent from the result).
func (r *Reader) batchGet(ctx context.Context, table string, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	var out []map[string]types.AttributeValue
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), maxBatchGet)]
		keys = keys[len(chunk):]
		req := map[string]types.KeysAndAttributes{table: {Keys: chunk}}
		for attempt := 1; len(req) > 0; attempt++ {
			if attempt > batchGetAttempts {
				return nil, fmt.Errorf("batch get %s: %d keys still unprocessed after %d calls", table, len(req[table].Keys), batchGetAttempts)
			}
			if attempt > 1 {
				if err := sleep(ctx, time.Duration(attempt)*50*time.Millisecond); err != nil {
					return nil, err
				}
			}
			res, err := r.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("batch get %s: %w", table, err)
			}
			out = append(out, res.Responses[table]...)
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

// sleep waits d (backoff before retrying throttled keys) or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
