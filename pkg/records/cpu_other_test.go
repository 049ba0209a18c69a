//go:build !unix

package records_test

import "time"

// processCPU is not measured here; reportCPU skips the metric.
func processCPU() time.Duration { return -1 }
