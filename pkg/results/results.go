package results

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Item is a whole DynamoDB item to write (an overwrite: idempotent).
// Key identifies it inside one batch so the last write per key wins.
type Item struct {
	Table string
	Key   string
	Attrs map[string]types.AttributeValue
	// Fence, when > 0, is the writer's lease token (Shard.Tenure): the
	// write must not replace an item written under a higher token (a
	// later tenure of the shard). The pipeline sets it; processors leave
	// it zero.
	Fence int64
}

// Message is a notification to publish (SNS).
type Message struct {
	Topic   string
	Subject string
	Body    []byte
	// Text, when set, is a short form (SMS: at most 140 characters) for
	// people: the message is published with MessageStructure json, so SMS
	// and email subscribers get Text and every other protocol gets Body.
	Text       string
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
