package cloudfront

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// BytesName is the plugin name of the bytes per distribution and edge
// processor.
const BytesName = "cloudfront-bytes"

// MetricEdgeBytes is the CloudWatch metric of cloudfront-bytes: response
// bytes per second (Value; Count = requests) with dimensions Stream,
// Distribution and Edge.
const MetricEdgeBytes = "EdgeBytes"

// Other is the distribution and edge of summed rows and datums.
const Other = "other"

// BytesConfig is the settings of cloudfront-bytes.
type BytesConfig struct {
	window.Config `yaml:",inline"`
	// Step is the resolution inside a window: bytes are summed per step
	// (default 1 s, the KDA query's), at most maxSteps per window.
	Step time.Duration `yaml:"step"`
	// MaxRows caps the (step, distribution, edge) rows per window and
	// shard, and in the global item; further rows are summed into the
	// step's "other" row, so totals stay exact.
	MaxRows int `yaml:"max_rows"`
	// TopK is the number of distribution-edge pairs with their own
	// EdgeBytes datum per second and shard (the rest are summed into
	// Distribution=other, Edge=other); 0 turns the metric off.
	TopK int `yaml:"top_k"`
}

// Limits of cloudfront-bytes.
const (
	maxSteps    = 600
	maxMetricK  = 50
	otherRowLen = 5 + 2*numLen
	bytesRowLen = 5 + maxDistLen + maxEdgeLen + 4 + 2*numLen
)

// DefaultBytesConfig: 1-minute windows of 1 s steps, 1,000 rows, top 10
// pairs per second in CloudWatch.
func DefaultBytesConfig() BytesConfig {
	return BytesConfig{Config: windowed.DefaultWindow(), Step: time.Second, MaxRows: 1000, TopK: 10}
}

// maxRows is the item-size bound of max_rows for a window of steps steps.
func maxRows(steps int) int { return (rowBudget - steps*otherRowLen) / bytesRowLen }

// Validate checks c; path prefixes field names.
func (c BytesConfig) Validate(path string) error {
	if err := c.Config.Validate(path); err != nil {
		return err
	}
	switch {
	case c.Step < time.Second || c.Step%time.Second != 0:
		return processors.FieldError(path+".step", "must be whole seconds, at least 1s")
	case c.Size%c.Step != 0:
		return processors.FieldError(path+".step", "must divide the window (%s)", c.Size)
	case int(c.Size/c.Step) > maxSteps:
		return processors.FieldError(path+".step", "at most %d steps per window (window %s)", maxSteps, c.Size)
	case c.MaxRows < 1:
		return processors.FieldError(path+".max_rows", "must be >= 1")
	case c.MaxRows > maxRows(int(c.Size/c.Step)):
		return processors.FieldError(path+".max_rows", "must be <= %d with %d steps per window (item size)", maxRows(int(c.Size/c.Step)), c.Size/c.Step)
	case c.TopK < 0 || c.TopK > maxMetricK:
		return processors.FieldError(path+".top_k", "must be between 0 (no metric) and %d", maxMetricK)
	}
	return nil
}

// BytesPlugin returns the cloudfront-bytes plugin.
func BytesPlugin() processors.Plugin {
	return windowed.Define(BytesName,
		"CloudFront bytes per distribution per edge location per second, global across shards; EdgeBytes metric of the top K pairs",
		DefaultBytesConfig, func(cfg BytesConfig, app processors.AppInfo) (windowed.Spec, windowed.Aggregate[*edgeBytes], error) {
			return windowed.Tumbling(cfg.Config, records.KindHit), &bytesAgg{cfg: cfg, stream: app.Stream}, nil
		})
}

// PairKey is one row of cloudfront-bytes: a step of a window, a
// distribution and an edge location.
type PairKey struct {
	Step         int32 // step index in the window
	Distribution string
	Edge         string
}

// Sum is bytes and requests.
type Sum struct{ Bytes, Requests int64 }

func (s *Sum) add(o Sum) { s.Bytes += o.Bytes; s.Requests += o.Requests }

// edgeBytes is one window's sums on one shard (or merged).
type edgeBytes struct {
	idx   map[PairKey]int32
	keys  []PairKey
	sums  []Sum
	other []Sum // per step: rows beyond max_rows
	max   int   // rows kept; 0 = no cap (a merge)
	// last caches the newest row: consecutive records of one pair (the
	// common case) skip the map.
	last int32
}

type bytesAgg struct {
	cfg    BytesConfig
	stream string
}

func (a *bytesAgg) steps() int { return int(a.cfg.Size / a.cfg.Step) }

func (a *bytesAgg) New() *edgeBytes {
	return &edgeBytes{idx: make(map[PairKey]int32, 8), other: make([]Sum, a.steps()), max: a.cfg.MaxRows, last: -1}
}

