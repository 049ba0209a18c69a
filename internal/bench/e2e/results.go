package e2e

import (
	"math"
	"slices"
)

// Percentiles summarise a latency sample in milliseconds.
type Percentiles struct {
	N                  int
	P50, P90, P99, Max float64
}

// Summarize returns the percentiles of ms (nearest-rank method).
func Summarize(ms []float64) Percentiles {
	if len(ms) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Percentiles{N: len(s), P50: rank(50), P90: rank(90), P99: rank(99), Max: s[len(s)-1]}
}

// Phase is one phase of a run: "live" (records put at a fixed rate while
// the workers run) or "max" (put as fast as the stream takes them).
type Phase struct {
	Records    int     `json:"records"`
	Seen       int     `json:"seen"`
	Seconds    float64 `json:"seconds"` // first put to last result
	PutSeconds float64 `json:"put_seconds"`
	// RecordsPerSec is Seen / Seconds.
	RecordsPerSec float64 `json:"records_per_sec"`
	CPUSeconds    float64 `json:"cpu_seconds"` // all workers of the fleet
	CPUPer1000    float64 `json:"cpu_per_1000"`
	// LatencyMs: put (the producer's timestamp) to the worker's audit line,
	// written after the record's results are durable.
	LatencyMs Percentiles `json:"latency_ms"`
}

// Alarms sums up the order bursts of the live phase and the alarms they
// raised (consumer only).
type Alarms struct {
	Bursts    int         `json:"bursts"`
	Missed    int         `json:"missed"`
	Extra     int         `json:"extra"`
	LatencyMs Percentiles `json:"latency_ms"`
	// SamplesMs are the latencies themselves (one per burst), so a
	// report can pool them over runs.
	SamplesMs []float64 `json:"samples_ms"`
}

// Run is one (consumer, fleet size, repetition).
type Run struct {
	Kind    Kind   `json:"kind"`
	Workers int    `json:"workers"`
	Rep     int    `json:"rep"`
	Stream  string `json:"stream"`
	// LeaseSeconds is the time from starting the workers until they held
	// every shard.
	LeaseSeconds float64 `json:"lease_seconds"`
	Live         Phase   `json:"live"`
	Max          Phase   `json:"max"`
	Alarms       Alarms  `json:"alarms"`
	// PeakRSS is the largest VmHWM of the fleet's processes during the
	// live phase (start-up included), PeakRSSMax during the max phase
	// (the peak is reset in between), in bytes.
	PeakRSS         int64     `json:"peak_rss"`
	PeakRSSMax      int64     `json:"peak_rss_max"`
	ShutdownSeconds []float64 `json:"shutdown_seconds"`
	Duplicates      int       `json:"duplicates"`
	Errors          []string  `json:"errors,omitempty"`
	// Profiled runs took the pprof profiles; their CPU is not comparable
	// and the report leaves them out of the figures.
	Profiled bool `json:"profiled,omitempty"`
}

// Session is everything one `make bench` end-to-end run measured.
type Session struct {
	Started  string   `json:"started"`
	Config   Config   `json:"config"`
	Host     Host     `json:"host"`
	Runs     []Run    `json:"runs"`
	Profiles []string `json:"profiles,omitempty"` // file names in OutDir
	Notes    []string `json:"notes,omitempty"`
}

// Host describes the machine (shared machines make wall time noisy).
type Host struct {
	CPUs      int    `json:"cpus"`
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
	GoVersion string `json:"go_version"`
}
