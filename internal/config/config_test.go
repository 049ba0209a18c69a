package config

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadPrecedence(t *testing.T) {
	p := writeFile(t, `
stream: from-file
app: shop
failover_time: 20s
shard_sync_interval: 3s
tables:
  results: custom-results
processors:
  topn: {n: 10}
  counters: {}
`)
	c, err := Load([]string{"--config", p, "--failover-time", "30s"}, env(map[string]string{
		"SHARDWATCH_STREAM": "from-env", "AWS_REGION": "eu-west-1",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		Stream, App, Region, Results, Counters, Leases string
		Failover, Sync                                 time.Duration
		Procs                                          []string
	}{c.Stream, c.App, c.Region, c.Tables.Results, c.Tables.Counters, c.Tables.Leases, c.FailoverTime, c.ShardSync, nil}
	for _, p := range c.ProcessorList() {
		got.Procs = append(got.Procs, p.Name)
	}
	want := got
	want.Stream, want.App, want.Region = "from-env", "shop", "eu-west-1"
	want.Results, want.Counters, want.Leases = "custom-results", "shop-counters", "shop"
	want.Failover, want.Sync = 30*time.Second, 3*time.Second
	want.Procs = []string{"topn", "counters"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("config (-want +got):\n%s", d)
	}
}

// Bad configuration must stop start-up with the field named.
func TestLoadErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		args       []string
		env        map[string]string
		field      string
	}{
		{name: "unknown key", file: "stream: s\napp: a\nstreem: x\n", field: "streem"},
		{name: "unknown nested key", file: "stream: s\napp: a\nmetrics:\n  sinc: emf\n", field: "sinc"},
		{name: "bad duration in file", file: "stream: s\napp: a\nfailover_time: ten\n", field: "ten"},
		{name: "bad position", file: "stream: s\napp: a\ninitial_position: OLDEST\n", field: "initial_position"},
		{name: "missing stream", file: "app: a\n", field: "stream"},
		{name: "missing app", file: "stream: s\n", field: "app"},
		{name: "bad format", file: "stream: s\napp: a\nformat: xml\n", field: "format"},
		{name: "failover below sync", file: "stream: s\napp: a\nfailover_time: 2s\nshard_sync_interval: 2s\n", field: "failover_time"},
		{name: "at timestamp without time", file: "stream: s\napp: a\ninitial_position: AT_TIMESTAMP\n", field: "initial_timestamp"},
		{name: "file dead letters need a path", file: "stream: s\napp: a\ndeadletter: {sink: file}\n", field: "deadletter.path"},
		{name: "bad env int", file: "stream: s\napp: a\n", env: map[string]string{"SHARDWATCH_MAX_LEASES": "many"}, field: "SHARDWATCH_MAX_LEASES"},
		{name: "bad flag duration", file: "stream: s\napp: a\n", args: []string{"--poll-interval", "soon"}, field: "poll-interval"},
		{name: "shutdown beyond ECS", file: "stream: s\napp: a\nshutdown_timeout: 5m\n", field: "shutdown_timeout"},
		{name: "processors not a map", file: "stream: s\napp: a\nprocessors: [topn]\n", field: "processors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--config", writeFile(t, tc.file)}, tc.args...)
			_, err := Load(args, env(tc.env), io.Discard)
			if err == nil {
				t.Fatal("Load succeeded; want an error")
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %q", err, tc.field)
			}
		})
	}
}

func TestFieldErrorType(t *testing.T) {
	_, err := Load([]string{"--config", writeFile(t, "app: a\n")}, env(nil), io.Discard)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "stream" {
		t.Fatalf("err = %v; want *FieldError for stream", err)
	}
}

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"SHARDWATCH_STREAM": "s", "SHARDWATCH_APP": "a"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.WorkerID == "" || c.Tables.DeadLetter != "a-deadletter" || c.ShardSync != 100*time.Millisecond || c.FailoverTime != 10*time.Second {
		t.Fatalf("defaults not applied: %+v", c)
	}
}
