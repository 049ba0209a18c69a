package processortest

import (
	"context"
	"fmt"
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Harness drives a processor the way the pipeline does: Factory once per
// lease, Process then Flush per batch, every emitted item written to the
// Store before the next batch. Panics come back as errors so a test
// reports them instead of dying.
//
// Messages a processor publishes synchronously (Env.Publisher) are added
// to the Recorder of the call that published them, after those emitted
// through the Emitter.
type Harness struct {
	Factory processors.Factory
	Store   *Store
	Clock   *Clock
	Shard   processors.Shard
	Logger  *zap.Logger
	// Publisher is the Env's synchronous publisher (default: a new fake).
	Publisher *Publisher
	// Shards, when set, is the Env's list of the stream's open shards.
	Shards []string
}

// Env returns the Env the harness passes to the Factory.
func (h *Harness) Env() processors.Env {
	lg := h.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	if h.Publisher == nil {
		h.Publisher = &Publisher{}
	}
	env := processors.Env{Shard: h.Shard, Logger: lg, Clock: h.Clock, Store: h.Store, Publisher: h.Publisher}
	if h.Shards != nil {
		env.Shards = func(context.Context) ([]string, error) { return h.Shards, nil }
	}
	return env
}

// published moves what the processor published synchronously into rec.
func (h *Harness) published(rec *Recorder) {
	if h.Publisher != nil {
		rec.Messages = append(rec.Messages, h.Publisher.Take()...)
	}
}

// Start builds a processor for a new lease of h.Shard.
func (h *Harness) Start(ctx context.Context) (p processors.Processor, err error) {
	defer catch(&err, "factory")
	p, err = h.Factory(ctx, h.Env())
	if err == nil && p == nil {
		err = fmt.Errorf("factory returned a nil processor")
	}
	return p, err
}

// Batch calls Process then Flush and writes the emitted items to the
// store. It returns what was emitted.
func (h *Harness) Batch(ctx context.Context, p processors.Processor, recs []records.Record) (*Recorder, error) {
	rec, err := h.Emit(ctx, p, recs)
	if err != nil {
		return rec, err
	}
	return rec, h.Store.Apply(rec.Items)
}

// Emit is Batch without writing to the store (a crash before the write).
func (h *Harness) Emit(ctx context.Context, p processors.Processor, recs []records.Record) (rec *Recorder, err error) {
	rec = &Recorder{}
	defer h.published(rec)
	defer catch(&err, "process")
	if err := p.Process(ctx, recs, rec); err != nil {
		return rec, fmt.Errorf("process: %w", err)
	}
	if err := p.Flush(ctx, rec); err != nil {
		return rec, fmt.Errorf("flush: %w", err)
	}
	return rec, nil
}

// Flush calls Flush alone (an idle poll) and writes the emitted items.
func (h *Harness) Flush(ctx context.Context, p processors.Processor) (rec *Recorder, err error) {
	rec = &Recorder{}
	defer catch(&err, "flush")
	defer h.published(rec)
	if err := p.Flush(ctx, rec); err != nil {
		return rec, fmt.Errorf("flush: %w", err)
	}
	return rec, h.Store.Apply(rec.Items)
}

// Close calls Close(reason) and writes the emitted items.
func (h *Harness) Close(ctx context.Context, p processors.Processor, reason processors.Reason) (rec *Recorder, err error) {
	rec = &Recorder{}
	defer catch(&err, "close")
	defer h.published(rec)
	if err := p.Close(ctx, reason, rec); err != nil {
		return rec, fmt.Errorf("close(%s): %w", reason, err)
	}
	return rec, h.Store.Apply(rec.Items)
}

func catch(err *error, op string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s panicked: %v\n%s", op, r, debug.Stack())
	}
}
