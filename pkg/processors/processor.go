package processors

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/records"
	"github.com/shardwatch/shardwatch/pkg/results"
)

// Reason says why a processor is closed.
type Reason int

const (
	// ShardEnded: the shard was closed by a split or merge and every record
	// was processed. Emit final results for every open window.
	ShardEnded Reason = iota + 1
	// Shutdown: the worker stops gracefully and hands the lease over.
	// Emit partial results so the next owner can restore them.
	Shutdown
	// LeaseLost: another worker owns the shard now. Discard state and emit
	// nothing: the new owner will redo the work.
	LeaseLost
)

func (r Reason) String() string {
	switch r {
	case ShardEnded:
		return "shard-ended"
	case Shutdown:
		return "shutdown"
	case LeaseLost:
		return "lease-lost"
	default:
		return "unknown"
	}
}

// Shard identifies the lease a processor instance serves.
type Shard struct {
	Stream   string
	ShardID  string
	WorkerID string
	// Tenure is the lease token of this tenure of the shard (the lease
	// counter at the take: a later tenure, of any worker, has a higher
	// one). When > 0 the pipeline fences the shard's own result items
	// with it (Item.Fence), so a worker that lost the lease cannot
	// overwrite what the new owner wrote.
	Tenure int64
}

// AttrShard is the attribute naming the shard a per-shard result item
// belongs to (partials, cursors). The pipeline fences the items whose
// AttrShard is its own shard.
const AttrShard = "shard"

// Clock is the only source of "now" for processors (tests inject a fake).
type Clock interface{ Now() time.Time }

// Env is what the pipeline injects into a processor when a lease starts.
type Env struct {
	Shard  Shard
	Logger *zap.Logger
	Clock  Clock
	// Store reads and conditionally writes result tables: restoring
	// partial state after a failover, global sums, alarm de-duplication.
	Store Store
	// Publisher, when set, publishes at once (it returns when the topic
	// accepted the messages). It is for notifications that must be
	// recorded as sent right after they went out, with nothing else in
	// between (alarms published exactly once per period): messages given
	// to the Emitter go out only after the whole batch is written. Nil
	// when the worker has no topic.
	Publisher Publisher
	// Shards, when set, lists the stream's open shards (from a cached
	// ListShards): a processor whose results wait for every shard (a
	// fleet-wide event-time frontier) also waits for shards no worker
	// has leased yet. Nil when unknown (replays, tests).
	Shards func(context.Context) ([]string, error)
}

// Store is the small slice of DynamoDB a processor may call directly.
// Writes that only need to be durable before the checkpoint go through
// the Emitter instead, which batches them.
type Store interface {
	// Query returns the items of table whose partition key attribute pkName
	// equals pk and whose sort key attribute skName lies in [from, to].
	Query(ctx context.Context, table, pkName, pk, skName, from, to string) ([]map[string]types.AttributeValue, error)
	// PutIfAbsent writes item unless an item with the same key exists, and
	// reports whether it wrote. keyAttr names the partition key attribute.
	PutIfAbsent(ctx context.Context, table, keyAttr string, item map[string]types.AttributeValue) (bool, error)
	// PutIf overwrites the item with item's key with item, if that item
	// exists and each attribute named in cond equals the value given
	// there; it reports whether it wrote. It moves a claim from one state
	// to the next without losing to a writer that took the claim over.
	PutIf(ctx context.Context, table, keyAttr string, item, cond map[string]types.AttributeValue) (bool, error)
}

// The result value types live in the leaf package results (so that sinks
// need not import this plugin API); these aliases keep their names here.
type (
	Item       = results.Item
	Message    = results.Message
	Datum      = results.Datum
	Dim        = results.Dim
	DeadLetter = results.DeadLetter
)

// Emitter collects a processor's results. Everything emitted while a batch
// is processed is durably written before the batch is checkpointed.
type Emitter interface {
	Put(Item)
	Publish(Message)
	Metric(Datum)
}

// Processor turns decoded records into results. One instance serves one
// shard lease and is never called concurrently.
type Processor interface {
	// Process handles the next records of the shard, in sequence order.
	Process(ctx context.Context, recs []records.Record, out Emitter) error
	// Flush is called on the pipeline's flush cadence (after every batch
	// with FlushInterval 0; at most every FlushInterval otherwise, and on
	// idle polls) and when the processor asks for it (Urgent): emit
	// partial results for windows that changed and final results for
	// windows that closed by now.
	Flush(ctx context.Context, out Emitter) error
	// Close ends the instance; see Reason for what to emit.
	Close(ctx context.Context, reason Reason, out Emitter) error
}

// Urgent is optionally implemented by a Processor whose output must not
// wait for the flush cadence: an alarm, a window that just closed. After
// every batch the pipeline asks each such processor; when Urgent returns
// true it calls that processor's Flush at once and writes what it emitted,
// without flushing the others (the checkpoint still waits for the
// cadence, so a crash replays no more than before). Urgent must be cheap:
// it runs once per batch.
type Urgent interface {
	Urgent() bool
}

// CaughtUp is implemented by processors that track how far their shard
// has been read: the pipeline calls CaughtUp when a poll found nothing
// newer than what was processed (Kinesis reported the shard caught up),
// with the clock time of that poll. Every record that arrived before then
// (give or take Kinesis' visibility lag) has been read.
type CaughtUp interface {
	CaughtUp(now time.Time)
}

// Factory builds a processor for a newly leased shard. Start-up work that
// reads state (restoring partials) happens here, bounded by ctx.
type Factory func(ctx context.Context, env Env) (Processor, error)

// The sink interfaces below are what the pipeline writes to. Each call
// must return only when its input is durably written (or fail): the
// checkpoint follows. Implementations retry transient failures with backoff
// until ctx ends, and report what still failed in the error.
type (
	// ItemWriter gets every item emitted, repeats included: where one
	// (Table, Key) appears twice the last one wins.
	ItemWriter interface {
		WriteItems(ctx context.Context, items []Item) error
	}
	Publisher interface {
		Publish(ctx context.Context, msgs []Message) error
	}
	MetricWriter interface {
		WriteMetrics(ctx context.Context, data []Datum) error
	}
	DeadLetterWriter interface {
		WriteDeadLetters(ctx context.Context, dls []DeadLetter) error
	}
)
