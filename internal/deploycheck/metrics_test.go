package deploycheck

import (
	"go/ast"
	"go/token"
	"maps"
	"slices"
	"strconv"
	"testing"
)

// pendingMetrics are documented metrics (deploy/ecs/METRICS.md, "pending")
// that no consumer code publishes yet; the alarms on them cannot fire
// until it does. An entry whose metric is now published fails the test,
// so the list only shrinks.
var pendingMetrics = map[string]bool{}

// Every metric the alarms and dashboard rely on has a publisher: its name
// appears as a string constant in code reachable from cmd/consumer.
// (Dimensions are not checked here; METRICS.md documents them.)
func TestDocumentedMetricsArePublished(t *testing.T) {
	root := repoRoot(t)
	modPath := modulePath(t, root)
	pkgs, err := ParsePackages(root, modPath)
	if err != nil {
		t.Fatal(err)
	}
	main := modPath + "/cmd/consumer"
	if pkgs[main] == nil {
		t.Skip("cmd/consumer does not exist yet")
	}
	literals := map[string]bool{}
	for _, p := range Reachable(pkgs, main) {
		for _, f := range pkgs[p].files {
			ast.Inspect(f, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						literals[s] = true
					}
				}
				return true
			})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(documentedMetrics(t))) {
		switch {
		case pendingMetrics[name] && literals[name]:
			t.Errorf("%s is published now: remove it from pendingMetrics and the METRICS.md pending note", name)
		case !pendingMetrics[name] && !literals[name]:
			t.Errorf("METRICS.md documents %s, but no code reachable from cmd/consumer names it", name)
		}
	}
}
