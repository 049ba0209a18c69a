package emf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
	"github.com/shardwatch/shardwatch/pkg/sinks/internal/metricagg"
)

// EMF limits.
const (
	DefaultNamespace = "Shardwatch"
	// MaxMetrics is the most metrics one EMF line may declare.
	MaxMetrics = 100
	// MaxLineValues is the most values one metric may carry in a line.
	MaxLineValues = 100
	// DefaultMaxSamples bounds the samples written per series and call.
	DefaultMaxSamples = 1000
)

// Options configures a Writer.
type Options struct {
	// Namespace defaults to "Shardwatch".
	Namespace string
	// MaxMetrics per line, at most and by default 100.
	MaxMetrics int
	// MaxSamples bounds the samples one series writes per call (default
	// 1000, i.e. 10 lines). EMF has no per-value counts, so a value seen n
	// times is written n times; beyond MaxSamples the counts are scaled
	// down (the distribution's shape and average are kept, Sum and
	// SampleCount are not) and Stats.Approximated counts it.
	MaxSamples int
}

// Stats are running totals since the writer was built.
type Stats struct {
	Datums       uint64 // datums passed to WriteMetrics
	Lines        uint64 // EMF lines written
	Failed       uint64 // datums reported in a BatchError
	Approximated uint64 // series whose sample counts were scaled down
}

// Writer implements processors.MetricWriter by printing CloudWatch
// Embedded Metric Format lines: one JSON object per line per (second,
// dimension set), high resolution. It is safe for concurrent use; lines of
// concurrent calls never interleave.
type Writer struct {
	opts Options
	pool sync.Pool // *state

	mu  sync.Mutex // serialises writes to out
	out io.Writer

	datums, lines, failed, approx atomic.Uint64
}

type state struct {
	agg    metricagg.Aggregator
	groups map[groupKey]int
	order  [][]int32
	buf    []byte
	samp   [][]float64
}

type groupKey struct {
	sec  int64
	dims string
}

