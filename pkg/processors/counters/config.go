package counters

import (
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors"
)

// Config is the counters processor's settings (processors.counters).
type Config struct {
	// Grace and Idle shape the minute and hour windows (see package window).
	Grace time.Duration `yaml:"grace"`
	Idle  time.Duration `yaml:"idle"`
	// Minutes and Hours select the bucket resolutions written.
	Minutes bool `yaml:"minutes"`
	Hours   bool `yaml:"hours"`
	// Seconds also writes second buckets ("2026-11-22T09:41:07"), for live
	// views such as the dashboard's last minute. Off by default: every
	// second closes a bucket, which costs a partial write, a Query and the
	// counter items per shard and second.
	Seconds bool `yaml:"seconds"`
	// SecondsRetention is the TTL of second buckets (after their end):
	// they serve live views only.
	SecondsRetention time.Duration `yaml:"seconds_retention"`
	// MaxEvents caps the distinct clickstream event names per bucket and
	// shard; further names are counted as "_other".
	MaxEvents int `yaml:"max_events"`
	// UpdateInterval is how often the running totals of open buckets are
	// merged into the counters table (closed buckets are written at once).
	UpdateInterval time.Duration `yaml:"update_interval"`
	// Retention overrides the application's result retention (0 = keep it).
	Retention time.Duration `yaml:"retention"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Grace: 5 * time.Second, Idle: 30 * time.Second,
		Minutes: true, Hours: true,
		SecondsRetention: time.Hour,
		MaxEvents:        100,
		UpdateInterval:   time.Minute,
	}
}

// Validate checks c; path prefixes field names ("processors.counters").
func (c Config) Validate(path string) error {
	switch {
	case c.Grace < 0 || c.Grace > time.Hour:
		return processors.FieldError(path+".grace", "must be between 0 and 1h")
	case c.Idle < 0:
		return processors.FieldError(path+".idle", "must be >= 0")
	case !c.Minutes && !c.Hours && !c.Seconds:
		return processors.FieldError(path+".minutes", "seconds, minutes and hours are all off: nothing to count")
	case c.SecondsRetention < time.Minute:
		return processors.FieldError(path+".seconds_retention", "must be >= 1m")
	case c.MaxEvents < 1 || c.MaxEvents > 1000:
		return processors.FieldError(path+".max_events", "must be between 1 and 1000")
	case c.UpdateInterval < time.Second:
		return processors.FieldError(path+".update_interval", "must be >= 1s")
	case c.Retention < 0:
		return processors.FieldError(path+".retention", "must be >= 0")
	}
	return nil
}
