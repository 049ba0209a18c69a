package rcf

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
)

// SnapshotVersion is the version byte of the snapshots AppendBinary
// writes. UnmarshalBinary reads this version only.
const SnapshotVersion = 1

var snapshotMagic = [3]byte{'R', 'C', 'F'}

// Snapshot errors: every error UnmarshalBinary and Restore return is a
// *SnapshotError matching one of these with errors.Is.
var (
	// ErrSnapshot: the snapshot is truncated, has trailing bytes, or
	// describes a forest that violates its invariants.
	ErrSnapshot = errors.New("rcf: malformed snapshot")
	// ErrSnapshotVersion: the snapshot has an unknown version byte (or is
	// not an RCF snapshot at all).
	ErrSnapshotVersion = errors.New("rcf: unsupported snapshot version")
)

// SnapshotError says where and why a snapshot could not be read.
type SnapshotError struct {
	Offset int    // byte offset of the fault
	Reason string // what was wrong
	Kind   error  // ErrSnapshot or ErrSnapshotVersion
}

func (e *SnapshotError) Error() string {
	return e.Kind.Error() + ": " + e.Reason + " at byte " + strconv.Itoa(e.Offset)
}

// Unwrap returns e.Kind.
func (e *SnapshotError) Unwrap() error { return e.Kind }

// Snapshot layout, version 1 (integers are unsigned varints "u",
// floats IEEE 754 little-endian "f64", seed little-endian "u64"):
//
//	"RCF" 0x01
//	u trees, u sample_size, u dimensions, u shingle_size, u output_after
//	f64 time_decay, u64 seed
//	u seen, u filled, f64 × (dimensions × shingle_size): the shingle
//	per tree:
//	  20 bytes: PCG state (math/rand/v2 PCG.MarshalBinary)
//	  u leaves (0: empty tree)
//	  nodes in preorder; each is a tag byte then
//	    1 (internal): u cut_dim, f64 cut
//	    2 (leaf):     u mass, f64 × point_dims
//	  u sample; per entry in heap order: f64 weight, u leaf (preorder index)
//
// Boxes and internal masses are not stored: they are recomputed. The
// sampler heap keeps its array order, so a restored forest continues
// with exactly the scores the original would have produced.
const (
	tagInternal = 1
	tagLeaf     = 2
	pcgBytes    = 20
)

// MaxSnapshotBytes returns the largest snapshot a forest with cfg
// (defaults applied) can write: every tree full with distinct points.
func MaxSnapshotBytes(cfg Config) int {
	cfg = cfg.WithDefaults()
	s, d := cfg.SampleSize, cfg.pointDims()
	u := func(v int) int { return uvarintLen(uint64(v)) }
	head := 4 + u(cfg.Trees) + u(s) + u(cfg.Dimensions) + u(cfg.ShingleSize) + u(cfg.OutputAfter) + 8 + 8 +
		binary.MaxVarintLen64 + u(cfg.ShingleSize) + 8*d
	perTree := pcgBytes + u(s) +
		(s-1)*(1+u(d)+8) + // internal nodes
		s*(1+u(s)+8*d) + // leaves
		u(s) + s*(8+u(s)) // sample
	return head + cfg.Trees*perTree
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// MarshalBinary returns a snapshot of f (see AppendBinary).
func (f *Forest) MarshalBinary() ([]byte, error) {
	return f.AppendBinary(make([]byte, 0, f.snapshotSizeHint()))
}

func (f *Forest) snapshotSizeHint() int {
	n := 64 + 8*len(f.shingle)
	for _, t := range f.trees {
		n += pcgBytes + 8 + len(t.heapW)*(8+2+8*t.dims+11)
	}
	return n
}

// AppendBinary appends a snapshot of f to dst: the whole state (config,
// shingle, every tree's cuts, sampled points, sampler weights and random
// generator), so a forest restored from it scores the following inputs
// exactly as f would have. Its size is at most MaxSnapshotBytes(cfg).
func (f *Forest) AppendBinary(dst []byte) ([]byte, error) {
	c := f.cfg
	dst = append(dst, snapshotMagic[:]...)
	dst = append(dst, SnapshotVersion)
	for _, v := range []int{c.Trees, c.SampleSize, c.Dimensions, c.ShingleSize, c.OutputAfter} {
		dst = binary.AppendUvarint(dst, uint64(v))
	}
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.TimeDecay))
	dst = binary.LittleEndian.AppendUint64(dst, c.Seed)
	dst = binary.AppendUvarint(dst, f.seq)
	dst = binary.AppendUvarint(dst, uint64(f.filled))
	dst = appendFloats(dst, f.shingle)
	order := make([]int32, c.SampleSize) // leaf index -> preorder leaf index
	for _, t := range f.trees {
		st, err := t.pcg.MarshalBinary()
		if err != nil {
			return nil, err
		}
		dst = append(dst, st...)
		nLeaves := c.SampleSize - len(t.freeLeaves)
		dst = binary.AppendUvarint(dst, uint64(nLeaves))
		next := int32(0)
		if t.root != noNode {
			dst = t.appendNodes(dst, t.root, order, &next)
		}
		dst = binary.AppendUvarint(dst, uint64(len(t.heapW)))
		for i, w := range t.heapW {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(w))
			dst = binary.AppendUvarint(dst, uint64(order[t.heapLeaf[i]]))
		}
	}
	return dst, nil
}

