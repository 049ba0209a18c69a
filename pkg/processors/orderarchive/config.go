package orderarchive

import (
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors"
)

// Config is the orderarchive processor's settings
// (processors.orderarchive).
type Config struct {
	// Table is the archive table; default "<app>-orders".
	Table string `yaml:"table"`
	// MaxLines bounds the distinct lines of one invoice whose occurrence a
	// shard counts (to number identical lines); later new lines of a
	// larger invoice are all numbered 1. The largest invoice of the
	// December 2010 data has 675 lines.
	MaxLines int `yaml:"max_lines"`
	// InvoiceGap restarts the count when lines of the same invoice arrive
	// (Kinesis arrival time) this far apart: the same order produced again
	// right after itself is a replay, not more identical lines. 0 = off.
	InvoiceGap time.Duration `yaml:"invoice_gap"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{MaxLines: 1000, InvoiceGap: time.Minute} }

// maxMaxLines keeps the state item (two generations of one invoice's
// lines, at most ~140 bytes each) below DynamoDB's 400 KB.
const maxMaxLines = 1000

// Validate checks c for application app; path prefixes field names
// ("processors.orderarchive").
func (c Config) Validate(path string, app processors.AppInfo) error {
	switch {
	case c.Table == "" && app.App == "":
		return processors.FieldError(path+".table", "required when the application name is empty")
	case len(c.Table) > 255:
		return processors.FieldError(path+".table", "must be at most 255 characters")
	case c.MaxLines < 1 || c.MaxLines > maxMaxLines:
		return processors.FieldError(path+".max_lines", "must be between 1 and %d", maxMaxLines)
	case c.InvoiceGap < 0:
		return processors.FieldError(path+".invoice_gap", "must be >= 0")
	case app.Tables.Results == "":
		return processors.FieldError(path, "needs the application's results table (for its per-shard state)")
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
