package botdetect

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/shardwatch/shardwatch/pkg/processors"
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

func (c UAConfig) validate(path string) ([]uaRule, []uaRule, error) {
	if c.CacheSize < 1 || c.CacheSize > 10_000_000 {
		return nil, nil, processors.FieldError(path+".cache_size", "must be between 1 and 10000000")
	}
	allow, err := compileRules(path+".allow", c.Allow)
	if err != nil {
		return nil, nil, err
	}
	deny, err := compileRules(path+".deny", c.Deny)
	if err != nil {
		return nil, nil, err
	}
	return allow, deny, nil
}

// uaRule is one allow/deny pattern.
type uaRule struct {
	sub string // lower-case substring, when re is nil
	re  *regexp.Regexp
}

func compileRules(path string, pats []string) ([]uaRule, error) {
	rules := make([]uaRule, 0, len(pats))
	for i, p := range pats {
		field := fmt.Sprintf("%s[%d]", path, i)
		if expr, ok := strings.CutPrefix(p, "re:"); ok {
			re, err := regexp.Compile(expr)
			if err != nil {
				return nil, processors.FieldError(field, "bad regexp: %v", err)
			}
			rules = append(rules, uaRule{re: re})
			continue
		}
		if p == "" {
			return nil, processors.FieldError(field, "must not be empty")
		}
		rules = append(rules, uaRule{sub: strings.ToLower(p)})
	}
	return rules, nil
}

// find returns the match of the first rule matching ua (lower is ua in
// lower case), as a [start, end) range of ua.
func findRule(rules []uaRule, ua, lower string) (int, int, bool) {
	for _, r := range rules {
		if r.re != nil {
			if loc := r.re.FindStringIndex(ua); loc != nil {
				return loc[0], loc[1], true
			}
			continue
		}
		// ToLower may change byte lengths for non-ASCII text; then the
		// offsets would not map back, so use the whole UA as the match.
		if i := strings.Index(lower, r.sub); i >= 0 {
			if len(lower) != len(ua) {
				return 0, len(ua), true
			}
			return i, i + len(r.sub), true
		}
	}
	return 0, 0, false
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
	allow, deny []uaRule
	match       *uaMatcher
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

func newDetector(cfg UAConfig, allow, deny []uaRule) (*Detector, error) {
	cache, err := lru.New[string, Verdict](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("user-agent cache: %w", err)
	}
	return &Detector{allow: allow, deny: deny, match: sharedMatcher(), cache: cache}, nil
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
	if len(d.allow) > 0 || len(d.deny) > 0 {
		lower := strings.ToLower(ua)
		if _, _, ok := findRule(d.allow, ua, lower); ok {
			return Verdict{}
		}
		if start, end, ok := findRule(d.deny, ua, lower); ok {
			name := tokenAt(ua, start, end)
			if name == "" {
				name = "deny"
			}
			return Verdict{Bot: true, Name: name}
		}
	}
	bot, name := d.match.match(ua)
	if bot && name == "" {
		name = uaToken(ua)
	}
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
