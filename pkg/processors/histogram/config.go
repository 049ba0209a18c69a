package histogram

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Config is the histogram processor's settings (processors.histogram).
type Config struct {
	window.Config `yaml:",inline"`
	// Name prefixes the item keys ("<name>#60s#<window start>"); "" means
	// the instance name (the key under processors:).
	Name string `yaml:"name"`
	// Buckets are the bucket upper bounds in bytes, ascending: bucket i
	// counts responses of size in (Buckets[i-1], Buckets[i]], bucket 0
	// those of size <= Buckets[0]; one more bucket counts everything above
	// the last bound (Prometheus "le" semantics, +Inf implicit).
	Buckets []ByteSize `yaml:"buckets"`
	// Linear, when set, replaces Buckets with buckets of equal width as
	// the Kibana/Vega dashboards draw them: [0, w), [w, 2w), ... up to
	// max, plus the overflow bucket (>= max).
	Linear *Linear `yaml:"linear"`
	// TopK is the number of largest responses (by path) kept per window;
	// 0 turns the list off.
	TopK int `yaml:"top_k"`
	// MaxHosts caps the distinct hosts with their own histogram per window
	// and shard (and in the global item); responses of further hosts are
	// counted in the overflow histogram, so totals stay exact. 0 derives
	// it from the item size (see HostCap).
	MaxHosts int `yaml:"max_hosts"`
}

// Linear is a range of buckets of equal width.
type Linear struct {
	Width ByteSize `yaml:"width"`
	Max   ByteSize `yaml:"max"`
}

// Buckets returns the number of buckets below Max.
func (l Linear) Buckets() int64 {
	if l.Width <= 0 {
		return 0
	}
	return int64(l.Max / l.Width)
}

// DefaultBuckets are web-traffic bucket bounds: empty responses (304,
// HEAD), up to 1 KiB, 10 KiB, 100 KiB, 1 MiB, 10 MiB, and above.
func DefaultBuckets() []ByteSize {
	return []ByteSize{0, 1 << 10, 10 << 10, 100 << 10, 1 << 20, 10 << 20}
}

// DefaultConfig returns the defaults: 60 s windows, 5 s grace, 30 s idle,
// default buckets, top 10 largest responses, hosts derived from the item
// size (1,000 with the default buckets).
func DefaultConfig() Config {
	return Config{
		Config:  window.Config{Size: 60 * time.Second, Grace: 5 * time.Second, Idle: 30 * time.Second},
		Buckets: DefaultBuckets(),
		TopK:    10,
	}
}

// Limits that keep every item below DynamoDB's 400 KB: host rows at most
// rowBudget bytes, the largest responses at most maxTopK x (maxPathLen +
// maxHostLen + 24) = 64 KB, the bucket lists (edges, counts,
// other_counts) at most 3 x (maxLinear+1) x 22 = 17 KB, the header < 1 KB.
const (
	maxBuckets = 16
	// maxLinear bounds the buckets of a linear range (plus overflow).
	maxLinear = 255
	// defaultMaxHosts is the host cap when max_hosts is 0, if the item
	// size allows it.
	defaultMaxHosts = 1000
	maxTopK         = 100
	// maxHostLen and maxPathLen bound a stored host or path (longer ones
	// are cut and suffixed with a hash, see window.Clip).
	maxHostLen = 100
	maxPathLen = 512
	// rowBudget bounds the host rows of one item: worst-case row bytes
	// (host, then 19-digit numbers) times max_hosts.
	rowBudget = 300_000
)

func worstRow(buckets int) int { return maxHostLen + (buckets+2)*20 }

// Validate checks c; path prefixes field names ("processors.histogram").
func (c Config) Validate(path string) error {
	if err := c.Config.Validate(path); err != nil {
		return err
	}
	switch {
	case c.Name != "" && !validName(c.Name):
		return processors.FieldError(path+".name", "%q: want 1-40 of a-z, 0-9, '-' and '_', starting with a letter or digit", c.Name)
	case c.Linear != nil && !slices.Equal(c.Buckets, DefaultBuckets()):
		return processors.FieldError(path+".linear", "set buckets or linear, not both")
	case c.Linear != nil && c.Linear.Width < 1:
		return processors.FieldError(path+".linear.width", "must be >= 1B")
	case c.Linear != nil && (c.Linear.Max <= c.Linear.Width || c.Linear.Max%c.Linear.Width != 0):
		return processors.FieldError(path+".linear.max", "must be a multiple of width (%s) above it", c.Linear.Width)
	case c.Linear != nil && c.Linear.Buckets() > maxLinear:
		return processors.FieldError(path+".linear", "%d buckets of %s up to %s: at most %d (item size)", c.Linear.Buckets(), c.Linear.Width, c.Linear.Max, maxLinear)
	case len(c.Buckets) < 1 || len(c.Buckets) > maxBuckets:
		return processors.FieldError(path+".buckets", "must list 1 to %d upper bounds", maxBuckets)
	case c.Buckets[0] < 0:
		return processors.FieldError(path+".buckets", "must be >= 0")
	case c.TopK < 0 || c.TopK > maxTopK:
		return processors.FieldError(path+".top_k", "must be between 0 and %d", maxTopK)
	case c.MaxHosts < 0:
		return processors.FieldError(path+".max_hosts", "must be >= 1 (0 or unset: derived from the item size)")
	}
	for i := 1; i < len(c.Buckets); i++ {
		if c.Buckets[i] <= c.Buckets[i-1] {
			return processors.FieldError(path+".buckets", "must be strictly ascending (%v after %v)", c.Buckets[i], c.Buckets[i-1])
		}
	}
	nb := len(c.Edges()) + 1
	if most := rowBudget / worstRow(nb); c.MaxHosts > most {
		return processors.FieldError(path+".max_hosts", "must be <= %d with %d buckets (item size)", most, nb)
	}
	return nil
}

// HostCap is the effective max_hosts: MaxHosts, or when 0 the smaller of
// 1,000 and what the item size allows with these buckets.
func (c Config) HostCap() int {
	if c.MaxHosts > 0 {
		return c.MaxHosts
	}
	return min(defaultMaxHosts, rowBudget/worstRow(len(c.Edges())+1))
}

// Edges returns the bucket upper bounds as int64 (bucket i counts sizes
// in (Edges[i-1], Edges[i]]). A linear range of width w has the bounds
// w-1, 2w-1, ..., max-1: bucket k counts [k*w, (k+1)*w).
func (c Config) Edges() []int64 {
	if c.Linear != nil && c.Linear.Width > 0 {
		out := make([]int64, 0, c.Linear.Buckets())
		for e := c.Linear.Width; e <= c.Linear.Max; e += c.Linear.Width {
			out = append(out, int64(e)-1)
		}
		return out
	}
	out := make([]int64, len(c.Buckets))
	for i, b := range c.Buckets {
		out[i] = int64(b)
	}
	return out
}

// ByteSize is a byte count written as a plain integer or with a unit:
// B, KB/MB/GB (powers of 1000) or KiB/MiB/GiB (powers of 1024), e.g.
// "10KiB".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{ // longest suffixes first
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// ParseByteSize parses s (see ByteSize).
func ParseByteSize(s string) (ByteSize, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a byte size (e.g. 1024, 10KiB, 1MiB)", s)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a byte size must be a scalar", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// String formats b with the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		s string
		m int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.m == 0 {
			return strconv.FormatInt(int64(b)/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

func validName(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '-' || r == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}
