package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"

	"github.com/shardwatch/shardwatch/internal/awsenv"
	"github.com/shardwatch/shardwatch/internal/config"
	"github.com/shardwatch/shardwatch/internal/ddbmeter"
	"github.com/shardwatch/shardwatch/internal/engine"
	"github.com/shardwatch/shardwatch/internal/ops"
	"github.com/shardwatch/shardwatch/pkg/checkpoint"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func newLogger(format, level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	var enc zapcore.Encoder
	if format == "console" {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// runWorker wires configuration, AWS clients, the lease store, sinks and
// processors, then runs the engine until ctx ends.
func (c *cli) runWorker(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush of stderr
	// The engine's lease renewal logs through logrus' global logger; keep
	// those lines in the same format and stream as ours.
	logrus.SetOutput(stderr)
	logrus.SetLevel(logrus.WarnLevel)
	if cfg.LogFormat == "json" {
		logrus.SetFormatter(&logrus.JSONFormatter{FieldMap: logrus.FieldMap{logrus.FieldKeyTime: "ts", logrus.FieldKeyMsg: "msg"}})
	}

	// Build every processor before touching AWS, so a bad setting stops
	// start-up at once with the field named.
	app := processors.AppInfo{
		App: cfg.App, Stream: cfg.Stream, Namespace: cfg.Metrics.Namespace, AlarmTopicARN: cfg.Alarms.TopicARN,
		Tables:    processors.Tables{Results: cfg.Tables.Results, Counters: cfg.Tables.Counters, Alarms: cfg.Tables.Alarms, DeadLetter: cfg.Tables.DeadLetter},
		Retention: cfg.Retention,
	}
	named, err := buildProcessors(c.plugins, cfg, app)
	if err != nil {
		return err
	}
	format, decOpts, err := cfg.Decoder()
	if err != nil {
		return err
	}

	awsCfg, err := awsenv.Load(ctx, cfg.Region)
	if err != nil {
		return err
	}
	// The guard keeps throttled shards alive and dead-letters malformed
	// KPL aggregates instead of losing their batch (engine defects).
	guard, err := engine.NewReadGuard(engine.ReadGuardOptions{Logger: log.Named("kinesis")})
	if err != nil {
		return err
	}
	// The engine lists the stream's shards on every pass; the cache makes
	// passes free until the stream reshards, so they can run several times
	// a second and take every takeable lease within a second or two.
	shardCache := engine.NewShardCache(engine.DefaultShardCacheMaxAge)
	kc := kinesis.NewFromConfig(awsCfg, guard.Options, shardCache.Options)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// What DynamoDB bills, by table: operators watch cost where it arises.
	units := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shardwatch_dynamodb_units_total",
		Help: "DynamoDB capacity units consumed by this worker (ReturnConsumedCapacity TOTAL), by table and read or write.",
	}, []string{"table", "kind"})
	reg.MustRegister(units)
	meter := &ddbmeter.Meter{OnUnits: func(table string, kind ddbmeter.Kind, u float64) { units.WithLabelValues(table, string(kind)).Add(u) }}
	ddb := dynamodb.NewFromConfig(awsCfg, awsenv.LocalDynamoDB(getenv), meter.Options)

	metrics, err := engine.NewMetrics(reg)
	if err != nil {
		return err
	}

	sinks, closeSinks, err := buildSinks(cfg, awsCfg, ddb, stdout, log)
	if err != nil {
		return err
	}
	defer closeSinks()

	storeCtx, cancelStore := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStore()
	leaseCfg := checkpoint.Config{
		TableName:     cfg.Tables.Leases,
		WorkerID:      cfg.WorkerID,
		StreamName:    cfg.Stream,
		FailoverTime:  cfg.FailoverTime,
		RenewInterval: cfg.RenewInterval(),
		MaxLeases:     cfg.MaxLeases,
		// SnapshotTTL: the default (1 s), refreshed by leases.Run on its
		// own cadence, whatever the pass rate.
	}
	leases, err := checkpoint.New(storeCtx, leaseCfg, checkpoint.Deps{DynamoDB: ddb, Shards: kc, Logger: log.Named("leases")})
	if err != nil {
		return err
	}

	var audit *engine.AuditLog
	if cfg.AuditLog != "" {
		if audit, err = engine.OpenAuditLog(cfg.AuditLog); err != nil {
			return err
		}
		defer audit.Close()
	}

	ecfg := engine.Config{
		App: cfg.App, Stream: cfg.Stream, Region: cfg.Region, WorkerID: cfg.WorkerID,
		InitialPosition: cfg.InitialPosition,
		ShardSync:       cfg.ShardSync, FailoverTime: cfg.FailoverTime, LeaseRenew: leaseCfg.RenewInterval,
		PollInterval: cfg.PollInterval, MaxLeases: cfg.MaxLeases, MaxRecords: cfg.MaxRecords,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Pipeline: processors.Config{
			Stream:        cfg.Stream,
			Processors:    named,
			FlushInterval: cfg.FlushInterval,
			NewDecoder:    func() (processors.Decoder, error) { return records.NewDecoderWith(format, decOpts) },
			Skip:          func(err error) bool { return errors.Is(err, records.ErrHeader) },
			Sinks:         sinks.pipeline,
			Store:         sinks.store,
			Clock:         wallClock{},
			Logger:        log,
			Shards:        openShards(kc, cfg.Stream),
		},
	}
	if cfg.InitialPosition == "AT_TIMESTAMP" {
		ecfg.InitialTimestamp, _ = cfg.InitialTime()
	}
	w, err := engine.New(ecfg, engine.Deps{Kinesis: kc, Checkpointer: leases, Leases: leases, Metrics: metrics, Logger: log, Audit: audit, Guard: guard})
	if err != nil {
		return err
	}

	checks := []ops.Check{
		{Name: "engine", Run: func(context.Context) error {
			select {
			case <-w.Started():
				return nil
			default:
				return errors.New("not started")
			}
		}},
		{Name: "kinesis", Run: func(ctx context.Context) error {
			_, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(cfg.Stream)})
			return err
		}},
		{Name: "dynamodb", Run: func(ctx context.Context) error {
			_, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(cfg.Tables.Leases)})
			return err
		}},
	}
	srv := ops.New(cfg.OpsAddr, reg, checks, metrics.UpdateCheckpointAge, log)
	if cfg.Pprof {
		srv.EnablePprof()
	}

	log.Info("starting worker", zap.String("stream", cfg.Stream), zap.String("app", cfg.App),
		zap.String("worker_id", cfg.WorkerID), zap.Int("processors", len(named)), zap.String("ops_addr", cfg.OpsAddr))
	opsCtx, stopOps := context.WithCancel(context.WithoutCancel(ctx))
	g := new(errgroup.Group)
	g.Go(func() error { return srv.Serve(opsCtx) })
	// The lease snapshot outlives the engine's drain (storeCtx ends when
	// run returns), so a draining worker still sees claims and releases.
	g.Go(func() error {
		select {
		case <-w.Started(): // the lease table exists (the engine's Init)
		case <-storeCtx.Done():
			return nil
		}
		return leases.Run(storeCtx)
	})
	err = w.Run(ctx)
	// Backstop: release whatever the engine did not (a shard consumer
	// stuck past the deadline); fenced, so it cannot hurt a new owner.
	relCtx, cancelRel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	if rerr := leases.ReleaseAll(relCtx); rerr != nil {
		log.Warn("release leases at exit", zap.Error(rerr))
	}
	cancelRel()
	cancelStore()
	stopOps()
	if oerr := g.Wait(); oerr != nil && err == nil {
		err = oerr
	}
	return err
}

