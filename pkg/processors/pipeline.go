package processors

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// Decoder turns one payload into a Record. records.Decoder satisfies it.
type Decoder interface {
	Decode(data []byte, r *records.Record) error
}

// Raw is one user record as read from the stream (after KPL
// de-aggregation), before decoding. Data must stay unmodified once the
// batch is handed to Process: decoded records' strings may point into it
// (see records.PayloadAliaser).
type Raw struct {
	Data []byte
	Meta records.Meta
}

// Named pairs a processor factory with the name used in config and logs.
type Named struct {
	Name    string
	Factory Factory
}

// Sinks are where a pipeline's outputs go. Nil members discard their kind
// of output (and count it), so a pipeline can run without, say, SNS.
type Sinks struct {
	Items       ItemWriter
	Messages    Publisher
	Metrics     MetricWriter
	DeadLetters DeadLetterWriter
}

// Hooks observe a pipeline without it knowing about any metrics library.
// Every member is optional.
type Hooks struct {
	// Decoded counts records decoded successfully; DeadLettered counts
	// records sent to the dead-letter sink, by reason class.
	Decoded      func(shard string, n int)
	DeadLettered func(shard, class string, n int)
	// ProcessorLatency reports the time one processor spent on one batch.
	ProcessorLatency func(processor string, d time.Duration)
	// SinkRetry reports a failed write attempt that will be retried.
	SinkRetry func(sink string, err error)
	// Dropped counts results a sink rejected as permanently invalid.
	Dropped func(sink string, n int)
}

