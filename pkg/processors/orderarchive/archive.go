package orderarchive

import (
	"context"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Name is the plugin name (the key under "processors:" in the config).
const Name = "orderarchive"

// Plugin returns the orderarchive plugin for a processors.Registry.
func Plugin() processors.Plugin {
	return processors.Plugin{
		Name: Name,
		Doc:  "archives every order line in DynamoDB by customer (APP-orders), idempotent across replays",
		Build: func(settings *yaml.Node, app processors.AppInfo) (processors.Factory, error) {
			cfg := DefaultConfig()
			if err := processors.DecodeStrict(settings, "processors."+Name, &cfg); err != nil {
				return nil, err
			}
			if err := cfg.Validate("processors."+Name, app); err != nil {
				return nil, err
			}
			return NewFactory(cfg, app), nil
		},
	}
}

// NewFactory returns the Factory of processors with a validated cfg.
func NewFactory(cfg Config, app processors.AppInfo) processors.Factory {
	return func(_ context.Context, env processors.Env) (processors.Processor, error) {
		return New(cfg, app, env), nil
	}
}

// Processor is one shard lease's archive instance. Its only state is the
// occurrence count of recent order lines.
type Processor struct {
	table string
	env   processors.Env
	log   *zap.Logger
	seen  lines
	// archived counts lines emitted since the last metric.
	archived int64
}

var _ processors.Processor = (*Processor)(nil)

// New returns a processor for env.Shard. There is nothing to restore:
// items are keyed by content, so replayed records rewrite the same items.
func New(cfg Config, app processors.AppInfo, env processors.Env) *Processor {
	return &Processor{
		table: cfg.TableName(app),
		env:   env,
		log:   env.Logger.With(zap.String("processor", Name), zap.String("shard_id", env.Shard.ShardID)),
		seen:  newLines(cfg.MaxLines),
	}
}

// Process emits one archive item per order record.
func (p *Processor) Process(_ context.Context, recs []records.Record, out processors.Emitter) error {
	for i := range recs {
		r := &recs[i]
		if r.Kind != records.KindOrder {
			continue
		}
		k := KeyOf(r)
		out.Put(Item(p.table, k, p.seen.next(k.PK+"\x00"+k.Prefix), r))
		p.archived++
	}
	return nil
}

// Flush reports the lines archived since the last Flush.
func (p *Processor) Flush(_ context.Context, out processors.Emitter) error {
	if p.archived > 0 {
		out.Metric(processors.Datum{
			Name: "ArchivedOrders", Unit: "Count", Time: p.env.Clock.Now().Truncate(time.Second),
			Dims:  []processors.Dim{{Name: "Stream", Value: p.env.Shard.Stream}, {Name: "Processor", Value: Name}},
			Value: float64(p.archived), Count: 1,
		})
		p.archived = 0
	}
	return nil
}

// Close ends the lease. Every item was emitted with its batch, so there is
// nothing left to write; on a lost lease even the metric is dropped.
func (p *Processor) Close(ctx context.Context, reason processors.Reason, out processors.Emitter) error {
	if reason == processors.LeaseLost {
		p.seen = newLines(p.seen.max)
		p.archived = 0
		return nil
	}
	return p.Flush(ctx, out)
}

// StateSize returns the order lines remembered (for the conformance kit's
// bounded-state check).
func (p *Processor) StateSize() int { return len(p.seen.count) }

// lines counts occurrences of order lines, forgetting the oldest line once
// max are remembered (a ring of insertion order).
type lines struct {
	max   int
	count map[string]int32
	ring  []string
	head  int
}

func newLines(max int) lines {
	return lines{max: max, count: make(map[string]int32, min(max, 1024))}
}

// next counts one more occurrence of key and returns its number, from 1.
func (l *lines) next(key string) int {
	if n, ok := l.count[key]; ok {
		l.count[key] = n + 1
		return int(n + 1)
	}
	if len(l.ring) < l.max {
		l.ring = append(l.ring, key)
	} else {
		delete(l.count, l.ring[l.head])
		l.ring[l.head] = key
		l.head = (l.head + 1) % l.max
	}
	l.count[key] = 1
	return 1
}
