package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// shardProcessor adapts one shard lease of the engine to a
// processors.ShardPipeline. The engine calls it from the shard's single
// goroutine; only the lease-loss watcher runs beside it.
type shardProcessor struct {
	w   *Worker
	log *zap.Logger

	shardID  string
	pipe     *processors.ShardPipeline
	ctx      context.Context // cancelled on lease loss or hard stop
	cancel   context.CancelFunc
	lostOnce sync.Once
	lost     chan struct{} // closed when this tenure must stop
	raws     []processors.Raw
	good     []processors.Raw // raws less dead-lettered aggregates
	dls      []processors.DeadLetter
	// pending is the last sequence processed but not yet checkpointed
	// (between flushes with a flush interval, or after a transient
	// checkpoint failure).
	pending string
	// unaudited holds the positions (Meta only) of records processed
	// since the last durable flush: the audit line means "results
	// written", so it waits for the flush. Bounded by the flush interval.
	unaudited []processors.Raw
}

// Initialize is called once the engine holds the lease.
func (p *shardProcessor) Initialize(in *kcl.InitializationInput) {
	p.shardID = in.ShardId
	p.log = p.w.log.With(zap.String("shard_id", p.shardID))
	p.lost = make(chan struct{})
	p.ctx, p.cancel = context.WithCancel(p.w.baseCtx)
	if p.w.leases != nil {
		if ch := p.w.leases.Lost(p.shardID); ch != nil {
			go p.watch(ch)
		}
	}
	p.w.metrics.leaseStarted(p.shardID)
	p.log.Info("lease started", zap.String("checkpoint", aws.ToString(in.ExtendedSequenceNumber.SequenceNumber)))
	p.open()
}

// watch turns the store's lease-loss signal into a cancelled context so a
// batch stuck retrying a sink stops at once.
func (p *shardProcessor) watch(ch <-chan struct{}) {
	select {
	case <-ch:
		p.markLost("lease lost")
	case <-p.lost:
	}
}

// end closes the tenure quietly: the engine ended it (shutdown, shard
// end) or this worker handed it over.
func (p *shardProcessor) end() {
	p.lostOnce.Do(func() {
		close(p.lost)
		p.cancel()
	})
}

func (p *shardProcessor) markLost(why string) {
	p.lostOnce.Do(func() {
		p.log.Warn("stopping shard without checkpoint", zap.String("reason", why))
		p.w.metrics.leaseLost(p.shardID)
		close(p.lost)
		p.cancel()
	})
}

func (p *shardProcessor) isLost() bool {
	select {
	case <-p.lost:
		return true
	default:
		return false
	}
}

// open builds the pipeline; on failure the next batch tries again (the
// records are not checkpointed meanwhile, so nothing is skipped).
func (p *shardProcessor) open() bool {
	if p.pipe != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.w.cfg.OpenTimeout)
	defer cancel()
	shard := processors.Shard{Stream: p.w.cfg.Stream, ShardID: p.shardID, WorkerID: p.w.cfg.WorkerID}
	if p.w.leases != nil {
		shard.Tenure = p.w.leases.Token(p.shardID)
	}
	pipe, err := processors.Open(ctx, p.w.cfg.Pipeline, shard)
	if err != nil {
		p.log.Error("open pipeline", zap.Error(err))
		return false
	}
	p.pipe = pipe
	return true
}

// ProcessRecords runs one GetRecords batch through the pipeline and
// checkpoints its end once every result is durably written.
func (p *shardProcessor) ProcessRecords(in *kcl.ProcessRecordsInput) {
	if p.isLost() {
		return
	}
	defer p.pace(time.Now(), len(in.Records), in.MillisBehindLatest)
	p.w.metrics.behind(p.shardID, in.MillisBehindLatest)
	if p.w.leases != nil && p.w.leases.Claimed(p.shardID) {
		p.handOver(in.Checkpointer)
		return
	}
	if !p.open() {
		p.giveUp("pipeline did not start")
		return
	}
	p.raws = toRaw(p.raws[:0], p.shardID, in.Records)
	// Let the payloads go with the poll's response (see pipeline.Process).
	defer clear(p.raws)
	good, err := p.deadLetterMalformed(p.ctx)
	if err != nil {
		if p.isLost() {
			return
		}
		p.log.Error("dead-letter malformed aggregates", zap.Error(err))
		p.giveUp("dead-letter write failed")
		return
	}
	if len(p.raws) > 0 {
		p.w.metrics.recordsIn(p.shardID, len(p.raws))
	}
	if len(good) == 0 {
		err = p.pipe.Tick(p.ctx, len(in.Records) == 0 && in.MillisBehindLatest == 0)
	} else {
		err = p.pipe.Process(p.ctx, good)
	}
	if err != nil {
		if p.isLost() {
			return
		}
		// The batch's results are not durable and the processors' state
		// already holds it: drop this tenure and restart from the last
		// checkpoint, where restored partials make the replay exact.
		p.log.Error("batch failed", zap.Error(err))
		p.w.counts.errors.Add(1)
		p.giveUp("batch failed")
		return
	}
	if len(p.raws) > 0 {
		p.pending = p.raws[len(p.raws)-1].Meta.SequenceNumber
	}
	// Checkpoint only when every processed record's results are durable
	// (with a flush interval, not after every batch).
	if !p.pipe.Durable() {
		if p.w.auditing() {
			for i := range p.raws {
				p.unaudited = append(p.unaudited, processors.Raw{Meta: p.raws[i].Meta})
			}
		}
		return
	}
	if p.w.auditing() {
		p.unaudited = append(p.unaudited, p.raws...)
		if err := p.flushAudit(); err != nil {
			p.log.Error("audit log", zap.Error(err))
			p.giveUp("audit log failed")
			return
		}
	}
	if p.pending == "" {
		return
	}
	seq := p.pending
	p.checkpoint(in.Checkpointer, &seq)
}

