package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrExhausted is wrapped by Do's error when MaxAttempts ran out.
var ErrExhausted = errors.New("retries exhausted")

// Defaults used for zero fields of Policy.
const (
	DefaultMaxAttempts = 8
	DefaultBase        = 25 * time.Millisecond
	DefaultCap         = 5 * time.Second
)

// Sleeper waits d or until ctx ends, returning ctx.Err() in the latter case.
type Sleeper func(ctx context.Context, d time.Duration) error

// Policy is exponential backoff with full jitter. The zero value is usable:
// 8 attempts, waiting up to 25 ms, 50 ms, ... 1.6 s between them (3.2 s in
// all at most). The bound is finite by default so a sink reports a
// persistent failure to its caller (which logs it and may retry the whole
// call) instead of going quiet until shutdown.
type Policy struct {
	// MaxAttempts bounds the number of calls, the first included: 0 means
	// DefaultMaxAttempts, negative means no bound (until ctx ends).
	MaxAttempts int `yaml:"max_attempts"`
	// Base is the backoff ceiling after the first failure; it doubles per
	// attempt up to Cap.
	Base time.Duration `yaml:"base"`
	Cap  time.Duration `yaml:"cap"`
	// Sleep defaults to a timer that honours ctx.
	Sleep Sleeper `yaml:"-"`
	// Jitter returns a uniform value in [0, n); defaults to math/rand/v2.
	// Tests fix it to make delays deterministic.
	Jitter func(n int64) int64 `yaml:"-"`
}

// Validate reports nonsensical settings.
func (p Policy) Validate() error {
	switch {
	case p.Base < 0 || p.Cap < 0:
		return fmt.Errorf("retry: negative backoff (base %v, cap %v)", p.Base, p.Cap)
	case p.Cap != 0 && p.Base > p.Cap:
		return fmt.Errorf("retry: base %v > cap %v", p.Base, p.Cap)
	}
	return nil
}

// Delay is the wait before retry number attempt (1 = first retry).
func (p Policy) Delay(attempt int) time.Duration {
	base, limit := p.Base, p.Cap
	if base <= 0 {
		base = DefaultBase
	}
	if limit <= 0 {
		limit = DefaultCap
	}
	ceil := limit
	// base << (attempt-1), saturating at limit without overflowing.
	if shift := attempt - 1; shift < 62 && base <= limit>>max(shift, 0) {
		ceil = base << max(shift, 0)
	}
	jitter := p.Jitter
	if jitter == nil {
		jitter = rand.Int64N
	}
	return time.Duration(jitter(int64(ceil) + 1))
}

// Wait sleeps Delay(attempt), returning early with ctx.Err().
func (p Policy) Wait(ctx context.Context, attempt int) error {
	sleep := p.Sleep
	if sleep == nil {
		sleep = SleepContext
	}
	return sleep(ctx, p.Delay(attempt))
}

// More reports whether another attempt is allowed after attempts calls.
func (p Policy) More(attempts int) bool {
	switch {
	case p.MaxAttempts < 0:
		return true
	case p.MaxAttempts == 0:
		return attempts < DefaultMaxAttempts
	default:
		return attempts < p.MaxAttempts
	}
}

// Do calls fn until it succeeds, returns an error retryable rejects, the
// attempts run out, or ctx ends. The returned error wraps fn's last error,
// plus ErrExhausted or the context's error when those stopped it.
func (p Policy) Do(ctx context.Context, retryable func(error) bool, fn func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || !retryable(err) {
			return err
		}
		if !p.More(attempt) {
			return fmt.Errorf("%w after %d attempts: %w", ErrExhausted, attempt, err)
		}
		if werr := p.Wait(ctx, attempt); werr != nil {
			return fmt.Errorf("retry interrupted after %d attempts: %w: %w", attempt, werr, err)
		}
	}
}

// SleepContext waits d or until ctx ends.
func SleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
