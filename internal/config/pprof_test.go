package config

import (
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPprof: off by default; the file, SHARDWATCH_PPROF and --pprof turn it
// on or off in that order of precedence; a non-boolean names the setting.
func TestPprof(t *testing.T) {
	base := map[string]string{"SHARDWATCH_STREAM": "s", "SHARDWATCH_APP": "a"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for bk, bv := range base {
			m[bk] = bv
		}
		return m
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"default", nil, base, false},
		{"file", []string{"--config", writeFile(t, "pprof: true\n")}, base, true},
		{"env", nil, with("SHARDWATCH_PPROF", "true"), true},
		{"flag over env", []string{"--pprof=false"}, with("SHARDWATCH_PPROF", "true"), false},
		{"env over file", []string{"--config", writeFile(t, "pprof: true\n")}, with("SHARDWATCH_PPROF", "0"), false},
	}
	got := map[string]bool{}
	want := map[string]bool{}
	for _, tt := range tests {
		c, err := Load(tt.args, env(tt.env), io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got[tt.name], want[tt.name] = c.Pprof, tt.want
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pprof (-want +got):\n%s", diff)
	}
	_, err := Load(nil, env(with("SHARDWATCH_PPROF", "yes please")), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "pprof") {
		t.Errorf("bad boolean: err = %v; want it to name pprof", err)
	}
}