func appendFloats(dst []byte, v []float64) []byte {
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
	}
	return dst
}

func (t *tree) appendNodes(dst []byte, ref int32, order []int32, next *int32) []byte {
	if ref < 0 {
		l := leafOf(ref)
		order[l] = *next
		*next++
		dst = append(dst, tagLeaf)
		dst = binary.AppendUvarint(dst, uint64(t.leafMass[l]))
		return appendFloats(dst, t.leafPoint(l))
	}
	dst = append(dst, tagInternal)
	dst = binary.AppendUvarint(dst, uint64(t.cutDim[ref]))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(t.cut[ref]))
	dst = t.appendNodes(dst, t.left[ref], order, next)
	return t.appendNodes(dst, t.right[ref], order, next)
}

// Restore returns the forest a snapshot describes (see UnmarshalBinary).
func Restore(b []byte) (*Forest, error) {
	f := new(Forest)
	if err := f.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return f, nil
}

// UnmarshalBinary replaces f with the forest snapshot b describes. b is
// checked completely (limits, tree invariants, no trailing bytes) before
// anything is allocated beyond the config's bounds; on error f is
// unchanged and the error is a *SnapshotError. It never panics.
func (f *Forest) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	if len(b) < 4 || [3]byte(b[:3]) != snapshotMagic {
		return &SnapshotError{Offset: 0, Reason: "not an RCF snapshot", Kind: ErrSnapshotVersion}
	}
	if b[3] != SnapshotVersion {
		return &SnapshotError{Offset: 3, Reason: "version " + strconv.Itoa(int(b[3])), Kind: ErrSnapshotVersion}
	}
	r.i = 4
	var c Config
	c.Trees = r.int(MaxTrees)
	c.SampleSize = r.int(MaxSampleSize)
	c.Dimensions = r.int(MaxPointDims)
	c.ShingleSize = r.int(MaxPointDims)
	c.OutputAfter = r.int(math.MaxInt32)
	c.TimeDecay = r.f64()
	c.Seed = r.u64()
	if r.err != nil {
		return r.err
	}
	if err := c.Validate(); err != nil {
		return r.fail(err.Error())
	}
	if c != c.WithDefaults() {
		return r.fail("config has zero fields")
	}
	if len(b)-r.i < c.Trees*(pcgBytes+2) {
		// Checked before New allocates the forest.
		return r.fail("too short for its trees")
	}
	g, err := New(c)
	if err != nil {
		return r.fail(err.Error())
	}
	g.seq = r.uvarint(math.MaxInt64)
	g.filled = r.int(c.ShingleSize)
	for i := range g.shingle {
		g.shingle[i] = r.finite()
	}
	if r.err == nil && g.seq > 0 && g.filled < c.ShingleSize {
		return r.fail("points seen with an incomplete shingle")
	}
	for _, t := range g.trees {
		if r.err != nil {
			break
		}
		r.tree(t)
	}
	if r.err != nil {
		return r.err
	}
	if r.i != len(b) {
		return r.fail("trailing bytes")
	}
	*f = *g
	return nil
}

type reader struct {
	b   []byte
	i   int
	err error
}

func (r *reader) fail(reason string) error {
	if r.err == nil {
		r.err = &SnapshotError{Offset: r.i, Reason: reason, Kind: ErrSnapshot}
	}
	return r.err
}

func (r *reader) uvarint(limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.i:])
	if n <= 0 {
		r.fail("bad or truncated varint")
		return 0
	}
	if v > limit {
		r.fail("value " + strconv.FormatUint(v, 10) + " over limit " + strconv.FormatUint(limit, 10))
		return 0
	}
	r.i += n
	return v
}

