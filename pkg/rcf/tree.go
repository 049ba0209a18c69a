package rcf

import (
	"math"
	"math/rand/v2"
)

// A node reference: >= 0 is an internal node index, < 0 is leaf -(ref+1),
// noNode is the empty tree.
const noNode int32 = math.MinInt32

func leafRef(l int32) int32  { return -l - 1 }
func leafOf(ref int32) int32 { return -ref - 1 }

// tree is one random cut tree with its own time-decayed reservoir
// sampler. All storage is allocated once, for SampleSize points: a tree
// never allocates after New, and its memory is fixed (see memoryBytes).
//
// Leaves hold distinct points; a point sampled k times is one leaf of
// mass k. Internal nodes keep their bounding box, so insertion, deletion
// and scoring touch only the path from the root to one leaf.
type tree struct {
	dims int
	root int32

	// Internal nodes, capacity SampleSize-1.
	left, right []int32
	cutDim      []int32
	cut         []float64
	mass        []int32
	boxMin      []float64 // node*dims + k
	boxMax      []float64
	freeNodes   []int32

	// Leaves, capacity SampleSize.
	point      []float64 // leaf*dims + k
	leafMass   []int32
	freeLeaves []int32

	// The sampler: a max-heap on weight of the sampled points; each entry
	// names the leaf holding its point.
	heapW    []float64
	heapLeaf []int32

	pcg *rand.PCG
	rng *rand.Rand
}

func newTree(sampleSize, dims int, seed, stream uint64) *tree {
	n := sampleSize - 1
	t := &tree{
		dims:       dims,
		root:       noNode,
		left:       make([]int32, n),
		right:      make([]int32, n),
		cutDim:     make([]int32, n),
		cut:        make([]float64, n),
		mass:       make([]int32, n),
		boxMin:     make([]float64, n*dims),
		boxMax:     make([]float64, n*dims),
		freeNodes:  make([]int32, 0, n),
		point:      make([]float64, sampleSize*dims),
		leafMass:   make([]int32, sampleSize),
		freeLeaves: make([]int32, 0, sampleSize),
		heapW:      make([]float64, 0, sampleSize),
		heapLeaf:   make([]int32, 0, sampleSize),
		pcg:        rand.NewPCG(seed, stream),
	}
	t.rng = rand.New(t.pcg)
	t.resetFree()
	return t
}

// resetFree marks every node and leaf free (lowest index handed out first).
func (t *tree) resetFree() {
	t.freeNodes = t.freeNodes[:0]
	for i := int32(len(t.left)) - 1; i >= 0; i-- {
		t.freeNodes = append(t.freeNodes, i)
	}
	t.freeLeaves = t.freeLeaves[:0]
	for i := int32(len(t.leafMass)) - 1; i >= 0; i-- {
		t.freeLeaves = append(t.freeLeaves, i)
	}
}

func (t *tree) sampleSize() int { return cap(t.heapW) }

// treeMass is the number of sampled points (with repetitions).
func (t *tree) treeMass() int { return len(t.heapW) }

func (t *tree) leafPoint(l int32) []float64 {
	d := t.dims
	return t.point[int(l)*d : int(l)*d+d]
}

func (t *tree) nodeMin(n int32) []float64 { return t.boxMin[int(n)*t.dims : int(n)*t.dims+t.dims] }
func (t *tree) nodeMax(n int32) []float64 { return t.boxMax[int(n)*t.dims : int(n)*t.dims+t.dims] }

func (t *tree) refMass(ref int32) int32 {
	if ref < 0 {
		return t.leafMass[leafOf(ref)]
	}
	return t.mass[ref]
}

// refBox returns the bounding box of ref (a leaf's box is its point).
func (t *tree) refBox(ref int32) (lo, hi []float64) {
	if ref < 0 {
		p := t.leafPoint(leafOf(ref))
		return p, p
	}
	return t.nodeMin(ref), t.nodeMax(ref)
}

// offer runs the sampler for a point with sequence number seq: it draws
// the point's weight and, when the point is taken, evicts the heaviest
// entry if the sample is full and inserts p. stack is scratch space. The weight is
// log(-log u) - lambda*seq for u uniform in (0, 1): the points kept are
// the SampleSize smallest weights, which is weighted reservoir sampling
// (Efraimidis-Spirakis) with weight exp(lambda*seq), as in the AWS
// library. It reports whether p was taken.
func (t *tree) offer(p []float64, seq uint64, lambda float64, stack []int32) (bool, error) {
	u := t.rng.Float64()
	for u == 0 {
		u = t.rng.Float64()
	}
	w := math.Log(-math.Log(u)) - lambda*float64(seq)
	if len(t.heapW) == t.sampleSize() {
		if w >= t.heapW[0] {
			return false, nil
		}
		if err := t.remove(t.heapLeaf[0], stack); err != nil {
			return false, err
		}
		t.heapPopTop()
	}
	l := t.insert(p)
	t.heapPush(w, l)
	return true, nil
}

