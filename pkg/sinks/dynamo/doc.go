// Package dynamo writes results to DynamoDB: an ItemWriter that batches
// overwrites through BatchWriteItem, a Store for the reads and conditional
// writes processors make directly, and a DeadLetterWriter for the
// APP-deadletter table.
//
// Each component declares the one or two client methods it calls
// (BatchWriteAPI, StoreAPI), so *dynamodb.Client satisfies them and tests
// use small fakes that inject throttling and unprocessed items.
package dynamo
