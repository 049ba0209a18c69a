package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var errTransient = errors.New("transient")

func TestDelayCeilings(t *testing.T) {
	p := Policy{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond, Jitter: func(n int64) int64 { return n - 1 }}
	var got []time.Duration
	for a := 1; a <= 6; a++ {
		got = append(got, p.Delay(a))
	}
	want := []time.Duration{10, 20, 40, 50, 50, 50}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("delays (-want +got):\n%s", d)
	}
	// Huge attempt numbers saturate instead of overflowing.
	if d := p.Delay(500); d != 50*time.Millisecond {
		t.Errorf("Delay(500) = %v", d)
	}
	// Full jitter: the lower end is zero.
	p.Jitter = func(int64) int64 { return 0 }
	if d := p.Delay(3); d != 0 {
		t.Errorf("Delay with zero jitter = %v", d)
	}
}

func TestDo(t *testing.T) {
	tests := []struct {
		name      string
		policy    Policy
		failures  int  // fn fails this many times with errTransient
		permanent bool // ... or once with a non-retryable error
		cancel    bool // sleep cancels the context
		wantCalls int
		wantIs    []error
	}{
		{name: "succeeds after retries", failures: 3, wantCalls: 4},
		{name: "default bound", failures: 100, wantCalls: DefaultMaxAttempts, wantIs: []error{ErrExhausted, errTransient}},
		{name: "explicit bound", policy: Policy{MaxAttempts: 2}, failures: 100, wantCalls: 2, wantIs: []error{ErrExhausted, errTransient}},
		{name: "unbounded", policy: Policy{MaxAttempts: -1}, failures: 50, wantCalls: 51},
		{name: "permanent stops at once", permanent: true, wantCalls: 1, wantIs: []error{errPermanent}},
		{name: "cancel while waiting", failures: 100, cancel: true, wantCalls: 1, wantIs: []error{context.Canceled, errTransient}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var slept int
			tt.policy.Sleep = func(ctx context.Context, d time.Duration) error {
				slept++
				if tt.cancel {
					cancel()
				}
				return ctx.Err()
			}
			calls := 0
			err := tt.policy.Do(ctx, func(err error) bool { return errors.Is(err, errTransient) }, func(context.Context) error {
				calls++
				if tt.permanent {
					return errPermanent
				}
				if calls <= tt.failures {
					return errTransient
				}
				return nil
			})
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if len(tt.wantIs) == 0 && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			for _, w := range tt.wantIs {
				if !errors.Is(err, w) {
					t.Errorf("err %v is not %v", err, w)
				}
			}
			if want := min(calls-1, calls); !tt.permanent && err == nil && slept != want {
				t.Errorf("slept %d times, want %d", slept, want)
			}
		})
	}
}

var errPermanent = errors.New("permanent")

func TestSleepContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	if err := SleepContext(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Error("SleepContext ignored a cancelled context")
	}
	if err := SleepContext(t.Context(), time.Microsecond); err != nil {
		t.Errorf("short sleep: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []Policy{{Base: -1}, {Base: time.Second, Cap: time.Millisecond}} {
		if p.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", p)
		}
	}
	if err := (Policy{}).Validate(); err != nil {
		t.Errorf("zero policy: %v", err)
	}
}
