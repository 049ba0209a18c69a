package orderflood

import (
	"testing"

	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// The real data files live in ../shared/data (processortest.DataDir skips
// the test when they are absent, as on a user's machine).

// loadRecords decodes a data file as one shard would see it.
func loadRecords(tb testing.TB, rel string, f records.Format) []records.Record {
	tb.Helper()
	return processortest.LoadRecords(tb, rel, f)
}

const (
	ordersFile = "orders/online-retail-2010-12.csv"
	zakerFile  = "access/zaker-access-10k.log"
)
