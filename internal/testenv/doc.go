// Package testenv connects integration tests to the local AWS stack started by
// scripts/localstack (kinesalite, DynamoDB Local, goaws for SNS/SQS).
//
// Endpoints come from AWS_ENDPOINT_URL_<SERVICE> (as printed by
// `scripts/localstack env`), else from SHARDWATCH_KINESIS_PORT,
// SHARDWATCH_DYNAMODB_PORT and SHARDWATCH_SNS_PORT on 127.0.0.1, else from the
// default ports 4567, 4569 and 4575. The stack is shared by concurrent test
// runs, so every resource gets a unique name from [Name] and is deleted in
// t.Cleanup.
//
// An unreachable stack fails the test: a silently skipped integration suite
// looks green in CI. Set SHARDWATCH_SKIP_INTEGRATION=1 to skip instead.
package testenv
