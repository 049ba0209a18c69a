package anomaly

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// A scored point travels from the model to the window runner as a
// records.Record (the runner's input type), filled by pointRecord:
// Values[0] is the score; input json carries its first three values in
// Values[1:NumValues]; input traffic carries requests in Status, bytes in
// Bytes and the two shares in Values[1] and Values[2].

// Point is one row of a top list: a scored record (json) or a scored
// traffic second (traffic).
type Point struct {
	Key    string    `json:"key"`
	Time   time.Time `json:"time"`
	Score  float64   `json:"score"`
	Values []float64 `json:"values,omitempty"`
}

func comparePoints(a, b Point) int {
	if c := cmp.Compare(b.Score, a.Score); c != 0 {
		return c
	}
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Key, b.Key); c != 0 {
		return c
	}
	return slices.Compare(a.Values, b.Values)
}

// state is one window's scores on one shard (or merged).
type state struct {
	Top   []Point `json:"top"`             // highest first, at most cfg.Top
	Hist  []int64 `json:"hist"`            // len(Buckets)+1
	N     int64   `json:"n"`               // points scored (warm-up included)
	Warm  int64   `json:"warm"`            // of which during warm-up (score 0)
	Above int64   `json:"above,omitempty"` // of which above the threshold
}

type aggregate struct{ cfg Config }

func (a aggregate) New() *state { return &state{Hist: make([]int64, len(a.cfg.Buckets)+1)} }

func (a aggregate) bucket(score float64) int {
	i, _ := slices.BinarySearch(a.cfg.Buckets, score)
	return i // scores equal to a bound fall in that bound's bucket
}

func (a aggregate) Add(s *state, r *records.Record) {
	if r.NumValues == 0 {
		return
	}
	score := r.Values[0]
	s.N++
	if score == 0 {
		s.Warm++
		return // warm-up: not a score
	}
	s.Hist[a.bucket(score)]++
	if score > a.cfg.Threshold {
		s.Above++
	}
	if len(s.Top) == a.cfg.Top && score <= s.Top[len(s.Top)-1].Score {
		return
	}
	p := Point{Key: r.Key, Time: r.EventTime().UTC(), Score: score}
	if a.cfg.Input == InputTraffic {
		p.Values = []float64{float64(r.Status), float64(r.Bytes), r.Values[1], r.Values[2]}
	} else {
		p.Values = slices.Clone(r.Values[1:min(int(r.NumValues), records.MaxValues)])
	}
	a.insert(s, p)
}

func (a aggregate) insert(s *state, p Point) {
	i, _ := slices.BinarySearchFunc(s.Top, p, comparePoints)
	if i >= a.cfg.Top {
		return
	}
	s.Top = slices.Insert(s.Top, i, p)
	if len(s.Top) > a.cfg.Top {
		s.Top = s.Top[:a.cfg.Top]
	}
}

func (a aggregate) Merge(dst, src *state) *state {
	for _, p := range src.Top {
		a.insert(dst, p)
	}
	for i := range min(len(dst.Hist), len(src.Hist)) {
		dst.Hist[i] += src.Hist[i]
	}
	dst.N += src.N
	dst.Warm += src.Warm
	dst.Above += src.Above
	return dst
}

func (a aggregate) Encode(s *state, f *windowed.Fields) {
	b, err := json.Marshal(s)
	if err != nil { // only NaN/Inf, which scores never are
		b = []byte("{}")
	}
	f.SetBytes("scores", b)
}

func (a aggregate) Decode(f *windowed.Fields) (*state, error) {
	b, err := f.Bytes("scores")
	if err != nil {
		return nil, err
	}
	s := &state{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("scores: %w", err)
	}
	if len(s.Hist) != len(a.cfg.Buckets)+1 {
		return nil, fmt.Errorf("%w: %d score buckets, configured %d", windowed.ErrIncompatible, len(s.Hist), len(a.cfg.Buckets)+1)
	}
	if len(s.Top) > a.cfg.Top {
		s.Top = s.Top[:a.cfg.Top]
	}
	return s, nil
}

// Result writes the global item of a window: per second the top list
// (ordered by score, highest first), per distribution window the
// histogram (and its top list too).
func (a aggregate) Result(s *state, w windowed.Info, out *windowed.Output) {
	top, err := json.Marshal(s.Top)
	if err != nil {
		top = []byte("[]")
	}
	out.Global.SetStr("top", string(top))
	out.Global.SetInt("points", s.N)
	out.Global.SetInt("warming", s.Warm)
	out.Global.SetInt("above_threshold", s.Above)
	if len(s.Top) > 0 {
		// Max score in thousandths (Fields has no float setter).
		out.Global.SetInt("max_score_milli", int64(math.Round(s.Top[0].Score*1000)))
	}
	if w.End.Sub(w.Start) > time.Second || a.cfg.Distribution == time.Second {
		out.Global.SetInts("buckets", s.Hist)
	}
}

func (a aggregate) Size(s *state) int { return len(s.Top) }
