// Package processortest is the conformance kit every shardwatch processor
// runs (in the spirit of benthos' reusable plugin suites): Run checks
// determinism under a fake clock, that nothing final is emitted before its
// window closes, that a lost lease emits nothing, bounded state under a
// flood of keys, that malformed records never panic, that no goroutines
// leak, and that a new lease owner restoring from the emitted partials
// reaches the same results as an uninterrupted run.
//
// The building blocks (Clock, Recorder, Store, Harness, Sequence) are
// exported for processors' own tests.
package processortest