func (a *bytesAgg) Add(s *edgeBytes, r *records.Record) {
	if !isCloudFront(r) {
		return
	}
	et := r.EventTime()
	step := int32(et.Sub(et.Truncate(a.cfg.Size)) / a.cfg.Step)
	s.add(step, r.Host, r.Edge, Sum{Bytes: max(r.Bytes, 0), Requests: 1})
}

// add counts v into the row of (step, dist, edge); dist and edge may
// alias a payload.
func (s *edgeBytes) add(step int32, dist, edge string, v Sum) {
	if l := s.last; l >= 0 {
		if k := &s.keys[l]; k.Step == step && k.Distribution == dist && k.Edge == edge {
			s.sums[l].add(v)
			return
		}
	}
	k := PairKey{step, dist, edge}
	i, ok := s.idx[k]
	if !ok {
		k = PairKey{step, stored(dist, maxDistLen), stored(edge, maxEdgeLen)}
		if i, ok = s.idx[k]; !ok {
			if s.max > 0 && len(s.keys) >= s.max {
				s.other[step].add(v)
				return
			}
			i = int32(len(s.keys))
			s.idx[k] = i
			s.keys = append(s.keys, k)
			s.sums = append(s.sums, Sum{})
		}
	}
	s.sums[i].add(v)
	s.last = i
}

func (a *bytesAgg) Merge(dst, src *edgeBytes) *edgeBytes {
	dst.max = 0 // the global cap applies in Result
	for i, k := range src.keys {
		dst.add(k.Step, k.Distribution, k.Edge, src.sums[i])
	}
	for i, o := range src.other {
		dst.other[i].add(o)
	}
	return dst
}

// Attributes of cloudfront-bytes items.
const (
	attrStep     = "step_seconds" // N: the step
	attrRows     = "rows"         // S: "step\tdistribution\tedge\tbytes\trequests\n"
	attrOther    = "other"        // S: "step\tbytes\trequests\n", rows beyond max_rows
	attrRowCount = "row_count"
	attrBytes    = "bytes"
	attrRequests = "requests"
)

func (a *bytesAgg) Encode(s *edgeBytes, f *windowed.Fields) {
	order := s.order(func(x, y int32) int {
		kx, ky := &s.keys[x], &s.keys[y]
		return cmp.Or(cmp.Compare(kx.Step, ky.Step), strings.Compare(kx.Distribution, ky.Distribution), strings.Compare(kx.Edge, ky.Edge))
	})
	a.put(s, order, f)
}

// order returns the row indexes sorted by less.
func (s *edgeBytes) order(less func(a, b int32) int) []int32 { return sortedIndex(len(s.keys), less) }

func (a *bytesAgg) put(s *edgeBytes, rows []int32, f *windowed.Fields) {
	var total Sum
	b := make([]byte, 0, len(rows)*48)
	for _, i := range rows {
		k := &s.keys[i]
		b = strconv.AppendInt(b, int64(k.Step), 10)
		b = append(b, '\t')
		b = window.AppendField(b, k.Distribution)
		b = append(b, '\t')
		b = window.AppendField(b, k.Edge)
		b = appendInts(b, s.sums[i].Bytes, s.sums[i].Requests)
		b = append(b, '\n')
		total.add(s.sums[i])
	}
	var ob []byte
	for i, o := range s.other {
		if o.Requests != 0 {
			ob = strconv.AppendInt(ob, int64(i), 10)
			ob = appendInts(ob, o.Bytes, o.Requests)
			ob = append(ob, '\n')
			total.add(o)
		}
	}
	f.SetInt(attrStep, int64(a.cfg.Step/time.Second))
	f.SetStr(attrRows, string(b))
	f.SetInt(attrRowCount, int64(len(rows)))
	f.SetStr(attrOther, string(ob))
	f.SetInt(attrBytes, total.Bytes)
	f.SetInt(attrRequests, total.Requests)
}

