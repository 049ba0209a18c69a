package config

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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

// A container has no configuration file: SHARDWATCH_PROCESSORS carries the
// processors mapping, and a processors flag wins over it.
func TestProcessorsFromEnvAndFlag(t *testing.T) {
	base := map[string]string{"SHARDWATCH_STREAM": "s", "SHARDWATCH_APP": "a"}
	names := func(c Consumer) []string {
		var out []string
		for _, p := range c.ProcessorList() {
			out = append(out, p.Name)
		}
		return out
	}
	withProcs := map[string]string{"SHARDWATCH_PROCESSORS": "{topn: {n: 10}, orderflood: {threshold: 5}, counters: {}}"}
	for k, v := range base {
		withProcs[k] = v
	}
	c, err := Load(nil, env(withProcs), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"topn", "orderflood", "counters"}, names(c)); d != "" {
		t.Errorf("from env (-want +got):\n%s", d)
	}
	c, err = Load([]string{"--processors", "hrmetrics: {}"}, env(withProcs), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"hrmetrics"}, names(c)); d != "" {
		t.Errorf("flag over env (-want +got):\n%s", d)
	}
	for _, bad := range []string{"[topn]", "topn", "{topn: {n: 10}"} {
		m := map[string]string{"SHARDWATCH_PROCESSORS": bad}
		for k, v := range base {
			m[k] = v
		}
		_, err := Load(nil, env(m), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "SHARDWATCH_PROCESSORS") {
			t.Errorf("SHARDWATCH_PROCESSORS=%q: error %v, want one naming the variable", bad, err)
		}
	}
}

func TestUnknownSettingsNameTheClosestValidOne(t *testing.T) {
	tests := []struct {
		environ []string
		want    string
	}{
		{[]string{"SHARDWATCH_ALARM_TOPIC_ARN=arn"}, "SHARDWATCH_ALARM_TOPIC_ARN: unknown setting; did you mean SHARDWATCH_ALARMS_TOPIC_ARN?"},
		{[]string{"PATH=/bin", "SHARDWATCH_DEADLETTER_SINKK=dynamodb"}, "SHARDWATCH_DEADLETTER_SINKK: unknown setting; did you mean SHARDWATCH_DEADLETTER_SINK?"},
		{[]string{"SHARDWATCH_PROCESSOR=x"}, "SHARDWATCH_PROCESSOR: unknown setting; did you mean SHARDWATCH_PROCESSORS?"},
		{[]string{"SHARDWATCH_ZZZZZZZZZZZZZZZZZZZZ=1"}, "SHARDWATCH_ZZZZZZZZZZZZZZZZZZZZ: unknown setting"},
	}
	for _, tc := range tests {
		err := CheckEnviron(tc.environ)
		var u *UnknownSettingError
		if !errors.As(err, &u) || err.Error() != tc.want {
			t.Errorf("CheckEnviron(%q) = %v, want %q", tc.environ, err, tc.want)
		}
	}
	// Every setting, the file and processors variables and the listed
	// others pass, and so does the rest of the environment.
	var all []string
	for _, n := range KnownEnv() {
		all = append(all, n+"=x")
	}
	if err := CheckEnviron(append(all, "AWS_REGION=x", "HOME=/")); err != nil {
		t.Errorf("known names rejected: %v", err)
	}

	_, err := Load([]string{"--stream", "s", "--alarm-topic-arn", "arn"}, env(nil), io.Discard)
	if err == nil || err.Error() != "--alarm-topic-arn: unknown setting; did you mean --alarms-topic-arn?" {
		t.Errorf("unknown flag: %v", err)
	}
	if _, err := Load([]string{"--stream=s", "--app", "a", "--processors", "{counters: {}}"}, env(nil), io.Discard); err != nil {
		t.Errorf("valid flags rejected: %v", err)
	}
}

// Every SHARDWATCH_* name the repository mentions (code, scripts, deploy
// files, docs) is either a setting or listed in otherEnv, so a developer's
// shell or a deployment file never trips the unknown-setting check on a
// name this repository uses itself.
func TestEveryRepositoryVariableIsKnown(t *testing.T) {
	root := filepath.Join("..", "..")
	re := regexp.MustCompile(`SHARDWATCH_[A-Z0-9_]*[A-Z0-9]`)
	known := map[string]bool{}
	for _, n := range KnownEnv() {
		known[n] = true
	}
	// Names that are not variables: prefixes in prose.
	ignore := map[string]bool{"SHARDWATCH_CHAOS": true}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".cache", ".git", "node_modules", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, "_test.go") {
			return nil // tests use wrong names on purpose; a wrong one elsewhere fails at start
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(data, 0) >= 0 { // a binary someone built here
			return nil
		}
		for _, loc := range re.FindAllStringIndex(string(data), -1) {
			m := string(data[loc[0]:loc[1]])
			// Quoted examples of the error itself name the wrong variable.
			example := strings.HasPrefix(string(data[loc[1]:]), ": unknown setting")
			if !known[m] && !ignore[m] && !example {
				t.Errorf("%s mentions %s, which is neither a setting nor in otherEnv", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDecoderSettings(t *testing.T) {
	base := map[string]string{"SHARDWATCH_STREAM": "s", "SHARDWATCH_APP": "a"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range base {
			m[a] = b
		}
		return m
	}
	for _, tc := range []struct{ key, value, field string }{
		{"SHARDWATCH_FORMAT", "apache", "format"},
		{"SHARDWATCH_CLIENT_IP", "leftmost", "client_ip"},
		{"SHARDWATCH_TRUSTED_PROXIES", "10.0.0.0/8,lb.example.com", "trusted_proxies"},
	} {
		_, err := Load(nil, env(with(tc.key, tc.value)), io.Discard)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s=%s: error %v, want one naming %s", tc.key, tc.value, err, tc.field)
		}
	}
	m := with("SHARDWATCH_CLIENT_IP", "forwarded")
	m["SHARDWATCH_TRUSTED_PROXIES"] = "10.0.0.0/8, 192.0.2.1"
	m["SHARDWATCH_FORMAT"] = "vhost-combined"
	c, err := Load(nil, env(m), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f, o, err := c.Decoder()
	if err != nil || f != "vhost-combined" || o.Client.Source != 1 || len(o.Client.TrustedProxies) != 2 {
		t.Errorf("Decoder() = %v, %+v, %v", f, o, err)
	}
}

// flush_interval defaults to 8s, capped at 4/5 of failover_time; an
// explicit value (0 included) is kept.
func TestFlushIntervalDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, DefaultFlushInterval},
		{[]string{"--failover-time", "6s"}, 4800 * time.Millisecond},
		{[]string{"--flush-interval", "0s"}, 0},
		{[]string{"--flush-interval", "2s"}, 2 * time.Second},
	} {
		args := append([]string{"--config", writeFile(t, "stream: s\napp: a\nprocessors: {hrmetrics: {}}\n")}, tc.args...)
		c, err := Load(args, env(nil), io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if c.FlushInterval != tc.want {
			t.Errorf("%v: flush_interval = %s; want %s", tc.args, c.FlushInterval, tc.want)
		}
	}
}
