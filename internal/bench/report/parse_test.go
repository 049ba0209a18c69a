package report

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseBench(t *testing.T) {
	out := `goos: linux
BenchmarkChain/zaker/full/warm-2   	   12531	    458433 ns/op	       827.2 B/record	         3.723 allocs/record	      1604 cpu-ns/record	100.0 ua-hit-%	  206808 B/op	     930 allocs/op
BenchmarkChain/zaker/full/warm-2   	   12000	    400000 ns/op	       800 B/record	         3.5 allocs/record	      1500 cpu-ns/record	100.0 ua-hit-%	  206808 B/op	     930 allocs/op
BenchmarkChain/zaker/full/warm-2   	   12000	    400000 ns/op	       800 B/record	         3.5 allocs/record	      1700 cpu-ns/record	100.0 ua-hit-%	  206808 B/op	     930 allocs/op
--- FAIL: BenchmarkBroken
PASS
ok  	github.com/shardwatch/shardwatch/internal/bench	12.3s
`
	b, err := ParseBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"BenchmarkChain/zaker/full/warm"}, b.Names("Benchmark")); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	got := map[string]float64{}
	for _, u := range []string{"cpu-ns/record", "allocs/record", "ua-hit-%", "ns/op"} {
		got[u], _ = b.Median("BenchmarkChain/zaker/full/warm", u)
	}
	want := map[string]float64{"cpu-ns/record": 1604, "allocs/record": 3.5, "ua-hit-%": 100, "ns/op": 400000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("medians (-want +got):\n%s", diff)
	}
	if _, ok := b.Median("BenchmarkNope", "ns/op"); ok {
		t.Error("median of an absent benchmark reported as measured")
	}
	if s := spread(b["BenchmarkChain/zaker/full/warm"]["cpu-ns/record"]); s < 12 || s > 13 {
		t.Errorf("spread = %.2f%%, want (1700-1500)/1604 = 12.5%%", s)
	}
}
