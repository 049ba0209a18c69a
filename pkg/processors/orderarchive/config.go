package orderarchive

import (
	"github.com/shardwatch/shardwatch/pkg/processors"
)

// Config is the orderarchive processor's settings
// (processors.orderarchive).
type Config struct {
	// Table is the archive table; default "<app>-orders".
	Table string `yaml:"table"`
	// MaxLines bounds the order lines whose occurrence count a shard
	// remembers (to number identical lines of one invoice); the oldest are
	// forgotten first. Lines of one invoice arrive together, so this only
	// needs to cover the largest invoice.
	MaxLines int `yaml:"max_lines"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{MaxLines: 10_000} }

// Validate checks c for application app; path prefixes field names
// ("processors.orderarchive").
func (c Config) Validate(path string, app processors.AppInfo) error {
	switch {
	case c.Table == "" && app.App == "":
		return processors.FieldError(path+".table", "required when the application name is empty")
	case len(c.Table) > 255:
		return processors.FieldError(path+".table", "must be at most 255 characters")
	case c.MaxLines < 1 || c.MaxLines > 1_000_000:
		return processors.FieldError(path+".max_lines", "must be between 1 and 1000000")
	}
	return nil
}

// TableName returns the archive table of app under c.
func (c Config) TableName(app processors.AppInfo) string {
	if c.Table != "" {
		return c.Table
	}
	return app.App + TableSuffix
}

// TableSuffix names the default archive table "<app>-orders".
const TableSuffix = "-orders"
