package consumer

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestQueryUsageErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"query"}, "query: which result?"},
		{[]string{"query", "topn"}, `query: unknown result "topn"`},
		{[]string{"query", "orders", "--customer", "1"}, "query orders: --app (or --table) is required"},
		{[]string{"query", "orders", "--app", "a"}, "query orders: --customer ID (or --guest) is required"},
		{[]string{"query", "orders", "--app", "a", "--customer", "1", "--guest"}, "query orders: --customer and --guest exclude each other"},
		{[]string{"query", "orders", "--app", "a", "--customer", "1", "--limit", "0"}, "query orders: --limit must be between 1 and 1000"},
		{[]string{"query", "orders", "--app", "a", "extra"}, `query orders: unexpected argument "extra"`},
		{[]string{"query", "histogram", "--app", "a", "--size", "7s"}, "query histogram: --size must be whole seconds dividing 24h"},
		{[]string{"query", "histogram", "--app", "a", "--last", "0"}, "query histogram: --last must be between 1 and 1440"},
		{[]string{"query", "histogram", "--app", "a", "--from", "2026-01-01T00:00"}, "query histogram: --from and --to go together"},
		{[]string{"query", "histogram", "--app", "a", "--from", "2026-01-01T00:00", "--to", "2026-01-01T00:00"}, "query histogram: --to must be after --from"},
		{[]string{"query", "histogram", "--app", "a", "--from", "2026-01-01T00:00", "--to", "2026-01-03T00:00"}, "query histogram: 2880 windows of 1m0s between --from and --to; at most 1440 per query"},
		{[]string{"query", "histogram", "--app", "a", "--window", "2026-01-01T00:00", "--to", "2026-01-03T00:00"}, "query histogram: --window and --from/--to exclude each other"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(t.Context(), tt.args, noEnv, &out, &out)
		if err == nil || err.Error() != tt.wantErr {
			t.Errorf("%q: error %v, want %q", tt.args, err, tt.wantErr)
		}
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"query", "--help"}, noEnv, &out, &out); err != nil || !strings.Contains(out.String(), "histogram") {
		t.Errorf("query --help: %v\n%s", err, out.String())
	}
}

func TestParseWindowTime(t *testing.T) {
	want := time.Date(2019, 1, 22, 0, 41, 0, 0, time.UTC)
	for _, in := range []string{"2019-01-22T00:41:00Z", "2019-01-22T04:11:00+03:30", "2019-01-22T00:41", "2019-01-22T00:41:00", "2019-01-22 00:41"} {
		got, err := parseWindowTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWindowTime(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := parseWindowTime("yesterday"); err == nil {
		t.Error("parseWindowTime accepted \"yesterday\"")
	}
}

func TestBucketLabels(t *testing.T) {
	got := bucketLabels([]int64{0, 1024, 10 << 20, 1500})
	want := []string{"<=0", "<=1KiB", "<=10MiB", "<=1500", ">1500"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bucketLabels (-want +got):\n%s", diff)
	}
}
