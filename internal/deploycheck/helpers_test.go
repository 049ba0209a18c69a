package deploycheck

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/shardwatch/shardwatch/internal/config"
)

// repoRoot is the directory holding go.mod, found by walking up from the
// package directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

func deployFile(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "deploy", "ecs", name)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// examplePseudo are the pseudo parameters the raw JSON files were written for.
var examplePseudo = map[string]string{
	"AWS::Region":    "us-east-1",
	"AWS::AccountId": "123456789012",
	"AWS::Partition": "aws",
	"AWS::StackName": "shardwatch",
	"AWS::URLSuffix": "amazonaws.com",
}

// exampleParams reads deploy/ecs/params.example.json (the create-stack
// --parameters shape) and applies extra overrides.
func exampleParams(t *testing.T, extra map[string]string) map[string]string {
	t.Helper()
	var list []struct{ ParameterKey, ParameterValue string }
	if err := json.Unmarshal(readFile(t, deployFile(t, "params.example.json")), &list); err != nil {
		t.Fatalf("params.example.json: %v", err)
	}
	m := map[string]string{}
	for _, p := range list {
		m[p.ParameterKey] = p.ParameterValue
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// evaluator loads the template and evaluates it for the example
// parameters plus extra overrides.
func evaluator(t *testing.T, extra map[string]string) *Evaluator {
	t.Helper()
	tmpl, err := LoadTemplate(deployFile(t, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEvaluator(tmpl, exampleParams(t, extra), examplePseudo)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func props(t *testing.T, e *Evaluator, id string) map[string]any {
	t.Helper()
	if !e.Exists(id) {
		t.Fatalf("resource %s is not created for these parameters", id)
	}
	p, err := e.Properties(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// documentedMetrics are the consumer metric names in deploy/ecs/METRICS.md
// (rows of the form "| `Name` | ...").
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile("(?m)^\\| `([A-Za-z0-9.]+)` \\|")
	names := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(readFile(t, deployFile(t, "METRICS.md"))), -1) {
		names[m[1]] = true
	}
	if len(names) == 0 {
		t.Fatal("METRICS.md lists no metrics")
	}
	return names
}

func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = asMap(v)[k]
		case int:
			l := asList(v)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// loadContainerConfig loads the consumer configuration from exactly the
// container's environment, the way the worker in the task does.
func loadContainerConfig(t *testing.T, c Container) config.Consumer {
	t.Helper()
	if err := config.CheckEnviron(c.Environ()); err != nil {
		t.Fatalf("task environment: %v", err)
	}
	cfg, err := config.Load(nil, func(k string) string { return c.Env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("task environment: %v", err)
	}
	return cfg
}

// processorSettings decodes each configured processor's settings.
func processorSettings(t *testing.T, cfg config.Consumer) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, p := range cfg.ProcessorList() {
		var v any
		if err := p.Settings.Decode(&v); err != nil {
			t.Fatalf("processor %s: %v", p.Name, err)
		}
		out[p.Name] = v
	}
	return out
}

// exampleProcessors are the processors of deploy/consumer.example.yaml,
// which the deployment's default must run unchanged.
func exampleProcessors(t *testing.T) map[string]any {
	t.Helper()
	cfg, err := config.Load([]string{"--config", filepath.Join(repoRoot(t), "deploy", "consumer.example.yaml")},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.ProcessorList()) == 0 {
		t.Fatal("the example configuration lists no processors")
	}
	return processorSettings(t, cfg)
}
