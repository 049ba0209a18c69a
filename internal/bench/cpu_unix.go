//go:build unix

package bench

import (
	"syscall"
	"time"
)

// SelfCPU returns the user+system CPU time of this process (GC and every
// thread included), or -1 when the OS does not say.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
