// Package kpl encodes and decodes Kinesis Producer Library (KPL) aggregated
// records.
//
// An aggregated record packs many user records into one Kinesis record so a
// producer pays the per-record shard limit (1,000 records/s) once per
// aggregate instead of once per user record. Its payload is the 4-byte magic
// 0xF3 0x89 0x9A 0xC2, a protobuf AggregatedRecord (the message types of
// github.com/awslabs/kinesis-aggregation/go/v2/records) and the MD5 digest of
// that protobuf.
//
// Aggregate builds such payloads within a byte and a record limit.
// Deaggregate mirrors the deaggregator the consumer engine runs
// (github.com/awslabs/kinesis-aggregation/go/v2/deaggregator): a payload
// without the magic, or with a wrong digest, is a plain user record; unlike
// that deaggregator it also returns explicit hash keys and rejects
// out-of-range table indexes instead of panicking.
package kpl
