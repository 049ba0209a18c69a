package rcf

import (
	"errors"
	"fmt"
	"math"
)

// Errors of Forest's methods (match with errors.Is).
var (
	// ErrDimension: an input does not have Config.Dimensions values.
	ErrDimension = errors.New("rcf: wrong number of values")
	// ErrNonFinite: an input value is NaN or infinite.
	ErrNonFinite = errors.New("rcf: value is NaN or infinite")
	// ErrCorrupt: a tree's invariants do not hold. It cannot happen with
	// a forest built by New or restored by UnmarshalBinary; it is an
	// error rather than a panic so that a bug costs one model, not the
	// worker.
	ErrCorrupt = errors.New("rcf: corrupt model")
)

var errCorrupt = fmt.Errorf("%w: a sampled point is not where its cuts lead", ErrCorrupt)

// Forest is a Robust Random Cut Forest over one series: Trees trees,
// each keeping a time-decayed sample of SampleSize shingled points.
// It is not safe for concurrent use.
type Forest struct {
	cfg    Config
	lambda float64
	trees  []*tree

	// shingle holds the last ShingleSize inputs, oldest first;
	// filled counts inputs seen up to ShingleSize.
	shingle []float64
	filled  int
	// seq counts points offered to the trees (shingles completed).
	seq uint64

	query []float64 // scratch: the shingled point being scored
	stack []int32   // scratch: a root-to-leaf path
}

// New returns an empty forest for cfg (zero fields take their
// defaults). The returned forest allocates all its memory up front:
// see MemoryBytes.
func New(cfg Config) (*Forest, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Forest{
		cfg:     cfg,
		lambda:  cfg.lambda(),
		trees:   make([]*tree, cfg.Trees),
		shingle: make([]float64, cfg.pointDims()),
		query:   make([]float64, cfg.pointDims()),
		stack:   make([]int32, 0, cfg.SampleSize),
	}
	for i := range f.trees {
		f.trees[i] = newTree(cfg.SampleSize, cfg.pointDims(), cfg.Seed, uint64(i))
	}
	return f, nil
}

// Config returns the forest's configuration, defaults applied.
func (f *Forest) Config() Config { return f.cfg }

// Seen returns the number of points (complete shingles) the forest has
// taken in.
func (f *Forest) Seen() uint64 { return f.seq }

// Ready reports whether Score returns real scores: once ShingleSize-1
// inputs have filled the first shingle and OutputAfter points have been
// taken in. Until then scores are 0 (the warm-up).
func (f *Forest) Ready() bool { return f.seq >= uint64(f.cfg.OutputAfter) }

func (f *Forest) check(x []float64) error {
	if len(x) != f.cfg.Dimensions {
		return fmt.Errorf("%w: got %d, want %d", ErrDimension, len(x), f.cfg.Dimensions)
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: %v", ErrNonFinite, v)
		}
	}
	return nil
}

// next writes into f.query the shingle that x would complete and reports
// whether it is complete.
func (f *Forest) next(x []float64) bool {
	d := f.cfg.Dimensions
	copy(f.query, f.shingle[d:])
	copy(f.query[len(f.query)-d:], x)
	return f.filled+1 >= f.cfg.ShingleSize
}

// Score returns the anomaly score of input x given the inputs before it,
// without taking x in. It is 0 during the warm-up (see Ready). Scores
// are around 1 for typical points and grow towards log2(SampleSize+1)
// (8.0 at the default 256) for points isolated near the root of every
// tree; see the package documentation for the formula.
func (f *Forest) Score(x []float64) (float64, error) {
	if err := f.check(x); err != nil {
		return 0, err
	}
	if !f.next(x) || !f.Ready() {
		return 0, nil
	}
	return f.score(f.query), nil
}

func (f *Forest) score(p []float64) float64 {
	sum := 0.0
	for _, t := range f.trees {
		sum += t.score(p, f.stack)
	}
	return sum / float64(len(f.trees))
}

// Update takes input x in: it is shifted into the shingle and, once the
// shingle is complete, offered to every tree's sampler.
func (f *Forest) Update(x []float64) error {
	if err := f.check(x); err != nil {
		return err
	}
	return f.update(f.next(x))
}

// update commits f.query as the new shingle and offers it when complete.
func (f *Forest) update(complete bool) error {
	copy(f.shingle, f.query)
	if f.filled < f.cfg.ShingleSize {
		f.filled++
	}
	if !complete {
		return nil
	}
	f.seq++
	for _, t := range f.trees {
		if _, err := t.offer(f.shingle, f.seq, f.lambda, f.stack); err != nil {
			return err
		}
	}
	return nil
}

// ScoreUpdate scores x (as Score) and then takes it in (as Update): the
// per-record step of a streaming detector, like KDA's RANDOM_CUT_FOREST.
func (f *Forest) ScoreUpdate(x []float64) (float64, error) {
	if err := f.check(x); err != nil {
		return 0, err
	}
	complete := f.next(x)
	s := 0.0
	if complete && f.Ready() {
		s = f.score(f.query)
	}
	return s, f.update(complete)
}

// MemoryBytes returns the bytes a forest with cfg holds (defaults
// applied), excluding a few hundred bytes of headers. It is fixed at New:
// a forest never grows.
func MemoryBytes(cfg Config) int {
	cfg = cfg.WithDefaults()
	s, d := cfg.SampleSize, cfg.pointDims()
	perTree := (s-1)*(4*4+8+2*8*d+4) + // left, right, cutDim, mass, cut, box, free list
		s*(8*d+4+4) + // point, leafMass, free list
		s*(8+4) + // heap
		500 // tree header, PCG and allocation size-class rounding
	return cfg.Trees*(perTree+8) + 2*8*d + 4*s
}
