// Package cloudfront holds the CloudFront analytics processors of the
// AWS CloudFront log-analysis solution (its Kinesis Data Analytics and
// Athena queries), on the window runner (package windowed):
//
//   - cloudfront-bytes: bytes per distribution per edge location per step
//     (default 1 s) of each window, a DynamoDB result and a per-second
//     CloudWatch metric with bounded dimensions (top K pairs, the rest
//     summed as "other");
//   - cloudfront-bots: bot requests and bytes per client IP, edge location
//     and distribution per window, with the crawler check of botdetect;
//   - cloudfront-cache: cache hit ratio and mean time taken per
//     distribution per window, from x-edge-result-type and time-taken.
//
// They count CloudFront records only (hits with an edge location, see
// records.Record.Edge); other records are ignored. Every result is global
// across the shards of the stream and exact across failovers (the runner
// restores open windows and skips replayed records). Every state and item
// is bounded: further keys are summed as "other", so totals stay exact.
package cloudfront