// buildProcessors builds the configured processor instances from plugins.
func buildProcessors(plugins []processors.Plugin, cfg config.Consumer, app processors.AppInfo) ([]processors.Named, error) {
	reg, err := processors.NewRegistry(plugins...)
	if err != nil {
		return nil, err
	}
	list := cfg.ProcessorList()
	ics := make([]processors.InstanceConfig, len(list))
	for i, p := range list {
		ics[i] = processors.InstanceConfig{Name: p.Name, Settings: p.Settings}
	}
	named, err := reg.Instances(ics, app)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return named, nil
}

// openShards lists the stream's open shards through kc (whose shard cache
// answers repeated calls from memory).
func openShards(kc *kinesis.Client, stream string) func(context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		var ids []string
		in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
		for {
			page, err := kc.ListShards(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("list shards of %s: %w", stream, err)
			}
			for _, sh := range page.Shards {
				if sh.SequenceNumberRange == nil || sh.SequenceNumberRange.EndingSequenceNumber == nil {
					ids = append(ids, aws.ToString(sh.ShardId))
				}
			}
			if page.NextToken == nil {
				return ids, nil
			}
			// With a NextToken, ListShards takes no stream name.
			in = &kinesis.ListShardsInput{NextToken: page.NextToken}
		}
	}
}
