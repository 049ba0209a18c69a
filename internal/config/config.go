package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// Consumer is the worker's whole configuration. Field tags are the YAML
// keys; every scalar also has an environment variable (SHARDWATCH_ + the
// upper-case key) and a flag (--key with dashes).
type Consumer struct {
	Stream           string        `yaml:"stream"`
	App              string        `yaml:"app"`
	Region           string        `yaml:"region"`
	WorkerID         string        `yaml:"worker_id"`
	InitialPosition  string        `yaml:"initial_position"`
	InitialTimestamp string        `yaml:"initial_timestamp"`
	Format           string        `yaml:"format"`
	ClientIP         string        `yaml:"client_ip"`
	JSON             JSONFormat    `yaml:"json"`
	TrustedProxies   string        `yaml:"trusted_proxies"`
	ShardSync        time.Duration `yaml:"shard_sync_interval"`
	FailoverTime     time.Duration `yaml:"failover_time"`
	PollInterval     time.Duration `yaml:"poll_interval"`
	MaxLeases        int           `yaml:"max_leases"`
	MaxRecords       int           `yaml:"max_records"`
	ShutdownTimeout  time.Duration `yaml:"shutdown_timeout"`
	OpsAddr          string        `yaml:"ops_addr"`
	LogFormat        string        `yaml:"log_format"`
	LogLevel         string        `yaml:"log_level"`
	AuditLog         string        `yaml:"audit_log"`
	Retention        time.Duration `yaml:"retention"`
	FlushInterval    time.Duration `yaml:"flush_interval"`
	// Pprof serves /debug/pprof/ on the ops address (profiling; keep the
	// port private).
	Pprof bool `yaml:"pprof"`

	Tables     Tables     `yaml:"tables"`
	DeadLetter DeadLetter `yaml:"deadletter"`
	Metrics    Metrics    `yaml:"metrics"`
	Alarms     Alarms     `yaml:"alarms"`

	// Processors maps a processor name to its settings, in file order.
	Processors yaml.Node `yaml:"processors"`
}

// JSONFormat names the members the generic json format reads.
type JSONFormat struct {
	Time   string `yaml:"time"`
	Key    string `yaml:"key"`
	Values string `yaml:"values"` // comma-separated
}

// Tables names the result tables; empty names default from App.
type Tables struct {
	Leases     string `yaml:"leases"`
	Results    string `yaml:"results"`
	Counters   string `yaml:"counters"`
	Alarms     string `yaml:"alarms"`
	DeadLetter string `yaml:"deadletter"`
}

// DeadLetter selects where undecodable records go.
type DeadLetter struct {
	Sink string `yaml:"sink"` // dynamodb | file
	Path string `yaml:"path"` // for file
}

// Metrics selects the high-resolution metrics sink.
type Metrics struct {
	Sink      string `yaml:"sink"` // cloudwatch | emf | none
	Namespace string `yaml:"namespace"`
	Path      string `yaml:"path"` // emf output file; stdout when empty
}

// Alarms configures alarm notification.
type Alarms struct {
	TopicARN string `yaml:"topic_arn"`
}

// Defaults returns the configuration used when nothing is set.
func Defaults() Consumer {
	return Consumer{
		Region:          "us-east-1",
		InitialPosition: "LATEST",
		Format:          "auto",
		ShardSync:       100 * time.Millisecond,
		FailoverTime:    10 * time.Second,
		PollInterval:    250 * time.Millisecond,
		MaxRecords:      10000,
		ShutdownTimeout: 25 * time.Second,
		FlushInterval:   flushAuto,
		OpsAddr:         "127.0.0.1:9090",
		LogFormat:       "json",
		LogLevel:        "info",
		Retention:       7 * 24 * time.Hour,
		DeadLetter:      DeadLetter{Sink: "dynamodb"},
		Metrics:         Metrics{Sink: "emf", Namespace: "Shardwatch"},
	}
}

// scalar binds one setting to its YAML path, env var and flag.
type scalar struct {
	key  string // YAML path, dotted
	ptr  any    // *string, *int, *bool, *time.Duration
	help string
}

