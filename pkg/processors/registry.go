package processors

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// AppInfo is what every plugin may need to know about the application it
// runs in: where to write and how long results live.
type AppInfo struct {
	// Instance is the configured name of the processor being built (the
	// key under "processors:"). It namespaces the keys the instance
	// writes; "" means the plugin name.
	Instance      string
	App           string
	Stream        string
	Namespace     string // CloudWatch namespace
	AlarmTopicARN string
	Tables        Tables
	// Retention is how long result items live (their expires_at); 0 means
	// DefaultRetention.
	Retention time.Duration
}

// DefaultRetention is the result retention when AppInfo.Retention is 0.
const DefaultRetention = 7 * 24 * time.Hour

// RetentionOrDefault returns a.Retention, or DefaultRetention when unset.
func (a AppInfo) RetentionOrDefault() time.Duration {
	if a.Retention <= 0 {
		return DefaultRetention
	}
	return a.Retention
}

// Tables names the application's DynamoDB tables.
type Tables struct {
	Results, Counters, Alarms, DeadLetter string
}

// TablesFor returns the contract table names of application app.
func TablesFor(app string) Tables {
	return Tables{
		Results:    app + "-results",
		Counters:   app + "-counters",
		Alarms:     app + "-alarms",
		DeadLetter: app + "-deadletter",
	}
}

// Plugin is one named processor type. Build is called once per configured
// processor at start-up (not per lease), so configuration errors surface
// before the worker takes any lease.
type Plugin struct {
	Name string
	Doc  string
	// Build decodes settings strictly (unknown keys are errors naming the
	// field, e.g. "processors.topn.n: must be >= 1") and returns a Factory.
	Build func(settings *yaml.Node, app AppInfo) (Factory, error)
	// Claims, when set, returns the keys an instance with these settings
	// writes. Registry.Instances refuses two instances whose claims
	// overlap, so two instances cannot overwrite each other's results.
	Claims func(settings *yaml.Node, app AppInfo) ([]Claim, error)
}

// Claim is a range of item keys an instance writes: every key of Table
// starting with Prefix ("" claims the whole table).
type Claim struct{ Table, Prefix string }

// overlaps reports whether c and d can name the same item.
func (c Claim) overlaps(d Claim) bool {
	return c.Table == d.Table && (strings.HasPrefix(c.Prefix, d.Prefix) || strings.HasPrefix(d.Prefix, c.Prefix))
}

func (c Claim) String() string {
	if c.Prefix == "" {
		return "table " + c.Table
	}
	return c.Table + " keys " + c.Prefix + "*"
}

// Errors returned by the registry.
var (
	ErrUnknownProcessor = errors.New("unknown processor")
	ErrDuplicatePlugin  = errors.New("duplicate plugin name")
	ErrInvalidPlugin    = errors.New("invalid plugin")
	ErrKeyCollision     = errors.New("would write the same keys")
)

// ConfigError is a configuration problem at a dotted field path, e.g.
// "processors.topn.window: must be >= 1s".
type ConfigError struct {
	Field   string
	Problem string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Problem }

