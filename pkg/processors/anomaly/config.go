package anomaly

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/rcf"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Inputs: what one instance scores.
const (
	// InputJSON scores the values of every KindEvent record (format json),
	// one model per record Key.
	InputJSON = "json"
	// InputTraffic scores a derived series per virtual host (KindHit),
	// one point per event-time second in which the host had requests.
	InputTraffic = "traffic"
)

// Traffic series: the dimensions of a traffic point.
const (
	SeriesRequests = "requests"  // ln(1 + requests in the second)
	SeriesBytes    = "bytes"     // ln(1 + response KB in the second)
	Series5xx      = "5xx_share" // share of responses with status 500-599
	SeriesBots     = "bot_share" // share of requests from bots (pkg/useragent)
)

var allSeries = []string{SeriesRequests, SeriesBytes, Series5xx, SeriesBots}

// Forest is the RCF configuration of every model of an instance (see
// pkg/rcf). Zero fields take the defaults of the input.
type Forest struct {
	Trees       int     `yaml:"trees"`
	SampleSize  int     `yaml:"sample_size"`
	TimeDecay   float64 `yaml:"time_decay"`
	ShingleSize int     `yaml:"shingle_size"`
	OutputAfter int     `yaml:"output_after"`
	Seed        uint64  `yaml:"seed"`
}

// Config is the anomaly section of the consumer configuration.
type Config struct {
	Input string `yaml:"input"`
	// Values is the number of values per json record (format json's
	// json.values); records with another number are rejected (counted).
	Values int `yaml:"values"`
	// Series lists the dimensions of a traffic point (input traffic).
	Series []string `yaml:"series"`
	Forest Forest   `yaml:"forest"`
	// Threshold raises an alarm when a score exceeds it.
	Threshold float64 `yaml:"threshold"`
	// MaxKeys bounds the models per shard; records of further keys are
	// counted (metric UnmodelledRecords), not scored.
	MaxKeys int `yaml:"max_keys"`
	// Top is the number of highest-scoring points kept per second.
	Top int `yaml:"top"`
	// Buckets are the upper bounds of the score distribution buckets
	// (ascending); one more bucket counts scores above the last.
	Buckets []float64 `yaml:"buckets"`
	// Distribution is the window of the score distribution.
	Distribution time.Duration `yaml:"distribution"`
	// Grace keeps windows open for out-of-order records; PointGrace keeps
	// a traffic second open (its point is scored when the shard's newest
	// event time passes second end + PointGrace); Idle closes windows
	// and seconds of an idle shard on the clock.
	Grace      time.Duration `yaml:"grace"`
	PointGrace time.Duration `yaml:"point_grace"`
	Idle       time.Duration `yaml:"idle"`
	// MetricKeys: the first MetricKeys keys modelled on a shard get their
	// own Key dimension on the MaxAnomalyScore metric; others are
	// reported as Key=_other.
	MetricKeys int `yaml:"metric_keys"`
	// SnapshotInterval: model snapshots are written at most this often
	// (and at shutdown); 0 writes them on every flush that changed a model.
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
	// Suppression: at most one alarm per key and period fleet-wide, and
	// none within Suppression of a key's previous alarm on the shard.
	Suppression time.Duration `yaml:"suppression"`
	Severity    string        `yaml:"severity"`
	// TopicARN overrides the application's alarm topic.
	TopicARN string `yaml:"topic_arn"`
}

// DefaultConfig returns the defaults of input json; input traffic uses a
// smaller forest unless set (see README).
func DefaultConfig() Config {
	return Config{
		Input:            InputJSON,
		Values:           1,
		Threshold:        rcfAlarmThreshold,
		MaxKeys:          20,
		Top:              10,
		Buckets:          []float64{0.5, 1, 1.5, 2, 3, 4, 6, 8},
		Distribution:     time.Minute,
		Grace:            5 * time.Second,
		PointGrace:       time.Second,
		Idle:             30 * time.Second,
		MetricKeys:       10,
		SnapshotInterval: 5 * time.Minute,
		Suppression:      5 * time.Minute,
		Severity:         "medium",
	}
}

// rcfAlarmThreshold is pkg/rcf's documented alarm threshold (README): about
// twice the p99.9 of normal scores, which are around 1.
const rcfAlarmThreshold = 2.0

