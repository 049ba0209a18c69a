package topn

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Entry is one key's counts.
type Entry struct {
	Key      string
	Requests int64
	Bytes    int64
}

// Partial is one shard's running result for one window (the "partial"
// item). Counts are exact per shard unless a lossy restore or the key cap
// made them bounds; the Bound and Err fields say by how much.
type Partial struct {
	Shard      string
	Start, End time.Time
	Pos        window.Position
	Final      bool
	// Requests and Bytes are the shard's totals for the window (exact).
	Requests, Bytes int64
	// Keys is the number of distinct client IPs counted.
	Keys int64
	// Overflow* are the records of IPs first seen after max_keys was
	// reached, which are not counted per IP.
	OverflowRequests, OverflowBytes int64
	// IPs lists the union of the shard's top M client IPs by requests and
	// its top M by bytes.
	IPs []Entry
	// BoundRequests/BoundBytes: the most requests/bytes any IP missing
	// from IPs can have on this shard (0 when IPs is complete).
	BoundRequests, BoundBytes int64
	// ErrRequests/ErrBytes: how much a listed count may be below the
	// truth (non-zero only after restoring a truncated partial).
	ErrRequests, ErrBytes int64
	// Hosts are the per-host (virtual host or CloudFront edge) counts, top
	// M by requests and by bytes, with their own bounds.
	Hosts                             []Entry
	HostBoundRequests, HostBoundBytes int64
	HostErrRequests, HostErrBytes     int64
}

// Ranked is a merged entry: the true counts lie in [Requests,
// Requests+ErrRequests] and [Bytes, Bytes+ErrBytes].
type Ranked struct {
	Entry
	ErrRequests, ErrBytes int64
}

// Global is the fleet-wide result of one window: the shard partials
// merged.
type Global struct {
	Start, End time.Time
	// Merged is the number of shard partials combined; Finals how many of
	// them were final. The result is complete when every shard that had
	// records in the window is merged and final.
	Merged, Finals  int
	Requests, Bytes int64
	// Keys sums the shards' distinct IP counts (an upper bound of the
	// fleet's distinct IPs when an IP reaches several shards).
	Keys                            int64
	OverflowRequests, OverflowBytes int64
	// TopRequests are the N IPs with most requests, TopBytes the N with
	// most bytes; Hosts the N hosts with most bytes.
	TopRequests, TopBytes, Hosts []Ranked
	// BoundRequests/BoundBytes: the most any IP missing from the lists can
	// have fleet-wide.
	BoundRequests, BoundBytes int64
}

// Exact reports whether every listed count is exact and no unlisted IP
// can outrank a listed one.
func (g *Global) Exact() bool {
	for _, r := range g.TopRequests {
		if r.ErrRequests != 0 {
			return false
		}
	}
	for _, r := range g.TopBytes {
		if r.ErrBytes != 0 {
			return false
		}
	}
	return true
}

// Merge combines shard partials of one window into the global top n.
//
// A key's merged count sums the shards that list it; its error sums, over
// the shards that do not list it, their bound, and over those that do,
// their Err. With exact per-shard counts and partition key = client IP
// (every IP lives on one shard) the other shards' bounds do not apply to
// an IP in reality, but Merge cannot know the partitioning, so it reports
// the conservative bound; the error is 0 whenever every shard listed all
// its IPs (at most M per shard and window), which is the common case.
// Partials of the same shard must not repeat (the last one wins).
func Merge(partials []Partial, n int) Global {
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
	return merge(ps, n)
}

// merge combines partials of distinct shards, in shard order.
func merge(ps []Partial, n int) Global {
	g := Global{}
	for i, p := range ps {
		if i == 0 || p.Start.Before(g.Start) {
			g.Start, g.End = p.Start, p.End
		}
		g.Merged++
		if p.Final {
			g.Finals++
		}
		g.Requests += p.Requests
		g.Bytes += p.Bytes
		g.Keys += p.Keys
		g.OverflowRequests += p.OverflowRequests
		g.OverflowBytes += p.OverflowBytes
		g.BoundRequests += p.BoundRequests
		g.BoundBytes += p.BoundBytes
	}
	ips := mergeEntries(ps, func(p *Partial) ([]Entry, [4]int64) {
		return p.IPs, [4]int64{p.BoundRequests, p.BoundBytes, p.ErrRequests, p.ErrBytes}
	})
	hosts := mergeEntries(ps, func(p *Partial) ([]Entry, [4]int64) {
		return p.Hosts, [4]int64{p.HostBoundRequests, p.HostBoundBytes, p.HostErrRequests, p.HostErrBytes}
	})
	g.TopRequests = topRanked(ips, n, true)
	g.TopBytes = topRanked(ips, n, false)
	g.Hosts = topRanked(hosts, n, false)
	return g
}

func mergeEntries(ps []Partial, get func(*Partial) ([]Entry, [4]int64)) []Ranked {
	idx := map[string]int{}
	var out []Ranked
	var sumBoundReq, sumBoundBytes int64
	for i := range ps {
		entries, b := get(&ps[i])
		sumBoundReq += b[0]
		sumBoundBytes += b[1]
		for _, e := range entries {
			j, ok := idx[e.Key]
			if !ok {
				j = len(out)
				idx[e.Key] = j
				out = append(out, Ranked{Entry: Entry{Key: e.Key}})
			}
			r := &out[j]
			r.Requests += e.Requests
			r.Bytes += e.Bytes
			// A listing shard contributes its Err instead of its bound:
			// add Err - bound here, the sum of all bounds below.
			r.ErrRequests += b[2] - b[0]
			r.ErrBytes += b[3] - b[1]
		}
	}
	for i := range out {
		out[i].ErrRequests += sumBoundReq
		out[i].ErrBytes += sumBoundBytes
	}
	return out
}

func topRanked(all []Ranked, n int, byRequests bool) []Ranked {
	s := slices.Clone(all)
	slices.SortFunc(s, func(a, b Ranked) int {
		if c := compareEntry(&a.Entry, &b.Entry, byRequests); c != 0 {
			return c
		}
		return cmp.Compare(a.ErrRequests, b.ErrRequests)
	})
	if len(s) > n {
		s = s[:n:n]
	}
	return s
}
