// Package retry is the backoff every sink shares: exponential backoff with
// full jitter (sleep a random time in [0, min(Cap, Base*2^attempt)]), a
// bound on attempts, and a context that ends the wait at once. Sleep and
// randomness are injectable so tests run without waiting.
package retry
