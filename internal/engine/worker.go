package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	kclcfg "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	kclworker "github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors"
)

// Leases is what the worker needs from the lease store beyond the engine's
// Checkpointer interface: the lease-loss signal the engine never gives.
type Leases interface {
	// Lost returns a channel closed when this worker's current tenure of
	// the shard's lease ends involuntarily (nil when it holds none).
	Lost(shardID string) <-chan struct{}
	// IsLeaseLost reports whether err from a checkpoint means the lease
	// is gone (a fenced write failed its condition).
	IsLeaseLost(err error) bool
	// Release gives the lease up at once so the shard restarts from its
	// last checkpoint.
	Release(shardID string) error
	// Claimed reports that another worker asked for the lease to balance
	// the fleet: hand it over gracefully.
	Claimed(shardID string) bool
	// Token returns the current tenure's lease token (0 when not held):
	// higher for every later tenure of the shard, on any worker. It
	// fences the shard's result items (processors.Shard.Tenure).
	Token(shardID string) int64
}

// Config is the worker's engine-level configuration.
type Config struct {
	App, Stream, Region, WorkerID string
	// InitialPosition is LATEST, TRIM_HORIZON or AT_TIMESTAMP.
	InitialPosition  string
	InitialTimestamp time.Time
	ShardSync        time.Duration
	FailoverTime     time.Duration
	LeaseRenew       time.Duration
	PollInterval     time.Duration
	MaxLeases        int
	MaxRecords       int
	ShutdownTimeout  time.Duration
	OpenTimeout      time.Duration
	// StartRetryMax caps the wait between failed engine starts.
	StartRetryMax time.Duration
	// ReportPeriod is how often worker metrics (records, errors, dead
	// letters, leases held) go to Pipeline.Sinks.Metrics (default 1m).
	ReportPeriod time.Duration
	Pipeline     processors.Config
}

// Validate names the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.App == "":
		return errors.New("engine: app is empty")
	case c.Stream == "":
		return errors.New("engine: stream is empty")
	case c.Region == "":
		return errors.New("engine: region is empty")
	case c.WorkerID == "":
		return errors.New("engine: worker_id is empty")
	case c.ShardSync <= 0, c.FailoverTime <= 0, c.PollInterval <= 0, c.ShutdownTimeout <= 0:
		return errors.New("engine: shard_sync_interval, failover_time, poll_interval and shutdown_timeout must be > 0")
	}
	switch c.InitialPosition {
	case "LATEST", "TRIM_HORIZON":
	case "AT_TIMESTAMP":
		if c.InitialTimestamp.IsZero() {
			return errors.New("engine: initial_timestamp is required with AT_TIMESTAMP")
		}
	default:
		return fmt.Errorf("engine: initial_position %q: want LATEST, TRIM_HORIZON or AT_TIMESTAMP", c.InitialPosition)
	}
	return c.Pipeline.Validate()
}

// Worker runs the vmware-go-kcl-v2 engine with our checkpointer and pipeline.
type Worker struct {
	cfg          Config
	log          *zap.Logger
	kc           *kinesis.Client
	checkpointer chk.Checkpointer
	leases       Leases
	metrics      *Metrics
	auditLog     *AuditLog
	guard        *ReadGuard

	baseCtx context.Context
	started chan struct{}
	counts  counts
}

// Deps are the worker's collaborators.
type Deps struct {
	Kinesis      *kinesis.Client
	Checkpointer chk.Checkpointer
	Leases       Leases // usually the same store as Checkpointer
	Metrics      *Metrics
	Logger       *zap.Logger
	Audit        *AuditLog // optional
	// Guard is the ReadGuard installed on Kinesis (optional): the worker
	// dead-letters the malformed aggregates it marks and stops its
	// retries at shutdown.
	Guard *ReadGuard
}

