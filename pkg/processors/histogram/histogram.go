package histogram

import (
	"fmt"
	"slices"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Name is the plugin name (the key under "processors:" in the config).
const Name = "histogram"

// Plugin returns the histogram plugin for a processors.Registry.
func Plugin() processors.Plugin {
	return windowed.Define(Name,
		"response-size histogram per tumbling window and host, plus the largest responses by path, global across shards",
		DefaultConfig, func(cfg Config, _ processors.AppInfo) (windowed.Spec, windowed.Aggregate[*state], error) {
			cfg.MaxHosts = cfg.HostCap()
			spec := windowed.Spec{Name: cfg.Name, Kinds: []records.Kind{records.KindHit}, Windows: []windowed.Window{{Config: cfg.Config}}}
			return spec, &aggregate{cfg: cfg, edges: cfg.Edges()}, nil
		})
}

// aggregate is histogram's windowed.Aggregate.
type aggregate struct {
	cfg   Config
	edges []int64
}

func (a *aggregate) New() *state { return newState(len(a.edges)+1, a.cfg.MaxHosts, a.cfg.TopK) }

func (a *aggregate) Add(st *state, r *records.Record) {
	b := max(r.Bytes, 0)
	st.add(r.Host, bucketOf(a.edges, b), b)
	st.top.offer(r.Path, r.Host, b)
}

func (a *aggregate) Encode(st *state, f *windowed.Fields) {
	part := Partial{Edges: a.edges}
	st.partial(&part)
	putHistogram(f, part.Edges, part.Total, part.Hosts, part.Other, part.Largest)
}

// Decode restores a partial and keeps it for Merge; a partial with other
// bucket bounds is incompatible.
func (a *aggregate) Decode(f *windowed.Fields) (*state, error) {
	var part Partial
	if err := parseHistogram(f, &part.Edges, &part.Total, &part.Hosts, &part.Other, &part.Largest); err != nil {
		return nil, err
	}
	if !slices.Equal(part.Edges, a.edges) {
		return nil, fmt.Errorf("bucket bounds %v: %w", part.Edges, windowed.ErrIncompatible)
	}
	st := a.New()
	st.restore(&part)
	st.parts = []Partial{part}
	return st, nil
}

// Merge collects the shards' partials; Result combines them at once (the
// host cap applies to the merged rows).
func (a *aggregate) Merge(dst, src *state) *state {
	dst.parts = append(dst.parts, src.parts...)
	return dst
}

func (a *aggregate) Result(st *state, w windowed.Info, out *windowed.Output) {
	g := merge(st.parts, a.edges, a.cfg.MaxHosts, a.cfg.TopK)
	putHistogram(out.Global, g.Edges, g.Total, g.Hosts, g.Other, g.Largest)
	out.Global.SetInt(attrSkipped, int64(w.Skipped))
}

func (a *aggregate) Size(st *state) int { return st.size() }
