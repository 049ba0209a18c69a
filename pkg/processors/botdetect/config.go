package botdetect

import (
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Config is the botdetect section of the consumer configuration.
type Config struct {
	// Window, grace and idle: tumbling event-time windows (see package
	// window).
	window.Config `yaml:",inline"`
	// MaxIPs caps the client IPs tracked per window and shard; requests of
	// further IPs are counted as overflow.
	MaxIPs int `yaml:"max_ips"`
	// MaxReport caps the flagged IPs listed in a window's global item
	// (the most active first); the item still counts all of them.
	MaxReport int `yaml:"max_report"`
	// Retention is how long result items live; 0 uses the application's.
	Retention time.Duration `yaml:"retention"`
	// Signals decide which IPs are flagged.
	Signals `yaml:",inline"`
	// UserAgents configures the User-Agent detector.
	UserAgents UAConfig `yaml:"user_agents"`
	// Profile configures the per-IP behaviour profile across windows.
	Profile ProfileConfig `yaml:"profile"`
}

// Signals are the behaviour thresholds; Merge needs them too.
type Signals struct {
	// RateRequests flags an IP with at least this many requests in one
	// window ("rate"); 0 disables.
	RateRequests int64 `yaml:"rate_requests"`
	// Robots flags an IP that fetched /robots.txt ("robots").
	Robots bool `yaml:"robots"`
	// CrawlPaths flags an IP whose requests without a referer reached at
	// least this many distinct paths in one window ("crawl"); 0 disables.
	CrawlPaths int `yaml:"crawl_paths"`
}

// DefaultConfig returns the defaults every field not set in YAML keeps.
func DefaultConfig() Config {
	return Config{
		Config:    window.Config{Size: time.Minute, Grace: 10 * time.Second, Idle: 30 * time.Second},
		MaxIPs:    100_000,
		MaxReport: 500,
		Signals:   Signals{RateRequests: 120, Robots: true, CrawlPaths: 30},
		UserAgents: UAConfig{
			CacheSize: DefaultCacheSize,
		},
		Profile: defaultProfileConfig(),
	}
}

// Validate checks c; path prefixes field names in errors.
func (c Config) Validate(path string) error {
	if err := c.Config.Validate(path); err != nil {
		return err
	}
	switch {
	case c.MaxIPs < 1 || c.MaxIPs > 10_000_000:
		return processors.FieldError(path+".max_ips", "must be between 1 and 10000000")
	case c.MaxReport < 1 || c.MaxReport > 2000:
		// 2,000 entries of ~150 bytes keep the global item under 400 KB.
		return processors.FieldError(path+".max_report", "must be between 1 and 2000")
	case c.Retention < 0:
		return processors.FieldError(path+".retention", "must be >= 0")
	case c.Retention > 0 && c.Retention < c.Size:
		return processors.FieldError(path+".retention", "must be at least the window (%s)", c.Size)
	case c.RateRequests < 0:
		return processors.FieldError(path+".rate_requests", "must be >= 0 (0 disables)")
	case c.CrawlPaths < 0 || c.CrawlPaths > 500:
		// The 256-bit sketch saturates near 1,400; above ~500 its error grows.
		return processors.FieldError(path+".crawl_paths", "must be between 0 (disabled) and 500")
	}
	if err := c.UserAgents.validate(path + ".user_agents"); err != nil {
		return err
	}
	return c.Profile.validate(path + ".profile")
}

// DecodeConfig decodes settings strictly over the defaults and validates
// the result; path names the section in errors ("processors.botdetect").
func DecodeConfig(settings *yaml.Node, path string) (Config, error) {
	cfg := DefaultConfig()
	if err := processors.DecodeStrict(settings, path, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(path); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