// New checks cfg and builds a worker; nothing starts until Run.
func New(cfg Config, d Deps) (*Worker, error) {
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = 30 * time.Second
	}
	if cfg.StartRetryMax <= 0 {
		cfg.StartRetryMax = 30 * time.Second
	}
	if cfg.LeaseRenew <= 0 {
		cfg.LeaseRenew = cfg.FailoverTime / 4
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 10000
	}
	if cfg.ReportPeriod <= 0 {
		cfg.ReportPeriod = time.Minute
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Kinesis == nil || d.Checkpointer == nil || d.Metrics == nil {
		return nil, errors.New("engine: kinesis client, checkpointer and metrics are required")
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	w := &Worker{
		cfg: cfg, log: d.Logger.With(zap.String("worker_id", cfg.WorkerID), zap.String("stream", cfg.Stream)),
		kc: d.Kinesis, checkpointer: d.Checkpointer, leases: d.Leases, metrics: d.Metrics, auditLog: d.Audit, guard: d.Guard,
		started: make(chan struct{}),
	}
	w.cfg.Pipeline.Hooks = chainHooks(cfg.Pipeline.Hooks, d.Metrics, &w.counts)
	if d.Guard != nil {
		d.Guard.metrics.Store(d.Metrics)
	}
	return w, nil
}

func chainHooks(h processors.Hooks, m *Metrics, c *counts) processors.Hooks {
	dl, pl, sr, dr, dec := h.DeadLettered, h.ProcessorLatency, h.SinkRetry, h.Dropped, h.Decoded
	h.Decoded = func(shard string, n int) {
		c.records.Add(int64(n))
		if dec != nil {
			dec(shard, n)
		}
	}
	h.DeadLettered = func(shard, class string, n int) {
		c.deadLettered.Add(int64(n))
		m.DeadLettered.WithLabelValues(shard, class).Add(float64(n))
		m.DecodeErrors.WithLabelValues(shard).Add(float64(n))
		if dl != nil {
			dl(shard, class, n)
		}
	}
	h.ProcessorLatency = func(p string, d time.Duration) {
		m.ProcessorSeconds.WithLabelValues(p).Observe(d.Seconds())
		if pl != nil {
			pl(p, d)
		}
	}
	h.SinkRetry = func(s string, err error) {
		m.SinkRetries.WithLabelValues(s).Inc()
		if sr != nil {
			sr(s, err)
		}
	}
	h.Dropped = func(s string, n int) {
		c.errors.Add(int64(n))
		m.ResultsDropped.WithLabelValues(s).Add(float64(n))
		if dr != nil {
			dr(s, n)
		}
	}
	return h
}

// Started is closed once the engine has started.
func (w *Worker) Started() <-chan struct{} { return w.started }

func (w *Worker) auditing() bool { return w.auditLog != nil }

func (w *Worker) audit(ctx context.Context, raws []processors.Raw, worker string) error {
	if w.auditLog == nil {
		return nil
	}
	return w.auditLog.Write(ctx, raws, worker)
}

func (w *Worker) kclConfig() *kclcfg.KinesisClientLibConfiguration {
	c := kclcfg.NewKinesisClientLibConfig(w.cfg.App, w.cfg.Stream, w.cfg.Region, w.cfg.WorkerID).
		WithTableName(w.cfg.App).
		WithShardSyncIntervalMillis(int(w.cfg.ShardSync.Milliseconds())).
		WithFailoverTimeMillis(int(w.cfg.FailoverTime.Milliseconds())).
		WithLeaseRefreshWaitTime(int(w.cfg.LeaseRenew.Milliseconds())).
		WithIdleTimeBetweenReadsInMillis(int(w.cfg.PollInterval.Milliseconds())).
		WithCallProcessRecordsEvenForEmptyRecordList(true).
		WithMaxRecords(w.cfg.MaxRecords).
		// Kept small on purpose: the engine's KMS-throttle path sleeps
		// 2^retries * 100 ms (6 retries: 6.4 s; 20: 29 h). Throttles are
		// absorbed by the ReadGuard inside the client instead.
		WithMaxRetryCount(engineMaxRetryCount).
		WithLogger(newKCLLogger(w.log)).
		WithMonitoringService(monitoring{m: w.metrics})
	if w.cfg.MaxLeases > 0 {
		c = c.WithMaxLeasesForWorker(w.cfg.MaxLeases)
	}
	switch w.cfg.InitialPosition {
	case "TRIM_HORIZON":
		c = c.WithInitialPositionInStream(kclcfg.TRIM_HORIZON)
	case "AT_TIMESTAMP":
		ts := w.cfg.InitialTimestamp
		c = c.WithTimestampAtInitialPositionInStream(&ts)
	default:
		c = c.WithInitialPositionInStream(kclcfg.LATEST)
	}
	c.ParentShardPollIntervalMillis = int(w.cfg.ShardSync.Milliseconds())
	return c
}

// Run starts the engine (retrying start-up failures with backoff), runs
// until ctx ends, then shuts down gracefully: it stops taking leases,
// finishes in-flight batches, flushes processors and sinks, checkpoints and
// releases every lease, all within ShutdownTimeout.
func (w *Worker) Run(ctx context.Context) error {
	// Processing outlives ctx during the graceful drain; hardStop ends it
	// at the deadline.
	base, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()
	w.baseCtx = base

	var kw *kclworker.Worker
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		kw = kclworker.NewWorker(factory{w}, w.kclConfig()).WithKinesis(w.kc).WithCheckpointer(w.checkpointer)
		err := kw.Start()
		if err == nil {
			break
		}
		w.log.Warn("engine start failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
		d := time.Duration(rand.Int64N(int64(wait))) + wait/2
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
		wait = min(wait*2, w.cfg.StartRetryMax)
	}
	close(w.started)
	w.log.Info("worker started")
	reportDone := make(chan struct{})
	if mw := w.cfg.Pipeline.Sinks.Metrics; mw != nil {
		go func() {
			defer close(reportDone)
			w.report(ctx, mw, w.cfg.ReportPeriod)
		}()
	} else {
		close(reportDone)
	}
	<-ctx.Done()
	<-reportDone

	w.log.Info("shutting down: draining in-flight batches and releasing leases", zap.Duration("deadline", w.cfg.ShutdownTimeout))
	if w.guard != nil {
		// A shard consumer waiting out a throttle would hold up the drain.
		w.guard.stop()
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		kw.Shutdown()
	}()
	timer := time.NewTimer(w.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
		w.log.Info("shutdown complete", zap.Duration("took", time.Since(start)))
		return nil
	case <-timer.C:
		hardStop()
		// Give aborted sink writes a moment to return; leases not released
		// now expire after the failover time.
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		return fmt.Errorf("engine: graceful shutdown exceeded %s", w.cfg.ShutdownTimeout)
	}
}

// engineMaxRetryCount bounds the engine's own throttle retries; see
// kclConfig.
const engineMaxRetryCount = 5

type factory struct{ w *Worker }

func (f factory) CreateProcessor() kcl.IRecordProcessor { return &shardProcessor{w: f.w} }
