package putter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/kpl"
)

// ProducerConfig configures a Producer. Zero fields take defaults.
type ProducerConfig struct {
	// Buffer bounds the entries waiting for a batch. Default 10,000.
	Buffer int
	// Linger is how long a partial batch waits for more entries. Default
	// 100ms.
	Linger time.Duration
	// Concurrency is the number of PutRecords calls in flight. Default 4.
	Concurrency int
	// Aggregate packs entries into KPL aggregated records (see pkg/kpl)
	// before batching. Entries with an explicit hash key, or that are
	// aggregates already, are sent as they are.
	Aggregate bool
	// AggregateLimits bound one aggregated record.
	AggregateLimits kpl.Limits
}

func (c *ProducerConfig) setDefaults() error {
	if c.Buffer == 0 {
		c.Buffer = 10_000
	}
	if c.Linger == 0 {
		c.Linger = 100 * time.Millisecond
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	switch {
	case c.Buffer < 1:
		return fmt.Errorf("putter: buffer %d < 1", c.Buffer)
	case c.Linger < 0:
		return fmt.Errorf("putter: linger %v < 0", c.Linger)
	case c.Concurrency < 1:
		return fmt.Errorf("putter: concurrency %d < 1", c.Concurrency)
	}
	return nil
}

// Stats are cumulative counts of user records.
type Stats struct {
	Sent     int64
	Retried  int64
	Failed   int64
	Rejected int64 // TryAdd answered ErrFull
	Buffered int64 // waiting in the buffer now
}

// Producer batches entries from a bounded buffer into PutRecords calls.
// Add, TryAdd, Close and Stats are safe for concurrent use; Run is called
// once.
type Producer struct {
	putter    *Putter
	cfg       ProducerConfig
	log       *zap.Logger
	onFailure func([]Failure)

	in chan Entry
	// mu orders sends on in against closing it and against the final
	// drain: senders hold it shared, Close and the drain exclusively.
	mu      sync.RWMutex
	closed  bool          // in is closed (Close) or drained (Run ended)
	stopped chan struct{} // closed when Run gives up on ctx

	sent, retried, failed, rejected atomic.Int64
}

// ProducerOption configures a Producer.
type ProducerOption func(*Producer)

// WithFailureHook is called with every group of entries that could not be
// written (at most one call per PutRecords batch), in addition to the
// counts in Stats. It must be safe for concurrent use.
func WithFailureHook(f func([]Failure)) ProducerOption {
	return func(p *Producer) { p.onFailure = f }
}

// NewProducer returns a Producer sending through putter. Call Run to
// start it.
func NewProducer(putter *Putter, cfg ProducerConfig, log *zap.Logger, opts ...ProducerOption) (*Producer, error) {
	if putter == nil {
		return nil, errors.New("putter: nil putter")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.Aggregate {
		// Validate the limits now rather than when Run starts.
		l := cfg.AggregateLimits
		if l.MaxBytes == 0 {
			l.MaxBytes = putter.cfg.MaxRecordBytes
		}
		if _, err := kpl.NewAggregate(l); err != nil {
			return nil, err
		}
		cfg.AggregateLimits = l
	}
	p := &Producer{
		putter:  putter,
		cfg:     cfg,
		log:     log,
		in:      make(chan Entry, cfg.Buffer),
		stopped: make(chan struct{}),
	}
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

// Add queues e, waiting while the buffer is full. An invalid entry is
// counted as failed and returned as an error wrapping ErrInvalidEntry.
func (p *Producer) Add(ctx context.Context, e Entry) error {
	if err := p.check(&e); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case p.in <- e:
		return nil
	case <-p.stopped:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TryAdd queues e if the buffer has room and returns ErrFull otherwise.
func (p *Producer) TryAdd(e Entry) error {
	if err := p.check(&e); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case p.in <- e:
		return nil
	default:
		p.rejected.Add(int64(e.weight()))
		return ErrFull
	}
}

func (p *Producer) check(e *Entry) error {
	if err := e.validate(p.putter.cfg.MaxRecordBytes); err != nil {
		p.fail([]Failure{{Entry: *e, Err: err}})
		return err
	}
	return nil
}

// Close stops intake; Run sends what is buffered and returns. Close is
// idempotent.
func (p *Producer) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.in)
	}
}

// Stats returns the counts so far.
func (p *Producer) Stats() Stats {
	return Stats{
		Sent:     p.sent.Load(),
		Retried:  p.retried.Load(),
		Failed:   p.failed.Load(),
		Rejected: p.rejected.Load(),
		Buffered: int64(len(p.in)),
	}
}

func (p *Producer) fail(fs []Failure) {
	if len(fs) == 0 {
		return
	}
	n := 0
	for i := range fs {
		n += fs[i].Entry.weight()
	}
	p.failed.Add(int64(n))
	if p.onFailure != nil {
		p.onFailure(fs)
		return
	}
	// One line per failed batch, never one per record.
	p.log.Warn("records not written", zap.Int("records", n), zap.String("code", fs[0].Code), zap.Error(fs[0].Err))
}

