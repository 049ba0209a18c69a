// Package counters is the event-counter processor: running counts per
// event name (hit, order, 4xx, 5xx and clickstream event names) per UTC
// minute and hour, written to the APP-counters table with partition key
// event and sort key bucket ("2026-11-22T09" or "2026-11-22T09:41"), so
// "last N hours" is one Query per event with sk BETWEEN. Optional second
// buckets ("2026-11-22T09:41:07", config seconds) feed live views.
//
// Exactness across shards and failover: the Emitter only writes whole
// items, so shards never write the counters item's per-shard parts.
// Instead each shard writes one partial item per bucket to APP-results
// (all its event counts and the covered position; restored and replayed
// like every windowed partial), and the counters items hold the sum of
// all shards' partials, re-merged by whichever shard flushes: every
// update_interval for open buckets, at once and until complete for closed
// ones.
package counters
