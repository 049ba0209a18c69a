package records_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
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

// readLines returns the lines of a data file without their newlines.
func readLines(tb testing.TB, rel string) [][]byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir(tb), rel))
	if err != nil {
		tb.Fatalf("read test data: %v", err)
	}
	lines := bytes.Split(b, []byte("\n"))
	if n := len(lines); n > 0 && len(lines[n-1]) == 0 {
		lines = lines[:n-1]
	}
	return lines
}

// line returns line n (1-based, as editors and grep -n count) of a file.
func line(tb testing.TB, rel string, n int) []byte {
	tb.Helper()
	lines := readLines(tb, rel)
	if n < 1 || n > len(lines) {
		tb.Fatalf("%s has %d lines, want line %d", rel, len(lines), n)
	}
	return lines[n-1]
}

const (
	zakerFile      = "access/zaker-access-10k.log"
	elasticFile    = "access/elastic-apache_logs.log"
	cloudfrontFile = "cloudfront/aws-samples-cloudfront.log"
	ordersFile     = "orders/online-retail-2010-12.csv"
)
