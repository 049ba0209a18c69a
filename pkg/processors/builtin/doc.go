// Package builtin lists the processors shipped with shardwatch, for
// cmd/consumer to build its registry explicitly:
//
//	reg, err := processors.NewRegistry(builtin.Plugins()...)
package builtin