// pace holds a caught-up shard's next GetRecords until poll_interval after
// this batch arrived. The engine reads again at once after a poll that
// returned records, so a shard with steady traffic spent its 5 calls a
// second within ~200 ms and then slept out the second (its local TPS
// limit): records waited up to a second to be read. Paced, a shard reads
// every poll_interval (4 calls a second at 250 ms, one left for another
// consumer), and a shard behind reads as fast as the limit allows.
func (p *shardProcessor) pace(arrived time.Time, records int, behindMillis int64) {
	poll := p.w.cfg.PollInterval
	if records == 0 || behindMillis >= poll.Milliseconds() {
		return // the engine waits poll_interval after an empty poll itself
	}
	wait := time.Until(arrived.Add(poll))
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.ctx.Done():
	}
}

// flushAudit writes the audit lines of the records whose results are now
// durable.
func (p *shardProcessor) flushAudit() error {
	if len(p.unaudited) == 0 {
		return nil
	}
	err := p.w.audit(p.ctx, p.unaudited, p.w.cfg.WorkerID)
	clear(p.unaudited)
	p.unaudited = p.unaudited[:0]
	return err
}

// deadLetterMalformed writes the malformed KPL aggregates the ReadGuard
// marked to the dead-letter sink, with the reason and original bytes, and
// returns the records left for the pipeline. They stay in p.raws: they are
// audited and checkpointed like any record handled.
func (p *shardProcessor) deadLetterMalformed(ctx context.Context) ([]processors.Raw, error) {
	g := p.w.guard
	if g == nil {
		return p.raws, nil
	}
	first := -1
	for i := range p.raws {
		if _, _, ok := g.unwrap(p.raws[i].Data); ok {
			first = i
			break
		}
	}
	if first < 0 {
		return p.raws, nil
	}
	p.good = append(p.good[:0], p.raws[:first]...)
	p.dls = p.dls[:0]
	for i := first; i < len(p.raws); i++ {
		r := &p.raws[i]
		reason, orig, ok := g.unwrap(r.Data)
		if !ok {
			p.good = append(p.good, *r)
			continue
		}
		p.dls = append(p.dls, processors.DeadLetter{
			Stream: p.w.cfg.Stream, ShardID: p.shardID, Sequence: r.Meta.SequenceNumber, SubSequence: r.Meta.SubSequence,
			PartitionKey: r.Meta.PartitionKey, ArrivalTime: r.Meta.ArrivalTime, Reason: reason, Data: orig,
		})
	}
	sink := p.w.cfg.Pipeline.Sinks.DeadLetters
	if sink == nil {
		return nil, fmt.Errorf("shard %s: %d malformed aggregates and no dead-letter sink", p.shardID, len(p.dls))
	}
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := sink.WriteDeadLetters(ctx, p.dls)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("shard %s: write dead letters: %w", p.shardID, errors.Join(err, ctx.Err()))
		}
		if attempt == 1 || attempt%10 == 0 {
			p.log.Warn("dead-letter write failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, 5*time.Second)
	}
	p.log.Warn("malformed KPL aggregates dead-lettered", zap.Int("records", len(p.dls)))
	if h := p.w.cfg.Pipeline.Hooks.DeadLettered; h != nil {
		h(p.shardID, "kpl", len(p.dls))
	}
	return p.good, nil
}

