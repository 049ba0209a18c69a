package topn

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// topReference is the plain definition of table.top: sort everything by
// requests and by bytes, take the first m of each.
func topReference(t *table, m int) (list []Entry, boundReq, boundBytes int64) {
	if len(t.entries) <= m {
		list = slices.Clone(t.entries)
	} else {
		in := map[int]bool{}
		for _, byRequests := range []bool{true, false} {
			idx := make([]int, len(t.entries))
			for i := range idx {
				idx[i] = i
			}
			slices.SortFunc(idx, func(a, b int) int { return compareEntry(&t.entries[a], &t.entries[b], byRequests) })
			for _, i := range idx[:m] {
				in[i] = true
			}
		}
		for i, e := range t.entries {
			if in[i] {
				list = append(list, e)
			} else {
				boundReq, boundBytes = max(boundReq, e.Requests), max(boundBytes, e.Bytes)
			}
		}
	}
	slices.SortFunc(list, func(a, b Entry) int { return compareEntry(&a, &b, true) })
	return list, max(boundReq, t.overflowReq-t.baseReq) + t.errReq, max(boundBytes, t.overflowBytes-t.baseBytes) + t.errBytes
}

// TestTopMatchesReference: the selection gives exactly the plain
// definition's list and bounds, with many ties (small counts), few ties,
// m at and around the table size.
func TestTopMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ keys, m, maxReq, maxBytes int }{
		{600, 250, 3, 5},       // counts tie all over the boundary
		{600, 250, 1000, 1e6},  // few ties
		{600, 599, 2, 2},       // almost everything
		{251, 250, 1, 1},       // every count equal
		{1000, 1, 10, 10},      // m = 1
		{250, 250, 5, 5},       // n == m: no selection
		{5000, 100, 50, 10000}, // large table
	} {
		tab := newTable(1<<20, 0)
		for i := range tc.keys {
			k := fmt.Sprintf("10.0.%d.%d", i/256, i%256)
			for range 1 + rng.IntN(tc.maxReq) {
				tab.add(k, int64(rng.IntN(tc.maxBytes)))
			}
		}
		wl, wr, wb := topReference(tab, tc.m)
		for range 2 { // the scratch slices are reused: twice
			gl, gr, gb := tab.top(tc.m)
			if diff := cmp.Diff(wl, gl); diff != "" {
				t.Fatalf("%+v: list (-want +got):\n%s", tc, diff)
			}
			if gr != wr || gb != wb {
				t.Errorf("%+v: bounds %d/%d, want %d/%d", tc, gr, gb, wr, wb)
			}
		}
	}
}
