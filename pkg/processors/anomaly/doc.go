// Package anomaly is the `anomaly` processor: Random Cut Forest anomaly
// scores (pkg/rcf), the replacement for Kinesis Data Analytics'
// RANDOM_CUT_FOREST. It scores either the values of generic JSON events
// per key (input json) or a per-host traffic series, one point per
// event-time second (input traffic: requests, bytes, 5xx share, bot
// share), and reports like KDA did: the highest-scoring points per second
// ordered by score, a score distribution per minute, a MaxAnomalyScore
// metric per key (bounded dimensions) and an SNS alarm when a score
// crosses the threshold, de-duplicated fleet-wide.
//
// Two layers. The models are per-shard state that outlives every window,
// so the window runner (pkg/processors/windowed) cannot hold them: its
// Aggregate is built once per instance and only sees one window's state.
// This package therefore wraps a runner per lease: the wrapper scores
// records (and, for traffic, closes seconds), then hands each scored
// point to the runner as a records.Record, and the runner owns the
// per-second top lists and the distribution windows (partials, global
// merge, restore, late counting) exactly as for any windowed plugin.
//
// Failover. Each model is written as a snapshot (chunked: 300 KB per
// item) with the shard's position, at most every snapshot_interval and on
// a graceful shutdown, through the emitter, so a snapshot is durable
// before the batch it covers is checkpointed. A new owner restores every
// model of the shard and does not learn records at or below a model's
// snapshot position again. Records between the last snapshot and the
// checkpoint are not re-learned (the warm-up after a crash): with
// snapshot_interval 0 the snapshot is written on every flush and scores
// continue exactly (the conformance kit checks this); with the default 5
// minutes, at most five minutes of points are missing from the models.
//
// The alarm de-duplication is the smallest equivalent of orderflood's
// (a conditional put of (alarm, period) with attribute_not_exists), not a
// shared mechanism; see alarm in processor.go.
package anomaly
