package dashboard

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors"
)

// TimeBase says where "now" comes from.
type TimeBase string

const (
	// WallClock anchors every chart and window lookup at the clock: the
	// live view of a stream whose records carry current timestamps.
	WallClock TimeBase = "wall"
	// DataClock anchors them at the newest bucket of the charted event, so
	// a replay of old logs (which keep their recorded timestamps) still
	// shows its last minute, hour and day.
	DataClock TimeBase = "data"
)

// Defaults.
const (
	DefaultAddr    = "127.0.0.1:8088"
	DefaultEvent   = "hit"
	DefaultRefresh = 2 * time.Second
	DefaultWindow  = 60 * time.Second
	DefaultAlarm   = "order-flood"
	// DefaultLookback is how many windows back /api/top and /api/bots
	// look for the newest merged result.
	DefaultLookback = 5
)

// Limits of the JSON API.
const (
	// ScanAll as the only alarm name lists alarms of every name (keyed
	// order-flood modes included) with a bounded Scan instead of a Query
	// per name.
	ScanAll = "*"
	// maxAlarmScan bounds the alarm items one Scan reads.
	maxAlarmScan = 1000
	maxAlarmList = 100
	maxLookback  = 50
)

// eventRE is what the API accepts as an event name: the counters
// processor's built-in names and clickstream names made of these
// characters. Anything else is rejected, never echoed.
var eventRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// ValidEvent reports whether name can be charted.
func ValidEvent(name string) bool { return eventRE.MatchString(name) }

// Config configures a Server.
type Config struct {
	// App is the application name; Tables default to its APP-* tables.
	App    string
	Tables processors.Tables
	// Event is the counters event charted when a request names none.
	Event string
	// TopNWindow and BotWindow are the window sizes of the topn and
	// botdetect processors (their result keys contain them).
	TopNWindow, BotWindow time.Duration
	// Lookback is how many windows back the newest top-N and bot results
	// are searched (one BatchGetItem).
	Lookback int
	// Alarms are the alarm names (orderflood `name`) listed, newest
	// first; []string{ScanAll} scans the alarm table instead.
	Alarms []string
	// Refresh is how often the page polls the API; API responses are
	// cached for half of it, so many open pages cost one set of reads.
	Refresh time.Duration
	// Time is WallClock (default) or DataClock.
	Time TimeBase
	// Events are the counters events the page offers (its event picker);
	// the charts show Event until the page or URL picks others.
	Events []string
	// HistogramName and HistogramWindow, VisitorsWindow, EdgesWindow
	// (cloudfront-bytes), AnomalyName and AnomalyWindow (the anomaly
	// processor's per-minute score distribution) locate those results.
	HistogramName   string
	HistogramWindow time.Duration
	VisitorsWindow  time.Duration
	EdgesWindow     time.Duration
	AnomalyName     string
	AnomalyWindow   time.Duration
	// AnomalyBuckets are the anomaly processor's score bucket bounds
	// (labels of the distribution; the items hold the counts only).
	AnomalyBuckets []float64
}

// DefaultEvents are the events the page offers by default.
var DefaultEvents = []string{"hit", "order", "4xx", "5xx"}

// DefaultAnomalyBuckets are the anomaly processor's default bounds.
var DefaultAnomalyBuckets = []float64{0.5, 1, 1.5, 2, 3, 4, 6, 8}

// maxEvents bounds the events of one chart or table request and the
// events offered.
const maxEvents = 8

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Tables == (processors.Tables{}) && c.App != "" {
		c.Tables = processors.TablesFor(c.App)
	}
	if c.Event == "" {
		c.Event = DefaultEvent
	}
	if c.TopNWindow == 0 {
		c.TopNWindow = DefaultWindow
	}
	if c.BotWindow == 0 {
		c.BotWindow = DefaultWindow
	}
	if c.Lookback == 0 {
		c.Lookback = DefaultLookback
	}
	if c.Alarms == nil {
		c.Alarms = []string{DefaultAlarm}
	}
	if c.Refresh == 0 {
		c.Refresh = DefaultRefresh
	}
	if c.Time == "" {
		c.Time = WallClock
	}
	if c.Events == nil {
		c.Events = append([]string{c.Event}, DefaultEvents...)
		c.Events = slices.Compact(slices.Sorted(slices.Values(c.Events)))
	}
	if c.HistogramName == "" {
		c.HistogramName = "histogram"
	}
	if c.AnomalyName == "" {
		c.AnomalyName = "anomaly"
	}
	for _, w := range []*time.Duration{&c.HistogramWindow, &c.VisitorsWindow, &c.EdgesWindow, &c.AnomalyWindow} {
		if *w == 0 {
			*w = DefaultWindow
		}
	}
	if c.AnomalyBuckets == nil {
		c.AnomalyBuckets = DefaultAnomalyBuckets
	}
	return c
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("dashboard config")

// Validate checks a Config after WithDefaults.
func (c Config) Validate() error {
	bad := func(field, reason string) error { return fmt.Errorf("%w: %s: %s", ErrConfig, field, reason) }
	switch {
	case c.App == "":
		return bad("app", "required")
	case c.Tables.Counters == "" || c.Tables.Results == "" || c.Tables.Alarms == "":
		return bad("tables", "counters, results and alarms tables are required")
	case !ValidEvent(c.Event):
		return bad("event", "1-64 characters of A-Z a-z 0-9 _ . : -")
	case c.Lookback < 1 || c.Lookback > maxLookback:
		return bad("lookback", fmt.Sprintf("must be between 1 and %d", maxLookback))
	case c.Refresh < 100*time.Millisecond || c.Refresh > time.Hour:
		return bad("refresh", "must be between 100ms and 1h")
	case c.Time != WallClock && c.Time != DataClock:
		return bad("time", `must be "wall" or "data"`)
	}
	if len(c.Events) == 0 || len(c.Events) > maxEvents {
		return bad("events", fmt.Sprintf("1 to %d events", maxEvents))
	}
	for _, e := range c.Events {
		if !ValidEvent(e) {
			return bad("events", "1-64 characters of A-Z a-z 0-9 _ . : -")
		}
	}
	if !ValidEvent(c.HistogramName) || !ValidEvent(c.AnomalyName) {
		return bad("histogram/anomaly name", "1-64 characters of A-Z a-z 0-9 _ . : -")
	}
	if len(c.AnomalyBuckets) > 32 || !slices.IsSorted(c.AnomalyBuckets) {
		return bad("anomaly_buckets", "at most 32 ascending bounds")
	}
	for name, w := range map[string]time.Duration{"topn_window": c.TopNWindow, "bot_window": c.BotWindow,
		"histogram_window": c.HistogramWindow, "visitors_window": c.VisitorsWindow, "edges_window": c.EdgesWindow,
		"anomaly_window": c.AnomalyWindow} {
		if w < time.Second || w%time.Second != 0 || (24*time.Hour)%w != 0 {
			return bad(name, "whole seconds dividing 24h, as in the processor's config")
		}
	}
	if len(c.Alarms) == 0 {
		return bad("alarms", "at least one alarm name (or *)")
	}
	for _, a := range c.Alarms {
		if a == "" || (a == ScanAll && len(c.Alarms) > 1) {
			return bad("alarms", "names must not be empty; * stands alone")
		}
	}
	return nil
}
