package topn

import (
	"testing"

	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// BenchmarkTop is the candidate selection every Flush does for an open
// window: the top 250 by requests and by bytes of the Zaker log's 605
// client IPs (one window of a busy shard), then the sort of the list.
func BenchmarkTop(b *testing.B) {
	recs := processortest.LoadRecords(b, "access/zaker-access-10k.log", records.FormatCombined)
	t := newTable(100000, 64)
	for i := range recs {
		t.add(keyOr(recs[i].ClientIP), max(recs[i].Bytes, 0))
	}
	m := DefaultConfig().M()
	b.ReportAllocs()
	for b.Loop() {
		t.top(m)
	}
	b.ReportMetric(float64(len(t.entries)), "keys")
}
