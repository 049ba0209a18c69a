package orderflood

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Modes: what one sliding count is kept for.
const (
	ModeGlobal   = "global"   // all orders of the stream
	ModeCustomer = "customer" // per CustomerID (orders)
	ModeIP       = "ip"       // per client IP (hits)
)

// Sources: which records count as orders.
const (
	SourceOrders = "orders" // KindOrder records
	SourceHits   = "hits"   // KindHit records whose path matches Path
)

// Time sources: which timestamp places a record in the sliding window.
const (
	// TimeEvent is the record's own time (orders: InvoiceDate; hits: the
	// log line's time), falling back to the arrival time.
	TimeEvent = "event"
	// TimeArrival is when Kinesis received the record (its
	// ApproximateArrivalTimestamp), as KDA's ROWTIME.
	TimeArrival = "arrival"
)

// Count units for order records.
const (
	CountInvoices = "invoices" // distinct InvoiceNo (an invoice has one line per product)
	CountLines    = "lines"    // every order line
)

// Config is the orderflood section of the consumer configuration.
type Config struct {
	// Name names the alarm (SNS attribute, alarm-history key, item keys).
	// Two orderflood processors in one application need distinct names.
	Name      string `yaml:"name"`
	Mode      string `yaml:"mode"`
	Source    string `yaml:"source"`
	Threshold int64  `yaml:"threshold"`
	// Window is the range of the sliding count: the orders with times in
	// [t-window, t] for each order time t, both ends included, as
	// COUNT(*) OVER (RANGE INTERVAL '15' SECOND PRECEDING).
	Window time.Duration `yaml:"window"`
	// Time is the timestamp the window slides over: event or arrival.
	Time string `yaml:"time"`
	// Suppression is a sliding quiet time: a breach raises an alarm only
	// when the previous alarm (of the same key) is at least this much
	// older; the suppressed breaches are counted in the next alarm's
	// trigger_count.
	Suppression time.Duration `yaml:"suppression"`
	// TriggerWindow is the range over which trigger_count counts breaches
	// (RANGE INTERVAL '1' MINUTE PRECEDING).
	TriggerWindow time.Duration `yaml:"trigger_window"`
	// Grace keeps a second open for out-of-order records; Idle closes the
	// seconds of an idle shard on the clock (see package window).
	Grace time.Duration `yaml:"grace"`
	Idle  time.Duration `yaml:"idle"`
	// Path (a regexp) and Methods select the hits that count (source
	// hits), e.g. path "^/checkout", methods [POST].
	Path    string   `yaml:"path"`
	Methods []string `yaml:"methods"`
	// Count is the unit for order records: invoices or lines.
	Count string `yaml:"count"`
	// IncludeCancellations counts invoices starting with "C" as orders.
	IncludeCancellations bool `yaml:"include_cancellations"`
	// MaxKeys caps the distinct customers, countries, IPs and invoices
	// kept per second and shard; more are counted as overflow.
	MaxKeys int `yaml:"max_keys"`
	// Top is the length of the top customer/country/IP lists in alarms.
	Top int `yaml:"top"`
	// MaxAlarms caps the alarms raised by one flush (keyed modes).
	MaxAlarms int    `yaml:"max_alarms"`
	Severity  string `yaml:"severity"`
	// TopicARN overrides the application's alarm topic.
	TopicARN string `yaml:"topic_arn"`
	// PartialTTL is how long per-second partial items live.
	PartialTTL time.Duration `yaml:"partial_ttl"`
	// Retention is how long alarm-history items live; 0 keeps them
	// forever (the history is evaluated per month or period).
	Retention time.Duration `yaml:"retention"`
	// Blocklist, when set, writes the top customers and IPs of every
	// alarm to a blocklist item a web tier can read (see README.md).
	Blocklist bool `yaml:"blocklist"`
	// BlocklistTTL is how long a blocklist entry stays (expires_at).
	BlocklistTTL time.Duration `yaml:"blocklist_ttl"`
}

// DefaultConfig returns the defaults every field not set in YAML keeps.
func DefaultConfig() Config {
	return Config{
		Name:          "order-flood",
		Mode:          ModeGlobal,
		Source:        SourceOrders,
		Threshold:     30,
		Window:        15 * time.Second,
		Time:          TimeEvent,
		Suppression:   time.Minute,
		TriggerWindow: time.Minute,
		Grace:         5 * time.Second,
		Idle:          5 * time.Second,
		Count:         CountLines,
		MaxKeys:       1000,
		Top:           5,
		MaxAlarms:     10,
		Severity:      "high",
		PartialTTL:    time.Hour,
		BlocklistTTL:  time.Hour,
	}
}

