//go:build !unix

package bench

import "time"

// SelfCPU returns -1: process CPU time is only read on Unix.
func SelfCPU() time.Duration { return -1 }
