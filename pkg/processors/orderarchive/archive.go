package orderarchive

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
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
	return func(ctx context.Context, env processors.Env) (processors.Processor, error) {
		return New(ctx, cfg, app, env)
	}
}

// Processor is one shard lease's archive instance. Its only state is the
// occurrence count of the lines of the current invoice.
type Processor struct {
	cfg   Config
	table string
	app   processors.AppInfo
	env   processors.Env
	log   *zap.Logger
	state stateKey

	cur run
	// pos is the newest position processed (any record kind).
	pos window.Position
	// gens are the runs at the last two flushes that followed new records,
	// newest first: a next owner starts after one of them (see restore).
	gens []gen
	// restored are a previous owner's gens, applied at the first record.
	restored []gen
	orders   bool  // an order was seen or state restored: keep state
	archived int64 // lines emitted since the last metric
}

var _ processors.Processor = (*Processor)(nil)

// New returns a processor for env.Shard, loading the shard's state item
// (the counts of the invoice a previous owner was in the middle of).
func New(ctx context.Context, cfg Config, app processors.AppInfo, env processors.Env) (*Processor, error) {
	table := cfg.TableName(app)
	p := &Processor{
		cfg: cfg, table: table, app: app, env: env,
		log:   env.Logger.With(zap.String("processor", Name), zap.String("shard_id", env.Shard.ShardID)),
		state: newStateKey(table, env.Shard.ShardID),
	}
	items, err := env.Store.Query(ctx, app.Tables.Results, AttrPK, p.state.pk, AttrSK, p.state.sk, p.state.sk)
	if err != nil {
		return nil, fmt.Errorf("orderarchive: shard %s: load state: %w", env.Shard.ShardID, err)
	}
	if len(items) > 0 {
		gens, err := parseState(items[0])
		if err != nil {
			// Losing the state costs at most one repeated line of one
			// invoice; refusing the lease would stop the shard.
			p.log.Warn("ignoring malformed state item", zap.Error(err))
		}
		p.restored, p.gens = gens, gens
		p.orders = len(gens) > 0
	}
	return p, nil
}

// Process emits one archive item per order record.
func (p *Processor) Process(_ context.Context, recs []records.Record, out processors.Emitter) error {
	if len(recs) == 0 {
		return nil
	}
	if p.restored != nil {
		p.resume(window.PositionOf(&recs[0].Meta))
	}
	for i := range recs {
		r := &recs[i]
		if r.Kind != records.KindOrder {
			continue
		}
		p.orders = true
		k := KeyOf(r)
		out.Put(Item(p.table, k, p.cur.next(k, r.Meta.ArrivalTime, p.cfg.InvoiceGap, p.cfg.MaxLines), r))
		p.archived++
	}
	p.pos = window.PositionOf(&recs[len(recs)-1].Meta).Clone()
	return nil
}

// resume continues the run of the newest restored generation that ends
// before first, the lease's first record: the previous owner's state at
// the checkpoint this lease starts from. A generation at or after first
// covers records this lease is about to process again.
func (p *Processor) resume(first window.Position) {
	for _, g := range p.restored {
		if g.pos.Compare(first) < 0 {
			p.cur = g.run.clone()
			break
		}
	}
	p.restored = nil
}

// Flush saves the current invoice's counts (when records arrived since the
// last save) and reports the lines archived.
func (p *Processor) Flush(_ context.Context, out processors.Emitter) error {
	if p.orders && !p.pos.IsZero() && (len(p.gens) == 0 || p.pos.Compare(p.gens[0].pos) > 0) {
		g := gen{pos: p.pos, run: p.cur.clone()}
		if len(p.gens) > 0 {
			p.gens = []gen{g, p.gens[0]}
		} else {
			p.gens = []gen{g}
		}
		now := p.env.Clock.Now()
		out.Put(stateItem(p.app.Tables.Results, p.state, p.env.Shard.ShardID, p.gens, now.Add(p.app.RetentionOrDefault())))
	}
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

// Close ends the lease. Every item was emitted with its batch; Flush
// saves the state for the next owner. On a lost lease nothing is emitted.
func (p *Processor) Close(ctx context.Context, reason processors.Reason, out processors.Emitter) error {
	if reason == processors.LeaseLost {
		p.cur, p.gens, p.restored, p.archived = run{}, nil, nil, 0
		return nil
	}
	return p.Flush(ctx, out)
}

// StateSize returns the lines counted for the current invoice (for the
// conformance kit's bounded-state check).
func (p *Processor) StateSize() int { return len(p.cur.counts) }
