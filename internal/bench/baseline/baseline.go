package baseline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	kclcfg "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	kclworker "github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
	kclzap "github.com/vmware/vmware-go-kcl-v2/logger/zap"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/engine"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Config sets the engine the way the consumer sets it, so both poll and
// take leases alike.
type Config struct {
	App, Stream, Region, WorkerID string
	// InitialPosition is LATEST or TRIM_HORIZON.
	InitialPosition string
	ShardSync       time.Duration
	FailoverTime    time.Duration
	PollInterval    time.Duration
	MaxRecords      int
	MaxLeases       int // 0: no limit
}

// Validate names the first unusable field.
func (c Config) Validate() error {
	switch {
	case c.App == "", c.Stream == "", c.Region == "", c.WorkerID == "":
		return errors.New("baseline: app, stream, region and worker id are required")
	case c.InitialPosition != "LATEST" && c.InitialPosition != "TRIM_HORIZON":
		return fmt.Errorf("baseline: initial position %q: want LATEST or TRIM_HORIZON", c.InitialPosition)
	case c.ShardSync <= 0 || c.FailoverTime <= 0 || c.PollInterval <= 0:
		return errors.New("baseline: shard sync, failover time and poll interval must be > 0")
	case c.MaxRecords < 1 || c.MaxRecords > 10000:
		return errors.New("baseline: max records must be between 1 and 10000")
	}
	return nil
}

// Deps are the clients and outputs of a baseline worker.
type Deps struct {
	Kinesis *kinesis.Client
	// DynamoDB serves the library's own checkpointer (its lease table is
	// Config.App, created by the library when missing).
	DynamoDB chk.DynamoDBAPI
	Logger   *zap.Logger
	// Audit, when set, records the position of every record.
	Audit *engine.AuditLog
}

// Counts are what the baseline consumed.
type Counts struct {
	Records, Batches, Checkpoints, CheckpointErrors atomic.Int64
}

// Run runs the worker until ctx ends, then shuts it down (the library's
// Shutdown waits for its shard consumers) and returns the counts.
func Run(ctx context.Context, cfg Config, d Deps) (*Counts, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Kinesis == nil || d.DynamoDB == nil {
		return nil, errors.New("baseline: kinesis and dynamodb clients are required")
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	kc := kclcfg.NewKinesisClientLibConfig(cfg.App, cfg.Stream, cfg.Region, cfg.WorkerID).
		WithTableName(cfg.App).
		WithShardSyncIntervalMillis(int(cfg.ShardSync.Milliseconds())).
		WithFailoverTimeMillis(int(cfg.FailoverTime.Milliseconds())).
		WithLeaseRefreshWaitTime(int((cfg.FailoverTime / 4).Milliseconds())).
		WithIdleTimeBetweenReadsInMillis(int(cfg.PollInterval.Milliseconds())).
		WithMaxRecords(cfg.MaxRecords).
		WithInitialPositionInStream(positions[cfg.InitialPosition]).
		WithLogger(kclzap.NewZapLogger(d.Logger.Sugar()))
	if cfg.MaxLeases > 0 {
		kc = kc.WithMaxLeasesForWorker(cfg.MaxLeases)
	}
	counts := &Counts{}
	f := factory{counts: counts, audit: d.Audit, worker: cfg.WorkerID, log: d.Logger}
	checkpointer := chk.NewDynamoCheckpoint(kc).WithDynamoDB(d.DynamoDB)
	w := kclworker.NewWorker(f, kc).WithKinesis(d.Kinesis).WithCheckpointer(checkpointer)
	if err := w.Start(); err != nil {
		return counts, fmt.Errorf("baseline: start worker: %w", err)
	}
	<-ctx.Done()
	w.Shutdown()
	return counts, nil
}

var positions = map[string]kclcfg.InitialPositionInStream{
	"LATEST":       kclcfg.LATEST,
	"TRIM_HORIZON": kclcfg.TRIM_HORIZON,
}

type factory struct {
	counts *Counts
	audit  *engine.AuditLog
	worker string
	log    *zap.Logger
}

func (f factory) CreateProcessor() kcl.IRecordProcessor { return &counter{f: f} }

// counter is the record processor: count, optionally audit, checkpoint.
type counter struct {
	f     factory
	shard string
	raws  []processors.Raw
}

func (c *counter) Initialize(in *kcl.InitializationInput) { c.shard = in.ShardId }

func (c *counter) ProcessRecords(in *kcl.ProcessRecordsInput) {
	n := len(in.Records)
	if n == 0 {
		return
	}
	c.f.counts.Records.Add(int64(n))
	c.f.counts.Batches.Add(1)
	if c.f.audit != nil {
		c.raws = c.raws[:0]
		for i := range in.Records {
			c.raws = append(c.raws, processors.Raw{Meta: records.Meta{
				ShardID: c.shard, SequenceNumber: aws.ToString(in.Records[i].SequenceNumber),
			}})
		}
		if err := c.f.audit.Write(context.Background(), c.raws, c.f.worker); err != nil {
			c.f.log.Error("audit log", zap.Error(err))
			return
		}
	}
	c.checkpoint(in.Checkpointer, in.Records[n-1].SequenceNumber)
}

func (c *counter) checkpoint(cp kcl.IRecordProcessorCheckpointer, seq *string) {
	if err := cp.Checkpoint(seq); err != nil {
		c.f.counts.CheckpointErrors.Add(1)
		c.f.log.Warn("checkpoint", zap.String("shard_id", c.shard), zap.Error(err))
		return
	}
	c.f.counts.Checkpoints.Add(1)
}

// Shutdown writes SHARD_END for a finished shard (the library needs it to
// start the children) and leaves the rest to the last batch's checkpoint.
func (c *counter) Shutdown(in *kcl.ShutdownInput) {
	if in.ShutdownReason == kcl.TERMINATE {
		c.checkpoint(in.Checkpointer, nil)
	}
}
