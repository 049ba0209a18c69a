package topn

import (
	"cmp"
	"slices"
	"strings"
)

// table counts requests and bytes per key (client IP or host) exactly, up
// to max keys; records of keys first seen after that are added to the
// overflow totals only. Keys are looked up with the (possibly aliased)
// record string and cloned only when inserted, so the steady state does
// not allocate.
type table struct {
	max     int
	idx     map[string]int32
	entries []Entry
	// overflow: records whose key could not be tracked (max reached).
	overflowReq, overflowBytes int64
	// err*: how much any count may be understated, carried over from a
	// lossy restore (see Partial).
	errReq, errBytes int64
	// base*: overflow totals restored from a previous owner.
	baseReq, baseBytes int64
	// restoredKeys is the previous owner's distinct key count.
	restoredKeys int64
	order        []int32   // scratch for top selection
	vals         []int64   // scratch: the counts being selected on
	sel          []int32   // scratch: the listed entries
	sorted       []sortKey // scratch: their order
	mark         []bool    // scratch: entry listed
}

func newTable(max, hint int) *table {
	return &table{max: max, idx: make(map[string]int32, hint)}
}

func (t *table) add(key string, bytes int64) {
	if i, ok := t.idx[key]; ok {
		e := &t.entries[i]
		e.Requests++
		e.Bytes += bytes
		return
	}
	if len(t.entries) >= t.max {
		t.overflowReq++
		t.overflowBytes += bytes
		return
	}
	key = strings.Clone(key)
	t.idx[key] = int32(len(t.entries))
	t.entries = append(t.entries, Entry{Key: key, Requests: 1, Bytes: bytes})
}

// restore seeds t from a partial's entries and bounds.
func (t *table) restore(entries []Entry, boundReq, boundBytes, overflowReq, overflowBytes, keys int64) {
	for _, e := range entries {
		if _, dup := t.idx[e.Key]; dup || len(t.entries) >= t.max {
			continue
		}
		t.idx[e.Key] = int32(len(t.entries))
		t.entries = append(t.entries, e)
	}
	// Keys the previous owner had but did not list may have had up to the
	// bound: every count from now on may be understated by that much.
	t.errReq, t.errBytes = boundReq, boundBytes
	// The bound already covers the earlier overflow: new bounds only add
	// what overflows from now on.
	t.overflowReq, t.overflowBytes = overflowReq, overflowBytes
	t.baseReq, t.baseBytes = overflowReq, overflowBytes
	t.restoredKeys = keys
}

func (t *table) keys() int64 { return max(int64(len(t.entries)), t.restoredKeys) }

// top returns the union of the m largest entries by requests and the m
// largest by bytes (ordered by requests, then bytes, then key), plus the
// bounds: the most requests and bytes any unlisted key can have.
//
// It runs on every Flush of an open window, so it avoids comparing
// entries where it can: an integer selection finds the m-th largest count,
// every entry above it is in, and only the entries tied with it are
// ordered with the full comparison (bytes, then key).
func (t *table) top(m int) (list []Entry, boundReq, boundBytes int64) {
	n := len(t.entries)
	t.sel = t.sel[:0]
	if n <= m {
		for i := range n {
			t.sel = append(t.sel, int32(i))
		}
	} else {
		t.mark = slices.Grow(t.mark[:0], n)[:n]
		clear(t.mark)
		for _, byRequests := range []bool{true, false} {
			for _, i := range t.largest(m, byRequests) {
				if !t.mark[i] {
					t.mark[i] = true
					t.sel = append(t.sel, i)
				}
			}
		}
		for i, e := range t.entries {
			if !t.mark[i] {
				boundReq = max(boundReq, e.Requests)
				boundBytes = max(boundBytes, e.Bytes)
			}
		}
	}
	// Sort compact copies of the counts, not entries: moving an entry
	// (it holds a string) costs a write barrier while the GC runs, and
	// comparing through indexes jumps around memory.
	t.sorted = t.sorted[:0]
	for _, i := range t.sel {
		e := &t.entries[i]
		t.sorted = append(t.sorted, sortKey{req: e.Requests, bytes: e.Bytes, i: i})
	}
	slices.SortFunc(t.sorted, func(a, b sortKey) int {
		switch {
		case a.req != b.req:
			return cmp.Compare(b.req, a.req)
		case a.bytes != b.bytes:
			return cmp.Compare(b.bytes, a.bytes)
		}
		return strings.Compare(t.entries[a.i].Key, t.entries[b.i].Key)
	})
	list = make([]Entry, len(t.sorted))
	for j, k := range t.sorted {
		list[j] = t.entries[k.i]
	}
	return list, max(boundReq, t.overflowReq-t.baseReq) + t.errReq, max(boundBytes, t.overflowBytes-t.baseBytes) + t.errBytes
}