func (t *tree) heapPush(w float64, l int32) {
	t.heapW = append(t.heapW, w)
	t.heapLeaf = append(t.heapLeaf, l)
	i := len(t.heapW) - 1
	for i > 0 {
		p := (i - 1) / 2
		if t.heapW[p] >= t.heapW[i] {
			break
		}
		t.heapSwap(i, p)
		i = p
	}
}

func (t *tree) heapPopTop() {
	n := len(t.heapW) - 1
	t.heapSwap(0, n)
	t.heapW = t.heapW[:n]
	t.heapLeaf = t.heapLeaf[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && t.heapW[l] > t.heapW[m] {
			m = l
		}
		if r < n && t.heapW[r] > t.heapW[m] {
			m = r
		}
		if m == i {
			return
		}
		t.heapSwap(i, m)
		i = m
	}
}

func (t *tree) heapSwap(i, j int) {
	t.heapW[i], t.heapW[j] = t.heapW[j], t.heapW[i]
	t.heapLeaf[i], t.heapLeaf[j] = t.heapLeaf[j], t.heapLeaf[i]
}

func (t *tree) newLeaf(p []float64) int32 {
	l := t.freeLeaves[len(t.freeLeaves)-1]
	t.freeLeaves = t.freeLeaves[:len(t.freeLeaves)-1]
	copy(t.leafPoint(l), p)
	t.leafMass[l] = 1
	return l
}

func (t *tree) newNode() int32 {
	n := t.freeNodes[len(t.freeNodes)-1]
	t.freeNodes = t.freeNodes[:len(t.freeNodes)-1]
	return n
}

