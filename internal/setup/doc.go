// Package setup makes the AWS resources a shardwatch application needs exist:
// the Kinesis stream, the DynamoDB tables and the SNS topics. It is declarative
// and idempotent: [Apply] creates only what is missing, treats "already exists"
// (including a concurrent creator winning the race) as success, waits with a
// deadline until everything is ACTIVE, and never modifies or deletes an
// existing resource. The same code runs against real AWS and the local stack.
//
// `consumer setup` and the producer call it with [FleetPlan].
package setup
