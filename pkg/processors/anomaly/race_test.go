//go:build race

package anomaly_test

func init() { raceEnabled = true }
