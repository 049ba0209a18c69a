// Package checkpoint is a fenced DynamoDB lease and checkpoint store for
// the vmware-go-kcl-v2 worker engine: Store implements the engine's
// chk.Checkpointer (pass it to Worker.WithCheckpointer) with the Java
// KCL's lease semantics instead of the engine's own checkpointer:
//
//   - Every take, renewal, checkpoint and release is a conditional
//     UpdateItem on AssignedTo = me AND LeaseCounter = expected, and bumps
//     LeaseCounter. A failed condition means the lease is lost
//     (ErrLeaseLost; the tenure's Lost channel closes), so a worker that
//     lost its lease can never overwrite the new owner's checkpoint.
//   - Another worker's lease is expired when its LeaseCounter has not
//     changed for FailoverTime on this process's monotonic clock, from
//     when this process first saw that value. The wall-clock LeaseTimeout
//     is still written for tools but never trusted across hosts.
//   - A child shard is leased only after every parent (both parents of a
//     merge) reached SHARD_END or left the stream.
//   - This worker's own tenure ends (Lost closes) once none of its writes
//     succeeded for FailoverTime minus one RenewInterval, checked at each
//     renewal and checkpoint: before any other worker can call it expired.
//     Transient renewal errors are tolerated until then.
//   - Checkpoints renew: every write bumps the counter, and a renewal of a
//     lease written in the last FailoverTime/2 writes nothing. A worker
//     checkpointing at least that often pays for no renewals.
//   - Checkpoints never move backwards and SHARD_END is final.
//   - Shards this worker does not hold are answered from one consistent
//     Scan snapshot per SnapshotTTL, not a GetItem per shard per pass. Run
//     refreshes it on its own cadence, so the engine's passes can run
//     several times a second at no DynamoDB cost.
//   - All takeable leases in one step: a successful take also takes every
//     other lease this worker may take now (free, released, expired, up to
//     its fair share), not one per engine pass; the engine adopts them on
//     its next passes without an AWS call, and Run renews them meanwhile
//     (and releases one the engine has not adopted within FailoverTime).
//   - Lease.Token (the counter at the take, higher for every later tenure
//     on any worker) fences result writes too (processors.Shard.Tenure).
//
// WorkerID must be unique per process: a row owned by our own id that this
// process does not hold is taken back at once as a leftover of an earlier
// incarnation.
//
// The engine's interface has no context: calls run on the base context
// given to New, each bounded by CallTimeout. The engine's own lease
// stealing is not supported (run it with EnableLeaseStealing=false); the
// store balances instead:
//
//   - Fair share: a worker takes no new lease beyond ceil(open shards /
//     live workers), live meaning holding an unexpired lease (the Java
//     KCL's target).
//   - Graceful claims: when no shard is free, a worker below its share
//     sets ClaimRequest on as many leases of workers above it as it needs
//     (never taking one below its share). The holder sees a claim in its
//     next snapshot or renewal (Claimed), finishes its batch, checkpoints
//     and releases, keeping the claim on the row: the released row is
//     reserved for the claimant for FailoverTime, so nobody else (nor the
//     releasing worker) takes it back. No owner is fenced out mid-batch,
//     so a rebalance causes no duplicates. A claim older than three
//     failover periods is ignored.
//
// # Table schema
//
// One item per shard, key ShardID (S), PAY_PER_REQUEST. The attributes of
// vmware-go-kcl-v2 keep their names and formats, so an application that
// ran on its DynamoCheckpoint switches over keeping its checkpoints (stop
// the old fleet first: its unconditional writes are not fenced).
//
//	attribute                     type  written by            meaning
//	ShardID                       S     take (key)            shard id
//	AssignedTo                    S     take; REMOVEd by      owner worker id; absent = free,
//	                                    release               takeable at once
//	LeaseCounter                  N     every write (ours)    fencing token, +1 per take, renewal,
//	                                                          checkpoint and release; absent on rows
//	                                                          only vmware-go-kcl-v2 wrote
//	LeaseTimeout                  S     every write           RFC3339Nano wall time now+FailoverTime
//	                                                          of the writer; informational only
//	Checkpoint                    S     checkpoint            last processed sequence number, or
//	                                                          SHARD_END once the shard is fully read
//	ParentShardId                 S     take                  parent shard (split, or first of a merge)
//	AdjacentParentShardId         S     take                  second parent of a merge
//	OwnerSwitchesSinceCheckpoint  N     take, checkpoint      takes by a new owner since the last
//	                                                          checkpoint (a shard that keeps moving
//	                                                          without progress is poisoned)
//	CheckpointedAt                S     checkpoint            RFC3339Nano wall time of the checkpoint
//	CheckpointedBy                S     checkpoint            worker id that wrote the checkpoint
//	ClaimRequest                  S     claim; REMOVEd by     worker asking the owner for a hand-over
//	                                    take and release      (balance); same name as vmware's stealing
//	ClaimedAt                     S     claim                 RFC3339Nano wall time of the claim
//
// # Engine settings
//
// Set the engine's FailoverTimeMillis to Config.FailoverTime,
// LeaseRefreshWaitTime to Config.RenewInterval (FailoverTime/3) and
// MaxLeasesForWorker to Config.MaxLeases, run Store.Run beside the engine,
// and answer the engine's per-pass ListShards from a cache
// (internal/engine.ShardCache); then ShardSyncIntervalMillis can be ~100
// ms, and an orphaned or released lease is taken within SnapshotTTL plus
// one pass.
package checkpoint
