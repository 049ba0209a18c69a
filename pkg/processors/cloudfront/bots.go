package cloudfront

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/botdetect"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// BotsName is the plugin name of the bot requests processor.
const BotsName = "cloudfront-bots"

// BotsConfig is the settings of cloudfront-bots.
type BotsConfig struct {
	window.Config `yaml:",inline"`
	// MaxRows caps the (client IP, edge, distribution) rows per window and
	// shard, and in the global item (the most requests first); further
	// bot requests are summed into other_*.
	MaxRows int `yaml:"max_rows"`
	// UserAgents configures the crawler check (botdetect's detector:
	// cache_size, allow, deny).
	UserAgents botdetect.UAConfig `yaml:"user_agents"`
}

// botRowLen is the worst-case text of one row.
const botRowLen = maxIPLen + maxEdgeLen + maxDistLen + maxNameLen + 6 + 2*numLen

// DefaultBotsConfig: 1-minute windows, 1,000 rows.
func DefaultBotsConfig() BotsConfig {
	return BotsConfig{Config: windowed.DefaultWindow(), MaxRows: 1000, UserAgents: botdetect.UAConfig{CacheSize: botdetect.DefaultCacheSize}}
}

// Validate checks c; path prefixes field names.
func (c BotsConfig) Validate(path string) error {
	if err := c.Config.Validate(path); err != nil {
		return err
	}
	if c.MaxRows < 1 || c.MaxRows > rowBudget/botRowLen {
		return processors.FieldError(path+".max_rows", "must be between 1 and %d (item size)", rowBudget/botRowLen)
	}
	return c.UserAgents.Validate(path + ".user_agents")
}

// BotsPlugin returns the cloudfront-bots plugin. Each instance shares one
// detector (and its cache) across the shards of the worker.
func BotsPlugin() processors.Plugin {
	return windowed.Define(BotsName,
		"CloudFront bot requests and bytes per client IP, edge location and distribution per window, global across shards",
		DefaultBotsConfig, func(cfg BotsConfig, _ processors.AppInfo) (windowed.Spec, windowed.Aggregate[*bots], error) {
			d, err := botdetect.NewDetector(cfg.UserAgents)
			if err != nil {
				return windowed.Spec{}, nil, err
			}
			return windowed.Tumbling(cfg.Config, records.KindHit), &botsAgg{cfg: cfg, detect: d}, nil
		})
}

// BotKey is one row of cloudfront-bots.
type BotKey struct{ ClientIP, Edge, Distribution string }

// BotRow is a row's sums and the crawler named by its first bot request.
type BotRow struct {
	Bot string
	Sum
}

type bots struct {
	idx  map[BotKey]int32
	keys []BotKey
	rows []BotRow
	// other sums bot requests beyond max_rows; all and bot every
	// CloudFront request and every bot request of the window.
	other, all, bot Sum
	max             int // 0 = no cap (a merge)
}

type botsAgg struct {
	cfg    BotsConfig
	detect *botdetect.Detector
}

func (a *botsAgg) New() *bots { return &bots{idx: make(map[BotKey]int32, 8), max: a.cfg.MaxRows} }

func (a *botsAgg) Add(s *bots, r *records.Record) {
	if !isCloudFront(r) {
		return
	}
	v := Sum{Bytes: max(r.Bytes, 0), Requests: 1}
	s.all.add(v)
	if verdict := a.detect.Classify(r.UserAgent); verdict.Bot {
		s.add(BotKey{r.ClientIP, r.Edge, r.Host}, BotRow{Bot: verdict.Name, Sum: v})
	}
}

// add counts v into k's row (k may alias a payload).
func (s *bots) add(k BotKey, v BotRow) {
	s.bot.add(v.Sum)
	i, ok := s.idx[k]
	if !ok {
		k = BotKey{stored(k.ClientIP, maxIPLen), stored(k.Edge, maxEdgeLen), stored(k.Distribution, maxDistLen)}
		if i, ok = s.idx[k]; !ok {
			if s.max > 0 && len(s.keys) >= s.max {
				s.other.add(v.Sum)
				return
			}
			i = int32(len(s.keys))
			s.idx[k] = i
			s.keys = append(s.keys, k)
			s.rows = append(s.rows, BotRow{Bot: stored(v.Bot, maxNameLen)})
		}
	}
	s.rows[i].add(v.Sum)
}

func (a *botsAgg) Merge(dst, src *bots) *bots {
	dst.max = 0
	for i, k := range src.keys {
		dst.add(k, src.rows[i])
	}
	dst.bot.add(src.other) // add counted src's rows

	dst.other.add(src.other)
	dst.all.add(src.all)
	return dst
}