func (p *shardProcessor) checkpoint(c kcl.IRecordProcessorCheckpointer, seq *string) {
	start := time.Now()
	err := c.Checkpoint(seq)
	if err == nil {
		p.pending = ""
		p.w.metrics.checkpointed(p.shardID, time.Since(start))
		return
	}
	if p.w.leases != nil && p.w.leases.IsLeaseLost(err) {
		p.markLost("checkpoint rejected: lease lost")
		p.closePipe(processors.LeaseLost)
		return
	}
	// A transient failure: results are durable, so the next batch's
	// checkpoint covers this one.
	if seq != nil {
		p.pending = *seq
	}
	p.log.Warn("checkpoint failed; will retry with the next batch", zap.Error(err))
}

// handOver gives the lease to the worker that claimed it for balance: the
// processors write their partials, the last batch is checkpointed, then
// the lease is released, so the claimant resumes with no duplicates. The
// records of this poll are left for it.
func (p *shardProcessor) handOver(c kcl.IRecordProcessorCheckpointer) {
	if err := p.closePipe(processors.Shutdown); err != nil {
		p.log.Error("hand-over: close processors; releasing without checkpoint", zap.Error(err))
	} else if p.pending != "" {
		if err := p.flushAudit(); err != nil {
			p.log.Error("audit log", zap.Error(err))
		}
		seq := p.pending
		p.checkpoint(c, &seq)
	}
	p.end()
	p.w.metrics.leaseEnded(p.shardID)
	if err := p.w.leases.Release(p.shardID); err != nil {
		p.log.Warn("hand-over release", zap.Error(err))
	}
	p.log.Info("lease handed over to balance the fleet")
}

// giveUp discards this tenure and releases the lease so the shard restarts
// from its last checkpoint (on this worker or another) instead of stalling.
func (p *shardProcessor) giveUp(why string) {
	p.markLost(why)
	p.closePipe(processors.LeaseLost)
	if p.w.leases != nil {
		if err := p.w.leases.Release(p.shardID); err != nil {
			p.log.Warn("release after failure", zap.Error(err))
		}
	}
}

func (p *shardProcessor) closePipe(reason processors.Reason) error {
	if p.pipe == nil {
		return nil
	}
	ctx := p.ctx
	if reason == processors.LeaseLost {
		ctx = context.WithoutCancel(p.ctx)
	}
	err := p.pipe.Close(ctx, reason)
	p.pipe = nil
	return err
}

// Shutdown ends the tenure: TERMINATE (shard closed and fully read) writes
// final results and checkpoints SHARD_END so children can start;
// REQUESTED (worker stopping) writes partials and checkpoints; ZOMBIE
// discards.
func (p *shardProcessor) Shutdown(in *kcl.ShutdownInput) {
	defer p.w.metrics.leaseEnded(p.shardID)
	defer p.end()
	if p.isLost() {
		p.closePipe(processors.LeaseLost)
		return
	}
	switch in.ShutdownReason {
	case kcl.TERMINATE:
		if !p.open() {
			return
		}
		if err := p.closePipe(processors.ShardEnded); err != nil {
			p.log.Error("close at shard end; SHARD_END not written", zap.Error(err))
			return
		}
		if err := p.flushAudit(); err != nil {
			p.log.Error("audit log", zap.Error(err))
		}
		p.checkpoint(in.Checkpointer, nil)
		p.log.Info("shard ended", zap.Bool("lost", p.isLost()))
	case kcl.REQUESTED:
		if err := p.closePipe(processors.Shutdown); err != nil {
			p.log.Error("close at shutdown", zap.Error(err))
			return
		}
		if err := p.flushAudit(); err != nil {
			p.log.Error("audit log", zap.Error(err))
		}
		if p.pending != "" {
			seq := p.pending
			p.checkpoint(in.Checkpointer, &seq)
		}
		p.log.Info("lease handed over")
	default:
		p.closePipe(processors.LeaseLost)
	}
}

// toRaw converts the engine's records, numbering the user records of a KPL
// aggregate (they share one sequence number) so every record has a unique
// (SequenceNumber, SubSequence) position.
func toRaw(dst []processors.Raw, shardID string, recs []types.Record) []processors.Raw {
	var prev string
	var sub int64
	for i := range recs {
		r := &recs[i]
		seq := aws.ToString(r.SequenceNumber)
		if i > 0 && seq == prev {
			sub++
		} else {
			sub = 0
		}
		prev = seq
		dst = append(dst, processors.Raw{
			Data: r.Data,
			Meta: records.Meta{
				ShardID:        shardID,
				SequenceNumber: seq,
				SubSequence:    sub,
				PartitionKey:   aws.ToString(r.PartitionKey),
				ArrivalTime:    aws.ToTime(r.ApproximateArrivalTimestamp),
			},
		})
	}
	return dst
}