// FieldError returns a *ConfigError for field; format and args describe
// the problem.
func FieldError(field, format string, args ...any) error {
	return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Registry holds the plugins a consumer binary knows. It is built
// explicitly in main (no init() registration) and is read-only afterwards,
// so it is safe for concurrent use.
type Registry struct {
	plugins map[string]Plugin
	names   []string
}

// NewRegistry returns a registry of plugins. Names must be unique and
// non-empty and every plugin needs a Build func.
func NewRegistry(plugins ...Plugin) (*Registry, error) {
	r := &Registry{plugins: make(map[string]Plugin, len(plugins))}
	for i, p := range plugins {
		switch {
		case p.Name == "":
			return nil, fmt.Errorf("plugin %d: %w: empty name", i, ErrInvalidPlugin)
		case p.Build == nil:
			return nil, fmt.Errorf("plugin %q: %w: nil Build", p.Name, ErrInvalidPlugin)
		}
		if _, dup := r.plugins[p.Name]; dup {
			return nil, fmt.Errorf("plugin %q: %w", p.Name, ErrDuplicatePlugin)
		}
		r.plugins[p.Name] = p
		r.names = append(r.names, p.Name)
	}
	slices.Sort(r.names)
	return r, nil
}

// Build decodes the settings of processor name and returns its Factory.
func (r *Registry) Build(name string, settings *yaml.Node, app AppInfo) (Factory, error) {
	p, ok := r.plugins[name]
	if !ok {
		return nil, fmt.Errorf("processors.%s: %w (known: %s)", name, ErrUnknownProcessor, strings.Join(r.names, ", "))
	}
	f, err := p.Build(settings, app)
	if err != nil {
		return nil, err // plugins already name the field
	}
	if f == nil {
		return nil, fmt.Errorf("processors.%s: %w: Build returned a nil Factory", name, ErrInvalidPlugin)
	}
	return f, nil
}

// InstanceConfig is one entry of the "processors:" mapping: the instance
// name and its settings. Settings may carry `type: PLUGIN`, which runs
// plugin PLUGIN under this name (one plugin, several instances);
// otherwise the name is the plugin's.
type InstanceConfig struct {
	Name     string
	Settings *yaml.Node
}

// Instances builds every configured instance, in order. It refuses an
// unknown plugin, a name listed twice and two instances whose key claims
// overlap, naming both.
func (r *Registry) Instances(cfgs []InstanceConfig, app AppInfo) ([]Named, error) {
	type claimed struct {
		instance string
		c        Claim
	}
	var all []claimed
	out := make([]Named, 0, len(cfgs))
	seen := make(map[string]bool, len(cfgs))
	for _, ic := range cfgs {
		plugin, settings, err := pluginOf(ic)
		if err != nil {
			return nil, err
		}
		if seen[ic.Name] {
			return nil, FieldError("processors."+ic.Name, "listed twice")
		}
		seen[ic.Name] = true
		a := app
		a.Instance = ic.Name
		f, err := r.Build(plugin, settings, a)
		if err != nil {
			return nil, err
		}
		if p := r.plugins[plugin]; p.Claims != nil {
			cs, err := p.Claims(settings, a)
			if err != nil {
				return nil, err
			}
			for _, c := range cs {
				for _, o := range all {
					if o.c.overlaps(c) {
						return nil, fmt.Errorf("processors.%s and processors.%s: %w (%s, %s); give one a different name",
							o.instance, ic.Name, ErrKeyCollision, o.c, c)
					}
				}
			}
			for _, c := range cs {
				all = append(all, claimed{ic.Name, c})
			}
		}
		out = append(out, Named{Name: ic.Name, Factory: f})
	}
	return out, nil
}

// pluginOf resolves an entry to its plugin name and the settings without
// the type key.
func pluginOf(ic InstanceConfig) (string, *yaml.Node, error) {
	n := ic.Settings
	if n == nil || n.Kind != yaml.MappingNode {
		return ic.Name, n, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "type" {
			continue
		}
		if n.Content[i+1].Kind != yaml.ScalarNode || n.Content[i+1].Value == "" {
			return "", nil, FieldError("processors."+ic.Name+".type", "must name a processor plugin")
		}
		rest := *n
		rest.Content = append(append([]*yaml.Node{}, n.Content[:i]...), n.Content[i+2:]...)
		return n.Content[i+1].Value, &rest, nil
	}
	return ic.Name, n, nil
}

// Names returns the plugin names, sorted.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// Doc returns the one-line description of plugin name ("" if unknown).
func (r *Registry) Doc(name string) string { return r.plugins[name].Doc }

// DecodeStrict decodes node into out (a pointer to a struct holding
// defaults). Keys that match no yaml-tagged field of out, at any depth,
// are errors naming the full path, e.g. "processors.topn.windw: unknown
// field (line 4)"; value errors are prefixed with path too. A nil, empty
// or null node keeps the defaults.
//
// Unknown keys are checked by walking the node against out's type rather
// than by re-encoding and decoding with KnownFields(true): the walk keeps
// the line numbers of the user's file and yields dotted paths.
func DecodeStrict(node *yaml.Node, path string, out any) error {
	if node == nil {
		return nil
	}
	if node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			return nil
		}
		node = node.Content[0]
	}
	if node.Kind == 0 || (node.Kind == yaml.ScalarNode && node.Tag == "!!null") {
		return nil
	}
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%s: decode into %T: %w", path, out, ErrInvalidPlugin)
	}
	if err := checkKnown(node, rv.Type().Elem(), path); err != nil {
		return err
	}
	if err := node.Decode(out); err != nil {
		return &ConfigError{Field: path, Problem: cleanYAMLError(err)}
	}
	return nil
}

// checkKnown reports the first mapping key under node that t does not
// declare.
func checkKnown(node *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	if _, custom := reflect.New(t).Interface().(yaml.Unmarshaler); custom {
		return nil // the type validates itself
	}
	switch t.Kind() {
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			return nil // node.Decode reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			if k.Tag == "!!merge" {
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				return FieldError(path+"."+k.Value, "unknown field (line %d)", k.Line)
			}
			if err := checkKnown(v, ft, path+"."+k.Value); err != nil {
				return err
			}
		}
	case reflect.Map:
		if node.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(node.Content); i += 2 {
			if err := checkKnown(node.Content[i+1], t.Elem(), path+"."+node.Content[i].Value); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if node.Kind != yaml.SequenceNode {
			return nil
		}
		for i, v := range node.Content {
			if err := checkKnown(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlFields maps the yaml keys of struct t to field types, following
// ",inline" the way yaml.v3 does.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // yaml.v3's default key
		}
		out[name] = f.Type
	}
	return out
}

// cleanYAMLError turns yaml.v3's multi-line "yaml: unmarshal errors:"
// into one line.
func cleanYAMLError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}
