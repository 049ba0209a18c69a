// Package putter writes records to a Kinesis stream with PutRecords.
//
// Putter sends a slice of entries in calls of at most 500 records and 5 MiB
// and retries only the entries a call reported as failed (per-entry
// ErrorCode), with exponential backoff and full jitter; whole-call errors
// that are retryable (throttling, 5xx, network) are retried the same way.
// After MaxAttempts, or when the context ends, an entry is returned as a
// Failure: nothing is dropped silently.
//
// Producer runs a Putter behind a bounded buffer: Add blocks when the buffer
// is full (replay, generator), TryAdd returns ErrFull instead (the HTTP
// collector answers 503). Entries are batched until a call is full or the
// linger time passes, optionally packed into KPL aggregated records first.
// Close stops intake; Run then drains the buffer and returns.
//
// Delivery is at least once: a retried call may write an entry twice, and
// with Concurrency > 1 or retries the order of entries is not preserved.
package putter
