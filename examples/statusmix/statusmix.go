// Package statusmix counts responses per HTTP status class per window, fleet-wide.
package statusmix

import (
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Config is the plugin's settings: window, grace and idle.
type Config struct {
	window.Config `yaml:",inline"`
}

// Plugin returns the statusmix plugin for consumer.WithPlugins.
func Plugin() processors.Plugin {
	return windowed.Define("statusmix", "responses per status class per window, global across shards",
		func() Config { return Config{windowed.DefaultWindow()} },
		func(cfg Config, _ processors.AppInfo) (windowed.Spec, windowed.Aggregate[*classes], error) {
			return windowed.Tumbling(cfg.Config, records.KindHit), aggregate{}, nil
		})
}

type classes [6]int64 // responses by status/100; 0 = outside 100-599
type aggregate struct{}

func (aggregate) New() *classes { return new(classes) }
func (aggregate) Add(c *classes, r *records.Record) {
	c[min(max(r.Status/100, 0), 6)%6]++ // 1xx..5xx; 0 = anything else
}

func (aggregate) Merge(dst, src *classes) *classes {
	for i := range dst {
		dst[i] += src[i]
	}
	return dst
}

func (aggregate) Encode(c *classes, f *windowed.Fields) { f.SetInts("classes", c[:]) }
func (aggregate) Decode(f *windowed.Fields) (*classes, error) {
	xs, err := f.Ints("classes")
	var c classes
	copy(c[:], xs) // extra entries are ignored, missing ones are 0
	return &c, err
}

func (aggregate) Result(c *classes, _ windowed.Info, out *windowed.Output) {
	out.Global.SetInts("classes", c[:])
}
