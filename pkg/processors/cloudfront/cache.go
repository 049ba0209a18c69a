package cloudfront

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// CacheName is the plugin name of the cache behaviour processor.
const CacheName = "cloudfront-cache"

// CacheConfig is the settings of cloudfront-cache.
type CacheConfig struct {
	window.Config `yaml:",inline"`
	// MaxDistributions caps the distributions with their own row per
	// window and shard, and in the global item (most requests first);
	// further ones are summed into the row "other".
	MaxDistributions int `yaml:"max_distributions"`
}

// Result classes of x-edge-result-type (see Class).
const (
	ClassHit        = iota // Hit, OriginShieldHit: served from a cache
	ClassRefreshHit        // RefreshHit: in the cache but stale, revalidated with the origin
	ClassMiss              // Miss: fetched from the origin
	ClassError             // Error, LimitExceeded, CapacityExceeded, LambdaExecutionError, ...Error
	ClassOther             // Redirect, LambdaGeneratedResponse, FunctionGeneratedResponse, "-", anything else: no cache lookup
	NumClasses
)

// Class maps an x-edge-result-type to its class.
func Class(result string) int {
	switch result {
	case "Hit", "OriginShieldHit":
		return ClassHit
	case "RefreshHit":
		return ClassRefreshHit
	case "Miss":
		return ClassMiss
	case "Error", "LimitExceeded", "CapacityExceeded":
		return ClassError
	}
	if strings.HasSuffix(result, "Error") {
		return ClassError
	}
	return ClassOther
}

// cacheRowLen is the worst-case text of one distribution: its row and
// its summary row.
const cacheRowLen = maxDistLen + (NumClasses+2)*numLen + 2 + maxDistLen + numLen + 2*16

// DefaultCacheConfig: 1-minute windows, 500 distributions.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{Config: windowed.DefaultWindow(), MaxDistributions: 500}
}

// Validate checks c; path prefixes field names.
func (c CacheConfig) Validate(path string) error {
	if err := c.Config.Validate(path); err != nil {
		return err
	}
	if most := rowBudget / cacheRowLen; c.MaxDistributions < 1 || c.MaxDistributions > most {
		return processors.FieldError(path+".max_distributions", "must be between 1 and %d (item size)", most)
	}
	return nil
}

// CachePlugin returns the cloudfront-cache plugin.
func CachePlugin() processors.Plugin {
	return windowed.Define(CacheName,
		"CloudFront cache hit ratio and mean time taken per distribution per window, global across shards",
		DefaultCacheConfig, func(cfg CacheConfig, _ processors.AppInfo) (windowed.Spec, windowed.Aggregate[*cache], error) {
			return windowed.Tumbling(cfg.Config, records.KindHit), &cacheAgg{cfg: cfg}, nil
		})
}

// CacheRow is one distribution's cache behaviour in a window.
type CacheRow struct {
	// Classes counts requests per result class (ClassHit...ClassOther).
	Classes [NumClasses]int64
	// TimeTaken sums time-taken over the Timed requests that logged one.
	TimeTaken time.Duration
	Timed     int64
}

// Requests is the number of requests of r.
func (r *CacheRow) Requests() int64 {
	var n int64
	for _, c := range r.Classes {
		n += c
	}
	return n
}

// HitRatio is (Hit + RefreshHit) / (Hit + RefreshHit + Miss): the share
// of cache lookups served from the edge cache, as CloudFront's cache
// statistics report it; 0 without lookups.
func (r *CacheRow) HitRatio() float64 {
	hits := r.Classes[ClassHit] + r.Classes[ClassRefreshHit]
	if n := hits + r.Classes[ClassMiss]; n > 0 {
		return float64(hits) / float64(n)
	}
	return 0
}

// MeanTimeTaken is the mean time-taken; 0 without timed requests.
func (r *CacheRow) MeanTimeTaken() time.Duration {
	if r.Timed == 0 {
		return 0
	}
	return r.TimeTaken / time.Duration(r.Timed)
}

func (r *CacheRow) add(o *CacheRow) {
	for i, c := range o.Classes {
		r.Classes[i] += c
	}
	r.TimeTaken += o.TimeTaken
	r.Timed += o.Timed
}

type cache struct {
	idx   map[string]int32
	dists []string
	rows  []CacheRow
	other CacheRow
	max   int // 0 = no cap (a merge)
}

type cacheAgg struct{ cfg CacheConfig }

func (a *cacheAgg) New() *cache {
	return &cache{idx: make(map[string]int32, 4), max: a.cfg.MaxDistributions}
}

func (a *cacheAgg) Add(s *cache, r *records.Record) {
	if !isCloudFront(r) {
		return
	}
	var v CacheRow
	v.Classes[Class(r.EdgeResult)] = 1
	if r.TimeTaken > 0 {
		v.TimeTaken, v.Timed = r.TimeTaken, 1
	}
	s.add(r.Host, &v)
}

