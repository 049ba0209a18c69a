package rcf

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// trained returns a forest that has taken in n points of a noisy sine
// with an occasional spike, and the generator to continue with.
func trained(t testing.TB, cfg Config, n int) (*Forest, func() float64) {
	t.Helper()
	f := mustForest(t, cfg)
	rng := rand.New(rand.NewPCG(21, 22))
	i := 0
	next := func() float64 {
		i++
		v := math.Sin(float64(i)/7) + 0.1*rng.NormFloat64()
		if i%101 == 0 {
			v += 5
		}
		if i%13 == 0 {
			v = 0.5 // duplicates
		}
		return v
	}
	for range n {
		update(t, f, next())
	}
	return f, next
}

func TestSnapshotRoundTripContinuesIdentically(t *testing.T) {
	cfg := Config{Seed: 5, Trees: 30, SampleSize: 64, ShingleSize: 3, TimeDecay: 200}
	for _, n := range []int{0, 1, 2, 10, 3000} { // empty, shingle filling, warm-up, full
		f, next := trained(t, cfg, n)
		snap, err := f.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(snap) > MaxSnapshotBytes(cfg) {
			t.Errorf("n=%d: snapshot %d bytes over its bound %d", n, len(snap), MaxSnapshotBytes(cfg))
		}
		g, err := Restore(snap)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		again, _ := g.MarshalBinary()
		if !bytes.Equal(snap, again) {
			t.Errorf("n=%d: snapshot of the restored forest differs", n)
		}
		for i := range 2000 {
			x := []float64{next()}
			a, err1 := f.ScoreUpdate(x)
			b, err2 := g.ScoreUpdate(x)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if a != b {
				t.Fatalf("n=%d: input %d after restore scores %v, original %v", n, i, b, a)
			}
		}
		for _, tr := range g.trees {
			checkTree(t, tr)
		}
	}
}

func TestSnapshotSize(t *testing.T) {
	for _, cfg := range []Config{{}, {ShingleSize: 4}, {Trees: 50, SampleSize: 128}} {
		f, _ := trained(t, cfg, 5000)
		snap, err := f.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		c := f.Config()
		t.Logf("trees %d sample %d shingle %d: snapshot %d bytes (bound %d), memory %d bytes",
			c.Trees, c.SampleSize, c.ShingleSize, len(snap), MaxSnapshotBytes(cfg), MemoryBytes(cfg))
		if len(snap) > MaxSnapshotBytes(cfg) {
			t.Errorf("snapshot %d bytes over its bound %d", len(snap), MaxSnapshotBytes(cfg))
		}
	}
}

func TestSnapshotErrors(t *testing.T) {
	f, _ := trained(t, Config{Seed: 1, Trees: 3, SampleSize: 8}, 100)
	good, _ := f.MarshalBinary()
	mod := func(fn func(b []byte) []byte) []byte { return fn(bytes.Clone(good)) }
	cases := []struct {
		name string
		b    []byte
		kind error
	}{
		{"empty", nil, ErrSnapshotVersion},
		{"not rcf", []byte("hello world"), ErrSnapshotVersion},
		{"version 2", mod(func(b []byte) []byte { b[3] = 2; return b }), ErrSnapshotVersion},
		{"truncated", good[:len(good)-1], ErrSnapshot},
		{"trailing", append(bytes.Clone(good), 0), ErrSnapshot},
		{"zero trees", mod(func(b []byte) []byte { b[4] = 0; return b }), ErrSnapshot},
		{"huge sample", mod(func(b []byte) []byte {
			return append(append(b[:5:5], 0xff, 0xff, 0x03), b[6:]...)
		}), ErrSnapshot},
	}
	for _, c := range cases {
		g := &Forest{}
		err := g.UnmarshalBinary(c.b)
		var se *SnapshotError
		if !errors.Is(err, c.kind) || !errors.As(err, &se) {
			t.Errorf("%s: %v, want a *SnapshotError matching %v", c.name, err, c.kind)
		}
		if g.trees != nil {
			t.Errorf("%s: forest changed on error", c.name)
		}
	}
}

// FuzzRestore: any input gives a forest or a *SnapshotError, never a
// panic; a forest it accepts keeps working.
func FuzzRestore(f *testing.F) {
	for _, n := range []int{0, 3, 60} {
		g, _ := trained(f, Config{Seed: 2, Trees: 2, SampleSize: 8, ShingleSize: 2, Dimensions: 1}, n)
		b, _ := g.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte("RCF\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Restore(b)
		if err != nil {
			var se *SnapshotError
			if !errors.As(err, &se) || !(errors.Is(err, ErrSnapshot) || errors.Is(err, ErrSnapshotVersion)) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for _, tr := range g.trees {
			checkTree(t, tr)
		}
		x := make([]float64, g.cfg.Dimensions)
		for i := range 50 {
			x[0] = float64(i % 7)
			if _, err := g.ScoreUpdate(x); err != nil {
				t.Fatalf("restored forest: %v", err)
			}
		}
		for _, tr := range g.trees {
			checkTree(t, tr)
		}
	})
}
