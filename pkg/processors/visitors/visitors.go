package visitors

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
	"github.com/shardwatch/shardwatch/pkg/useragent"
)

// Name is the plugin's type name.
const Name = "visitors"

// Other collects names beyond max_keys (per shard and window) and, in
// results, beyond top_k.
const Other = "_other"

// Config is the processor's settings.
type Config struct {
	window.Config `yaml:",inline"`
	// TopK is how many names per dimension the global result lists; the
	// rest are summed into "_other".
	TopK int `yaml:"top_k"`
	// MaxKeys bounds the distinct names per dimension a shard keeps for
	// one window; further names count as "_other" (totals stay exact).
	MaxKeys int `yaml:"max_keys"`
	// CacheSize is the classifier's LRU size (pkg/useragent).
	CacheSize int `yaml:"cache_size"`
}

// Validate implements the runner's config check.
func (c Config) Validate(path string) error {
	if err := c.Config.Validate(path); err != nil {
		return err
	}
	switch {
	case c.TopK < 1 || c.TopK > 100:
		return fmt.Errorf("%s.top_k: must be between 1 and 100", path)
	case c.MaxKeys < c.TopK || c.MaxKeys > 1000:
		return fmt.Errorf("%s.max_keys: must be between top_k and 1000", path)
	case c.CacheSize < 0 || c.CacheSize > useragent.MaxCacheSize:
		return fmt.Errorf("%s.cache_size: must be between 0 and %d", path, useragent.MaxCacheSize)
	}
	return nil
}

// The dimensions, in item attribute order.
var dims = [...]string{"class", "browser", "os", "device"}

// counts is one window's state on one shard: hits per name, per dimension.
type counts [len(dims)]map[string]int64

// Plugin returns the visitors plugin.
func Plugin() processors.Plugin {
	return windowed.Define(Name, "hits per User-Agent class, browser family, OS family and device class per window, global across shards",
		func() Config {
			return Config{Config: windowed.DefaultWindow(), TopK: 10, MaxKeys: 200, CacheSize: useragent.DefaultCacheSize}
		},
		func(cfg Config, _ processors.AppInfo) (windowed.Spec, windowed.Aggregate[*counts], error) {
			cl, err := useragent.New(useragent.Config{CacheSize: cfg.CacheSize})
			if err != nil {
				return windowed.Spec{}, nil, err
			}
			return windowed.Tumbling(cfg.Config, records.KindHit), &aggregate{cfg: cfg, ua: cl}, nil
		})
}

type aggregate struct {
	cfg Config
	ua  *useragent.Classifier
}

func (a *aggregate) New() *counts {
	var c counts
	for i := range c {
		c[i] = map[string]int64{}
	}
	return &c
}

func (a *aggregate) Add(c *counts, r *records.Record) {
	res := a.ua.Classify(r.UserAgent)
	a.bump(c, 0, res.Class.String(), 1)
	a.bump(c, 1, res.Browser, 1)
	a.bump(c, 2, res.OS, 1)
	a.bump(c, 3, res.Device.String(), 1)
}

// bump adds n to name in dimension d, or to Other once d is full. Names
// come from the classifier's fixed tables, so keeping them is cheap; the
// cap guards against a parser that returns free text.
func (a *aggregate) bump(c *counts, d int, name string, n int64) {
	m := c[d]
	if name == "" {
		name = "Other"
	}
	if _, ok := m[name]; !ok && len(m) >= a.cfg.MaxKeys {
		name = Other
	}
	m[name] += n
}

func (a *aggregate) Merge(dst, src *counts) *counts {
	for d := range dst {
		for k, n := range src[d] {
			a.bump(dst, d, k, n)
		}
	}
	return dst
}

func (a *aggregate) Encode(c *counts, f *windowed.Fields) {
	for d, name := range dims {
		f.SetCounts(name, c[d])
	}
}

func (a *aggregate) Decode(f *windowed.Fields) (*counts, error) {
	c := a.New()
	for d, name := range dims {
		m, err := f.Counts(name)
		if err != nil {
			return nil, err
		}
		for k, n := range m {
			a.bump(c, d, k, n)
		}
	}
	return c, nil
}

// Size reports the names held, for the kit's bounded-state check.
func (a *aggregate) Size(c *counts) int {
	n := 0
	for _, m := range c {
		n += len(m)
	}
	return n
}

// Result lists, per dimension, the top_k names by hits (ties by name)
// and sums the rest into "_other", plus the window's total hits.
func (a *aggregate) Result(c *counts, _ windowed.Info, out *windowed.Output) {
	var total int64
	for _, n := range c[0] {
		total += n
	}
	out.Global.SetInt("hits", total)
	for d, name := range dims {
		out.Global.SetCounts(name, topK(c[d], a.cfg.TopK))
	}
}

func topK(m map[string]int64, k int) map[string]int64 {
	keys := slices.SortedFunc(maps.Keys(m), func(x, y string) int {
		if m[x] != m[y] {
			if m[x] > m[y] {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	})
	out := make(map[string]int64, min(k, len(keys))+1)
	for i, key := range keys {
		if i < k && key != Other {
			out[key] = m[key]
		} else {
			out[Other] += m[key]
		}
	}
	return out
}
