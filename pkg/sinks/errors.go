package sinks

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

var (
	// ErrInvalidInput marks an input the sink rejects before sending it
	// (missing key, too large, too many attributes): retrying cannot help.
	ErrInvalidInput = errors.New("invalid input")
	// ErrTooManyResults is returned by reads that would exceed their
	// configured bound instead of holding unbounded memory.
	ErrTooManyResults = errors.New("too many results")
)

// Failure is one input of a Write call that was not written.
type Failure struct {
	// Index is the position of the input in the slice passed to Write.
	Index int
	// Key names the input for logs (item key, message topic, metric name).
	Key string
	// Err is why; it wraps the AWS error or a sentinel such as
	// ErrInvalidInput, and context errors when the call was cancelled.
	Err error
}

// BatchError reports the inputs of one Write call that were not written.
// The others were written durably. Use errors.As to get it.
type BatchError struct {
	// Op names the call, e.g. "dynamodb batch write".
	Op string
	// Total is the number of inputs passed to the call.
	Total int
	// Failed is ordered by Index.
	Failed []Failure
}

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d failed", e.Op, len(e.Failed), e.Total)
	// The first failure usually explains the rest; list a few keys, not
	// thousands, so the message stays loggable.
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-i)
			break
		}
		fmt.Fprintf(&b, "; [%d] %s: %v", f.Index, f.Key, f.Err)
	}
	return b.String()
}

// Unwrap exposes the distinct causes, so errors.Is(err, context.Canceled)
// or errors.As(err, &smithy.APIError) work on a BatchError.
func (e *BatchError) Unwrap() []error {
	var errs []error
	for _, f := range e.Failed {
		if !containsErr(errs, f.Err) {
			errs = append(errs, f.Err)
		}
		if len(errs) == 8 {
			break
		}
	}
	return errs
}

func containsErr(errs []error, err error) bool {
	for _, e := range errs {
		if e == err {
			return true
		}
	}
	return false
}

// NewBatchError returns nil when failed is empty, else a *BatchError with
// failed sorted by Index.
func NewBatchError(op string, total int, failed []Failure) error {
	if len(failed) == 0 {
		return nil
	}
	sortFailures(failed)
	return &BatchError{Op: op, Total: total, Failed: failed}
}

func sortFailures(f []Failure) {
	slices.SortStableFunc(f, func(a, b Failure) int { return cmp.Compare(a.Index, b.Index) })
}

// Unwritten splits the failed inputs by whether a retry can help; it
// implements processors.PartialError so the pipeline re-sends only what
// failed and gives up at once on inputs that can never be written.
func (e *BatchError) Unwritten() (retryable, permanent []int) {
	for _, f := range e.Failed {
		if errors.Is(f.Err, ErrInvalidInput) || Classify(f.Err) == Permanent {
			permanent = append(permanent, f.Index)
		} else {
			retryable = append(retryable, f.Index)
		}
	}
	return retryable, permanent
}
