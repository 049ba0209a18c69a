package orderflood

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// dataDir returns ../shared/data relative to the module root (the
// directory holding go.mod), skipping the test when it is absent: a
// user's checkout has no shared data, CI does.
func dataDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("no go.mod above the test directory; cannot locate ../shared/data")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(data); err != nil {
		tb.Skipf("shared test data not found at %s (present in CI; see SOURCES.md there): %v", data, err)
	}
	return data
}

// readLines returns the non-empty lines of a data file.
func readLines(tb testing.TB, rel string) []string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir(tb), rel))
	if err != nil {
		tb.Fatalf("read test data: %v", err)
	}
	var out []string
	for l := range bytes.SplitSeq(b, []byte("\n")) {
		if len(l) > 0 {
			out = append(out, string(l))
		}
	}
	return out
}

// loadRecords decodes a data file with format f and fills Meta as one
// shard would (processortest.Sequence). Header and undecodable lines are
// skipped.
func loadRecords(tb testing.TB, rel string, f records.Format) []records.Record {
	tb.Helper()
	dec, err := records.NewDecoder(f)
	if err != nil {
		tb.Fatal(err)
	}
	var recs []records.Record
	for _, l := range readLines(tb, rel) {
		var r records.Record
		if err := dec.Decode([]byte(l), &r); err != nil {
			if !errors.Is(err, records.ErrHeader) {
				tb.Logf("%s: skip undecodable line: %v", rel, err)
			}
			continue
		}
		recs = append(recs, r)
	}
	return processortest.Sequence("shardId-000000000001", recs)
}

const (
	ordersFile = "orders/online-retail-2010-12.csv"
	zakerFile  = "access/zaker-access-10k.log"
)
