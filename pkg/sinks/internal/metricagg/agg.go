// Package metricagg aggregates metric datums per (name, unit, dimensions,
// second) into weighted distinct values, the shape both CloudWatch sinks
// (PutMetricData Values/Counts and Embedded Metric Format) are built from.
package metricagg

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
)

// CloudWatch limits checked before sending, so one bad datum fails alone
// instead of failing the whole PutMetricData call.
const (
	MaxDims       = 30
	MaxNameLen    = 255
	MaxDimLen     = 1024
	maxMagnitude  = 0x1p360
	minMagnitude  = 0x1p-260
	inlineValues  = 16 // distinct values searched linearly before indexing
	inlineCap     = 4  // initial capacity of Values and Counts
	defaultUnit   = "None"
	invalidSeries = -1
)

// units are CloudWatch's StandardUnit values.
var units = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true,
	"Bytes": true, "Kilobytes": true, "Megabytes": true, "Gigabytes": true, "Terabytes": true,
	"Bits": true, "Kilobits": true, "Megabits": true, "Gigabits": true, "Terabits": true,
	"Percent": true, "Count": true, "None": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true, "Terabytes/Second": true,
	"Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true, "Gigabits/Second": true, "Terabits/Second": true,
	"Count/Second": true,
}

// Series is one metric at one second: distinct observed values and how
// many observations each stands for.
type Series struct {
	Name   string
	Unit   string
	Dims   []results.Dim // sorted by name
	Second int64         // Unix seconds
	Values []float64
	Counts []float64
	// DimsKey identifies the dimension set (names and values), for
	// grouping series that share one.
	DimsKey string
	// Err is set by a sink when a request carrying the series failed.
	Err error

	index map[float64]int // value -> position, once Values is long
}

// Total returns the number of observations in s.
func (s *Series) Total() float64 {
	t := 0.0
	for _, c := range s.Counts {
		t += c
	}
	return t
}

func (s *Series) add(v, w float64) {
	if s.index == nil {
		for i, x := range s.Values {
			if x == v {
				s.Counts[i] += w
				return
			}
		}
		s.Values = append(s.Values, v)
		s.Counts = append(s.Counts, w)
		if len(s.Values) > inlineValues {
			s.index = make(map[float64]int, 2*len(s.Values))
			for i, x := range s.Values {
				s.index[x] = i
			}
		}
		return
	}
	if i, ok := s.index[v]; ok {
		s.Counts[i] += w
		return
	}
	s.index[v] = len(s.Values)
	s.Values = append(s.Values, v)
	s.Counts = append(s.Counts, w)
}

// Aggregator groups datums into Series. It is reusable (Reset) but not
// safe for concurrent use.
type Aggregator struct {
	Series []Series
	// SeriesOf maps each input datum to its series, or -1 when invalid.
	SeriesOf []int32

	index   map[string]int32
	key     []byte
	scratch []results.Dim
}

// Reset empties a for reuse, keeping its memory.
func (a *Aggregator) Reset() {
	clear(a.index)
	a.Series = a.Series[:0]
	a.SeriesOf = a.SeriesOf[:0]
}

// Add aggregates data and returns the datums rejected as invalid. A datum
// with Count > 1 stands for Count observations summing to Value, so it
// adds the value Value/Count with weight Count: Sum and SampleCount stay
// exact.
func (a *Aggregator) Add(data []results.Datum) []sinks.Failure {
	if a.index == nil {
		a.index = make(map[string]int32, len(data))
	}
	var failed []sinks.Failure
	for i := range data {
		d := &data[i]
		if err := check(d); err != nil {
			failed = append(failed, sinks.Failure{Index: i, Key: d.Name, Err: err})
			a.SeriesOf = append(a.SeriesOf, invalidSeries)
			continue
		}
		unit := d.Unit
		if unit == "" {
			unit = defaultUnit
		}
		dims := a.sortedDims(d.Dims)
		sec := d.Time.Unix()
		k := a.key[:0]
		k = append(k, d.Name...)
		k = append(k, 0)
		k = append(k, unit...)
		k = append(k, 0)
		dimStart := len(k)
		for _, dm := range dims {
			k = append(k, dm.Name...)
			k = append(k, 1)
			k = append(k, dm.Value...)
			k = append(k, 0)
		}
		dimEnd := len(k)
		k = binary.BigEndian.AppendUint64(k, uint64(sec))
		a.key = k
		si, ok := a.index[string(k)]
		if !ok {
			key := string(k)
			si = int32(len(a.Series))
			a.index[key] = si
			a.newSeries(Series{Name: d.Name, Unit: unit, Second: sec, DimsKey: key[dimStart:dimEnd]}, dims)
		}
		v, w := d.Value, 1.0
		if d.Count > 1 {
			v, w = d.Value/d.Count, d.Count
		}
		if v != 0 && math.Abs(v) < minMagnitude {
			v = 0 // CloudWatch rejects values this close to zero
		}
		a.Series[si].add(v, w)
		a.SeriesOf = append(a.SeriesOf, si)
	}
	return failed
}