// New returns a Writer printing to out (os.Stdout in a container: the
// awslogs driver or the CloudWatch agent ships it).
func New(out io.Writer, opts Options) (*Writer, error) {
	if out == nil {
		return nil, errors.New("emf writer: nil output")
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.MaxMetrics < 0 || opts.MaxMetrics > MaxMetrics || opts.MaxSamples < 0 {
		return nil, fmt.Errorf("emf writer: max metrics %d not in [1, %d] or max samples %d < 0", opts.MaxMetrics, MaxMetrics, opts.MaxSamples)
	}
	if opts.MaxMetrics == 0 {
		opts.MaxMetrics = MaxMetrics
	}
	if opts.MaxSamples == 0 {
		opts.MaxSamples = DefaultMaxSamples
	}
	w := &Writer{opts: opts, out: out}
	w.pool.New = func() any { return &state{groups: map[groupKey]int{}} }
	return w, nil
}

// Stats returns the running totals.
func (w *Writer) Stats() Stats {
	return Stats{Datums: w.datums.Load(), Lines: w.lines.Load(), Failed: w.failed.Load(), Approximated: w.approx.Load()}
}

// WriteMetrics aggregates data per (name, unit, dimensions, second) and
// writes the EMF lines in one Write call.
func (w *Writer) WriteMetrics(ctx context.Context, data []results.Datum) error {
	if len(data) == 0 {
		return nil
	}
	w.datums.Add(uint64(len(data)))
	st := w.pool.Get().(*state)
	defer func() {
		st.agg.Reset()
		clear(st.groups)
		st.order = st.order[:0]
		st.buf = st.buf[:0]
		w.pool.Put(st)
	}()
	failed := st.agg.Add(data)

	// Group series by (second, dimension set), in order of appearance.
	series := st.agg.Series
	for i := range series {
		s := &series[i]
		for _, dm := range s.Dims {
			if dm.Name == s.Name || dm.Name == "_aws" {
				s.Err = fmt.Errorf("%w: metric %s: name collides with dimension %q", sinks.ErrInvalidInput, s.Name, dm.Name)
			}
		}
		if s.Name == "_aws" {
			s.Err = fmt.Errorf("%w: metric name _aws", sinks.ErrInvalidInput)
		}
		if s.Err != nil {
			continue
		}
		k := groupKey{s.Second, s.DimsKey}
		g, ok := st.groups[k]
		if !ok {
			g = len(st.order)
			st.groups[k] = g
			if g < cap(st.order) {
				st.order = st.order[:g+1]
				st.order[g] = st.order[g][:0]
			} else {
				st.order = append(st.order, nil)
			}
		}
		st.order[g] = append(st.order[g], int32(i))
	}
	lines := 0
	for _, g := range st.order {
		lines += w.appendGroup(st, g)
	}
	if err := ctx.Err(); err != nil {
		return w.fail(data, st, failed, err)
	}
	w.mu.Lock()
	_, err := w.out.Write(st.buf)
	w.mu.Unlock()
	if err != nil {
		return w.fail(data, st, failed, fmt.Errorf("write emf: %w", err))
	}
	w.lines.Add(uint64(lines))
	failed = append(failed, st.agg.Failures(data)...)
	w.failed.Add(uint64(len(failed)))
	return sinks.NewBatchError("emf write", len(data), failed)
}

// fail reports every valid datum failed with err, plus the invalid ones.
func (w *Writer) fail(data []results.Datum, st *state, failed []sinks.Failure, err error) error {
	for i := range st.agg.Series {
		if st.agg.Series[i].Err == nil {
			st.agg.Series[i].Err = err
		}
	}
	failed = append(failed, st.agg.Failures(data)...)
	w.failed.Add(uint64(len(failed)))
	return sinks.NewBatchError("emf write", len(data), failed)
}

// samples expands a series into one value per observation, scaling the
// counts down when they exceed MaxSamples.
func (w *Writer) samples(s *metricagg.Series, dst []float64) []float64 {
	total := 0.0
	for _, c := range s.Counts {
		total += math.Max(1, math.Round(c))
	}
	scale := 1.0
	if total > float64(w.opts.MaxSamples) {
		scale = float64(w.opts.MaxSamples) / total
		w.approx.Add(1)
	}
	for i, v := range s.Values {
		n := int(math.Max(1, math.Round(math.Max(1, math.Round(s.Counts[i]))*scale)))
		for range n {
			dst = append(dst, v)
		}
	}
	return dst
}

// appendGroup writes the lines of one (second, dimension set) group and
// returns how many.
func (w *Writer) appendGroup(st *state, group []int32) int {
	series := st.agg.Series
	if cap(st.samp) < len(group) {
		st.samp = make([][]float64, len(group))
	}
	samp := st.samp[:len(group)]
	for j, si := range group {
		samp[j] = w.samples(&series[si], samp[j][:0])
	}
	first := &series[group[0]]
	lines := 0
	names := make(map[string]bool, min(len(group), w.opts.MaxMetrics))
	for {
		// Pick up to MaxMetrics series with samples left, distinct names
		// (a line is a JSON object: one key per metric).
		clear(names)
		var pick []int
		for j := range group {
			if len(samp[j]) > 0 && !names[series[group[j]].Name] && len(pick) < w.opts.MaxMetrics {
				names[series[group[j]].Name] = true
				pick = append(pick, j)
			}
		}
		if len(pick) == 0 {
			return lines
		}
		b := st.buf
		b = append(b, `{"_aws":{"Timestamp":`...)
		b = strconv.AppendInt(b, first.Second*1000, 10)
		b = append(b, `,"CloudWatchMetrics":[{"Namespace":`...)
		b = appendString(b, w.opts.Namespace)
		b = append(b, `,"Dimensions":[[`...)
		for i, dm := range first.Dims {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, dm.Name)
		}
		b = append(b, `]],"Metrics":[`...)
		for i, j := range pick {
			s := &series[group[j]]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"Name":`...)
			b = appendString(b, s.Name)
			b = append(b, `,"Unit":`...)
			b = appendString(b, s.Unit)
			b = append(b, `,"StorageResolution":1}`...)
		}
		b = append(b, `]}]}`...)
		for _, dm := range first.Dims {
			b = append(b, ',')
			b = appendString(b, dm.Name)
			b = append(b, ':')
			b = appendString(b, dm.Value)
		}
		for _, j := range pick {
			b = append(b, ',')
			b = appendString(b, series[group[j]].Name)
			b = append(b, ':')
			n := min(len(samp[j]), MaxLineValues)
			if n == 1 {
				b = strconv.AppendFloat(b, samp[j][0], 'g', -1, 64)
			} else {
				b = append(b, '[')
				for k, v := range samp[j][:n] {
					if k > 0 {
						b = append(b, ',')
					}
					b = strconv.AppendFloat(b, v, 'g', -1, 64)
				}
				b = append(b, ']')
			}
			samp[j] = samp[j][n:]
		}
		b = append(b, "}\n"...)
		st.buf = b
		lines++
	}
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
