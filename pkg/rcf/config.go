package rcf

import (
	"errors"
	"fmt"
	"math"
)

// Defaults of Kinesis Data Analytics' RANDOM_CUT_FOREST function.
const (
	DefaultTrees       = 100
	DefaultSampleSize  = 256
	DefaultTimeDecay   = 100_000
	DefaultShingleSize = 1
	DefaultDimensions  = 1
)

// Limits that bound a model's memory and a snapshot's size. A snapshot
// decoder checks a snapshot's config against them before allocating.
const (
	MaxTrees      = 1000
	MaxSampleSize = 4096
	// MaxPointDims bounds Dimensions × ShingleSize.
	MaxPointDims = 256
	// MaxModelBytes bounds MemoryBytes of one forest (64 MiB; the
	// default config takes about 1.8 MB).
	MaxModelBytes = 64 << 20
)

// Config configures a Forest. The zero value of a field means its
// default; Validate reports values out of range.
type Config struct {
	// Trees is the number of trees (KDA numberOfTrees). Default 100.
	Trees int `yaml:"trees"`
	// SampleSize is the number of points each tree keeps (KDA
	// subSampleSize). Default 256.
	SampleSize int `yaml:"sample_size"`
	// TimeDecay is the decay horizon in points (KDA timeDecay), default
	// 100,000: a tree samples with weight exp(age/TimeDecay) in favour of
	// newer points (see the package documentation). +Inf disables decay
	// (a uniform reservoir over the whole stream).
	TimeDecay float64 `yaml:"time_decay"`
	// ShingleSize is the number of consecutive inputs concatenated into
	// one point, so a series is scored by its recent shape. Default 1.
	ShingleSize int `yaml:"shingle_size"`
	// Dimensions is the number of values per input. Default 1.
	Dimensions int `yaml:"dimensions"`
	// OutputAfter is the number of points the forest must have taken in
	// before it returns non-zero scores. Default SampleSize/4 (as the AWS
	// library); 0 means the default, negative values are invalid.
	OutputAfter int `yaml:"output_after"`
	// Seed makes the forest deterministic: the same seed and inputs give
	// the same scores.
	Seed uint64 `yaml:"seed"`
}

// ErrInvalidConfig is matched (errors.Is) by every *ConfigError.
var ErrInvalidConfig = errors.New("rcf: invalid config")

// ConfigError names the field of Config that is out of range.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "rcf: config " + e.Field + ": " + e.Reason }

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Trees == 0 {
		c.Trees = DefaultTrees
	}
	if c.SampleSize == 0 {
		c.SampleSize = DefaultSampleSize
	}
	if c.TimeDecay == 0 {
		c.TimeDecay = DefaultTimeDecay
	}
	if c.ShingleSize == 0 {
		c.ShingleSize = DefaultShingleSize
	}
	if c.Dimensions == 0 {
		c.Dimensions = DefaultDimensions
	}
	if c.OutputAfter == 0 {
		c.OutputAfter = max(1, c.SampleSize/4)
	}
	return c
}

// Validate checks c after defaults are applied (see WithDefaults).
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.Trees < 1 || c.Trees > MaxTrees:
		return &ConfigError{"trees", fmt.Sprintf("%d not in [1, %d]", c.Trees, MaxTrees)}
	case c.SampleSize < 2 || c.SampleSize > MaxSampleSize:
		return &ConfigError{"sample_size", fmt.Sprintf("%d not in [2, %d]", c.SampleSize, MaxSampleSize)}
	case math.IsNaN(c.TimeDecay) || c.TimeDecay < 1:
		return &ConfigError{"time_decay", fmt.Sprintf("%v: want >= 1 (or +Inf for no decay)", c.TimeDecay)}
	case c.ShingleSize < 1 || c.Dimensions < 1 || c.ShingleSize > MaxPointDims || c.Dimensions > MaxPointDims ||
		c.ShingleSize*c.Dimensions > MaxPointDims:
		return &ConfigError{"shingle_size", fmt.Sprintf("shingle_size %d × dimensions %d not in [1, %d]", c.ShingleSize, c.Dimensions, MaxPointDims)}
	case c.OutputAfter < 0:
		return &ConfigError{"output_after", fmt.Sprintf("%d is negative", c.OutputAfter)}
	case MemoryBytes(c) > MaxModelBytes:
		return &ConfigError{"trees", fmt.Sprintf("a forest of %d bytes exceeds %d", MemoryBytes(c), MaxModelBytes)}
	}
	return nil
}

// pointDims is the length of a (shingled) point.
func (c Config) pointDims() int { return c.ShingleSize * c.Dimensions }

// lambda is the decay rate per point: 1/TimeDecay, 0 for +Inf.
func (c Config) lambda() float64 {
	if math.IsInf(c.TimeDecay, 1) {
		return 0
	}
	return 1 / c.TimeDecay
}
