// Package fleettest holds the consumer's fleet acceptance tests: real
// worker processes (the consumer binary, built once) on the local AWS
// stack, killed, stopped and terminated while the tests watch the lease
// table and every worker's audit log. It has no non-test code.
package fleettest
