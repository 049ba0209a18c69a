package rcf

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// benchForest is a default forest fed until every sample is full.
func benchForest(b *testing.B, cfg Config) (*Forest, *rand.Rand) {
	b.Helper()
	f := mustForest(b, cfg)
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float64, f.cfg.Dimensions)
	for range 5000 {
		for k := range x {
			x[k] = 15 + 3*rng.NormFloat64()
		}
		update(b, f, x...)
	}
	return f, rng
}

func benchScoreUpdate(b *testing.B, cfg Config) {
	f, rng := benchForest(b, cfg)
	x := make([]float64, f.cfg.Dimensions)
	b.ReportAllocs()
	for b.Loop() {
		for k := range x {
			x[k] = 15 + 3*rng.NormFloat64()
		}
		if _, err := f.ScoreUpdate(x); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScoreUpdate: one scored and learned point at the KDA defaults
// (100 trees, sample 256, shingle 1).
func BenchmarkScoreUpdate(b *testing.B) { benchScoreUpdate(b, Config{}) }

// BenchmarkScoreUpdateShingle8: a series scored by its shape (8 × 1).
func BenchmarkScoreUpdateShingle8(b *testing.B) { benchScoreUpdate(b, Config{ShingleSize: 8}) }

// BenchmarkScoreUpdateDims4: four values per point (the per-host series).
func BenchmarkScoreUpdateDims4(b *testing.B) { benchScoreUpdate(b, Config{Dimensions: 4}) }

// BenchmarkScore: scoring alone (read-only).
func BenchmarkScore(b *testing.B) {
	f, rng := benchForest(b, Config{})
	b.ReportAllocs()
	x := []float64{0}
	for b.Loop() {
		x[0] = 15 + 3*rng.NormFloat64()
		if _, err := f.Score(x); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshot: encode and restore a full default forest.
func BenchmarkSnapshot(b *testing.B) {
	f, _ := benchForest(b, Config{})
	snap, _ := f.MarshalBinary()
	b.SetBytes(int64(len(snap)))
	b.ReportAllocs()
	buf := make([]byte, 0, len(snap))
	for b.Loop() {
		var err error
		if buf, err = f.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
		if _, err := Restore(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(snap)), "snapshot-bytes")
}

// BenchmarkModelMemory reports the heap a default forest holds, measured,
// next to MemoryBytes.
func BenchmarkModelMemory(b *testing.B) {
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		f := mustForest(b, Config{})
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc), "heap-bytes/model")
		b.ReportMetric(float64(MemoryBytes(Config{})), "bound-bytes/model")
		runtime.KeepAlive(f)
	}
}
