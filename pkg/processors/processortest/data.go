package processortest

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// DataDir returns the shared test data directory (../shared/data next to
// the module root), or skips tb when it is absent (a user's checkout has
// no ../shared; CI does).
func DataDir(tb testing.TB) string {
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
			tb.Skip("no go.mod above the test directory; shared test data unavailable")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(data); errors.Is(err, os.ErrNotExist) {
		tb.Skipf("shared test data not found at %s (present in CI only)", data)
	}
	return data
}

// LoadRecords decodes every line of the data file rel (relative to
// DataDir, e.g. "access/zaker-access-10k.log") with format f, skipping
// header lines and lines that do not decode, and fills Meta as one shard
// (see Sequence). Each record owns its strings.
func LoadRecords(tb testing.TB, rel string, f records.Format) []records.Record {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(DataDir(tb), rel))
	if err != nil {
		tb.Fatalf("read test data: %v", err)
	}
	dec, err := records.NewDecoder(f)
	if err != nil {
		tb.Fatalf("decoder: %v", err)
	}
	out := make([]records.Record, 0, bytes.Count(raw, []byte{'\n'})+1)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, records.Record{})
		if err := dec.Decode(bytes.Clone(sc.Bytes()), &out[len(out)-1]); err != nil {
			out = out[:len(out)-1]
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("scan %s: %v", rel, err)
	}
	if len(out) == 0 {
		tb.Fatalf("no record of %s decoded as %s", rel, f)
	}
	return Sequence("shardId-000000000001", out)
}

// ReadLines returns the non-empty lines of a file under DataDir (skipping
// the test when the data is absent).
func ReadLines(tb testing.TB, rel string) []string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(DataDir(tb), rel))
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
