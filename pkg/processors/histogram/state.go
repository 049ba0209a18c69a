package histogram

import (
	"slices"
	"strings"

	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// state is one window's histograms on one shard. Rows live in one flat
// slice ([bytes, count0, count1, ...] per host) so counting a record is
// two increments after one map lookup, and a new host costs one append.
type state struct {
	nb       int // buckets
	maxHosts int
	idx      map[string]int32 // host -> row
	hosts    []string
	rows     []int64
	other    []int64
	// last is a one-entry cache in front of idx: consecutive records of
	// one host (the common case in a shard) skip the map.
	lastHost string
	lastRow  int32
	top      topK
	parts    []Partial // decoded partials to merge
}

func newState(nb, maxHosts, k int) *state {
	return &state{
		nb: nb, maxHosts: maxHosts,
		idx:     make(map[string]int32, 4),
		other:   make([]int64, nb+1),
		lastRow: -1,
		top:     topK{k: k},
	}
}

// row returns the counters of host (the overflow row when max_hosts is
// reached). host may alias a batch payload: it is cloned on insert.
func (s *state) row(host string) []int64 {
	w := s.nb + 1
	if host == "" {
		host = "-"
	}
	if s.lastRow >= 0 && host == s.lastHost {
		return s.rows[int(s.lastRow)*w : int(s.lastRow+1)*w]
	}
	i, ok := s.idx[host]
	if !ok {
		key := hostKey(host)
		if i, ok = s.idx[key]; !ok {
			if len(s.hosts) >= s.maxHosts {
				return s.other
			}
			key = strings.Clone(key)
			i = int32(len(s.hosts))
			s.idx[key] = i
			s.hosts = append(s.hosts, key)
			s.rows = append(s.rows, make([]int64, w)...)
		}
	}
	s.lastHost, s.lastRow = s.hosts[i], i
	return s.rows[int(i)*w : int(i+1)*w]
}

func (s *state) add(host string, bucket int, bytes int64) {
	r := s.row(host)
	r[0] += bytes
	r[1+bucket]++
}

// size is the number of keys held (hosts plus largest responses).
func (s *state) size() int { return len(s.hosts) + len(s.top.h) }

// partial fills p's histograms from s (hosts sorted by name).
func (s *state) partial(p *Partial) {
	w := s.nb + 1
	p.Total = Row{Counts: make([]int64, s.nb)}
	p.Other = rowOf(s.other)
	p.Total.add(p.Other)
	order := make([]int32, len(s.hosts))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(s.hosts[a], s.hosts[b]) })
	p.Hosts = make([]HostRow, len(order))
	for j, i := range order {
		p.Hosts[j] = HostRow{Host: s.hosts[i], Row: rowOf(s.rows[int(i)*w : int(i+1)*w])}
		p.Total.add(p.Hosts[j].Row)
	}
	p.Largest = slices.Clone(s.top.h)
	sortLargest(p.Largest)
}

func rowOf(r []int64) Row { return Row{Bytes: r[0], Counts: slices.Clone(r[1:])} }

// restore seeds s from a previous owner's partial with the same buckets.
func (s *state) restore(p *Partial) {
	for _, h := range p.Hosts {
		if len(h.Counts) != s.nb {
			continue
		}
		r := s.row(h.Host)
		r[0] += h.Bytes
		for i, c := range h.Counts {
			r[1+i] += c
		}
	}
	if len(p.Other.Counts) == s.nb {
		s.other[0] += p.Other.Bytes
		for i, c := range p.Other.Counts {
			s.other[1+i] += c
		}
	}
	for _, l := range p.Largest {
		s.top.offer(l.Path, l.Host, l.Bytes)
	}
}

// topK keeps the k paths with the largest responses exactly: a min-heap
// whose root is the lowest ranked entry. The root only ever rises, so a
// path once evicted (or never admitted) had a maximum below every kept
// entry, and any later response of it that could rank is admitted with
// that response's size, its maximum.
type topK struct {
	k int
	h []Large
}

func (t *topK) offer(path, host string, bytes int64) {
	if t.k == 0 || (len(t.h) == t.k && bytes < t.h[0].Bytes) {
		return // fast path: cannot rank, and cannot raise a kept path
	}
	c := Large{Path: PathKey(path), Host: hostKey(host), Bytes: bytes}
	for i := range t.h {
		if t.h[i].Path == c.Path {
			if outranks(&c, &t.h[i]) {
				t.h[i].Bytes, t.h[i].Host = c.Bytes, strings.Clone(c.Host)
				t.down(i)
			}
			return
		}
	}
	if len(t.h) < t.k {
		c.Path, c.Host = strings.Clone(c.Path), strings.Clone(c.Host)
		t.h = append(t.h, c)
		t.up(len(t.h) - 1)
		return
	}
	if outranks(&c, &t.h[0]) {
		c.Path, c.Host = strings.Clone(c.Path), strings.Clone(c.Host)
		t.h[0] = c
		t.down(0)
	}
}

// lower reports whether heap entry i ranks below j.
func (t *topK) lower(i, j int) bool { return outranks(&t.h[j], &t.h[i]) }

func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.lower(i, p) {
			return
		}
		t.h[i], t.h[p] = t.h[p], t.h[i]
		i = p
	}
}

func (t *topK) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(t.h) {
			return
		}
		m := l
		if r := l + 1; r < len(t.h) && t.lower(r, l) {
			m = r
		}
		if !t.lower(m, i) {
			return
		}
		t.h[i], t.h[m] = t.h[m], t.h[i]
		i = m
	}
}

// bucketOf returns the bucket of a response of b bytes: the first bound
// >= b, or the overflow bucket len(edges).
func bucketOf(edges []int64, b int64) int {
	if len(edges) > 8 {
		i, _ := slices.BinarySearch(edges, b)
		return i
	}
	for i, e := range edges {
		if b <= e {
			return i
		}
	}
	return len(edges)
}

// hostKey is the stored form of a host: "-" when empty, otherwise window.Clip.
func hostKey(h string) string {
	if h == "" {
		return "-"
	}
	return window.Clip(h, maxHostLen)
}

// PathKey is the stored form of a request path in the largest-responses
// lists: without the query string (so /img?v=1 and /img?v=2 are one
// path), "-" when empty, and at most 512 bytes of valid UTF-8 (a longer or
// invalid path keeps its valid prefix, then "~" and a hash of the whole).
func PathKey(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if p == "" {
		return "-"
	}
	return window.Clip(p, maxPathLen)
}