func (a *bytesAgg) Decode(f *windowed.Fields) (*edgeBytes, error) {
	step, err := f.Int(attrStep)
	if err != nil {
		return nil, err
	}
	if time.Duration(step)*time.Second != a.cfg.Step {
		return nil, fmt.Errorf("step %ds: %w", step, windowed.ErrIncompatible)
	}
	s := a.New()
	s.max = 0 // a partial holds at most max_rows rows already
	rows, err := f.Str(attrRows)
	if err != nil {
		return nil, err
	}
	n := a.steps()
	err = textRows(rows, 5, func(_ int, x []string) error {
		var st int64
		var v Sum
		if err := ints([]*int64{&st, &v.Bytes, &v.Requests}, []string{x[0], x[3], x[4]}); err != nil {
			return err
		}
		if st < 0 || st >= int64(n) {
			return fmt.Errorf("step %d out of range", st)
		}
		dist, err := window.ParseField(x[1])
		if err != nil {
			return err
		}
		edge, err := window.ParseField(x[2])
		if err != nil {
			return err
		}
		s.add(int32(st), dist, edge, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", attrRows, err)
	}
	other, err := f.Str(attrOther)
	if err != nil {
		return nil, err
	}
	err = textRows(other, 3, func(_ int, x []string) error {
		var st int64
		var v Sum
		if err := ints([]*int64{&st, &v.Bytes, &v.Requests}, x); err != nil {
			return err
		}
		if st < 0 || st >= int64(n) {
			return fmt.Errorf("step %d out of range", st)
		}
		s.other[st].add(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", attrOther, err)
	}
	s.max = a.cfg.MaxRows
	return s, nil
}

// byBytes ranks rows: most bytes first, then step, distribution, edge.
func (s *edgeBytes) byBytes(x, y int32) int {
	kx, ky := &s.keys[x], &s.keys[y]
	return cmp.Or(cmp.Compare(s.sums[y].Bytes, s.sums[x].Bytes), cmp.Compare(kx.Step, ky.Step),
		strings.Compare(kx.Distribution, ky.Distribution), strings.Compare(kx.Edge, ky.Edge))
}

// Result writes the global item: the max_rows rows with the most bytes
// (sorted by step, then bytes), the rest summed into their step's other.
func (a *bytesAgg) Result(s *edgeBytes, _ windowed.Info, out *windowed.Output) {
	order := s.order(s.byBytes)
	if len(order) > a.cfg.MaxRows {
		for _, i := range order[a.cfg.MaxRows:] {
			s.other[s.keys[i].Step].add(s.sums[i])
		}
		order = order[:a.cfg.MaxRows]
	}
	slices.SortStableFunc(order, func(x, y int32) int { return cmp.Compare(s.keys[x].Step, s.keys[y].Step) })
	a.put(s, order, out.Global)
}

// Report emits, per step with traffic, an EdgeBytes datum for each of the
// shard's top K pairs and one for the rest (other).
func (a *bytesAgg) Report(s *edgeBytes, w windowed.Info, emit func(processors.Datum)) {
	if a.cfg.TopK == 0 {
		return
	}
	perStep := make([][]int32, a.steps())
	for i, k := range s.keys {
		perStep[k.Step] = append(perStep[k.Step], int32(i))
	}
	for st, rows := range perStep {
		rest := s.other[st]
		if len(rows) == 0 && rest.Requests == 0 {
			continue
		}
		t := w.Start.Add(time.Duration(st) * a.cfg.Step)
		slices.SortFunc(rows, s.byBytes)
		for j, i := range rows {
			if j >= a.cfg.TopK {
				rest.add(s.sums[i])
				continue
			}
			emit(a.datum(t, s.keys[i].Distribution, s.keys[i].Edge, s.sums[i]))
		}
		if rest.Requests > 0 {
			emit(a.datum(t, Other, Other, rest))
		}
	}
}

func (a *bytesAgg) datum(t time.Time, dist, edge string, v Sum) processors.Datum {
	return processors.Datum{Name: MetricEdgeBytes, Unit: "Bytes", Time: t, Value: float64(v.Bytes), Count: float64(v.Requests),
		Dims: []processors.Dim{{Name: "Stream", Value: a.stream}, {Name: "Distribution", Value: dist}, {Name: "Edge", Value: edge}}}
}

func (a *bytesAgg) Size(s *edgeBytes) int { return len(s.keys) }

// EdgeBytes is a decoded cloudfront-bytes item (partial or global).
type EdgeBytes struct {
	Step  time.Duration
	Rows  map[PairKey]Sum
	Other map[int32]Sum // per step
	Total Sum
}

// ParseEdgeBytes decodes the rows of a cloudfront-bytes item.
func ParseEdgeBytes(item map[string]types.AttributeValue, cfg BytesConfig) (EdgeBytes, error) {
	a := &bytesAgg{cfg: cfg}
	f := windowed.FieldsOf(item)
	s, err := a.Decode(f)
	if err != nil {
		return EdgeBytes{}, err
	}
	out := EdgeBytes{Step: cfg.Step, Rows: make(map[PairKey]Sum, len(s.keys)), Other: map[int32]Sum{}}
	for i, k := range s.keys {
		out.Rows[k] = s.sums[i]
	}
	for i, o := range s.other {
		if o.Requests != 0 {
			out.Other[int32(i)] = o
		}
	}
	if out.Total.Bytes, err = f.Int(attrBytes); err == nil {
		out.Total.Requests, err = f.Int(attrRequests)
	}
	return out, err
}