// Run batches and sends entries until Close was called and the buffer is
// drained (returns nil), or until ctx ends (returns ctx.Err()); then every
// entry not written is counted as failed.
func (p *Producer) Run(ctx context.Context) error {
	sendq := make(chan []Entry)
	var wg sync.WaitGroup
	for range p.cfg.Concurrency {
		wg.Go(func() {
			for b := range sendq {
				res := p.putter.Put(ctx, b)
				p.sent.Add(int64(res.Sent))
				p.retried.Add(int64(res.Retried))
				p.fail(res.Failed)
			}
		})
	}
	defer wg.Wait()
	defer close(sendq)

	b, err := p.newBatcher()
	if err != nil {
		return err
	}
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	lingering := false

	dispatch := func(ready [][]Entry) bool {
		for i, batch := range ready {
			select {
			case sendq <- batch:
			case <-ctx.Done():
				for _, rest := range ready[i:] {
					p.failEntries(rest, ctx.Err())
				}
				return false
			}
		}
		return true
	}
	for {
		select {
		case e, ok := <-p.in:
			if !ok {
				dispatch(b.flush())
				return nil
			}
			if !dispatch(b.add(e)) {
				return p.abort(ctx, b)
			}
			if !lingering && !b.empty() {
				linger.Reset(p.cfg.Linger)
				lingering = true
			}
		case <-linger.C:
			lingering = false
			if !dispatch(b.flush()) {
				return p.abort(ctx, b)
			}
		case <-ctx.Done():
			return p.abort(ctx, b)
		}
	}
}

// abort fails everything still buffered after ctx ended.
func (p *Producer) abort(ctx context.Context, b *batcher) error {
	err := ctx.Err()
	close(p.stopped) // wakes blocked Adds
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, batch := range b.flush() {
		p.failEntries(batch, err)
	}
	var rest []Entry
	if !p.closed {
		p.closed = true
	drain:
		for {
			select {
			case e := <-p.in:
				rest = append(rest, e)
			default:
				break drain
			}
		}
	} else {
		for e := range p.in {
			rest = append(rest, e)
		}
	}
	p.failEntries(rest, err)
	return err
}

func (p *Producer) failEntries(es []Entry, err error) {
	fs := make([]Failure, len(es))
	for i := range es {
		fs[i] = Failure{Entry: es[i], Err: fmt.Errorf("not sent: %w", err)}
	}
	p.fail(fs)
}

// batcher groups entries into PutRecords-sized batches, packing them into
// KPL aggregates first when configured.
type batcher struct {
	maxRecords, maxBytes int
	batch                []Entry
	bytes                int
	agg                  *kpl.Aggregate // nil: no aggregation
	onErr                func([]Failure)
}

func (p *Producer) newBatcher() (*batcher, error) {
	b := &batcher{
		maxRecords: p.putter.cfg.MaxBatchRecords,
		maxBytes:   p.putter.cfg.MaxBatchBytes,
		onErr:      p.fail,
	}
	if p.cfg.Aggregate {
		agg, err := kpl.NewAggregate(p.cfg.AggregateLimits)
		if err != nil {
			return nil, err
		}
		b.agg = agg
	}
	return b, nil
}

func (b *batcher) empty() bool {
	return len(b.batch) == 0 && (b.agg == nil || b.agg.Len() == 0)
}

// add takes e and returns the batches that became full.
func (b *batcher) add(e Entry) [][]Entry {
	if b.agg == nil || e.ExplicitHashKey != "" || e.Records > 1 {
		return b.append(nil, e)
	}
	var ready [][]Entry
	ok, err := b.agg.Add(e.PartitionKey, e.Data)
	if err == nil && !ok {
		ready = b.finishAggregate(ready)
		ok, err = b.agg.Add(e.PartitionKey, e.Data)
	}
	if err != nil || !ok {
		// Too large to aggregate; on its own it passed validation.
		return b.append(ready, e)
	}
	return ready
}

func (b *batcher) finishAggregate(ready [][]Entry) [][]Entry {
	if b.agg == nil {
		return ready
	}
	n := b.agg.Len()
	enc, ok, err := b.agg.Finish()
	if err != nil {
		b.onErr([]Failure{{Entry: Entry{Records: n}, Err: err}})
		return ready
	}
	if !ok {
		return ready
	}
	return b.append(ready, Entry{PartitionKey: enc.PartitionKey, Data: enc.Data, Records: enc.Records})
}

func (b *batcher) append(ready [][]Entry, e Entry) [][]Entry {
	if len(b.batch) == b.maxRecords || b.bytes+e.size() > b.maxBytes {
		ready = append(ready, b.batch)
		b.batch, b.bytes = nil, 0
	}
	if b.batch == nil {
		b.batch = make([]Entry, 0, b.maxRecords)
	}
	b.batch = append(b.batch, e)
	b.bytes += e.size()
	return ready
}

// flush returns everything pending, the open aggregate included.
func (b *batcher) flush() [][]Entry {
	ready := b.finishAggregate(nil)
	if len(b.batch) > 0 {
		ready = append(ready, b.batch)
		b.batch, b.bytes = nil, 0
	}
	return ready
}
