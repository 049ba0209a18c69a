// Package faultproxy is a fault-injecting HTTP reverse proxy for the AWS
// JSON protocols (Kinesis awsJson1_1, DynamoDB awsJson1_0). Placed between
// workers and the local servers it answers a configurable share of
// requests with ProvisionedThroughputExceededException, ThrottlingException,
// 500 InternalFailure or 503 ServiceUnavailable bodies shaped the way the
// real services send them (status, x-amzn-ErrorType header, JSON "__type"),
// delays others, or drops the connection, so the SDK and the worker see
// exactly what a throttled or failing AWS endpoint would give them.
//
// Rules select requests by service and operation (from X-Amz-Target) and
// are drawn from a seeded random source, so a failing run can be repeated.
package faultproxy
