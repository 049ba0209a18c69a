package botdetect

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/useragent"
)

// UAConfig configures User-Agent classification.
type UAConfig struct {
	// CacheSize is the number of distinct User-Agents whose verdict is
	// cached (LRU, shared by every shard of the worker).
	CacheSize int `yaml:"cache_size"`
	// Allow lists patterns of User-Agents that are never bots; Deny those
	// that always are. A pattern is a case-insensitive substring, or a Go
	// regexp when written "re:<regexp>". Allow wins over Deny, Deny over
	// crawlerdetect.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// DefaultCacheSize is the default UAConfig.CacheSize.
const DefaultCacheSize = 10_000

// maxCachedUA bounds the key size of the cache: longer User-Agents (rare
// and often garbage) are classified every time instead of pinning memory.
const maxCachedUA = 1024

// Validate checks c (for plugins that embed a UAConfig in their own
// settings); path prefixes field names in errors.
func (c UAConfig) Validate(path string) error {
	_, _, err := c.validate(path)
	return err
}

func (c UAConfig) validate(path string) (useragent.Patterns, useragent.Patterns, error) {
	if c.CacheSize < 1 || c.CacheSize > 10_000_000 {
		return useragent.Patterns{}, useragent.Patterns{}, processors.FieldError(path+".cache_size", "must be between 1 and 10000000")
	}
	allow, err := compileRules(path+".allow", c.Allow)
	if err != nil {
		return useragent.Patterns{}, useragent.Patterns{}, err
	}
	deny, err := compileRules(path+".deny", c.Deny)
	if err != nil {
		return useragent.Patterns{}, useragent.Patterns{}, err
	}
	return allow, deny, nil
}

func compileRules(path string, pats []string) (useragent.Patterns, error) {
	p, err := useragent.CompilePatterns(pats)
	var pe *useragent.PatternError
	if errors.As(err, &pe) {
		return p, processors.FieldError(fmt.Sprintf("%s[%d]", path, pe.Index), "%s", pe.Reason)
	}
	return p, err
}

// Verdict is the classification of one User-Agent.
type Verdict struct {
	Bot bool
	// Name names the crawler, e.g. "AhrefsBot" ("" when not a bot).
	Name string
}

// Detector classifies User-Agents: allow/deny rules, then crawlerdetect's
// patterns (through an exact fast matcher), behind an LRU cache. It is
// safe for concurrent use; build one per process and share it across
// shards, which raises the cache hit ratio.
type Detector struct {
	allow, deny useragent.Patterns
	match       *useragent.CrawlerMatcher
	cache       *lru.Cache[string, Verdict]

	hits, misses atomic.Uint64
}

// NewDetector returns a detector for cfg (zero fields take defaults).
func NewDetector(cfg UAConfig) (*Detector, error) {
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	allow, deny, err := cfg.validate("user_agents")
	if err != nil {
		return nil, err
	}
	return newDetector(cfg, allow, deny)
}

func newDetector(cfg UAConfig, allow, deny useragent.Patterns) (*Detector, error) {
	cache, err := lru.New[string, Verdict](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("user-agent cache: %w", err)
	}
	return &Detector{allow: allow, deny: deny, match: useragent.CrawlerDetect(), cache: cache}, nil
}

// IsBot reports whether ua is a bot and names it. ua may alias a batch
// payload: the detector copies what it keeps.
func (d *Detector) IsBot(ua string) (bool, string) {
	v := d.Classify(ua)
	return v.Bot, v.Name
}

// Classify returns the verdict for ua. A cache hit costs ~50 ns and does
// not allocate.
func (d *Detector) Classify(ua string) Verdict {
	if v, ok := d.cache.Get(ua); ok {
		d.hits.Add(1)
		return v
	}
	d.misses.Add(1)
	v := d.classify(ua)
	if len(ua) <= maxCachedUA {
		key := strings.Clone(ua)
		v.Name = strings.Clone(v.Name)
		d.cache.Add(key, v)
	}
	return v
}

// classify decides without the cache.
func (d *Detector) classify(ua string) Verdict {
	if _, ok := d.allow.Find(ua); ok {
		return Verdict{}
	}
	if name, ok := d.deny.Find(ua); ok {
		if name == "" {
			name = "deny"
		}
		return Verdict{Bot: true, Name: name}
	}
	bot, name := d.match.Match(ua)
	return Verdict{Bot: bot, Name: name}
}

// CacheStats counts cache lookups since the detector was built.
type CacheStats struct {
	Hits, Misses uint64
	Size         int
}

// HitRatio returns Hits / (Hits + Misses), 0 before any lookup.
func (s CacheStats) HitRatio() float64 {
	if n := s.Hits + s.Misses; n > 0 {
		return float64(s.Hits) / float64(n)
	}
	return 0
}

// Stats returns the cache counters.
func (d *Detector) Stats() CacheStats {
	return CacheStats{Hits: d.hits.Load(), Misses: d.misses.Load(), Size: d.cache.Len()}
}
