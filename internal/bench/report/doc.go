// Package report turns what `make bench` measured (Go benchmark output, the
// benchstat summary, the end-to-end session and pprof top lists) into the
// Markdown report that docs/performance.md is regenerated from, with every
// budget of issue 6 checked.
package report
