package rcf

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// mustForest builds a forest or fails the test.
func mustForest(t testing.TB, cfg Config) *Forest {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func update(t testing.TB, f *Forest, x ...float64) {
	t.Helper()
	if err := f.Update(x); err != nil {
		t.Fatal(err)
	}
}

func score(t testing.TB, f *Forest, x ...float64) float64 {
	t.Helper()
	s, err := f.Score(x)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkTree verifies a tree's invariants: masses, boxes, every sampled
// point reachable by its cuts, free lists complete.
func checkTree(t testing.TB, tr *tree) {
	t.Helper()
	counts := map[int32]int32{}
	for _, l := range tr.heapLeaf {
		counts[l]++
	}
	leaves, nodes := 0, 0
	var walk func(ref int32) int32
	walk = func(ref int32) int32 {
		if ref < 0 {
			l := leafOf(ref)
			leaves++
			if tr.leafMass[l] != counts[l] {
				t.Fatalf("leaf %d mass %d, sampled %d times", l, tr.leafMass[l], counts[l])
			}
			return tr.leafMass[l]
		}
		nodes++
		m := walk(tr.left[ref]) + walk(tr.right[ref])
		if m != tr.mass[ref] {
			t.Fatalf("node %d mass %d, children %d", ref, tr.mass[ref], m)
		}
		alo, ahi := tr.refBox(tr.left[ref])
		blo, bhi := tr.refBox(tr.right[ref])
		for k := range alo {
			if tr.nodeMin(ref)[k] != min(alo[k], blo[k]) || tr.nodeMax(ref)[k] != max(ahi[k], bhi[k]) {
				t.Fatalf("node %d box not tight", ref)
			}
		}
		return m
	}
	total := int32(0)
	if tr.root != noNode {
		total = walk(tr.root)
	}
	if int(total) != len(tr.heapW) {
		t.Fatalf("tree mass %d, sample %d", total, len(tr.heapW))
	}
	if leaves != len(counts) || leaves+len(tr.freeLeaves) != len(tr.leafMass) || nodes+len(tr.freeNodes) != len(tr.left) {
		t.Fatalf("leaves %d (sampled %d, free %d of %d), nodes %d (free %d of %d)", leaves, len(counts),
			len(tr.freeLeaves), len(tr.leafMass), nodes, len(tr.freeNodes), len(tr.left))
	}
	for l := range counts {
		p := tr.leafPoint(l)
		ref := tr.root
		for ref >= 0 {
			if p[tr.cutDim[ref]] <= tr.cut[ref] {
				ref = tr.left[ref]
			} else {
				ref = tr.right[ref]
			}
		}
		if leafOf(ref) != l {
			t.Fatalf("leaf %d not reachable by its cuts", l)
		}
	}
}

func TestTreeInvariants(t *testing.T) {
	f := mustForest(t, Config{Trees: 4, SampleSize: 32, TimeDecay: 50, Dimensions: 2, ShingleSize: 2, Seed: 7})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		// Few distinct values, so duplicates are frequent.
		x := []float64{float64(rng.IntN(6)), math.Floor(rng.NormFloat64() * 3)}
		if i%500 == 0 {
			x[0] = 1000
		}
		if err := f.Update(x); err != nil {
			t.Fatal(err)
		}
		if i%97 == 0 {
			for _, tr := range f.trees {
				checkTree(t, tr)
			}
		}
	}
	for _, tr := range f.trees {
		checkTree(t, tr)
		if len(tr.heapW) != 32 {
			t.Fatalf("sample %d, want full 32", len(tr.heapW))
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Trees: -1}, {Trees: MaxTrees + 1}, {SampleSize: 1}, {SampleSize: MaxSampleSize + 1},
		{TimeDecay: 0.5}, {TimeDecay: math.NaN()}, {ShingleSize: 100, Dimensions: 3}, {OutputAfter: -1},
	}
	for _, c := range bad {
		_, err := New(c)
		var ce *ConfigError
		if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) {
			t.Errorf("New(%+v) = %v, want a *ConfigError", c, err)
		}
	}
	c := Config{}.WithDefaults()
	want := Config{Trees: 100, SampleSize: 256, TimeDecay: 100000, ShingleSize: 1, Dimensions: 1, OutputAfter: 64}
	if c != want {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
	if _, err := New(Config{TimeDecay: math.Inf(1)}); err != nil {
		t.Errorf("no decay: %v", err)
	}
}

func TestInputErrors(t *testing.T) {
	f := mustForest(t, Config{Trees: 2, SampleSize: 8, Dimensions: 2})
	if _, err := f.Score([]float64{1}); !errors.Is(err, ErrDimension) {
		t.Errorf("short input: %v", err)
	}
	if err := f.Update([]float64{1, math.NaN()}); !errors.Is(err, ErrNonFinite) {
		t.Errorf("NaN: %v", err)
	}
	if _, err := f.ScoreUpdate([]float64{math.Inf(-1), 1}); !errors.Is(err, ErrNonFinite) {
		t.Errorf("Inf: %v", err)
	}
}

// normalStream feeds n points from N(0, 1) in d dimensions.
func normalStream(t testing.TB, f *Forest, rng *rand.Rand, n, d int) {
	x := make([]float64, d)
	for range n {
		for k := range x {
			x[k] = rng.NormFloat64()
		}
		update(t, f, x...)
	}
}

// Paper, section 4: an isolated point's displacement is large; here its
// score is far above that of inliers.
func TestOutlierScoresFarAboveInliers(t *testing.T) {
	f := mustForest(t, Config{Seed: 1, Dimensions: 2, Trees: 50})
	rng := rand.New(rand.NewPCG(3, 4))
	normalStream(t, f, rng, 2000, 2)
	var inl []float64
	for range 200 {
		inl = append(inl, score(t, f, rng.NormFloat64(), rng.NormFloat64()))
	}
	slices.Sort(inl)
	out := score(t, f, 8, -8)
	p99 := inl[len(inl)*99/100]
	t.Logf("inliers median %.3f p99 %.3f, outlier %.3f", inl[len(inl)/2], p99, out)
	if out < 2*p99 || out < 5*inl[len(inl)/2] {
		t.Errorf("outlier %.3f not far above inlier p99 %.3f", out, p99)
	}
}

// Paper, section 3/4 (duplicates and near-duplicates do not mask
// outliers): a burst of the same anomalous value keeps scoring high on
// its first occurrences, because each tree samples only some of them and
// a sampled duplicate is damped by its mass.
func TestDuplicatesDoNotMask(t *testing.T) {
	f := mustForest(t, Config{Seed: 2, Trees: 50})
	rng := rand.New(rand.NewPCG(5, 6))
	normalStream(t, f, rng, 5000, 1)
	inl := make([]float64, 0, 200)
	for range 200 {
		inl = append(inl, score(t, f, rng.NormFloat64()))
	}
	slices.Sort(inl)
	p99 := inl[len(inl)*99/100]
	var burst []float64
	for range 10 {
		s, err := f.ScoreUpdate([]float64{25})
		if err != nil {
			t.Fatal(err)
		}
		burst = append(burst, s)
	}
	t.Logf("inlier p99 %.3f, burst of 10 duplicates %.3f", p99, burst)
	for i, s := range burst[:5] {
		if s < 2*p99 {
			t.Errorf("occurrence %d of the duplicated outlier scores %.3f, not above 2 × p99 %.3f", i+1, s, p99)
		}
	}
}

// Scores do not depend on insertion order beyond randomness: the same
// points inserted in two orders give forests whose score of a probe
// differ about as much as two forests with different seeds.
func TestOrderIndependence(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	pts := make([][]float64, 256)
	for i := range pts {
		pts[i] = []float64{rng.NormFloat64(), rng.NormFloat64()}
	}
	probes := [][]float64{{0, 0}, {1, 1}, {-2, 0.5}, {4, 4}, {0, -6}}
	build := func(seed uint64, order []int) *Forest {
		f := mustForest(t, Config{Seed: seed, Dimensions: 2, TimeDecay: math.Inf(1), OutputAfter: 1})
		for _, i := range order {
			update(t, f, pts[i]...)
		}
		return f
	}
	fwd := make([]int, len(pts))
	for i := range fwd {
		fwd[i] = i
	}
	rev := slices.Clone(fwd)
	slices.Reverse(rev)
	shuf := slices.Clone(fwd)
	rng.Shuffle(len(shuf), func(i, j int) { shuf[i], shuf[j] = shuf[j], shuf[i] })
	a, b, c, d := build(1, fwd), build(1, rev), build(1, shuf), build(2, fwd)
	for _, p := range probes {
		sa, sb, sc, sd := score(t, a, p...), score(t, b, p...), score(t, c, p...), score(t, d, p...)
		seedGap := math.Abs(sa - sd)
		tol := max(0.1*sa, 3*seedGap, 0.05)
		t.Logf("probe %v: forward %.3f reverse %.3f shuffled %.3f other seed %.3f", p, sa, sb, sc, sd)
		if math.Abs(sa-sb) > tol || math.Abs(sa-sc) > tol {
			t.Errorf("probe %v: order changes the score beyond randomness (%.3f, %.3f, %.3f; tol %.3f)", p, sa, sb, sc, tol)
		}
	}
}

// Time decay forgets old regimes: after a level shift the old level
// first looks normal and, once the sample has turned over, anomalous.
func TestTimeDecayForgets(t *testing.T) {
	cfg := Config{Seed: 3, Trees: 40, SampleSize: 64, TimeDecay: 500}
	f := mustForest(t, cfg)
	rng := rand.New(rand.NewPCG(9, 10))
	for range 3000 {
		update(t, f, rng.NormFloat64())
	}
	oldBefore := score(t, f, 0)
	for range 5000 {
		update(t, f, 50+rng.NormFloat64())
	}
	oldAfter, newNow := score(t, f, 0), score(t, f, 50)
	// Without decay the old regime stays in the sample.
	g := mustForest(t, Config{Seed: 3, Trees: 40, SampleSize: 64, TimeDecay: math.Inf(1)})
	rng = rand.New(rand.NewPCG(9, 10))
	for range 3000 {
		update(t, g, rng.NormFloat64())
	}
	for range 5000 {
		update(t, g, 50+rng.NormFloat64())
	}
	oldNoDecay := score(t, g, 0)
	t.Logf("old level: %.3f before the shift, %.3f after (no decay: %.3f); new level %.3f", oldBefore, oldAfter, oldNoDecay, newNow)
	if oldAfter < 3*newNow || oldAfter < 2*oldNoDecay {
		t.Errorf("old regime not forgotten: old %.3f, new %.3f, no-decay old %.3f", oldAfter, newNow, oldNoDecay)
	}
}

func TestDeterministicForSeed(t *testing.T) {
	run := func(seed uint64) []float64 {
		f := mustForest(t, Config{Seed: seed, Trees: 20, SampleSize: 64, ShingleSize: 4})
		rng := rand.New(rand.NewPCG(11, 12))
		var out []float64
		for i := range 2000 {
			v := math.Sin(float64(i)/10) + 0.1*rng.NormFloat64()
			s, err := f.ScoreUpdate([]float64{v})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.Equal(a, b) {
		t.Error("same seed, different scores")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds, same scores")
	}
}

// Shingling scores a series by its shape: a sine wave whose sign flips
// at a crest for half a period (a jump from +1 to -1 and back) has no
// out-of-range value, yet scores high.
func TestShingleScoresShape(t *testing.T) {
	f := mustForest(t, Config{Seed: 4, Trees: 50, ShingleSize: 8})
	var max1, normal float64
	for i := range 6000 {
		v := math.Sin(2 * math.Pi * float64(i) / 50)
		if i >= 5012 && i < 5037 {
			v = -v // flipped at a crest
		}
		s, err := f.ScoreUpdate([]float64{v})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case i >= 5000 && i < 5030:
			max1 = max(max1, s)
		case i >= 4000 && i < 5000:
			normal = max(normal, s)
		}
	}
	t.Logf("max score: normal %.3f, flipped stretch %.3f", normal, max1)
	if max1 < 1.5*normal {
		t.Errorf("shape change not detected: %.3f vs normal %.3f", max1, normal)
	}
}

func TestWarmUp(t *testing.T) {
	f := mustForest(t, Config{Trees: 4, SampleSize: 16, ShingleSize: 3, OutputAfter: 5})
	// ShingleSize-1 + OutputAfter = 7 inputs score 0.
	for i := range 7 {
		s, err := f.ScoreUpdate([]float64{float64(i)})
		if err != nil {
			t.Fatal(err)
		}
		if s != 0 || f.Ready() != (i == 6) {
			t.Fatalf("input %d: score %v ready %v during warm-up", i, s, f.Ready())
		}
	}
	if score(t, f, 100) == 0 {
		t.Fatalf("not ready after ShingleSize-1+OutputAfter inputs")
	}
}