// Attributes of cloudfront-bots items besides attrRows and attrRowCount.
const (
	attrOtherBytes    = "other_bytes"
	attrOtherRequests = "other_requests"
	attrBotBytes      = "bot_bytes"
	attrBotRequests   = "bot_requests"
)

func (a *botsAgg) Encode(s *bots, f *windowed.Fields) {
	o := sortedIndex(len(s.keys), func(x, y int32) int {
		kx, ky := &s.keys[x], &s.keys[y]
		return cmp.Or(strings.Compare(kx.ClientIP, ky.ClientIP), strings.Compare(kx.Edge, ky.Edge), strings.Compare(kx.Distribution, ky.Distribution))
	})
	putBots(s, o, f)
}

func putBots(s *bots, rows []int32, f *windowed.Fields) {
	b := make([]byte, 0, len(rows)*80)
	for _, i := range rows {
		k, r := &s.keys[i], &s.rows[i]
		for _, x := range []string{k.ClientIP, k.Edge, k.Distribution} {
			b = window.AppendField(b, x)
			b = append(b, '\t')
		}
		b = window.AppendField(b, r.Bot)
		b = appendInts(b, r.Bytes, r.Requests)
		b = append(b, '\n')
	}
	f.SetStr(attrRows, string(b))
	f.SetInt(attrRowCount, int64(len(rows)))
	f.SetInt(attrOtherBytes, s.other.Bytes)
	f.SetInt(attrOtherRequests, s.other.Requests)
	f.SetInt(attrBotBytes, s.bot.Bytes)
	f.SetInt(attrBotRequests, s.bot.Requests)
	f.SetInt(attrBytes, s.all.Bytes)
	f.SetInt(attrRequests, s.all.Requests)
}

func (a *botsAgg) Decode(f *windowed.Fields) (*bots, error) {
	s := a.New()
	s.max = 0
	rows, err := f.Str(attrRows)
	if err != nil {
		return nil, err
	}
	err = textRows(rows, 6, func(_ int, x []string) error {
		var k BotKey
		var r BotRow
		for i, p := range []*string{&k.ClientIP, &k.Edge, &k.Distribution, &r.Bot} {
			v, err := window.ParseField(x[i])
			if err != nil {
				return err
			}
			*p = v
		}
		if err := ints([]*int64{&r.Bytes, &r.Requests}, x[4:]); err != nil {
			return err
		}
		s.add(k, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", attrRows, err)
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{attrOtherBytes, &s.other.Bytes}, {attrOtherRequests, &s.other.Requests}, {attrBytes, &s.all.Bytes}, {attrRequests, &s.all.Requests}} {
		if *p.dst, err = f.Int(p.name); err != nil {
			return nil, err
		}
	}
	s.bot.add(s.other)
	s.max = a.cfg.MaxRows
	return s, nil
}

// Result writes the global item: the max_rows rows with the most requests
// first, the rest summed into other_*.
func (a *botsAgg) Result(s *bots, _ windowed.Info, out *windowed.Output) {
	o := sortedIndex(len(s.keys), func(x, y int32) int {
		rx, ry, kx, ky := &s.rows[x], &s.rows[y], &s.keys[x], &s.keys[y]
		return cmp.Or(cmp.Compare(ry.Requests, rx.Requests), cmp.Compare(ry.Bytes, rx.Bytes),
			strings.Compare(kx.ClientIP, ky.ClientIP), strings.Compare(kx.Edge, ky.Edge), strings.Compare(kx.Distribution, ky.Distribution))
	})
	if len(o) > a.cfg.MaxRows {
		for _, i := range o[a.cfg.MaxRows:] {
			s.other.add(s.rows[i].Sum)
		}
		o = o[:a.cfg.MaxRows]
	}
	putBots(s, o, out.Global)
}

func (a *botsAgg) Size(s *bots) int { return len(s.keys) }

// Bots is a decoded cloudfront-bots item.
type Bots struct {
	Rows            map[BotKey]BotRow
	Other, All, Bot Sum
}

// ParseBots decodes a cloudfront-bots item (partial or global).
func ParseBots(item map[string]types.AttributeValue, cfg BotsConfig) (Bots, error) {
	s, err := (&botsAgg{cfg: cfg}).Decode(windowed.FieldsOf(item))
	if err != nil {
		return Bots{}, err
	}
	out := Bots{Rows: make(map[BotKey]BotRow, len(s.keys)), Other: s.other, All: s.all, Bot: s.bot}
	for i, k := range s.keys {
		out.Rows[k] = s.rows[i]
	}
	return out, nil
}