// Config builds per-shard pipelines. It is shared by all shards of a worker.
type Config struct {
	Stream     string
	Processors []Named
	// NewDecoder returns a decoder for one shard (decoders may keep state,
	// such as a CloudFront #Fields header).
	NewDecoder func() (Decoder, error)
	// Skip reports decode errors that are not bad input (headers): the
	// record is skipped without dead-lettering.
	Skip   func(error) bool
	Sinks  Sinks
	Store  Store
	Clock  Clock
	Logger *zap.Logger
	Hooks  Hooks
	// Shards lists the stream's open shards (Env.Shards); nil when unknown.
	Shards func(context.Context) ([]string, error)
	// MaxOutputs bounds what one batch may emit (default 1,000,000).
	MaxOutputs int
	// FlushInterval is the least time between processor flushes (and so
	// between checkpoints). Zero flushes after every batch. A longer
	// interval writes each partial result less often at the price of more
	// records to replay after a crash and later running results; a
	// processor that must not wait (an alarm, a closed window) asks for
	// its own flush through Urgent.
	FlushInterval time.Duration
	// RetryBackoff bounds the wait between sink write attempts (default
	// 100 ms doubling to 5 s).
	RetryMin, RetryMax time.Duration
	// Sleep waits between retries; tests replace it. Default: timer + ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// ErrOutputOverflow is returned when processors emit more than MaxOutputs
// results for one batch.
var ErrOutputOverflow = errors.New("processors emitted more results than the per-batch bound")

func (c *Config) withDefaults() Config {
	out := *c
	if out.MaxOutputs <= 0 {
		out.MaxOutputs = 1_000_000
	}
	if out.RetryMin <= 0 {
		out.RetryMin = 100 * time.Millisecond
	}
	if out.RetryMax <= 0 {
		out.RetryMax = 5 * time.Second
	}
	if out.Sleep == nil {
		out.Sleep = sleepCtx
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	if out.Skip == nil {
		out.Skip = func(error) bool { return false }
	}
	return out
}

// Validate reports a Config that cannot build pipelines.
func (c *Config) Validate() error {
	switch {
	case c.Stream == "":
		return errors.New("pipeline: stream is empty")
	case c.NewDecoder == nil:
		return errors.New("pipeline: no decoder")
	case c.Clock == nil:
		return errors.New("pipeline: no clock")
	}
	for i, p := range c.Processors {
		if p.Name == "" || p.Factory == nil {
			return fmt.Errorf("pipeline: processor %d has no name or factory", i)
		}
	}
	return nil
}

// ShardPipeline runs every configured processor over one shard lease. It is
// not safe for concurrent use: the engine calls it from the shard's one
// goroutine.
type ShardPipeline struct {
	cfg     Config
	shard   Shard
	log     *zap.Logger
	dec     Decoder
	procs   []Named
	insts   []Processor
	urgent  []Urgent // per instance; nil when it does not implement Urgent
	flushed []bool   // per instance, flushAll's scratch
	out     batchEmitter
	recs    []records.Record
	dls     []DeadLetter
	closed  bool
	lastSeq string
	// dirty: records were processed since the last flush, so their
	// results are not durable yet.
	dirty     bool
	lastFlush time.Time
}

// Open starts a pipeline for a newly leased shard: it builds one processor
// instance per configured factory (they restore their state here).
func Open(ctx context.Context, cfg Config, shard Shard) (*ShardPipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	dec, err := cfg.NewDecoder()
	if err != nil {
		return nil, fmt.Errorf("shard %s: decoder: %w", shard.ShardID, err)
	}
	// Payloads are never modified (Raw) and processors copy the strings
	// they keep (Record), so decoded strings may slice the payloads
	// instead of a copy of each: one allocation less per record.
	if a, ok := dec.(records.PayloadAliaser); ok {
		a.AliasPayload(true)
	}
	p := &ShardPipeline{
		cfg:   cfg,
		shard: shard,
		log:   cfg.Logger.With(zap.String("shard_id", shard.ShardID)),
		dec:   dec,
		procs: cfg.Processors,
		out:   batchEmitter{max: cfg.MaxOutputs, stream: shard.Stream},
	}
	for _, n := range cfg.Processors {
		env := Env{Shard: shard, Logger: p.log.With(zap.String("processor", n.Name)), Clock: cfg.Clock, Store: cfg.Store,
			Publisher: cfg.Sinks.Messages, Shards: cfg.Shards}
		inst, err := n.Factory(ctx, env)
		if err != nil {
			p.closeStarted(ctx)
			return nil, fmt.Errorf("shard %s: start processor %s: %w", shard.ShardID, n.Name, err)
		}
		p.insts = append(p.insts, inst)
		u, _ := inst.(Urgent)
		p.urgent = append(p.urgent, u)
	}
	return p, nil
}

// closeStarted discards processors that started before one failed.
func (p *ShardPipeline) closeStarted(ctx context.Context) {
	var discard batchEmitter
	discard.max = p.cfg.MaxOutputs
	for _, inst := range p.insts {
		_ = inst.Close(ctx, LeaseLost, &discard)
	}
}

// Process decodes and processes one batch, then writes everything the
// processors emitted. When it returns nil the batch may be checkpointed.
// A non-nil error means the batch's results are not durable: do not
// checkpoint (the lease should be given up or the worker stopped).
func (p *ShardPipeline) Process(ctx context.Context, batch []Raw) error {
	if p.closed {
		return errors.New("pipeline closed")
	}
	p.dls = p.dls[:0]
	// Written or not, let the dead letters' payloads go with the batch.
	defer func() { clear(p.dls) }()
	p.out.reset()
	// Decode and process in chunks: a poll returns up to 10,000 records per
	// shard while a backlog drains, and a shard's Records (plus the
	// payloads their strings point into) would otherwise stay that large
	// for the rest of the lease. Processors see several Process calls
	// before a Flush, as with a flush interval.
	for off := 0; off < len(batch); off += decodeChunk {
		if err := p.processChunk(ctx, batch[off:min(off+decodeChunk, len(batch))]); err != nil {
			return err
		}
	}
	if len(batch) > 0 {
		p.lastSeq = batch[len(batch)-1].Meta.SequenceNumber
		p.dirty = true
	}
	return p.flushAndWrite(ctx)
}

// flushAndWrite flushes every processor when the cadence is due (the
// results are then durable), else only the urgent ones, and writes what
// they emitted.
func (p *ShardPipeline) flushAndWrite(ctx context.Context) error {
	if p.flushDue() {
		if err := p.flushAll(ctx); err != nil {
			return err
		}
		p.dirty = false
		p.lastFlush = p.cfg.Clock.Now()
	} else if err := p.flushUrgent(ctx); err != nil {
		return err
	}
	return p.write(ctx)
}

// flushUrgent flushes the processors that ask for it (Urgent) between
// cadence flushes. The pipeline stays dirty: the others' results are not
// durable, so the checkpoint waits for the next cadence flush.
func (p *ShardPipeline) flushUrgent(ctx context.Context) error {
	for i, u := range p.urgent {
		if u == nil || !u.Urgent() {
			continue
		}
		if err := p.insts[i].Flush(ctx, &p.out); err != nil {
			return fmt.Errorf("shard %s: flush processor %s: %w", p.shard.ShardID, p.procs[i].Name, err)
		}
	}
	return p.out.err
}

// decodeChunk is the most records a pipeline decodes and holds at once.
const decodeChunk = 1000

// processChunk decodes chunk and runs every processor over its records.
func (p *ShardPipeline) processChunk(ctx context.Context, chunk []Raw) error {
	if cap(p.recs) < len(chunk) {
		p.recs = make([]records.Record, 0, len(chunk))
	}
	p.recs = p.recs[:0]
	// Drop the records when done: their strings point into the payloads.
	defer func() { clear(p.recs) }()
	for i := range chunk {
		raw := &chunk[i]
		p.recs = p.recs[:len(p.recs)+1]
		r := &p.recs[len(p.recs)-1]
		r.Reset()
		if err := p.dec.Decode(raw.Data, r); err != nil {
			p.recs = p.recs[:len(p.recs)-1]
			if p.cfg.Skip(err) {
				continue
			}
			p.dls = append(p.dls, DeadLetter{
				Stream: p.shard.Stream, ShardID: raw.Meta.ShardID, Sequence: raw.Meta.SequenceNumber,
				SubSequence: raw.Meta.SubSequence, PartitionKey: raw.Meta.PartitionKey,
				ArrivalTime: raw.Meta.ArrivalTime, Reason: err.Error(), Data: raw.Data,
			})
			continue
		}
		r.Meta = raw.Meta
	}
	if len(p.recs) == 0 {
		return nil
	}
	if h := p.cfg.Hooks.Decoded; h != nil {
		h(p.shard.ShardID, len(p.recs))
	}
	for i, inst := range p.insts {
		start := time.Now()
		if err := inst.Process(ctx, p.recs, &p.out); err != nil {
			return fmt.Errorf("shard %s: processor %s: %w", p.shard.ShardID, p.procs[i].Name, err)
		}
		if h := p.cfg.Hooks.ProcessorLatency; h != nil {
			h(p.procs[i].Name, time.Since(start))
		}
	}
	return nil
}

// Durable reports whether the results of every record processed so far
// are durably written: only then may the last sequence be checkpointed.
// With a FlushInterval it is false between flushes.
func (p *ShardPipeline) Durable() bool { return !p.dirty }

func (p *ShardPipeline) flushDue() bool {
	return p.cfg.FlushInterval <= 0 || p.cfg.Clock.Now().Sub(p.lastFlush) >= p.cfg.FlushInterval
}

// Tick serves a poll without records to process: processors close
// windows on the clock and flush when due or urgent, and what they emit
// is written. caughtUp says the poll found the shard read to its end
// (processors implementing CaughtUp are told).
func (p *ShardPipeline) Tick(ctx context.Context, caughtUp bool) error {
	if p.closed {
		return errors.New("pipeline closed")
	}
	p.dls = p.dls[:0]
	p.out.reset()
	if caughtUp {
		now := p.cfg.Clock.Now()
		for _, inst := range p.insts {
			if c, ok := inst.(CaughtUp); ok {
				c.CaughtUp(now)
			}
		}
	}
	return p.flushAndWrite(ctx)
}

// flushAll flushes every processor. Those with an urgent result go first
// and their output is written at once: the others' flushes (global merges
// when windows close) must not hold an alarm or a frontier back.
func (p *ShardPipeline) flushAll(ctx context.Context) error {
	done := p.flushed[:0]
	urgent := false
	for i, u := range p.urgent {
		first := u != nil && u.Urgent()
		done = append(done, first)
		if !first {
			continue
		}
		urgent = true
		if err := p.insts[i].Flush(ctx, &p.out); err != nil {
			return fmt.Errorf("shard %s: flush processor %s: %w", p.shard.ShardID, p.procs[i].Name, err)
		}
	}
	p.flushed = done
	if urgent && len(p.insts) > 1 {
		if p.out.err != nil {
			return p.out.err
		}
		if err := p.write(ctx); err != nil {
			return err
		}
		p.out.reset()
		p.dls = p.dls[:0]
	}
	for i, inst := range p.insts {
		if done[i] {
			continue
		}
		if err := inst.Flush(ctx, &p.out); err != nil {
			return fmt.Errorf("shard %s: flush processor %s: %w", p.shard.ShardID, p.procs[i].Name, err)
		}
	}
	return p.out.err
}

// Close ends the lease's processors. For LeaseLost nothing is written; for
// ShardEnded and Shutdown their final output is written before it returns.
func (p *ShardPipeline) Close(ctx context.Context, reason Reason) error {
	if p.closed {
		return nil
	}
	p.closed = true
	p.out.reset()
	p.dls = p.dls[:0]
	var errs []error
	for i, inst := range p.insts {
		if err := inst.Close(ctx, reason, &p.out); err != nil {
			errs = append(errs, fmt.Errorf("close processor %s: %w", p.procs[i].Name, err))
		}
	}
	if reason == LeaseLost {
		p.out.reset()
		return errors.Join(errs...)
	}
	if p.out.err != nil {
		errs = append(errs, p.out.err)
	} else if err := p.write(ctx); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("shard %s: close (%s): %w", p.shard.ShardID, reason, errors.Join(errs...))
	}
	return nil
}

// write makes the batch's dead letters and outputs durable, retrying each
// sink until it succeeds or ctx ends. Outputs are idempotent (whole-item
// overwrites), so a retry after a partial failure is harmless. Messages go
// last: an alarm is only published once the items it describes are stored.
func (p *ShardPipeline) write(ctx context.Context) error {
	s := p.cfg.Sinks
	if len(p.dls) > 0 {
		if s.DeadLetters == nil {
			return fmt.Errorf("shard %s: %d malformed records and no dead-letter sink", p.shard.ShardID, len(p.dls))
		}
		if err := writeAll(ctx, p, "deadletter", p.dls, s.DeadLetters.WriteDeadLetters); err != nil {
			return err
		}
		if h := p.cfg.Hooks.DeadLettered; h != nil {
			h(p.shard.ShardID, "decode", len(p.dls))
		}
	}
	// Repeated writes of one key (a partial updated twice in a batch) are
	// left to the sink, which must collapse them anyway: BatchWriteItem
	// rejects a request naming one key twice.
	if items := p.out.items; len(items) > 0 && s.Items != nil {
		p.fence(items)
		if err := writeAll(ctx, p, "items", items, s.Items.WriteItems); err != nil {
			return err
		}
	}
	if len(p.out.metrics) > 0 && s.Metrics != nil {
		if err := writeAll(ctx, p, "metrics", p.out.metrics, s.Metrics.WriteMetrics); err != nil {
			return err
		}
	}
	if len(p.out.msgs) > 0 && s.Messages != nil {
		if err := writeAll(ctx, p, "messages", p.out.msgs, s.Messages.Publish); err != nil {
			return err
		}
	}
	return nil
}

// PartialError is implemented by sink errors that know which inputs were
// not written (indexes into the slice passed to the write) and which of
// those no retry can write (rejected as invalid).
type PartialError interface {
	error
	Unwritten() (retryable, permanent []int)
}

// writeAll writes in until it is durable or ctx ends. After a partial
// failure only the unwritten inputs are sent again, so a published message
// is not published twice. Inputs the sink rejects as permanently invalid
// are dropped, logged and counted: they come from a processor bug, and
// retrying them would stall the shard forever.
func writeAll[T any](ctx context.Context, p *ShardPipeline, sink string, in []T, write func(context.Context, []T) error) error {
	wait := p.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := write(ctx, in)
		if err == nil {
			return nil
		}
		var pe PartialError
		if errors.As(err, &pe) {
			retry, permanent := pe.Unwritten()
			if len(permanent) > 0 {
				p.log.Error("sink rejected results permanently; dropping them", zap.String("sink", sink), zap.Int("dropped", len(permanent)), zap.Error(err))
				if h := p.cfg.Hooks.Dropped; h != nil {
					h(sink, len(permanent))
				}
			}
			if len(retry) == 0 {
				return nil
			}
			if len(retry)+len(permanent) <= len(in) {
				next := make([]T, 0, len(retry))
				for _, i := range retry {
					if i >= 0 && i < len(in) {
						next = append(next, in[i])
					}
				}
				in = next
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("shard %s: write %s: %w", p.shard.ShardID, sink, errors.Join(err, ctx.Err()))
		}
		if h := p.cfg.Hooks.SinkRetry; h != nil {
			h(sink, err)
		}
		if attempt == 1 || attempt%10 == 0 {
			p.log.Warn("sink write failed; retrying", zap.String("sink", sink), zap.Int("attempt", attempt), zap.Error(err))
		}
		// Full jitter keeps a fleet of shards from retrying in lockstep.
		d := time.Duration(rand.Int64N(int64(wait)) + 1)
		if err := p.cfg.Sleep(ctx, d); err != nil {
			return fmt.Errorf("shard %s: write %s: %w", p.shard.ShardID, sink, err)
		}
		wait = min(wait*2, p.cfg.RetryMax)
	}
}

// LastSequence is the sequence number of the last record handed to Process.
func (p *ShardPipeline) LastSequence() string { return p.lastSeq }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// batchEmitter buffers one batch's outputs, bounded by max.
type batchEmitter struct {
	max     int
	stream  string
	items   []Item
	msgs    []Message
	metrics []Datum
	err     error
}

func (e *batchEmitter) reset() {
	clear(e.items)
	e.items = e.items[:0]
	e.msgs = e.msgs[:0]
	clear(e.metrics)
	e.metrics = e.metrics[:0]
	e.err = nil
}

func (e *batchEmitter) full() bool {
	if len(e.items)+len(e.msgs)+len(e.metrics) < e.max {
		return false
	}
	if e.err == nil {
		e.err = fmt.Errorf("%w (%d)", ErrOutputOverflow, e.max)
	}
	return true
}

func (e *batchEmitter) Put(it Item) {
	if !e.full() {
		e.items = append(e.items, it)
	}
}

func (e *batchEmitter) Publish(m Message) {
	if !e.full() {
		e.msgs = append(e.msgs, m)
	}
}

// Metric adds the Stream dimension when the processor left it out: one
// account runs one stack per stream into the same namespace, and alarms
// are defined per stream (deploy/ecs/METRICS.md).
func (e *batchEmitter) Metric(d Datum) {
	if e.full() {
		return
	}
	if e.stream != "" && !hasDim(d.Dims, "Stream") {
		dims := make([]Dim, len(d.Dims), len(d.Dims)+1)
		copy(dims, d.Dims)
		d.Dims = append(dims, Dim{Name: "Stream", Value: e.stream})
	}
	e.metrics = append(e.metrics, d)
}

func hasDim(dims []Dim, name string) bool {
	for _, d := range dims {
		if d.Name == name {
			return true
		}
	}
	return false
}

// fence stamps the shard's own items (AttrShard = this shard) with the
// tenure's lease token, so the sink refuses to let them replace items a
// later tenure wrote. Items shared by all shards (global merges, content-
// keyed archives) stay unfenced.
func (p *ShardPipeline) fence(items []Item) {
	if p.shard.Tenure <= 0 {
		return
	}
	for i := range items {
		if v, ok := items[i].Attrs[AttrShard].(*types.AttributeValueMemberS); ok && v.Value == p.shard.ShardID {
			items[i].Fence = p.shard.Tenure
		}
	}
}
