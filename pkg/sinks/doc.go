// Package sinks holds what the sink family shares: the per-item error type
// every sink returns (BatchError), the classification of AWS errors into
// retryable and permanent ones, and the sentinel errors sinks wrap.
//
// The sinks themselves live in subpackages, one per destination:
//
//   - dynamo: ItemWriter (BatchWriteItem, 25 per call, de-duplicated, bounded
//     concurrency), Store (paginated consistent Query, conditional
//     PutIfAbsent) and DeadLetterWriter (table APP-deadletter).
//   - sns: Publisher (PublishBatch of up to 10, or sequential Publish).
//   - cloudwatch: MetricWriter aggregating datums per second into
//     Values/Counts, high resolution, split to the PutMetricData limits.
//   - emf: MetricWriter printing CloudWatch Embedded Metric Format lines.
//   - jsonl: file-backed ItemWriter and DeadLetterWriter for local runs,
//     flushed and fsync'd before a call returns.
//   - retry: exponential backoff with full jitter, shared by all of them.
//
// Every Write call returns only when its whole input is durable, because
// the pipeline checkpoints right after it. A call that cannot make all of
// its input durable returns an error that wraps a *BatchError naming each
// failed input by index, so the caller can dead-letter or retry exactly
// those. Sinks hold no memory beyond the call's own input: they are
// synchronous, and concurrency inside a call is bounded.
package sinks
