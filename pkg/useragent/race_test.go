//go:build race

package useragent

// raceEnabled: the race detector slows regexp-heavy tests ~10x, so the
// exhaustive comparisons with crawlerdetect sample their corpus (the
// full corpus runs in every non-race test run, e.g. make test-short).
const raceEnabled = true