func (c *Consumer) scalars() []scalar {
	return []scalar{
		{"stream", &c.Stream, "Kinesis stream name"},
		{"app", &c.App, "application name: the lease table and the prefix of result tables"},
		{"region", &c.Region, "AWS region"},
		{"worker_id", &c.WorkerID, "unique worker id (default host name + random suffix)"},
		{"initial_position", &c.InitialPosition, "where a shard without a checkpoint starts: LATEST, TRIM_HORIZON, AT_TIMESTAMP"},
		{"initial_timestamp", &c.InitialTimestamp, "RFC 3339 time for AT_TIMESTAMP"},
		{"format", &c.Format, "record format: " + formatNames()},
		{"client_ip", &c.ClientIP, "access-log client: peer (the logged socket peer) or forwarded (first untrusted X-Forwarded-For hop)"},
		{"json.time", &c.JSON.Time, "format json: event-time member (RFC 3339 or epoch ms; empty = arrival time)"},
		{"json.key", &c.JSON.Key, "format json: member naming the series (e.g. iotName; empty = one series)"},
		{"json.values", &c.JSON.Values, "format json: comma-separated numeric members, 1-4 (e.g. iotValue)"},
		{"trusted_proxies", &c.TrustedProxies, "comma-separated CIDRs of proxies whose X-Forwarded-For is believed (client_ip forwarded)"},
		{"shard_sync_interval", &c.ShardSync, "time between the engine's passes over the shards (+-50% jitter); a take takes every takeable lease at once; a pass costs no AWS call when there is nothing to take"},
		{"failover_time", &c.FailoverTime, "a lease not renewed for this long is taken over"},
		{"poll_interval", &c.PollInterval, "wait between GetRecords calls on an idle shard"},
		{"max_leases", &c.MaxLeases, "most leases one worker holds (0 = no limit)"},
		{"max_records", &c.MaxRecords, "records per GetRecords call (<= 10000)"},
		{"shutdown_timeout", &c.ShutdownTimeout, "graceful shutdown deadline (keep below ECS stopTimeout)"},
		{"ops_addr", &c.OpsAddr, "address of /healthz, /readyz and /metrics"},
		{"log_format", &c.LogFormat, "json or console"},
		{"log_level", &c.LogLevel, "debug, info, warn or error"},
		{"audit_log", &c.AuditLog, "file that records the position of every processed record (debugging)"},
		{"retention", &c.Retention, "how long result items live (DynamoDB TTL)"},
		{"pprof", &c.Pprof, "serve /debug/pprof/ on ops_addr: true or false (profiling; keep the port private)"},
		{"flush_interval", &c.FlushInterval, "least time between result flushes and checkpoints (default 8s, at most 4/5 of failover_time; 0 = after every batch); alarms and closed windows flush at once"},
		{"tables.leases", &c.Tables.Leases, "lease table (default: app)"},
		{"tables.results", &c.Tables.Results, "results table (default: app-results)"},
		{"tables.counters", &c.Tables.Counters, "event counters table (default: app-counters)"},
		{"tables.alarms", &c.Tables.Alarms, "alarm history table (default: app-alarms)"},
		{"tables.deadletter", &c.Tables.DeadLetter, "dead-letter table (default: app-deadletter)"},
		{"deadletter.sink", &c.DeadLetter.Sink, "dead-letter sink: dynamodb or file"},
		{"deadletter.path", &c.DeadLetter.Path, "dead-letter JSON-lines file (file sink)"},
		{"metrics.sink", &c.Metrics.Sink, "metrics sink: cloudwatch, emf or none"},
		{"metrics.namespace", &c.Metrics.Namespace, "CloudWatch namespace"},
		{"metrics.path", &c.Metrics.Path, "EMF output file (default stdout)"},
		{"alarms.topic_arn", &c.Alarms.TopicARN, "SNS topic ARN for alarms"},
	}
}

// EnvName is the environment variable of a YAML path.
func EnvName(key string) string {
	return "SHARDWATCH_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// FlagName is the command-line flag of a YAML path.
func FlagName(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, ".", "-"), "_", "-")
}

