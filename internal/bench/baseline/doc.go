// Package baseline is the counting consumer `make bench` compares the
// shardwatch consumer with: the bare vmware-go-kcl-v2 worker, as the
// library ships it (its own DynamoDB checkpointer, no read guard), whose
// record processor only counts records and checkpoints the end of every
// batch. It is the engine's ceiling: whatever the consumer spends on top
// of it (fenced leases, decoding, processors, sinks) is shardwatch's
// overhead.
//
// To measure progress and latency the same way for both, it can append
// every record's position to an audit log in the consumer's format (see
// engine.AuditLog), synced before the checkpoint.
package baseline
