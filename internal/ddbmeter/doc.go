// Package ddbmeter measures what DynamoDB bills: it asks every call of a
// client for its consumed capacity (ReturnConsumedCapacity TOTAL) and sums
// the units by table and by read or write. The worker exports the sums on
// /metrics (shardwatch_dynamodb_units_total) and the benchmarks turn them
// into units per shard-second and dollars.
//
// Units are what DynamoDB reports: 1 write unit per KB of item (rounded up
// per item), 2 for a transactional write; 1 read unit per 4 KB, half for an
// eventually consistent read. A conditional write that fails still costs
// its units, but DynamoDB does not report them on the error: the meter
// counts 1 write unit for each, which undercounts items over 1 KB.
package ddbmeter
