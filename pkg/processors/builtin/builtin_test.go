package builtin_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/builtin"
)

func TestPlugins(t *testing.T) {
	reg, err := processors.NewRegistry(builtin.Plugins()...)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"anomaly", "botdetect", "cloudfront-bots", "cloudfront-bytes", "cloudfront-cache", "counters", "histogram", "hrmetrics", "orderarchive", "orderflood", "topn", "visitors"}
	if diff := cmp.Diff(want, reg.Names()); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	app := processors.AppInfo{App: "demo", Stream: "web", Tables: processors.TablesFor("demo")}
	for _, name := range reg.Names() {
		// Every plugin builds with its defaults (no settings).
		if _, err := reg.Build(name, nil, app); err != nil {
			t.Errorf("Build(%s) with defaults: %v", name, err)
		}
		if reg.Doc(name) == "" {
			t.Errorf("%s has no Doc", name)
		}
	}
}
