package checkpoint

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Defaults applied by SetDefaults to zero fields.
const (
	DefaultFailoverTime      = 10 * time.Second
	DefaultSnapshotTTL       = time.Second
	DefaultShardListTTL      = 30 * time.Second
	DefaultCallTimeout       = 5 * time.Second
	DefaultTableReadyTimeout = 60 * time.Second
)

// Config configures a Store.
type Config struct {
	// TableName is the lease table (the application name, per the fleet
	// contract).
	TableName string `yaml:"table_name"`
	// WorkerID identifies this process; it must be unique per running
	// process (a row owned by our own id that this process does not hold
	// is treated as a leftover of an earlier incarnation and taken back at
	// once).
	WorkerID string `yaml:"worker_id"`
	// StreamName is the Kinesis stream whose shards are listed to find
	// both parents of a merged shard.
	StreamName string `yaml:"stream_name"`
	// FailoverTime is how long another worker's lease counter must stay
	// unchanged, on this process's monotonic clock, before the lease counts
	// as expired. It is also this worker's own limit: a tenure whose last
	// successful write started FailoverTime ago is lost.
	FailoverTime time.Duration `yaml:"failover_time"`
	// RenewInterval is how often the engine asks for a renewal (set the
	// engine's LeaseRefreshWaitTime to it). Default FailoverTime/3. Keep
	// it well under FailoverTime/2 so failed renewals can be retried: one
	// that fails transiently is tolerated while one more renewal can
	// still land before FailoverTime.
	RenewInterval time.Duration `yaml:"renew_interval"`
	// RenewAfter: a renewal of a lease written less than this ago (by a
	// checkpoint or a renewal: every write bumps the counter) writes
	// nothing, so checkpoints at least this often make renewals free.
	// Default and maximum FailoverTime/2.
	RenewAfter time.Duration `yaml:"renew_after"`
	// SnapshotTTL bounds the age of the Scan snapshot that answers for
	// shards this worker does not hold; Run refreshes it at this period
	// (default 1 s: one Scan page per worker-second up to ~3,000 shards).
	SnapshotTTL time.Duration `yaml:"snapshot_ttl"`
	// ShardListTTL bounds the age of the cached ListShards result (it is
	// also refreshed when an unknown shard id shows up).
	ShardListTTL time.Duration `yaml:"shard_list_ttl"`
	// MaxLeases caps the leases this worker holds (0: no cap beyond the
	// fair share); set it to the engine's MaxLeasesForWorker.
	MaxLeases int `yaml:"max_leases"`
	// CallTimeout bounds every DynamoDB and Kinesis call.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// TableReadyTimeout bounds Init's wait for the table to become ACTIVE.
	TableReadyTimeout time.Duration `yaml:"table_ready_timeout"`
}

// SetDefaults fills zero durations with the defaults.
func (c *Config) SetDefaults() {
	if c.FailoverTime == 0 {
		c.FailoverTime = DefaultFailoverTime
	}
	if c.RenewInterval == 0 {
		c.RenewInterval = c.FailoverTime / 3
	}
	if c.RenewAfter == 0 {
		// A lease is then written at most FailoverTime/2 + RenewInterval
		// apart, leaving the rest of the failover time for retries.
		c.RenewAfter = c.FailoverTime / 2
	}
	if c.SnapshotTTL == 0 {
		c.SnapshotTTL = DefaultSnapshotTTL
	}
	if c.ShardListTTL == 0 {
		c.ShardListTTL = DefaultShardListTTL
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = min(DefaultCallTimeout, c.FailoverTime/2)
	}
	if c.TableReadyTimeout == 0 {
		c.TableReadyTimeout = DefaultTableReadyTimeout
	}
}

// Validate names the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.TableName == "":
		return errors.New("checkpoint: TableName is empty")
	case c.WorkerID == "":
		return errors.New("checkpoint: WorkerID is empty")
	case c.StreamName == "":
		return errors.New("checkpoint: StreamName is empty")
	case c.FailoverTime <= 0:
		return errors.New("checkpoint: FailoverTime must be > 0")
	case c.RenewInterval <= 0 || c.RenewInterval > c.FailoverTime/2:
		// Two renewal chances per failover period at least, else one slow
		// call loses the lease.
		return errors.New("checkpoint: RenewInterval must be > 0 and <= FailoverTime/2")
	case c.RenewAfter < 0 || c.RenewAfter > c.FailoverTime/2:
		return errors.New("checkpoint: RenewAfter must be >= 0 and <= FailoverTime/2")
	case c.SnapshotTTL <= 0:
		return errors.New("checkpoint: SnapshotTTL must be > 0")
	case c.ShardListTTL <= 0:
		return errors.New("checkpoint: ShardListTTL must be > 0")
	case c.CallTimeout <= 0 || c.CallTimeout > c.FailoverTime/2:
		// A hung renewal must end while the lease can still be renewed.
		return errors.New("checkpoint: CallTimeout must be > 0 and <= FailoverTime/2")
	case c.MaxLeases < 0:
		return errors.New("checkpoint: MaxLeases must be >= 0")
	case c.TableReadyTimeout <= 0:
		return errors.New("checkpoint: TableReadyTimeout must be > 0")
	}
	return nil
}

// DynamoDBAPI is the part of the DynamoDB client the store calls.
type DynamoDBAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// ShardLister lists the stream's shards (kinesis.Client satisfies it).
type ShardLister interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// Clock gives the current time. Expiry is measured with Sub between two
// Now values, so a real clock must return times carrying a monotonic
// reading (time.Now does).
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
