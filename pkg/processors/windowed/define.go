package windowed

import (
	"context"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Validator is implemented by settings that check themselves; path
// prefixes field names in errors ("processors.hits").
type Validator interface{ Validate(path string) error }

// Define returns the processors.Plugin of a windowed plugin.
//
// Settings are decoded strictly into a copy of defaults() (unknown keys are
// errors naming the field) and validated when C implements Validator (a
// C that embeds window.Config gets window, grace and idle checked). build
// turns validated settings into the Spec and the Aggregate; it runs once
// per configured instance at start-up, so its errors stop the worker
// before it takes a lease.
func Define[C, S any](name, doc string, defaults func() C, build func(cfg C, app processors.AppInfo) (Spec, Aggregate[S], error)) processors.Plugin {
	prepare := func(settings *yaml.Node, app processors.AppInfo) (Spec, Aggregate[S], processors.AppInfo, error) {
		if app.Instance == "" {
			app.Instance = name
		}
		path := "processors." + app.Instance
		cfg := defaults()
		if err := processors.DecodeStrict(settings, path, &cfg); err != nil {
			return Spec{}, nil, app, err
		}
		if v, ok := any(cfg).(Validator); ok {
			if err := v.Validate(path); err != nil {
				return Spec{}, nil, app, err
			}
		}
		spec, agg, err := build(cfg, app)
		if err != nil {
			return Spec{}, nil, app, err
		}
		if spec.Name == "" {
			spec.Name = app.Instance
		}
		if len(spec.Windows) == 0 || agg == nil {
			return Spec{}, nil, app, fmt.Errorf("%s: %w: no windows or no aggregate", path, processors.ErrInvalidPlugin)
		}
		for _, w := range spec.Windows {
			if err := w.Validate(path); err != nil {
				return Spec{}, nil, app, err
			}
		}
		return spec, agg, app, nil
	}
	return processors.Plugin{
		Name: name,
		Doc:  doc,
		Build: func(settings *yaml.Node, app processors.AppInfo) (processors.Factory, error) {
			spec, agg, app, err := prepare(settings, app)
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context, env processors.Env) (processors.Processor, error) {
				return newRunner(ctx, spec, agg, app, env)
			}, nil
		},
		Claims: func(settings *yaml.Node, app processors.AppInfo) ([]processors.Claim, error) {
			spec, _, app, err := prepare(settings, app)
			if err != nil {
				return nil, err
			}
			out := make([]processors.Claim, 0, len(spec.Windows)+len(spec.Claims))
			for _, w := range spec.Windows {
				out = append(out, processors.Claim{Table: app.Tables.Results, Prefix: window.NewKeys(spec.Name, w.Size).Prefix()})
			}
			return append(out, spec.Claims...), nil
		},
	}
}

// DefaultWindow is a one-minute window with 5 s grace, closed after 30 s
// without records: a good default for a plugin's settings.
func DefaultWindow() window.Config {
	return window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 30 * time.Second}
}

// Tumbling is the Spec of one tumbling window size counting records of
// the given kinds (none: every kind), written under the instance name.
func Tumbling(cfg window.Config, kinds ...records.Kind) Spec {
	return Spec{Kinds: kinds, Windows: []Window{{Config: cfg}}}
}
