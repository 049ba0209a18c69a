package cloudfront

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Stored lengths of the strings in result rows: longer (or invalid
// UTF-8) values keep a prefix and a hash (window.Clip).
const (
	maxDistLen = 128 // cs(Host): a distribution domain or a CNAME
	maxEdgeLen = 32  // x-edge-location, e.g. FRA53-P1
	maxIPLen   = 45  // the longest IPv6 text form
	maxNameLen = 64  // crawler names
	// numLen is the worst-case text of one number (int64 and a tab).
	numLen = 21
	// rowBudget bounds the row text of one item, well below DynamoDB's
	// 400 KB so the header and the other attributes fit beside it.
	rowBudget = 350_000
)

// isCloudFront reports whether r is a CloudFront log record: a hit with
// an edge location.
func isCloudFront(r *records.Record) bool { return r.Kind == records.KindHit && r.Edge != "" }

// orDash is the stored form of an empty value.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stored returns the stored, owned form of s (it may alias a batch
// payload): "-" when empty, clipped to n bytes.
func stored(s string, n int) string {
	c := window.Clip(orDash(s), n)
	if c == s {
		return strings.Clone(s)
	}
	return c
}

// textRows splits a text-row attribute (see window.AppendField) into rows
// of want fields each, calling row for each.
func textRows(s string, want int, row func(i int, f []string) error) error {
	for i := 0; s != ""; i++ {
		line, rest, _ := strings.Cut(s, "\n")
		s = rest
		f := strings.Split(line, "\t")
		if len(f) != want {
			return fmt.Errorf("%w: row %d: %d fields, want %d", window.ErrBadItem, i, len(f), want)
		}
		if err := row(i, f); err != nil {
			return fmt.Errorf("%w: row %d: %v", window.ErrBadItem, i, err)
		}
	}
	return nil
}

// ints parses decimal fields into dst.
func ints(dst []*int64, f []string) error {
	for i, p := range dst {
		x, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return err
		}
		*p = x
	}
	return nil
}

// appendInts appends tab-separated numbers, each preceded by a tab.
func appendInts(b []byte, xs ...int64) []byte {
	for _, x := range xs {
		b = append(b, '\t')
		b = strconv.AppendInt(b, x, 10)
	}
	return b
}

// sortedIndex returns 0..n-1 sorted by cmp (rows are sorted by index so
// their parallel slices stay put).
func sortedIndex(n int, cmp func(a, b int32) int) []int32 {
	o := make([]int32, n)
	for i := range o {
		o[i] = int32(i)
	}
	slices.SortFunc(o, cmp)
	return o
}
