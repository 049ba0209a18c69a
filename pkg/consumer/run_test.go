package consumer

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardwatch/shardwatch/internal/config"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/builtin"
)

func noEnv(string) string { return "" }

// The shipped example configuration builds every processor it lists.
func TestExampleConfigBuildsProcessors(t *testing.T) {
	cfg, err := config.Load([]string{"--config", filepath.Join("..", "..", "deploy", "consumer.example.yaml")}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	named, err := buildProcessors(builtin.Plugins(), cfg, processors.AppInfo{App: cfg.App, Stream: cfg.Stream, Tables: processors.TablesFor(cfg.App)})
	if err != nil {
		t.Fatal(err)
	}
	if len(named) != len(cfg.ProcessorList()) {
		t.Errorf("built %d processors; config lists %d", len(named), len(cfg.ProcessorList()))
	}
}

// A bad processor setting stops start-up before any AWS call, naming the field.
func TestBadProcessorSettingNamesField(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	writeFile(t, p, "stream: s\napp: a\nprocessors:\n  topn:\n    n: 0\n")
	err := run(context.Background(), []string{"run", "--config", p}, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "processors.topn.n") {
		t.Fatalf("err = %v; want one naming processors.topn.n", err)
	}
	writeFile(t, p, "stream: s\napp: a\nprocessors:\n  topn:\n    top: 5\n")
	err = run(context.Background(), []string{"run", "--config", p}, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "processors.topn.top") {
		t.Fatalf("err = %v; want one naming processors.topn.top", err)
	}
}

func TestUnknownCommand(t *testing.T) {
	if err := run(context.Background(), []string{"frobnicate"}, noEnv, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// One plugin can run twice under two names with `type:`.
func TestProcessorAliases(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	writeFile(t, p, `stream: s
app: a
processors:
  orderflood: {}
  checkout-flood:
    type: orderflood
    name: checkout-flood
    source: hits
    path: ^/checkout
`)
	cfg, err := config.Load([]string{"--config", p}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	named, err := buildProcessors(builtin.Plugins(), cfg, processors.AppInfo{App: "a", Stream: "s", Tables: processors.TablesFor("a")})
	if err != nil {
		t.Fatal(err)
	}
	if len(named) != 2 || named[1].Name != "checkout-flood" {
		t.Fatalf("built %+v; want orderflood and checkout-flood", named)
	}
	writeFile(t, p, "stream: s\napp: a\nprocessors:\n  x:\n    type: nosuch\n")
	cfg, err = config.Load([]string{"--config", p}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildProcessors(builtin.Plugins(), cfg, processors.AppInfo{App: "a"}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("err = %v; want unknown processor nosuch", err)
	}
}

// Every instance namespaces its keys by its name; two instances that would
// write the same keys are refused, naming both.
func TestInstanceKeyCollisions(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	app := processors.AppInfo{App: "a", Stream: "s", Tables: processors.TablesFor("a")}
	for _, tt := range []struct{ procs, wantErr string }{
		{"  topn: {}\n  topn_api: {type: topn, n: 5}\n  histogram: {}\n  hist2: {type: histogram}\n", ""},
		{"  histogram: {}\n  hist2: {type: histogram, name: histogram}\n", "processors.histogram and processors.hist2: would write the same keys"},
		{"  topn: {}\n  h: {type: histogram, name: topn}\n", "processors.topn and processors.h: would write the same keys"},
		{"  counters: {}\n  more: {type: counters, hours: false}\n", "processors.counters and processors.more: would write the same keys (table a-counters"},
	} {
		writeFile(t, p, "stream: s\napp: a\nprocessors:\n"+tt.procs)
		cfg, err := config.Load([]string{"--config", p}, noEnv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		_, err = buildProcessors(builtin.Plugins(), cfg, app)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.procs, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: err = %v, want %q", tt.procs, err, tt.wantErr)
		}
	}
}
