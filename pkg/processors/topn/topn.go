package topn

import (
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Name is the plugin name (the key under "processors:" in the config).
const Name = "topn"

// Plugin returns the topn plugin for a processors.Registry.
func Plugin() processors.Plugin {
	return windowed.Define(Name,
		"top N client IPs by requests and bytes, and bytes per host, per tumbling window, global across shards",
		DefaultConfig, func(cfg Config, _ processors.AppInfo) (windowed.Spec, windowed.Aggregate[*state], error) {
			spec := windowed.Spec{Kinds: []records.Kind{records.KindHit}, Windows: []windowed.Window{{Config: cfg.Config}}}
			return spec, &aggregate{cfg: cfg, m: cfg.M()}, nil
		})
}

// state is one window's exact per-shard counts, or (decoded) the
// partials of shards to merge.
type state struct {
	ips, hosts      *table
	requests, bytes int64
	parts           []Partial
}

// aggregate is topn's windowed.Aggregate.
type aggregate struct {
	cfg Config
	m   int
}

func (a *aggregate) New() *state {
	return &state{ips: newTable(a.cfg.MaxKeys, 64), hosts: newTable(a.cfg.MaxHosts, 4)}
}

func (a *aggregate) Add(st *state, r *records.Record) {
	b := max(r.Bytes, 0)
	st.requests++
	st.bytes += b
	st.ips.add(keyOr(r.ClientIP), b)
	st.hosts.add(keyOr(r.Host), b)
}

func keyOr(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *aggregate) Encode(st *state, f *windowed.Fields) {
	part := Partial{
		Requests: st.requests, Bytes: st.bytes, Keys: st.ips.keys(),
		OverflowRequests: st.ips.overflowReq, OverflowBytes: st.ips.overflowBytes,
		ErrRequests: st.ips.errReq, ErrBytes: st.ips.errBytes,
		HostErrRequests: st.hosts.errReq, HostErrBytes: st.hosts.errBytes,
	}
	part.IPs, part.BoundRequests, part.BoundBytes = st.ips.top(a.m)
	part.Hosts, part.HostBoundRequests, part.HostBoundBytes = st.hosts.top(a.m)
	encodePartial(f, &part)
}

// Decode restores a partial's counts (a truncated list makes its bound
// every later count's possible error) and keeps the partial for Merge.
func (a *aggregate) Decode(f *windowed.Fields) (*state, error) {
	part, err := decodePartial(f)
	if err != nil {
		return nil, err
	}
	st := a.New()
	st.requests, st.bytes = part.Requests, part.Bytes
	st.ips.restore(part.IPs, part.BoundRequests, part.BoundBytes, part.OverflowRequests, part.OverflowBytes, part.Keys)
	st.hosts.restore(part.Hosts, part.HostBoundRequests, part.HostBoundBytes, 0, 0, int64(len(part.Hosts)))
	st.parts = []Partial{part}
	return st, nil
}

// Merge collects the shards' partials: a merged count's error bound needs
// every shard's bound, so they are combined at once in Result.
func (a *aggregate) Merge(dst, src *state) *state {
	dst.parts = append(dst.parts, src.parts...)
	return dst
}

func (a *aggregate) Result(st *state, w windowed.Info, out *windowed.Output) {
	g := merge(st.parts, a.cfg.N)
	encodeGlobal(out.Global, &g, a.cfg.N)
}

func (a *aggregate) Size(st *state) int { return len(st.ips.entries) + len(st.hosts.entries) }
