package topn

import (
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Config is the topn processor's settings (processors.topn in the YAML).
type Config struct {
	window.Config `yaml:",inline"`
	// N is the number of IPs (and hosts) in the global lists.
	N int `yaml:"n"`
	// Candidates is M, the per-shard list length; 0 means max(5N, 100).
	Candidates int `yaml:"candidates"`
	// MaxKeys caps the distinct client IPs counted per window and shard.
	MaxKeys int `yaml:"max_keys"`
	// MaxHosts caps the distinct hosts counted per window and shard.
	MaxHosts int `yaml:"max_hosts"`
}

// DefaultConfig returns the defaults: top 50 per 60 s window, 5 s grace.
func DefaultConfig() Config {
	return Config{
		Config:   window.Config{Size: 60 * time.Second, Grace: 5 * time.Second, Idle: 30 * time.Second},
		N:        50,
		MaxKeys:  100_000,
		MaxHosts: 10_000,
	}
}

// maxCandidates keeps a partial (two lists of M rows, ~35 bytes each)
// well below DynamoDB's 400 KB item limit.
const maxCandidates = 2000

// M returns the per-shard candidate list length.
func (c Config) M() int {
	if c.Candidates > 0 {
		return c.Candidates
	}
	return max(5*c.N, 100)
}

// Validate checks c; path prefixes field names ("processors.topn").
func (c Config) Validate(path string) error {
	if err := c.Config.Validate(path); err != nil {
		return err
	}
	switch {
	case c.N < 1 || c.N > 1000:
		return processors.FieldError(path+".n", "must be between 1 and 1000")
	case c.Candidates != 0 && c.Candidates < c.N:
		return processors.FieldError(path+".candidates", "must be >= n (%d) or 0 for max(5n, 100)", c.N)
	case c.M() > maxCandidates:
		return processors.FieldError(path+".candidates", "must be <= %d (item size); set it explicitly for large n", maxCandidates)
	case c.MaxKeys < c.M():
		return processors.FieldError(path+".max_keys", "must be >= candidates (%d)", c.M())
	case c.MaxHosts < 1:
		return processors.FieldError(path+".max_hosts", "must be >= 1")
	}
	return nil
}
