package statusmix_test

import (
	"fmt"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/examples/statusmix"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// traffic is ten minutes of hits, a few seconds out of order.
func traffic() []records.Record {
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	statuses := []int{200, 200, 304, 404, 200, 500, 301, 200, 0, 999}
	recs := make([]records.Record, 3000)
	for i := range recs {
		recs[i] = records.Record{Kind: records.KindHit, Time: t0.Add(time.Duration(i)*200*time.Millisecond - time.Duration(i%7)*time.Second),
			Status: statuses[i%len(statuses)], ClientIP: fmt.Sprintf("10.0.0.%d", i%50), Bytes: int64(i)}
	}
	return processortest.Sequence("shardId-000000000001", recs)
}

// TestConformance runs the shared conformance kit: deterministic output,
// nothing final before a window closes, nothing on lease loss, malformed
// records, and exactly-once results after a crash or hand-over at several
// cut points.
func TestConformance(t *testing.T) {
	reg, err := processors.NewRegistry(statusmix.Plugin())
	if err != nil {
		t.Fatal(err)
	}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("window: 1m\ngrace: 5s\n"), &node); err != nil {
		t.Fatal(err)
	}
	f, err := reg.Build("statusmix", &node, processors.AppInfo{App: "demo", Stream: "web", Tables: processors.TablesFor("demo")})
	if err != nil {
		t.Fatal(err)
	}
	processortest.Run(t, processortest.Suite{
		Factory:      f,
		Records:      traffic(),
		Window:       windowed.DefaultWindow(),
		ExactMetrics: true,
	})
}

func TestConfigErrors(t *testing.T) {
	for in, want := range map[string]string{
		"windw: 1m\n":  "processors.statusmix.windw: unknown field (line 1)",
		"window: 7s\n": "processors.statusmix.window: must divide 24h evenly (windows align to UTC days)",
	} {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(in), &node); err != nil {
			t.Fatal(err)
		}
		if _, err := statusmix.Plugin().Build(&node, processors.AppInfo{App: "demo"}); err == nil || err.Error() != want {
			t.Errorf("Build(%q) = %v, want %q", in, err, want)
		}
	}
}
