//go:build race

package rcf_test

func init() { raceEnabled = true }
