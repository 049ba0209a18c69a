// Package bench holds shardwatch's performance suite, run by `make bench`
// (scripts/bench): the Go benchmarks of the hot path (decoders, each
// processor, the crawler check, the whole decode -> process -> sink chain)
// in its _test files; the end-to-end harness that drives the consumer and a
// counting baseline through the local AWS stack (e2e, baseline,
// cmd/baseline); and the Markdown report docs/performance.md is
// regenerated from (report, cmd/benchrun).
//
// Every benchmark processes batches of real records from ../shared/data and
// reports per-record figures with b.ReportMetric (ns/record, cpu-ns/record,
// allocs/record, B/record), because the budgets of issue 6 are per record
// and the machine is shared: CPU time, not wall time, is the figure to
// compare.
package bench
