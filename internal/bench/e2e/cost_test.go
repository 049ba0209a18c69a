package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseUnitsAndTableClasses(t *testing.T) {
	in := `# HELP shardwatch_dynamodb_units_total DynamoDB capacity units
# TYPE shardwatch_dynamodb_units_total counter
shardwatch_dynamodb_units_total{kind="write",table="cost-1"} 12.5
shardwatch_dynamodb_units_total{kind="read",table="cost-1-results"} 3
shardwatch_dynamodb_units_total{kind="write",table="other-results"} 7
go_goroutines 12
`
	got, err := parseUnits(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]float64{{"cost-1", "write"}: 12.5, {"cost-1-results", "read"}: 3, {"other-results", "write"}: 7}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("units (-want +got):\n%s", d)
	}
	for table, class := range map[string]string{"cost-1": "leases", "cost-1-results": "results", "cost-1-orders": "orders", "other-results": "", "cost-1-x": ""} {
		if c := tableClass("cost-1", table); c != class {
			t.Errorf("tableClass(%s) = %q; want %q", table, c, class)
		}
	}
	r := CostRun{Write: map[string]float64{"leases": 1, "results": 2, "orders": 10}, Read: map[string]float64{"results": 4}}
	if w, rd := r.Core(); w != 3 || rd != 4 {
		t.Errorf("Core = %v, %v; want 3, 4", w, rd)
	}
	// 3 WRU and 4 RRU per second for 730 hours: 3*0.625*2.628 + 4*0.125*2.628.
	if d := r.DollarsPerShardMonth(false); d < 6.24 || d > 6.25 {
		t.Errorf("$ per shard-month = %v; want ~6.24", d)
	}
}
