// Package cloudwatch writes per-second metrics with PutMetricData.
//
// Datums are aggregated per (name, unit, dimensions, second) into distinct
// Values with Counts, so a flood of identical observations costs one value,
// and sent as high-resolution metrics (StorageResolution 1) in as few calls
// as CloudWatch's limits allow: 1,000 datums, 150 values per datum and
// 1 MB per call. A series with more distinct values in one second is split
// into several datums, which CloudWatch adds up.
//
// The SDK speaks Smithy RPC v2 CBOR to CloudWatch; the tests decode the
// captured request bodies to check what is sent.
package cloudwatch
