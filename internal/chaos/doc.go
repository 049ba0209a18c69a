// Package chaos is the fleet's fault-injection harness. It starts a
// private local AWS stack (kinesalite, DynamoDB Local and goaws on their
// own ports and directory, with persistence on), k consumer worker
// processes and a paced producer of a deterministic, seeded workload
// (clickstream hits and orders with order floods), then injects faults on
// a seeded schedule: SIGKILL, SIGTERM and SIGSTOP/SIGCONT of workers and
// SIGKILL-and-restart of DynamoDB Local and kinesalite. It measures the
// time every shard takes to make progress again after each fault.
//
// At the end it reads the whole stream back and verifies, against an
// offline computation over exactly what the stream holds:
//
//   - no record lost: every sequence number appears in a worker's audit
//     log (consumer run --audit-log);
//   - duplicates counted, and within the bound of what could be in flight
//     since the last checkpoint (one batch per shard and fault);
//   - top-N (totals and per-IP counts of the global items), event
//     counters (per minute and hour) and order-flood per-second counts in
//     DynamoDB equal to the offline computation;
//   - exactly one order-flood alarm item per breached suppression period
//     and no other, and the SNS messages per period;
//   - every shard owned by a live worker at the end.
//
// Windows are driven by event time only: the workload's event times lie
// hours ahead of the wall clock and a sentinel record per shard closes
// every data window, so results do not depend on how long faults stall
// processing.
//
// `make chaos` runs the long version (cmd/chaos, parameters from
// SHARDWATCH_CHAOS_* variables); TestChaosCI runs a CI-sized one.
package chaos
