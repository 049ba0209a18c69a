// Package stacktest tests scripts/localstack itself by running a second,
// independent stack on free ports in a temporary state directory. It never
// touches the shared default-port stack. It has no non-test code.
package stacktest