// newSeries appends s, reusing the memory of a series from before Reset:
// aggregation then allocates little more than the map key per series.
func (a *Aggregator) newSeries(s Series, dims []results.Dim) {
	if len(a.Series) < cap(a.Series) {
		a.Series = a.Series[:len(a.Series)+1]
	} else {
		a.Series = append(a.Series, Series{})
	}
	old := &a.Series[len(a.Series)-1]
	s.Dims = append(old.Dims[:0], dims...)
	if old.Values == nil {
		// Values and Counts share one allocation while they are short.
		buf := make([]float64, 2*inlineCap)
		old.Values, old.Counts = buf[:0:inlineCap], buf[inlineCap:inlineCap:2*inlineCap]
	}
	s.Values, s.Counts = old.Values[:0], old.Counts[:0]
	*old = s
}

// sortedDims returns dims sorted by name, copying only when unsorted.
func (a *Aggregator) sortedDims(dims []results.Dim) []results.Dim {
	byName := func(x, y results.Dim) int { return cmp.Compare(x.Name, y.Name) }
	if slices.IsSortedFunc(dims, byName) {
		return dims
	}
	a.scratch = append(a.scratch[:0], dims...)
	slices.SortFunc(a.scratch, byName)
	return a.scratch
}

func check(d *results.Datum) error {
	switch {
	case d.Name == "" || len(d.Name) > MaxNameLen:
		return fmt.Errorf("%w: metric name %q", sinks.ErrInvalidInput, d.Name)
	case d.Unit != "" && !units[d.Unit]:
		return fmt.Errorf("%w: metric %s: unit %q", sinks.ErrInvalidInput, d.Name, d.Unit)
	case len(d.Dims) > MaxDims:
		return fmt.Errorf("%w: metric %s: %d dimensions, at most %d", sinks.ErrInvalidInput, d.Name, len(d.Dims), MaxDims)
	case math.IsNaN(d.Value) || math.IsInf(d.Value, 0) || math.Abs(d.Value) > maxMagnitude:
		return fmt.Errorf("%w: metric %s: value %v", sinks.ErrInvalidInput, d.Name, d.Value)
	case math.IsNaN(d.Count) || math.IsInf(d.Count, 0) || d.Count < 0:
		return fmt.Errorf("%w: metric %s: count %v", sinks.ErrInvalidInput, d.Name, d.Count)
	case d.Time.IsZero():
		return fmt.Errorf("%w: metric %s: no timestamp", sinks.ErrInvalidInput, d.Name)
	}
	for _, dm := range d.Dims {
		if dm.Name == "" || dm.Value == "" || len(dm.Name) > MaxNameLen || len(dm.Value) > MaxDimLen {
			return fmt.Errorf("%w: metric %s: dimension %q=%q", sinks.ErrInvalidInput, d.Name, dm.Name, dm.Value)
		}
	}
	return nil
}

// Failures lists the input datums whose series have an Err.
func (a *Aggregator) Failures(data []results.Datum) []sinks.Failure {
	var out []sinks.Failure
	for i, si := range a.SeriesOf {
		if si >= 0 && a.Series[si].Err != nil {
			out = append(out, sinks.Failure{Index: i, Key: data[i].Name, Err: a.Series[si].Err})
		}
	}
	return out
}
