package topn

import (
	"slices"
	"testing"
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func (t *table) topIdx(m int) (list []Entry) {
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
	}
	slices.SortFunc(t.sel, func(a, b int32) int { return compareEntry(&t.entries[a], &t.entries[b], true) })
	list = make([]Entry, len(t.sel))
	for j, i := range t.sel {
		list[j] = t.entries[i]
	}
	return list
}

func TestScratchAB(t *testing.T) {
	recs := processortest.LoadRecords(t, "access/zaker-access-10k.log", records.FormatCombined)
	tab := newTable(100000, 64)
	for i := range recs {
		tab.add(keyOr(recs[i].ClientIP), max(recs[i].Bytes, 0))
	}
	var a, b time.Duration
	for round := 0; round < 40; round++ {
		c0 := cpu()
		for range 200 {
			tab.topIdx(250)
		}
		c1 := cpu()
		for range 200 {
			tab.top(250)
		}
		c2 := cpu()
		a += c1 - c0
		b += c2 - c1
	}
	t.Logf("idx-sort %v/op, key-sort %v/op", a/8000, b/8000)
}