// maxKeyLen bounds one key (customer, country, IP, invoice) so that an
// item of MaxKeys keys in each map stays under DynamoDB's 400 KB.
const (
	maxKeyLen  = 64
	maxMaxKeys = 1500
)

// Validate checks c; path prefixes field names in errors.
func (c Config) Validate(path string) error {
	switch {
	case c.Name == "" || len(c.Name) > 64 || strings.ContainsAny(c.Name, "# \t\n"):
		return processors.FieldError(path+".name", "must be 1-64 characters without '#' or spaces")
	case c.Mode != ModeGlobal && c.Mode != ModeCustomer && c.Mode != ModeIP:
		return processors.FieldError(path+".mode", "must be global, customer or ip")
	case c.Source != SourceOrders && c.Source != SourceHits:
		return processors.FieldError(path+".source", "must be orders or hits")
	case c.Mode == ModeCustomer && c.Source != SourceOrders:
		return processors.FieldError(path+".mode", "customer needs source orders")
	case c.Mode == ModeIP && c.Source != SourceHits:
		return processors.FieldError(path+".mode", "ip needs source hits")
	case c.Source == SourceHits && c.Path == "":
		return processors.FieldError(path+".path", "required with source hits (e.g. ^/checkout)")
	case c.Threshold < 1:
		return processors.FieldError(path+".threshold", "must be >= 1")
	case c.Window < time.Second || c.Window%time.Second != 0 || c.Window > time.Hour:
		return processors.FieldError(path+".window", "must be whole seconds between 1s and 1h")
	case c.Time != TimeEvent && c.Time != TimeArrival:
		return processors.FieldError(path+".time", "must be event or arrival")
	case c.Suppression < time.Second || c.Suppression > 24*time.Hour:
		return processors.FieldError(path+".suppression", "must be between 1s and 24h")
	case c.TriggerWindow < time.Second || c.TriggerWindow > time.Hour:
		return processors.FieldError(path+".trigger_window", "must be between 1s and 1h")
	case c.Grace < 0 || c.Grace > time.Hour:
		return processors.FieldError(path+".grace", "must be between 0 and 1h")
	case c.Idle < 0:
		return processors.FieldError(path+".idle", "must be >= 0")
	case c.Count != CountInvoices && c.Count != CountLines:
		return processors.FieldError(path+".count", "must be invoices or lines")
	case c.MaxKeys < 1 || c.MaxKeys > maxMaxKeys:
		return processors.FieldError(path+".max_keys", "must be between 1 and %d", maxMaxKeys)
	case c.Top < 1 || c.Top > 100:
		return processors.FieldError(path+".top", "must be between 1 and 100")
	case c.MaxAlarms < 1 || c.MaxAlarms > 1000:
		return processors.FieldError(path+".max_alarms", "must be between 1 and 1000")
	case c.PartialTTL < 2*(c.Window+c.TriggerWindow+c.Grace+c.Idle):
		return processors.FieldError(path+".partial_ttl", "must be at least twice window + trigger_window + grace + idle")
	case c.Retention < 0:
		return processors.FieldError(path+".retention", "must be >= 0")
	case c.BlocklistTTL < time.Minute:
		return processors.FieldError(path+".blocklist_ttl", "must be at least 1m")
	}
	if c.Path != "" {
		if _, err := regexp.Compile(c.Path); err != nil {
			return processors.FieldError(path+".path", "bad regexp: %v", err)
		}
	}
	for i, m := range c.Methods {
		if m == "" || strings.ToUpper(m) != m {
			return processors.FieldError(path+".methods["+strconv.Itoa(i)+"]", "must be an upper-case HTTP method")
		}
	}
	return nil
}

// windowConfig is the per-second windowing of the partial counts.
func (c Config) windowConfig() window.Config {
	return window.Config{Size: time.Second, Grace: c.Grace, Idle: c.Idle}
}

func (c Config) countsMethod(m string) bool {
	return len(c.Methods) == 0 || slices.Contains(c.Methods, m)
}

// DecodeConfig decodes settings strictly over the defaults and validates
// the result; path names the section in errors ("processors.orderflood").
func DecodeConfig(settings *yaml.Node, path string) (Config, error) {
	cfg := DefaultConfig()
	if err := processors.DecodeStrict(settings, path, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(path); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