// Limits that keep items and state bounded.
const (
	maxMaxKeys  = 1000
	maxTop      = 100
	maxBuckets  = 32
	maxKeyBytes = 200 // longer keys are not modelled (counted)
)

// rcfConfig returns the forest configuration of one model.
func (c Config) rcfConfig(seed uint64) rcf.Config {
	f := c.Forest
	if c.Input == InputTraffic {
		// Per-host series: a smaller forest (50 trees x 128 samples), so
		// a snapshot of 3 seconds x 4 series stays at ~0.8 MB (3 items).
		if f.Trees == 0 {
			f.Trees = 50
		}
		if f.SampleSize == 0 {
			f.SampleSize = 128
		}
		if f.ShingleSize == 0 {
			// A spike is a run of seconds: three seconds per point tell a
			// sustained 10x from a one-second burst (README, evaluation).
			f.ShingleSize = 3
		}
	}
	dims := c.Values
	if c.Input == InputTraffic {
		dims = len(c.Series)
	}
	return rcf.Config{Trees: f.Trees, SampleSize: f.SampleSize, TimeDecay: f.TimeDecay, ShingleSize: f.ShingleSize,
		Dimensions: dims, OutputAfter: f.OutputAfter, Seed: seed}.WithDefaults()
}

// Validate checks c; path prefixes field names in errors.
func (c *Config) Validate(path string) error {
	switch c.Input {
	case InputJSON:
		if len(c.Series) > 0 {
			return processors.FieldError(path+".series", "only with input traffic")
		}
		if c.Values < 1 || c.Values > records.MaxValues {
			return processors.FieldError(path+".values", "must be between 1 and %d", records.MaxValues)
		}
	case InputTraffic:
		if len(c.Series) == 0 {
			c.Series = slices.Clone(allSeries)
		}
		seen := map[string]bool{}
		for i, s := range c.Series {
			if !slices.Contains(allSeries, s) || seen[s] {
				return processors.FieldError(path+".series["+itoa(i)+"]", "must be one of %s, each once", strings.Join(allSeries, ", "))
			}
			seen[s] = true
		}
	default:
		return processors.FieldError(path+".input", "must be json or traffic")
	}
	if err := c.rcfConfig(1).Validate(); err != nil {
		return processors.FieldError(path+".forest", "%v", err)
	}
	switch {
	case c.Threshold <= 0 || math.IsNaN(c.Threshold) || math.IsInf(c.Threshold, 0):
		return processors.FieldError(path+".threshold", "must be > 0")
	case c.MaxKeys < 1 || c.MaxKeys > maxMaxKeys:
		return processors.FieldError(path+".max_keys", "must be between 1 and %d", maxMaxKeys)
	case c.Top < 1 || c.Top > maxTop:
		return processors.FieldError(path+".top", "must be between 1 and %d", maxTop)
	case len(c.Buckets) == 0 || len(c.Buckets) > maxBuckets:
		return processors.FieldError(path+".buckets", "must list 1 to %d bounds", maxBuckets)
	case c.Distribution < time.Second || c.Distribution%time.Second != 0 || (24*time.Hour)%c.Distribution != 0:
		return processors.FieldError(path+".distribution", "must be whole seconds dividing 24h")
	case c.Grace < 0 || c.Grace > time.Hour:
		return processors.FieldError(path+".grace", "must be between 0 and 1h")
	case c.PointGrace < 0 || c.PointGrace > time.Minute || c.PointGrace%time.Second != 0:
		return processors.FieldError(path+".point_grace", "must be whole seconds between 0 and 1m")
	case c.Idle < 0:
		return processors.FieldError(path+".idle", "must be >= 0")
	case c.MetricKeys < 0 || c.MetricKeys > 100:
		return processors.FieldError(path+".metric_keys", "must be between 0 and 100")
	case c.SnapshotInterval < 0:
		return processors.FieldError(path+".snapshot_interval", "must be >= 0")
	case c.Suppression < time.Second || c.Suppression%time.Second != 0 || (24*time.Hour)%c.Suppression != 0:
		return processors.FieldError(path+".suppression", "must be whole seconds >= 1s dividing 24h")
	case c.Severity == "":
		return processors.FieldError(path+".severity", "must not be empty")
	}
	for i, b := range c.Buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && b <= c.Buckets[i-1]) {
			return processors.FieldError(path+".buckets["+itoa(i)+"]", "bounds must be finite and ascending")
		}
	}
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }
