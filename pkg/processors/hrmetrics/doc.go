// Package hrmetrics is the high-resolution metrics processor: per second
// of event (or arrival) time it sums requests, response bytes, status
// classes, orders and processing lag, and emits them as Datums with
// bounded dimensions (Stream, plus Host for an allow-list of hosts) on
// every Flush. Each Flush emits only what arrived since the previous one;
// CloudWatch adds up datums of the same second, so nothing waits for a
// window to close. With dedupe on, a per-shard cursor item makes a new
// lease owner skip records whose metrics were already sent. See README.md
// for every metric name, unit and dimension.
package hrmetrics
