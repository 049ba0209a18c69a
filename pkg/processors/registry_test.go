package processors_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
)

func nopBuild(*yaml.Node, processors.AppInfo) (processors.Factory, error) {
	return func(context.Context, processors.Env) (processors.Processor, error) { return nil, nil }, nil
}

func TestNewRegistry(t *testing.T) {
	tests := []struct {
		name    string
		plugins []processors.Plugin
		want    []string
		wantErr error
	}{
		{"sorted names", []processors.Plugin{{Name: "topn", Build: nopBuild}, {Name: "counters", Build: nopBuild}}, []string{"counters", "topn"}, nil},
		{"empty", nil, nil, nil},
		{"duplicate", []processors.Plugin{{Name: "topn", Build: nopBuild}, {Name: "topn", Build: nopBuild}}, nil, processors.ErrDuplicatePlugin},
		{"no name", []processors.Plugin{{Build: nopBuild}}, nil, processors.ErrInvalidPlugin},
		{"no build", []processors.Plugin{{Name: "x"}}, nil, processors.ErrInvalidPlugin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := processors.NewRegistry(tt.plugins...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewRegistry error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, r.Names()); diff != "" {
				t.Errorf("Names (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRegistryBuild(t *testing.T) {
	var gotApp processors.AppInfo
	r, err := processors.NewRegistry(
		processors.Plugin{Name: "ok", Build: func(_ *yaml.Node, app processors.AppInfo) (processors.Factory, error) {
			gotApp = app
			return nopBuild(nil, app)
		}},
		processors.Plugin{Name: "bad", Build: func(*yaml.Node, processors.AppInfo) (processors.Factory, error) {
			return nil, processors.FieldError("processors.bad.n", "must be >= 1")
		}},
		processors.Plugin{Name: "nil", Build: func(*yaml.Node, processors.AppInfo) (processors.Factory, error) { return nil, nil }},
	)
	if err != nil {
		t.Fatal(err)
	}
	app := processors.AppInfo{App: "demo", Tables: processors.TablesFor("demo")}
	if _, err := r.Build("ok", nil, app); err != nil {
		t.Fatalf("Build(ok): %v", err)
	}
	if diff := cmp.Diff(app, gotApp); diff != "" {
		t.Errorf("plugin got AppInfo (-want +got):\n%s", diff)
	}
	_, err = r.Build("nope", nil, app)
	if !errors.Is(err, processors.ErrUnknownProcessor) || err.Error() != "processors.nope: unknown processor (known: bad, nil, ok)" {
		t.Errorf("Build(nope) = %v", err)
	}
	var ce *processors.ConfigError
	if _, err := r.Build("bad", nil, app); !errors.As(err, &ce) || ce.Field != "processors.bad.n" {
		t.Errorf("Build(bad) = %v, want a ConfigError on processors.bad.n", err)
	}
	if _, err := r.Build("nil", nil, app); !errors.Is(err, processors.ErrInvalidPlugin) {
		t.Errorf("Build(nil) = %v, want ErrInvalidPlugin", err)
	}
}

type inner struct {
	Hosts []string `yaml:"hosts"`
	Deep  struct {
		On bool `yaml:"on"`
	} `yaml:"deep"`
}

type embedded struct {
	Window time.Duration `yaml:"window"`
}

type decodeCfg struct {
	embedded `yaml:",inline"`
	N        int              `yaml:"n"`
	Inner    inner            `yaml:"inner"`
	List     []inner          `yaml:"list"`
	ByName   map[string]inner `yaml:"by_name"`
}

func TestDecodeStrict(t *testing.T) {
	def := decodeCfg{embedded: embedded{Window: time.Minute}, N: 50}
	tests := []struct {
		name    string
		in      string // "" = nil node
		want    decodeCfg
		wantErr string
	}{
		{name: "nil node keeps defaults", want: def},
		{name: "null keeps defaults", in: "~", want: def},
		{name: "empty map keeps defaults", in: "{}", want: def},
		{name: "values", in: "n: 5\nwindow: 30s\ninner: {hosts: [a, b], deep: {on: true}}\n",
			want: decodeCfg{embedded: embedded{Window: 30 * time.Second}, N: 5, Inner: inner{Hosts: []string{"a", "b"}, Deep: struct {
				On bool `yaml:"on"`
			}{On: true}}}},
		{name: "unknown top", in: "n: 5\nwindw: 30s\n", wantErr: "processors.topn.windw: unknown field (line 2)"},
		{name: "unknown nested", in: "inner:\n  deep:\n    of: 1\n", wantErr: "processors.topn.inner.deep.of: unknown field (line 3)"},
		{name: "unknown in list", in: "list:\n- hosts: [a]\n- hostz: [b]\n", wantErr: "processors.topn.list[1].hostz: unknown field (line 3)"},
		{name: "unknown in map value", in: "by_name:\n  x: {nope: 1}\n", wantErr: "processors.topn.by_name.x.nope: unknown field (line 2)"},
		{name: "bad value", in: "n: lots\n", wantErr: "processors.topn: line 1: cannot unmarshal !!str `lots` into int"},
		{name: "bad duration", in: "window: soon\n", wantErr: "processors.topn: "},
		{name: "not a map", in: "[1, 2]\n", wantErr: "processors.topn: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var node *yaml.Node
			if tt.in != "" {
				node = new(yaml.Node)
				if err := yaml.Unmarshal([]byte(tt.in), node); err != nil {
					t.Fatal(err)
				}
			}
			got := def
			err := processors.DecodeStrict(node, "processors.topn", &got)
			if tt.wantErr != "" {
				if err == nil || len(err.Error()) < len(tt.wantErr) || err.Error()[:len(tt.wantErr)] != tt.wantErr {
					t.Fatalf("error = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(decodeCfg{})); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAppInfoDefaults(t *testing.T) {
	if got := (processors.AppInfo{}).RetentionOrDefault(); got != processors.DefaultRetention {
		t.Errorf("RetentionOrDefault = %s", got)
	}
	want := processors.Tables{Results: "a-results", Counters: "a-counters", Alarms: "a-alarms", DeadLetter: "a-deadletter"}
	if diff := cmp.Diff(want, processors.TablesFor("a")); diff != "" {
		t.Errorf("TablesFor (-want +got):\n%s", diff)
	}
}
