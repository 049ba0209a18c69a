// Package config loads the consumer's configuration: defaults, then a
// YAML file decoded strictly (an unknown key is an error naming it), then
// SHARDWATCH_* environment variables, then flags. Validate names the
// first bad field, so a worker with bad settings stops at start-up.
package config