// largest returns the indexes of the m (< len(entries)) largest entries
// under compareEntry, in no particular order. The slice is scratch.
func (t *table) largest(m int, byRequests bool) []int32 {
	count := func(e *Entry) int64 {
		if byRequests {
			return e.Requests
		}
		return e.Bytes
	}
	t.vals = t.vals[:0]
	for i := range t.entries {
		t.vals = append(t.vals, count(&t.entries[i]))
	}
	// The m-th largest count: entries above it are in, entries below out.
	nth := nthLargest(t.vals, m)
	t.order = t.order[:0]
	for i := range t.entries {
		if count(&t.entries[i]) > nth {
			t.order = append(t.order, int32(i))
		}
	}
	above := len(t.order)
	for i := range t.entries {
		if count(&t.entries[i]) == nth {
			t.order = append(t.order, int32(i))
		}
	}
	if ties := t.order[above:]; len(ties) > m-above {
		selectTop(ties, m-above, func(a, b int32) int { return compareEntry(&t.entries[a], &t.entries[b], byRequests) })
	}
	return t.order[:m]
}

// nthLargest returns the k-th largest value of v (1-based), reordering v.
func nthLargest(v []int64, k int) int64 {
	lo, hi, k := 0, len(v)-1, k-1 // v[k] after a descending partial sort
	for lo < hi {
		mid := lo + (hi-lo)/2
		// median of three, descending
		if v[mid] > v[lo] {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if v[hi] > v[lo] {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if v[hi] > v[mid] {
			v[hi], v[mid] = v[mid], v[hi]
		}
		pivot := v[mid]
		i, j := lo, hi
		for i <= j {
			for v[i] > pivot {
				i++
			}
			for v[j] < pivot {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return v[k]
		}
	}
	return v[k]
}

// sortKey is an entry's counts and index, for sorting.
type sortKey struct {
	req, bytes int64
	i          int32
}

// compareEntry orders larger counts first; ties by the other count, then
// by key, so output is deterministic.
func compareEntry(a, b *Entry, byRequests bool) int {
	x1, x2, y1, y2 := a.Requests, b.Requests, a.Bytes, b.Bytes
	if !byRequests {
		x1, x2, y1, y2 = y1, y2, x1, x2
	}
	if c := cmp.Compare(x2, x1); c != 0 {
		return c
	}
	if c := cmp.Compare(y2, y1); c != 0 {
		return c
	}
	return strings.Compare(a.Key, b.Key)
}

// selectTop reorders s so its first k elements are the k smallest under
// less-is-first order cmpf (quickselect, O(len(s)) on average).
func selectTop(s []int32, k int, cmpf func(a, b int32) int) {
	lo, hi := 0, len(s)-1
	for lo < hi {
		// median of three as pivot
		mid := lo + (hi-lo)/2
		if cmpf(s[mid], s[lo]) < 0 {
			s[mid], s[lo] = s[lo], s[mid]
		}
		if cmpf(s[hi], s[lo]) < 0 {
			s[hi], s[lo] = s[lo], s[hi]
		}
		if cmpf(s[hi], s[mid]) < 0 {
			s[hi], s[mid] = s[mid], s[hi]
		}
		pivot := s[mid]
		i, j := lo, hi
		for i <= j {
			for cmpf(s[i], pivot) < 0 {
				i++
			}
			for cmpf(s[j], pivot) > 0 {
				j--
			}
			if i <= j {
				s[i], s[j] = s[j], s[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}
