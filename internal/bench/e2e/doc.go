// Package e2e is the end-to-end half of `make bench`: it runs real worker
// processes (the shardwatch consumer, and the counting vmware-go-kcl-v2
// baseline of package baseline) against the local AWS stack, feeds them a
// fixed number of records and measures what the Go benchmarks cannot:
// records/s through the engine, CPU seconds per 1,000 records and peak RSS
// of the worker processes (from /proc), put-to-result and put-to-alarm
// latency, and pprof profiles of the consumer.
//
// Each run gets its own stream, application tables and topic (random
// names, deleted afterwards), so it can share the stack with other users.
package e2e
