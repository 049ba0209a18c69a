package hrmetrics

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Name is the plugin name.
const Name = "hrmetrics"

// Timestamp sources for datums.
const (
	TimestampEvent   = "event"   // the record's event time
	TimestampArrival = "arrival" // Kinesis ApproximateArrivalTimestamp
)

// CloudWatch accepts datums up to two weeks old and two hours ahead.
const (
	maxAge    = 14*24*time.Hour - time.Hour
	maxFuture = 2*time.Hour - time.Minute
)

// Config is the hrmetrics settings (processors.hrmetrics).
type Config struct {
	// Timestamp picks the second a record counts in: "event" (default)
	// or "arrival" (use it to replay data older than two weeks).
	Timestamp string `yaml:"timestamp"`
	// Hosts is an allow-list of hosts (virtual hosts or CloudFront edges)
	// that also get per-host datums (dimension Host). Empty: none.
	Hosts []string `yaml:"hosts"`
	// MaxSeconds caps the distinct seconds aggregated between two Flushes;
	// records in further seconds are counted in RecordsDropped.
	MaxSeconds int `yaml:"max_seconds"`
	// Dedupe writes a cursor item per Flush so a new lease owner skips
	// records whose metrics were already sent (CloudWatch sums repeats).
	Dedupe bool `yaml:"dedupe"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Timestamp: TimestampEvent, MaxSeconds: 3600, Dedupe: true}
}

// maxHosts keeps the dimension cardinality (and CloudWatch cost) bounded.
const maxHosts = 50

// Validate checks c; path prefixes field names ("processors.hrmetrics").
func (c Config) Validate(path string) error {
	switch {
	case c.Timestamp != TimestampEvent && c.Timestamp != TimestampArrival:
		return processors.FieldError(path+".timestamp", "must be %q or %q", TimestampEvent, TimestampArrival)
	case len(c.Hosts) > maxHosts:
		return processors.FieldError(path+".hosts", "at most %d hosts (each adds %d metrics)", maxHosts, numMetrics)
	case c.MaxSeconds < 1 || c.MaxSeconds > 86400:
		return processors.FieldError(path+".max_seconds", "must be between 1 and 86400")
	}
	for i, h := range c.Hosts {
		if h == "" || slices.Contains(c.Hosts[:i], h) {
			return processors.FieldError(fmt.Sprintf("%s.hosts[%d]", path, i), "empty or repeated host %q", h)
		}
	}
	return nil
}

// Plugin returns the hrmetrics plugin for a processors.Registry.
func Plugin() processors.Plugin {
	return processors.Plugin{
		Name: Name,
		Doc:  "per-second (high-resolution) request, byte, status-class, order and processing-lag metrics",
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

// Metric indexes; see metrics for names and units.
const (
	mRequests = iota
	mBytes
	m2xx
	m3xx
	m4xx
	m5xx
	mOrders
	mLag
	numMetrics
)

// metrics names every datum: Name, Unit. Value is a sum and Count the
// number of records it covers (see README).
var metrics = [numMetrics]struct{ name, unit string }{
	mRequests: {"Requests", "Count"},
	mBytes:    {"Bytes", "Bytes"},
	m2xx:      {"Status2xx", "Count"},
	m3xx:      {"Status3xx", "Count"},
	m4xx:      {"Status4xx", "Count"},
	m5xx:      {"Status5xx", "Count"},
	mOrders:   {"Orders", "Count"},
	mLag:      {"ProcessingLag", "Milliseconds"},
}

// agg is one (second, host) cell: per metric a sum and a record count.
type agg struct {
	sum [numMetrics]float64
	n   [numMetrics]float64
}

type cellKey struct {
	sec  int64
	host int16 // -1: stream-wide
}

// Processor is one shard lease's hrmetrics instance.
type Processor struct {
	cfg     Config
	app     processors.AppInfo
	env     processors.Env
	log     *zap.Logger
	streamD []processors.Dim   // {Stream}
	hostD   [][]processors.Dim // {Stream, Host} per allow-listed host
	hostIdx map[string]int16

	cells   map[cellKey]*agg
	free    []*agg // recycled cells
	keys    []cellKey
	skipTo  window.Position // restored: records at or below were sent
	pos     window.Position // newest record aggregated
	dropped float64         // records outside CloudWatch's time range or max_seconds
	lastKey cellKey
	last    *agg
}

var _ processors.Processor = (*Processor)(nil)

// New builds a processor; with Dedupe it reads the shard's cursor.
func New(ctx context.Context, cfg Config, app processors.AppInfo, env processors.Env) (*Processor, error) {
	p := &Processor{
		cfg: cfg, app: app, env: env,
		log:     env.Logger.With(zap.String("processor", Name), zap.String("shard_id", env.Shard.ShardID)),
		streamD: []processors.Dim{{Name: "Stream", Value: env.Shard.Stream}},
		hostIdx: make(map[string]int16, len(cfg.Hosts)),
		cells:   make(map[cellKey]*agg, 64),
		lastKey: cellKey{sec: -1},
	}
	for i, h := range cfg.Hosts {
		p.hostIdx[h] = int16(i)
		p.hostD = append(p.hostD, []processors.Dim{{Name: "Stream", Value: env.Shard.Stream}, {Name: "Host", Value: h}})
	}
	if cfg.Dedupe {
		sk := window.ShardSK(env.Shard.ShardID)
		items, err := env.Store.Query(ctx, app.Tables.Results, window.AttrPK, cursorPK, window.AttrSK, sk, sk)
		if err != nil {
			return nil, fmt.Errorf("hrmetrics: shard %s: load cursor: %w", env.Shard.ShardID, err)
		}
		if len(items) > 0 {
			s, _ := window.GetStr(items[0], window.AttrPos)
			if p.skipTo, err = window.ParsePosition(s); err != nil {
				return nil, fmt.Errorf("hrmetrics: shard %s: cursor: %w", env.Shard.ShardID, err)
			}
			p.pos = p.skipTo
		}
	}
	return p, nil
}

// cursorPK is the partition key of hrmetrics' per-shard cursor items.
const cursorPK = "hrmetrics#cursor"

// Process aggregates recs into per-second cells.
func (p *Processor) Process(_ context.Context, recs []records.Record, _ processors.Emitter) error {
	now := p.env.Clock.Now()
	nowMs := now.UnixMilli()
	oldest, newest := now.Add(-maxAge).Unix(), now.Add(maxFuture).Unix()
	for i := range recs {
		r := &recs[i]
		if r.Kind != records.KindHit && r.Kind != records.KindOrder {
			continue
		}
		pos := window.PositionOf(&r.Meta)
		if !p.skipTo.IsZero() && pos.Compare(p.skipTo) <= 0 {
			continue // sent by a previous owner
		}
		if pos.Compare(p.pos) > 0 {
			p.pos = pos
		}
		t := r.EventTime()
		if p.cfg.Timestamp == TimestampArrival {
			t = r.Meta.ArrivalTime
		}
		if t.IsZero() {
			p.dropped++
			continue
		}
		sec := t.Unix()
		if sec < oldest || sec > newest {
			p.dropped++
			continue
		}
		c := p.cell(cellKey{sec: sec, host: -1})
		if c == nil {
			p.dropped++
			continue
		}
		var hc *agg
		if len(p.hostIdx) > 0 {
			if h, ok := p.hostIdx[r.Host]; ok {
				hc = p.cell(cellKey{sec: sec, host: h})
			}
		}
		p.add(c, r, nowMs)
		if hc != nil {
			p.add(hc, r, nowMs)
		}
	}
	p.pos = p.pos.Clone()
	return nil
}

func (p *Processor) cell(k cellKey) *agg {
	if k == p.lastKey {
		return p.last
	}
	c, ok := p.cells[k]
	if !ok {
		if len(p.cells) >= p.cfg.MaxSeconds*(1+len(p.hostD)) {
			return nil
		}
		if n := len(p.free); n > 0 {
			c, p.free = p.free[n-1], p.free[:n-1]
		} else {
			c = new(agg)
		}
		p.cells[k] = c
	}
	p.lastKey, p.last = k, c
	return c
}

func (p *Processor) add(c *agg, r *records.Record, nowMs int64) {
	if r.Kind == records.KindOrder {
		c.sum[mOrders]++
		c.n[mOrders]++
	} else {
		c.sum[mRequests]++
		c.n[mRequests]++
		c.sum[mBytes] += float64(max(r.Bytes, 0))
		c.n[mBytes]++
		if r.Status >= 200 && r.Status < 600 {
			// Status classes count over all requests with a status, so
			// Average is the class's share.
			c.sum[m2xx+r.Status/100-2]++
			for m := m2xx; m <= m5xx; m++ {
				c.n[m]++
			}
		}
	}
	if !r.Meta.ArrivalTime.IsZero() {
		c.sum[mLag] += float64(max(nowMs-r.Meta.ArrivalTime.UnixMilli(), 0))
		c.n[mLag]++
	}
}

// Flush emits the aggregated cells, oldest second first, and the cursor.
func (p *Processor) Flush(_ context.Context, out processors.Emitter) error {
	if len(p.cells) == 0 && p.dropped == 0 {
		return nil
	}
	p.keys = p.keys[:0]
	for k := range p.cells {
		p.keys = append(p.keys, k)
	}
	slices.SortFunc(p.keys, func(a, b cellKey) int {
		if c := cmp.Compare(a.sec, b.sec); c != 0 {
			return c
		}
		return cmp.Compare(a.host, b.host)
	})
	for _, k := range p.keys {
		c := p.cells[k]
		dims := p.streamD
		if k.host >= 0 {
			dims = p.hostD[k.host]
		}
		ts := time.Unix(k.sec, 0).UTC()
		for m := range numMetrics {
			if c.n[m] == 0 {
				continue
			}
			out.Metric(processors.Datum{Name: metrics[m].name, Unit: metrics[m].unit, Dims: dims, Time: ts, Value: c.sum[m], Count: c.n[m]})
		}
		*c = agg{}
		p.free = append(p.free, c)
	}
	clear(p.cells)
	p.lastKey, p.last = cellKey{sec: -1}, nil
	if p.dropped > 0 {
		out.Metric(processors.Datum{Name: "RecordsDropped", Unit: "Count", Dims: p.streamD,
			Time: p.env.Clock.Now().Truncate(time.Second).UTC(), Value: p.dropped, Count: 1})
		p.dropped = 0
	}
	if p.cfg.Dedupe && !p.pos.IsZero() {
		out.Put(p.cursorItem())
	}
	return nil
}

func (p *Processor) cursorItem() processors.Item {
	sk := window.ShardSK(p.env.Shard.ShardID)
	return processors.Item{Table: p.app.Tables.Results, Key: cursorPK + "|" + sk, Attrs: map[string]types.AttributeValue{
		window.AttrPK:        window.Str(cursorPK),
		window.AttrSK:        window.Str(sk),
		window.AttrKind:      window.Str(window.KindCursor),
		window.AttrShard:     window.Str(p.env.Shard.ShardID),
		window.AttrPos:       window.Str(p.pos.String()),
		window.AttrExpiresAt: window.Int(p.env.Clock.Now().Add(p.app.RetentionOrDefault()).Unix()),
	}}
}

// Close flushes what is aggregated, except when the lease was lost.
func (p *Processor) Close(ctx context.Context, reason processors.Reason, out processors.Emitter) error {
	if reason == processors.LeaseLost {
		clear(p.cells)
		p.lastKey, p.last = cellKey{sec: -1}, nil
		p.dropped = 0
		return nil
	}
	return p.Flush(ctx, out)
}

// StateSize returns the cells held (bounded by max_seconds).
func (p *Processor) StateSize() int { return len(p.cells) }
