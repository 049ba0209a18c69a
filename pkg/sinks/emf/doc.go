// Package emf writes metrics as CloudWatch Embedded Metric Format: JSON
// log lines that CloudWatch Logs turns into metrics, for local runs and
// for containers whose stdout goes to CloudWatch Logs (no PutMetricData
// rate limits).
//
// One line per (second, dimension set) declares up to 100 high-resolution
// metrics and carries their values: a number, or an array of up to 100
// numbers, one per observation.
package emf