// Load builds the configuration: defaults, then the YAML file (strict:
// unknown keys are errors), then environment, then flags. args are the
// command's arguments after the subcommand; --config FILE (or
// SHARDWATCH_CONFIG) names the file.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Consumer, error) {
	c := Defaults()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", getenv(EnvConfigFile), "YAML configuration file (env "+EnvConfigFile+")")
	procs := fs.String("processors", "", "processors mapping as YAML, e.g. '{topn: {n: 10}, counters: {}}'; replaces the file's (env "+EnvProcessors+")")
	flagVals := map[string]*string{}
	for _, s := range c.scalars() {
		flagVals[s.key] = fs.String(FlagName(s.key), "", s.help+" (env "+EnvName(s.key)+")")
	}
	var defined []string
	fs.VisitAll(func(f *flag.Flag) { defined = append(defined, f.Name) })
	if err := checkFlags(args, defined); err != nil {
		return c, err
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// The SDK's own region variables rank below the file and ours.
	if r := firstNonEmpty(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION")); r != "" {
		c.Region = r
	}
	if *path != "" {
		data, err := os.ReadFile(*path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		if err := decodeStrict(data, &c); err != nil {
			return c, fmt.Errorf("config %s: %w", *path, err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if v := getenv(EnvProcessors); v != "" {
		if err := setProcessors(&c, v); err != nil {
			return c, fmt.Errorf("env %s: %w", EnvProcessors, err)
		}
	}
	if set["processors"] {
		if err := setProcessors(&c, *procs); err != nil {
			return c, fmt.Errorf("flag --processors: %w", err)
		}
	}
	for _, s := range c.scalars() {
		if v := getenv(EnvName(s.key)); v != "" {
			if err := setScalar(s, v); err != nil {
				return c, fmt.Errorf("env %s: %w", EnvName(s.key), err)
			}
		}
		if set[FlagName(s.key)] {
			if err := setScalar(s, *flagVals[s.key]); err != nil {
				return c, fmt.Errorf("flag --%s: %w", FlagName(s.key), err)
			}
		}
	}
	c.fillDefaults()
	return c, c.Validate()
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func decodeStrict(data []byte, c *Consumer) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	return nil
}

// setProcessors replaces the processors mapping with the YAML in v.
func setProcessors(c *Consumer, v string) error {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(v), &n); err != nil {
		return err
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = *n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return &FieldError{Field: "processors", Reason: "must be a mapping of processor name to settings, e.g. {topn: {n: 10}}"}
	}
	c.Processors = n
	return nil
}

func setScalar(s scalar, v string) error {
	switch p := s.ptr.(type) {
	case *string:
		*p = v
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s: not an integer: %q", s.key, v)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s: not a boolean (true or false): %q", s.key, v)
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s: not a duration (e.g. 10s): %q", s.key, v)
		}
		*p = d
	default:
		return fmt.Errorf("%s: unsupported type %T", s.key, p)
	}
	return nil
}

// DefaultFlushInterval is flush_interval when none is set (capped at
// 4/5 of failover_time): a checkpoint and one write of each changed
// partial per shard every 8 s instead of every batch, at most ~8 s of
// records replayed after a crash, under the 10 s budget; every open
// window costs at least a write unit per flush, so this is the largest
// lever on DynamoDB cost (docs/performance.md, DynamoDB cost).
const DefaultFlushInterval = 8 * time.Second

// RenewInterval is how often the engine asks to renew a lease: often
// (failover_time/6, several retries before the lease expires), as a lease
// checkpointed in the last failover_time/2 is not written again
// (pkg/checkpoint RenewAfter).
func (c *Consumer) RenewInterval() time.Duration { return c.FailoverTime / 6 }

// flushAuto marks flush_interval as not set: DefaultFlushInterval, capped.
const flushAuto = -1

func (c *Consumer) fillDefaults() {
	if c.FlushInterval == flushAuto {
		c.FlushInterval = min(DefaultFlushInterval, c.FailoverTime*4/5)
	}
	if c.Tables.Leases == "" {
		c.Tables.Leases = c.App
	}
	def := func(p *string, suffix string) {
		if *p == "" && c.App != "" {
			*p = c.App + "-" + suffix
		}
	}
	def(&c.Tables.Results, "results")
	def(&c.Tables.Counters, "counters")
	def(&c.Tables.Alarms, "alarms")
	def(&c.Tables.DeadLetter, "deadletter")
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		c.WorkerID = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), time.Now().UnixNano()&0xffff)
	}
}

// FieldError names the setting that is wrong.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "config: " + e.Field + ": " + e.Reason }

