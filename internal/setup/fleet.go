package setup

import "strings"

// Names and keys fixed by the fleet contract.
const (
	// TTLAttribute holds the epoch second after which DynamoDB deletes an item.
	TTLAttribute = "expires_at"

	SuffixResults    = "-results"
	SuffixCounters   = "-counters"
	SuffixAlarms     = "-alarms"
	SuffixDeadLetter = "-deadletter"
	// SuffixOrders names the order archive APP-orders (processor
	// orderarchive): pk customer id or "_guest", sk "<date>#<invoice>#...",
	// no TTL (an archive).
	SuffixOrders = "-orders"
	// SuffixAlarmTopic names the SNS topic APP-alarms.
	SuffixAlarmTopic = "-alarms"
	// SuffixFIFO ends the name of an SNS FIFO topic (APP-alarms.fifo): SNS
	// requires it, and the consumer tells a FIFO topic by it.
	SuffixFIFO = ".fifo"
)

// WithFIFOTopic returns plan with its alarm topics made SNS FIFO topics
// (APP-alarms.fifo): exactly one order-flood message per alarm period, to
// SQS FIFO subscribers only (no e-mail, SMS or HTTPS; CloudWatch alarm
// actions need a standard topic too).
func WithFIFOTopic(plan Plan) Plan {
	topics := make([]string, len(plan.Topics))
	for i, t := range plan.Topics {
		topics[i] = strings.TrimSuffix(t, SuffixFIFO) + SuffixFIFO
	}
	plan.Topics = topics
	return plan
}

// FleetPlan is the plan for application app: the stream (when not nil), the
// lease table APP (vmware-go-kcl-v2 compatible), APP-results, APP-counters,
// APP-alarms, APP-deadletter, APP-orders and the SNS topic APP-alarms.
func FleetPlan(app string, stream *Stream) Plan {
	return Plan{
		Stream: stream,
		Tables: []Table{
			{Name: app, PartitionKey: "ShardID"},
			{Name: app + SuffixResults, PartitionKey: "pk", SortKey: "sk", TTLAttribute: TTLAttribute},
			{Name: app + SuffixCounters, PartitionKey: "event", SortKey: "bucket", TTLAttribute: TTLAttribute},
			// Alarm items expire only when orderflood's retention is set.
			{Name: app + SuffixAlarms, PartitionKey: "alarm", SortKey: "period", TTLAttribute: TTLAttribute},
			{Name: app + SuffixDeadLetter, PartitionKey: "pk", SortKey: "sk", TTLAttribute: TTLAttribute},
			{Name: app + SuffixOrders, PartitionKey: "pk", SortKey: "sk"},
		},
		Topics: []string{app + SuffixAlarmTopic},
	}
}
