package processors

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/records"
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
}

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

// Item is a whole DynamoDB item to write (an overwrite: idempotent).
// Key identifies it inside one batch so the last write per key wins.
type Item struct {
	Table string
	Key   string
	Attrs map[string]types.AttributeValue
}

// Message is a notification to publish (SNS).
type Message struct {
	Topic      string
	Subject    string
	Body       []byte
	Attributes map[string]string
	// DedupID and GroupID become MessageDeduplicationId and
	// MessageGroupId on FIFO topics (ARN ending in ".fifo"), which drop a
	// repeat of a DedupID seen in the last 5 minutes. Standard topics
	// ignore both: put a de-duplication id in Attributes and Body for
	// subscribers instead.
	DedupID, GroupID string
}

// Datum is one metric observation aggregated per second.
type Datum struct {
	Name  string
	Unit  string // CloudWatch unit: Count, Bytes, Milliseconds, Percent, None
	Dims  []Dim  // bounded cardinality only: never an IP or customer
	Time  time.Time
	Value float64
	// Count > 1 makes Value a sum of Count observations.
	Count float64
}

// Dim is one metric dimension.
type Dim struct{ Name, Value string }

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
	// Flush is called after every batch (and on idle polls): emit partial
	// results for windows that changed and final results for windows that
	// closed by now.
	Flush(ctx context.Context, out Emitter) error
	// Close ends the instance; see Reason for what to emit.
	Close(ctx context.Context, reason Reason, out Emitter) error
}

// Factory builds a processor for a newly leased shard. Start-up work that
// reads state (restoring partials) happens here, bounded by ctx.
type Factory func(ctx context.Context, env Env) (Processor, error)

// DeadLetter is a record the pipeline could not decode or process, kept
// with the reason so nothing is lost silently.
type DeadLetter struct {
	Stream       string
	ShardID      string
	Sequence     string
	SubSequence  int64
	PartitionKey string
	ArrivalTime  time.Time
	Reason       string // e.g. "decode combined: truncated request line"
	Data         []byte
}

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