func equalPoints(a, b []float64) bool {
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// randomCut draws a cut of the box lo..hi extended by p, choosing the
// dimension with probability proportional to its extended range and the
// value uniformly inside it (Guha et al., Definition 1). The cut value
// is strictly below the extended maximum so that both sides are
// non-empty; x goes left when x[dim] <= value.
func (t *tree) randomCut(lo, hi, p []float64) (dim int32, value float64) {
	total := 0.0
	for k := range lo {
		total += max(hi[k], p[k]) - min(lo[k], p[k])
	}
	r := t.rng.Float64() * total
	last := int32(-1)
	for k := range lo {
		a, b := min(lo[k], p[k]), max(hi[k], p[k])
		rng := b - a
		if rng <= 0 {
			continue
		}
		last = int32(k)
		if r < rng {
			v := a + r
			if v >= b {
				v = a
			}
			return int32(k), v
		}
		r -= rng
	}
	// Rounding left r beyond the last range: cut at its bottom.
	return last, min(lo[last], p[last])
}

// insert adds one instance of p and returns its leaf (Guha et al.,
// Algorithm 1 "insert"): walking down from the root, at each node draw a
// random cut of the node's box extended by p; if it separates p from the
// box, p becomes a new leaf beside that node, else continue into the
// child on p's side.
func (t *tree) insert(p []float64) int32 {
	if t.root == noNode {
		l := t.newLeaf(p)
		t.root = leafRef(l)
		return l
	}
	parent, parentLeft := noNode, false
	ref := t.root
	for {
		if ref < 0 {
			l := leafOf(ref)
			q := t.leafPoint(l)
			if equalPoints(q, p) {
				t.leafMass[l]++
				return l
			}
			dim, v := t.randomCut(q, q, p)
			return t.split(parent, parentLeft, ref, dim, v, p)
		}
		lo, hi := t.nodeMin(ref), t.nodeMax(ref)
		dim, v := t.randomCut(lo, hi, p)
		x := p[dim]
		if (v < lo[dim] && x <= v) || (v >= hi[dim] && x > v) {
			return t.split(parent, parentLeft, ref, dim, v, p)
		}
		t.mass[ref]++
		for k := range lo {
			lo[k] = min(lo[k], p[k])
			hi[k] = max(hi[k], p[k])
		}
		parent = ref
		parentLeft = p[t.cutDim[ref]] <= t.cut[ref]
		if parentLeft {
			ref = t.left[ref]
		} else {
			ref = t.right[ref]
		}
	}
}

// split puts a new internal node with cut (dim, v) in place of ref, with
// a new leaf for p on one side and ref on the other.
func (t *tree) split(parent int32, parentLeft bool, ref int32, dim int32, v float64, p []float64) int32 {
	l := t.newLeaf(p)
	n := t.newNode()
	t.cutDim[n], t.cut[n] = dim, v
	if p[dim] <= v {
		t.left[n], t.right[n] = leafRef(l), ref
	} else {
		t.left[n], t.right[n] = ref, leafRef(l)
	}
	t.mass[n] = t.refMass(ref) + 1
	lo, hi := t.refBox(ref)
	nlo, nhi := t.nodeMin(n), t.nodeMax(n)
	for k := range p {
		nlo[k] = min(lo[k], p[k])
		nhi[k] = max(hi[k], p[k])
	}
	switch {
	case parent == noNode:
		t.root = n
	case parentLeft:
		t.left[parent] = n
	default:
		t.right[parent] = n
	}
	return l
}

// remove deletes one instance of leaf l's point (Guha et al., Algorithm
// 1 "delete"): when its mass drops to zero the leaf and its parent go and
// the sibling takes the parent's place; the boxes above are recomputed.
// stack is scratch space of capacity SampleSize.
func (t *tree) remove(l int32, stack []int32) error {
	p := t.leafPoint(l)
	stack = stack[:0]
	ref := t.root
	for ref >= 0 {
		stack = append(stack, ref)
		if p[t.cutDim[ref]] <= t.cut[ref] {
			ref = t.left[ref]
		} else {
			ref = t.right[ref]
		}
	}
	if ref == noNode || leafOf(ref) != l {
		return errCorrupt
	}
	for _, n := range stack {
		t.mass[n]--
	}
	t.leafMass[l]--
	if t.leafMass[l] > 0 {
		return nil // the point is still there: boxes unchanged
	}
	t.freeLeaves = append(t.freeLeaves, l)
	if len(stack) == 0 { // l was the root
		t.root = noNode
		return nil
	}
	parent := stack[len(stack)-1]
	sib := t.left[parent]
	if sib == leafRef(l) {
		sib = t.right[parent]
	}
	t.freeNodes = append(t.freeNodes, parent)
	if len(stack) == 1 {
		t.root = sib
		return nil
	}
	grand := stack[len(stack)-2]
	if t.left[grand] == parent {
		t.left[grand] = sib
	} else {
		t.right[grand] = sib
	}
	for i := len(stack) - 2; i >= 0; i-- {
		t.fitBox(stack[i])
	}
	return nil
}

// fitBox sets node n's box to the union of its children's boxes.
func (t *tree) fitBox(n int32) {
	alo, ahi := t.refBox(t.left[n])
	blo, bhi := t.refBox(t.right[n])
	lo, hi := t.nodeMin(n), t.nodeMax(n)
	for k := range lo {
		lo[k] = min(alo[k], blo[k])
		hi[k] = max(ahi[k], bhi[k])
	}
}

// score returns the tree's anomaly score of p without changing the tree:
// the AWS RCF formulation (see the package documentation). It walks to
// the leaf p would land in, then back up, mixing in at each node the
// probability that a random cut separates p from that node's box.
func (t *tree) score(p []float64, stack []int32) float64 {
	if t.root == noNode {
		return 0
	}
	stack = stack[:0]
	ref := t.root
	for ref >= 0 {
		stack = append(stack, ref)
		if p[t.cutDim[ref]] <= t.cut[ref] {
			ref = t.left[ref]
		} else {
			ref = t.right[ref]
		}
	}
	l := leafOf(ref)
	depth := float64(len(stack))
	treeMass := float64(t.treeMass())
	var s float64
	if m := float64(t.leafMass[l]); equalPoints(t.leafPoint(l), p) {
		// Seen before: damped by how much of the tree the duplicates are,
		// and deeper the more duplicates there are.
		s = (1 - m/(2*treeMass)) / (depth + math.Log2(m+1))
	} else {
		s = 1 / (depth + 1)
	}
	for i := len(stack) - 1; i >= 0; i-- {
		n := stack[i]
		prob := separation(t.nodeMin(n), t.nodeMax(n), p)
		if prob <= 0 {
			break // p is inside this box, so inside every box above
		}
		s = prob/float64(i+1) + (1-prob)*s
	}
	return s * math.Log2(treeMass+1)
}

// separation is the probability that a random cut of the box lo..hi
// extended by p separates p from the box.
func separation(lo, hi, p []float64) float64 {
	grow, total := 0.0, 0.0
	for k := range lo {
		a, b := lo[k], hi[k]
		g := 0.0
		if p[k] < a {
			g = a - p[k]
		} else if p[k] > b {
			g = p[k] - b
		}
		grow += g
		total += b - a + g
	}
	if grow <= 0 || total <= 0 {
		return 0
	}
	return grow / total
}
