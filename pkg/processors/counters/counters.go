package counters

import (
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
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
	return windowed.Define(Name,
		"running counts per event name (hit, order, 4xx, 5xx, clickstream events) per minute and hour, summed over shards",
		DefaultConfig, func(cfg Config, app processors.AppInfo) (windowed.Spec, windowed.Aggregate[*counts], error) {
			spec := windowed.Spec{
				Kinds:          []records.Kind{records.KindHit, records.KindOrder},
				UpdateInterval: cfg.UpdateInterval,
				// Rows are keyed by event and bucket only: one instance per table.
				Claims: []processors.Claim{{Table: app.Tables.Counters}},
			}
			for _, r := range []struct {
				on        bool
				res       Resolution
				retention time.Duration
			}{{cfg.Seconds, Second, cfg.SecondsRetention}, {cfg.Minutes, Minute, cfg.Retention}, {cfg.Hours, Hour, cfg.Retention}} {
				if r.on {
					spec.Windows = append(spec.Windows, windowed.Window{
						Config: window.Config{Size: r.res.Size, Grace: cfg.Grace, Idle: cfg.Idle}, Retention: r.retention})
				}
			}
			return spec, &aggregate{maxEvents: cfg.MaxEvents, table: app.Tables.Counters}, nil
		})
}

// counts is one bucket's counts.
type counts struct {
	hit, order, c4xx, c5xx, other, invalid int64
	events                                 map[string]int64
}

// aggregate is the counters' windowed.Aggregate.
type aggregate struct {
	maxEvents int
	table     string
}

func (a *aggregate) New() *counts { return &counts{} }

func (a *aggregate) Add(c *counts, r *records.Record) {
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
	case len(c.events) >= a.maxEvents:
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

// builtins lists the fixed counters by event name.
func (c *counts) builtins() []struct {
	name string
	v    *int64
} {
	return []struct {
		name string
		v    *int64
	}{{EventHit, &c.hit}, {EventOrder, &c.order}, {Event4xx, &c.c4xx}, {Event5xx, &c.c5xx}, {EventOther, &c.other}, {EventInvalid, &c.invalid}}
}

// snapshot returns every non-zero counter by event name.
func (c *counts) snapshot() map[string]int64 {
	m := make(map[string]int64, len(c.events)+6)
	for _, b := range c.builtins() {
		if *b.v != 0 {
			m[b.name] = *b.v
		}
	}
	maps.Copy(m, c.events)
	return m
}

func (a *aggregate) Encode(c *counts, f *windowed.Fields) { f.SetCounts(attrCounts, c.snapshot()) }

func (a *aggregate) Decode(f *windowed.Fields) (*counts, error) {
	m, err := f.Counts(attrCounts)
	if err != nil {
		return nil, err
	}
	c := &counts{events: map[string]int64{}}
	for _, b := range c.builtins() {
		*b.v = m[b.name]
		delete(m, b.name)
	}
	maps.Copy(c.events, m)
	return c, nil
}

func (a *aggregate) Merge(dst, src *counts) *counts {
	for i, b := range src.builtins() {
		*dst.builtins()[i].v += *b.v
	}
	if dst.events == nil {
		dst.events = map[string]int64{}
	}
	for k, n := range src.events {
		dst.events[k] += n
	}
	return dst
}

// Result writes one counters-table row per event, sorted by event.
func (a *aggregate) Result(c *counts, w windowed.Info, out *windowed.Output) {
	res := Second
	for _, r := range []Resolution{Minute, Hour} {
		if w.End.Sub(w.Start) == r.Size {
			res = r
		}
	}
	bucket := res.Bucket(w.Start)
	m := c.snapshot()
	for _, ev := range slices.Sorted(maps.Keys(m)) {
		f := out.Row(a.table, ev+"|"+bucket)
		f.SetStr(AttrEvent, ev)
		f.SetStr(AttrBucket, bucket)
		f.SetInt(AttrCount, m[ev])
		f.SetStr(AttrResolution, res.Name)
	}
}

func (a *aggregate) Size(c *counts) int { return len(c.events) + 6 }

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