func (r *reader) int(limit int) int { return int(r.uvarint(uint64(limit))) }

func (r *reader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.i < 8 {
		r.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b[r.i:])
	r.i += 8
	return v
}

func (r *reader) f64() float64 { return math.Float64frombits(r.u64()) }

func (r *reader) finite() float64 {
	v := r.f64()
	if math.IsNaN(v) || math.IsInf(v, 0) {
		r.fail("value is NaN or infinite")
		return 0
	}
	return v
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.i >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

// tree reads one tree into the empty tree t and checks its invariants.
func (r *reader) tree(t *tree) {
	if len(r.b)-r.i < pcgBytes {
		r.fail("truncated")
		return
	}
	var pcg rand.PCG
	if err := pcg.UnmarshalBinary(r.b[r.i : r.i+pcgBytes]); err != nil {
		r.fail("random state: " + err.Error())
		return
	}
	*t.pcg = pcg
	r.i += pcgBytes
	s := t.sampleSize()
	nLeaves := r.int(s)
	t.freeNodes, t.freeLeaves = t.freeNodes[:0], t.freeLeaves[:0]
	var leaves, nodes int32
	if nLeaves > 0 {
		t.root = r.node(t, &leaves, &nodes, int32(nLeaves))
	}
	if r.err != nil {
		return
	}
	if int(leaves) != nLeaves {
		r.fail("leaf count mismatch")
		return
	}
	for i := int32(len(t.left)) - 1; i >= nodes; i-- {
		t.freeNodes = append(t.freeNodes, i)
	}
	for i := int32(s) - 1; i >= leaves; i-- {
		t.freeLeaves = append(t.freeLeaves, i)
	}
	n := r.int(s)
	counts := make([]int32, nLeaves)
	for range n {
		w := r.f64()
		l := r.int(max(nLeaves-1, 0))
		if r.err != nil {
			return
		}
		if math.IsNaN(w) || nLeaves == 0 {
			r.fail("bad sample entry")
			return
		}
		counts[l]++
		t.heapW = append(t.heapW, w)
		t.heapLeaf = append(t.heapLeaf, int32(l))
	}
	for i := 1; i < len(t.heapW); i++ {
		if t.heapW[(i-1)/2] < t.heapW[i] {
			r.fail("sample is not a heap")
			return
		}
	}
	for l := range counts {
		if counts[l] != t.leafMass[l] {
			r.fail("leaf mass differs from its sample count")
			return
		}
	}
	// Every point must lie where its cuts lead, or deletion fails later.
	for l := int32(0); l < leaves; l++ {
		p := t.leafPoint(l)
		ref := t.root
		for ref >= 0 {
			if p[t.cutDim[ref]] <= t.cut[ref] {
				ref = t.left[ref]
			} else {
				ref = t.right[ref]
			}
		}
		if leafOf(ref) != l {
			r.fail("a leaf is not where its cuts lead")
			return
		}
	}
}

// node reads a subtree in preorder, assigning indices in preorder, and
// computes its internal masses and boxes.
func (r *reader) node(t *tree, leaves, nodes *int32, maxLeaves int32) int32 {
	switch r.byte() {
	case tagLeaf:
		if *leaves >= maxLeaves {
			r.fail("too many leaves")
			return noNode
		}
		l := *leaves
		*leaves++
		t.leafMass[l] = int32(r.int(t.sampleSize()))
		if r.err == nil && t.leafMass[l] == 0 {
			r.fail("leaf of mass 0")
		}
		p := t.leafPoint(l)
		for k := range p {
			p[k] = r.finite()
		}
		return leafRef(l)
	case tagInternal:
		if *nodes >= int32(len(t.left)) || *nodes >= maxLeaves-1 {
			r.fail("too many internal nodes")
			return noNode
		}
		n := *nodes
		*nodes++
		t.cutDim[n] = int32(r.int(t.dims - 1))
		t.cut[n] = r.finite()
		if r.err != nil {
			return noNode
		}
		t.left[n] = r.node(t, leaves, nodes, maxLeaves)
		if r.err != nil {
			return noNode
		}
		t.right[n] = r.node(t, leaves, nodes, maxLeaves)
		if r.err != nil {
			return noNode
		}
		t.mass[n] = t.refMass(t.left[n]) + t.refMass(t.right[n])
		t.fitBox(n)
		return n
	}
	r.fail("bad node tag")
	return noNode
}
