// Package engine runs the vmware-go-kcl-v2 worker with shardwatch's
// fenced lease store (pkg/checkpoint) and processor pipeline
// (pkg/processors).
//
// The engine owns shard discovery, polling and the lease loop; this package
// adapts each shard lease to a processors.ShardPipeline: it decodes every
// GetRecords batch, runs the processors, waits until the sinks have
// durably written what the batch produced and only then checkpoints the
// batch's last sequence number (never inside a KPL aggregate). It adds
// what the engine lacks: a lease-loss signal that stops a shard without
// checkpointing, SHARD_END on TERMINATE, start-up retries, a bounded
// graceful shutdown, zap logging (the engine's Fatalf/Panicf only log) and
// Prometheus metrics.
package engine
