package histogram

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Row is one histogram: Counts[i] is the number of responses in bucket i
// (len(edges)+1 buckets, see Config.Buckets) and Bytes their total size.
type Row struct {
	Counts []int64
	Bytes  int64
}

// Requests returns the number of responses counted in r.
func (r Row) Requests() int64 {
	var n int64
	for _, c := range r.Counts {
		n += c
	}
	return n
}

// Add adds o to r, growing r to o's length if needed.
func (r *Row) Add(o Row) { r.add(o) }

// add adds o to r, growing r to o's length if needed.
func (r *Row) add(o Row) {
	if len(r.Counts) < len(o.Counts) {
		r.Counts = append(r.Counts, make([]int64, len(o.Counts)-len(r.Counts))...)
	}
	for i, c := range o.Counts {
		r.Counts[i] += c
	}
	r.Bytes += o.Bytes
}

// HostRow is the histogram of one host (virtual host or CloudFront edge;
// "-" when the record had none).
type HostRow struct {
	Host string
	Row
}

// Large is a path's largest response in a window.
type Large struct {
	Path  string // request path without the query string
	Host  string
	Bytes int64
}

// outranks orders the largest responses: more bytes first, then by path,
// then by host, so every list is deterministic.
func outranks(a, b *Large) bool {
	if a.Bytes != b.Bytes {
		return a.Bytes > b.Bytes
	}
	if a.Path != b.Path {
		return a.Path < b.Path
	}
	return a.Host < b.Host
}

// Partial is one shard's running histogram of one window (the "partial"
// item). All counts are exact for the shard.
type Partial struct {
	Shard      string
	Start, End time.Time
	Pos        window.Position
	Final      bool
	// Edges are the bucket upper bounds the counts use.
	Edges []int64
	// Total is every response of the window on this shard.
	Total Row
	// Hosts are the per-host histograms, sorted by host; Other sums the
	// hosts first seen after max_hosts was reached.
	Hosts []HostRow
	Other Row
	// Largest are the shard's top K paths by largest response, ranked.
	Largest []Large
}

// Global is the fleet-wide histogram of one window: the shard partials
// summed.
type Global struct {
	Start, End time.Time
	// Merged is the number of shard partials summed, Finals how many of
	// them were final: the result is complete when every shard that had
	// records in the window is merged and final. Skipped counts partials
	// with other bucket bounds (a configuration change), left out.
	Merged, Finals, Skipped int
	Edges                   []int64
	Total                   Row
	// Hosts are the max_hosts hosts with the most responses (most first,
	// then by name); the others are summed into Other.
	Hosts []HostRow
	Other Row
	// Largest are the top K paths by largest response, fleet-wide. The
	// list is exact: a path's global maximum is its maximum on some shard,
	// where fewer than K paths can rank above it, so that shard listed it.
	Largest []Large
}

// Merge sums the shard partials of one window into the global histogram,
// keeping maxHosts host rows and topK largest responses. Partials of the
// same shard must not repeat (the last one wins). The bucket bounds are
// those of the first partial given (a processor passes its own first);
// partials with other bounds are skipped and counted.
func Merge(partials []Partial, maxHosts, topK int) Global {
	var edges []int64
	if len(partials) > 0 {
		edges = partials[0].Edges
	}
	byShard := make(map[string]int, len(partials))
	ps := make([]Partial, 0, len(partials))
	for _, p := range partials {
		if i, ok := byShard[p.Shard]; ok {
			ps[i] = p
			continue
		}
		byShard[p.Shard] = len(ps)
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b Partial) int { return strings.Compare(a.Shard, b.Shard) })
	skipped := 0
	ps = slices.DeleteFunc(ps, func(p Partial) bool {
		skip := !slices.Equal(edges, p.Edges)
		if skip {
			skipped++
		}
		return skip
	})
	g := merge(ps, edges, maxHosts, topK)
	g.Skipped = skipped
	return g
}

// merge combines partials of distinct shards with the same bucket edges,
// in shard order.
func merge(ps []Partial, edges []int64, maxHosts, topK int) Global {
	g := Global{Edges: slices.Clone(edges)}
	hosts := map[string]int{}
	var rows []HostRow
	largest := map[string]Large{}
	for i := range ps {
		p := &ps[i]
		if g.Merged == 0 || p.Start.Before(g.Start) {
			g.Start, g.End = p.Start, p.End
		}
		g.Merged++
		if p.Final {
			g.Finals++
		}
		g.Total.add(p.Total)
		g.Other.add(p.Other)
		for _, h := range p.Hosts {
			j, ok := hosts[h.Host]
			if !ok {
				j = len(rows)
				hosts[h.Host] = j
				rows = append(rows, HostRow{Host: h.Host})
			}
			rows[j].add(h.Row)
		}
		for _, l := range p.Largest {
			if cur, ok := largest[l.Path]; !ok || outranks(&l, &cur) {
				largest[l.Path] = l
			}
		}
	}
	nb := len(g.Edges) + 1
	for _, r := range []*Row{&g.Total, &g.Other} {
		if len(r.Counts) < nb {
			r.add(Row{Counts: make([]int64, nb)})
		}
	}
	slices.SortFunc(rows, func(a, b HostRow) int {
		if c := cmp.Compare(b.Requests(), a.Requests()); c != 0 {
			return c
		}
		return strings.Compare(a.Host, b.Host)
	})
	if len(rows) > maxHosts {
		for _, r := range rows[maxHosts:] {
			g.Other.add(r.Row)
		}
		rows = rows[:maxHosts:maxHosts]
	}
	g.Hosts = rows
	g.Largest = make([]Large, 0, len(largest))
	for _, l := range largest {
		g.Largest = append(g.Largest, l)
	}
	sortLargest(g.Largest)
	if len(g.Largest) > topK {
		g.Largest = g.Largest[:topK:topK]
	}
	return g
}

func sortLargest(ls []Large) {
	slices.SortFunc(ls, func(a, b Large) int {
		switch {
		case outranks(&a, &b):
			return -1
		case outranks(&b, &a):
			return 1
		}
		return 0
	})
}