// Validate reports the first invalid setting by name.
func (c *Consumer) Validate() error {
	bad := func(f, why string) error { return &FieldError{Field: f, Reason: why} }
	switch {
	case c.Stream == "":
		return bad("stream", "required")
	case c.App == "":
		return bad("app", "required (it names the lease table)")
	case c.Region == "":
		return bad("region", "required")
	}
	switch c.InitialPosition {
	case "LATEST", "TRIM_HORIZON":
	case "AT_TIMESTAMP":
		if _, err := c.InitialTime(); err != nil {
			return bad("initial_timestamp", err.Error())
		}
	default:
		return bad("initial_position", fmt.Sprintf("%q: want LATEST, TRIM_HORIZON or AT_TIMESTAMP", c.InitialPosition))
	}
	if _, err := records.ParseFormat(c.Format); err != nil || c.Format == "" {
		return bad("format", fmt.Sprintf("%q: want one of %s", c.Format, formatNames()))
	}
	if _, err := records.ParseClientSource(c.ClientIP); err != nil {
		return bad("client_ip", err.Error())
	}
	if _, err := records.ParsePrefixes(c.TrustedProxies); err != nil {
		return bad("trusted_proxies", err.Error())
	}
	if err := c.JSON.fields().Validate(); err != nil && c.Format == string(records.FormatJSON) {
		return bad("json.values", err.Error())
	}
	switch {
	case c.ShardSync < 20*time.Millisecond:
		return bad("shard_sync_interval", "must be >= 20ms")
	case c.FailoverTime < time.Second:
		return bad("failover_time", "must be >= 1s")
	case c.FailoverTime < 2*c.ShardSync:
		return bad("failover_time", "must be at least twice shard_sync_interval")
	case c.PollInterval < 10*time.Millisecond || c.PollInterval > time.Minute:
		return bad("poll_interval", "must be between 10ms and 1m")
	case c.MaxLeases < 0:
		return bad("max_leases", "must be >= 0")
	case c.MaxRecords < 1 || c.MaxRecords > 10000:
		return bad("max_records", "must be between 1 and 10000")
	case c.ShutdownTimeout < time.Second || c.ShutdownTimeout > 115*time.Second:
		return bad("shutdown_timeout", "must be between 1s and 115s (ECS stopTimeout is at most 120s)")
	case c.Retention < time.Hour:
		return bad("retention", "must be >= 1h")
	case c.FlushInterval < 0 || c.FlushInterval > c.FailoverTime:
		// Replay after a crash is about flush_interval; a longer one would
		// replay more than the time it takes to notice the crash.
		return bad("flush_interval", "must be between 0 and failover_time")
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		return bad("log_format", fmt.Sprintf("%q: want json or console", c.LogFormat))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", fmt.Sprintf("%q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.DeadLetter.Sink {
	case "dynamodb":
	case "file":
		if c.DeadLetter.Path == "" {
			return bad("deadletter.path", "required with deadletter.sink file")
		}
	default:
		return bad("deadletter.sink", fmt.Sprintf("%q: want dynamodb or file", c.DeadLetter.Sink))
	}
	switch c.Metrics.Sink {
	case "cloudwatch", "emf", "none":
	default:
		return bad("metrics.sink", fmt.Sprintf("%q: want cloudwatch, emf or none", c.Metrics.Sink))
	}
	if c.Metrics.Sink != "none" && c.Metrics.Namespace == "" {
		return bad("metrics.namespace", "required")
	}
	if c.Processors.Kind != 0 && c.Processors.Kind != yaml.MappingNode {
		return bad("processors", "must be a mapping of processor name to settings")
	}
	return nil
}

// Decoder returns the record format and decoder options of c (valid after
// Validate).
func (c *Consumer) Decoder() (records.Format, records.Options, error) {
	f, err := records.ParseFormat(c.Format)
	if err != nil {
		return "", records.Options{}, &FieldError{Field: "format", Reason: err.Error()}
	}
	src, err := records.ParseClientSource(c.ClientIP)
	if err != nil {
		return "", records.Options{}, &FieldError{Field: "client_ip", Reason: err.Error()}
	}
	trusted, err := records.ParsePrefixes(c.TrustedProxies)
	if err != nil {
		return "", records.Options{}, &FieldError{Field: "trusted_proxies", Reason: err.Error()}
	}
	o := records.Options{Client: records.ClientPolicy{Source: src, TrustedProxies: trusted}, JSON: c.JSON.fields()}
	if f == records.FormatJSON {
		if err := o.JSON.Validate(); err != nil {
			return "", records.Options{}, &FieldError{Field: "json.values", Reason: err.Error()}
		}
	}
	return f, o, nil
}

func (j JSONFormat) fields() records.JSONFields {
	f := records.DefaultJSONFields()
	if j.Time != "" {
		f.Time = j.Time
	}
	if j.Key != "" {
		f.Key = j.Key
	}
	if j.Values != "" {
		f.Values = nil
		for v := range strings.SplitSeq(j.Values, ",") {
			if v = strings.TrimSpace(v); v != "" {
				f.Values = append(f.Values, v)
			}
		}
	}
	return f
}

func formatNames() string {
	var names []string
	for _, f := range records.Formats() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// InitialTime parses InitialTimestamp.
func (c *Consumer) InitialTime() (time.Time, error) {
	t, err := time.Parse(time.RFC3339, c.InitialTimestamp)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time", c.InitialTimestamp)
	}
	return t, nil
}

// ProcessorSettings is one entry of the processors mapping.
type ProcessorSettings struct {
	Name     string
	Settings *yaml.Node
}

// ProcessorList returns the configured processors in file order.
func (c *Consumer) ProcessorList() []ProcessorSettings {
	n := &c.Processors
	if n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]ProcessorSettings, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, ProcessorSettings{Name: n.Content[i].Value, Settings: n.Content[i+1]})
	}
	return out
}