// add counts v into dist's row (dist may alias a payload).
func (s *cache) add(dist string, v *CacheRow) {
	i, ok := s.idx[dist]
	if !ok {
		dist = stored(dist, maxDistLen)
		if i, ok = s.idx[dist]; !ok {
			if s.max > 0 && len(s.dists) >= s.max {
				s.other.add(v)
				return
			}
			i = int32(len(s.dists))
			s.idx[dist] = i
			s.dists = append(s.dists, dist)
			s.rows = append(s.rows, CacheRow{})
		}
	}
	s.rows[i].add(v)
}

func (a *cacheAgg) Merge(dst, src *cache) *cache {
	dst.max = 0
	for i, d := range src.dists {
		dst.add(d, &src.rows[i])
	}
	dst.other.add(&src.other)
	return dst
}

// Attributes of cloudfront-cache items.
const (
	attrDists   = "distributions" // S: "dist\thit\trefresh_hit\tmiss\terror\tother\ttime_taken_us\ttimed\n"
	attrSummary = "summary"       // S (global): "dist\trequests\thit_ratio\tmean_time_taken_ms\n"
)

func appendCacheRow(b []byte, dist string, r *CacheRow) []byte {
	b = window.AppendField(b, dist)
	b = appendInts(b, r.Classes[:]...)
	b = appendInts(b, r.TimeTaken.Microseconds(), r.Timed)
	return append(b, '\n')
}

func (a *cacheAgg) Encode(s *cache, f *windowed.Fields) {
	o := s.order(func(x, y int32) int { return strings.Compare(s.dists[x], s.dists[y]) })
	s.put(o, f)
}

func (s *cache) order(less func(x, y int32) int) []int32 { return sortedIndex(len(s.dists), less) }

func (s *cache) put(o []int32, f *windowed.Fields) {
	b := make([]byte, 0, (len(o)+1)*64)
	var total CacheRow
	for _, i := range o {
		b = appendCacheRow(b, s.dists[i], &s.rows[i])
		total.add(&s.rows[i])
	}
	if s.other.Requests() > 0 {
		b = appendCacheRow(b, Other, &s.other)
		total.add(&s.other)
	}
	f.SetStr(attrDists, string(b))
	f.SetInt(attrRowCount, int64(len(o)))
	f.SetInt(attrRequests, total.Requests())
}

func (a *cacheAgg) Decode(f *windowed.Fields) (*cache, error) {
	s := a.New()
	s.max = 0
	rows, err := f.Str(attrDists)
	if err != nil {
		return nil, err
	}
	err = textRows(rows, NumClasses+3, func(_ int, x []string) error {
		dist, err := window.ParseField(x[0])
		if err != nil {
			return err
		}
		var r CacheRow
		var us int64
		ps := []*int64{&r.Classes[0], &r.Classes[1], &r.Classes[2], &r.Classes[3], &r.Classes[4], &us, &r.Timed}
		if err := ints(ps, x[1:]); err != nil {
			return err
		}
		r.TimeTaken = time.Duration(us) * time.Microsecond
		if dist == Other {
			s.other.add(&r)
		} else {
			s.add(dist, &r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", attrDists, err)
	}
	s.max = a.cfg.MaxDistributions
	return s, nil
}

// Result writes the global item: the max_distributions distributions
// with the most requests (then by name), the rest as "other", and a
// summary row per distribution with its hit ratio and mean time taken.
func (a *cacheAgg) Result(s *cache, _ windowed.Info, out *windowed.Output) {
	o := s.order(func(x, y int32) int {
		return cmp.Or(cmp.Compare(s.rows[y].Requests(), s.rows[x].Requests()), strings.Compare(s.dists[x], s.dists[y]))
	})
	if len(o) > a.cfg.MaxDistributions {
		for _, i := range o[a.cfg.MaxDistributions:] {
			s.other.add(&s.rows[i])
		}
		o = o[:a.cfg.MaxDistributions]
	}
	s.put(o, out.Global)
	b := make([]byte, 0, (len(o)+1)*48)
	line := func(dist string, r *CacheRow) {
		b = window.AppendField(b, dist)
		b = appendInts(b, r.Requests())
		b = append(b, '\t')
		b = strconv.AppendFloat(b, r.HitRatio(), 'f', 4, 64)
		b = append(b, '\t')
		b = strconv.AppendFloat(b, float64(r.MeanTimeTaken().Microseconds())/1000, 'f', 3, 64)
		b = append(b, '\n')
	}
	for _, i := range o {
		line(s.dists[i], &s.rows[i])
	}
	if s.other.Requests() > 0 {
		line(Other, &s.other)
	}
	out.Global.SetStr(attrSummary, string(b))
}

func (a *cacheAgg) Size(s *cache) int { return len(s.dists) }

// ParseCache decodes the rows of a cloudfront-cache item (partial or
// global); distributions beyond the cap are under Other.
func ParseCache(item map[string]types.AttributeValue, cfg CacheConfig) (map[string]CacheRow, error) {
	s, err := (&cacheAgg{cfg: cfg}).Decode(windowed.FieldsOf(item))
	if err != nil {
		return nil, err
	}
	out := make(map[string]CacheRow, len(s.dists)+1)
	for i, d := range s.dists {
		out[d] = s.rows[i]
	}
	if s.other.Requests() > 0 {
		out[Other] = s.other
	}
	return out, nil
}
