package putter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// Kinesis limits for PutRecords.
const (
	MaxBatchRecords    = 500
	MaxBatchBytes      = 5 << 20 // data plus partition keys
	MaxRecordBytes     = 1 << 20 // data plus partition key, stream default
	MaxPartitionKeyLen = 256     // Unicode characters
)

var (
	// ErrInvalidEntry reports an entry Kinesis would reject: empty or too
	// long partition key, or data plus key above the record limit.
	ErrInvalidEntry = errors.New("invalid entry")
	// ErrAttemptsExhausted reports entries still failing after MaxAttempts.
	ErrAttemptsExhausted = errors.New("attempts exhausted")
	// ErrFull is returned by TryAdd when the buffer is full.
	ErrFull = errors.New("putter buffer full")
	// ErrClosed is returned by Add and TryAdd after Close or after Run ended.
	ErrClosed = errors.New("putter closed")
)

// Client is the part of the Kinesis API the putter calls.
type Client interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Entry is one Kinesis record to write.
type Entry struct {
	PartitionKey    string
	ExplicitHashKey string // "" = route by PartitionKey
	Data            []byte
	// Records is the number of user records the entry carries (a KPL
	// aggregate); 0 counts as 1. Statistics count user records.
	Records int
}

func (e *Entry) size() int { return len(e.Data) + len(e.PartitionKey) }

func (e *Entry) weight() int {
	if e.Records < 1 {
		return 1
	}
	return e.Records
}

// validate checks the limits Kinesis enforces per record, so a bad entry
// fails alone instead of failing its whole call.
func (e *Entry) validate(maxRecordBytes int) error {
	if e.PartitionKey == "" {
		return fmt.Errorf("%w: empty partition key", ErrInvalidEntry)
	}
	if n := utf8.RuneCountInString(e.PartitionKey); n > MaxPartitionKeyLen {
		return fmt.Errorf("%w: partition key of %d characters, limit %d", ErrInvalidEntry, n, MaxPartitionKeyLen)
	}
	if n := e.size(); n > maxRecordBytes {
		return fmt.Errorf("%w: %d bytes with partition key, limit %d", ErrInvalidEntry, n, maxRecordBytes)
	}
	return nil
}

// Failure is an entry that could not be written.
type Failure struct {
	Entry Entry
	// Code is the last Kinesis error code (per-entry ErrorCode or the API
	// error code); "" when the entry never got one.
	Code string
	Err  error
}

// Result summarises one Put call. Counts are user records.
type Result struct {
	Sent    int
	Retried int // resends: an entry retried twice counts twice
	Failed  []Failure
}

// FailedRecords returns the number of user records in r.Failed.
func (r *Result) FailedRecords() int {
	n := 0
	for i := range r.Failed {
		n += r.Failed[i].Entry.weight()
	}
	return n
}

// Config configures a Putter. Zero fields take defaults.
type Config struct {
	// Stream is the stream name. Required.
	Stream string
	// MaxAttempts bounds the PutRecords calls an entry takes part in.
	// Default 8.
	MaxAttempts int
	// BaseBackoff is the delay before the first retry; it doubles per
	// attempt up to MaxBackoff, with jitter. Defaults 100ms and 5s.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// Per-call and per-record limits; defaults are the Kinesis limits.
	MaxBatchRecords int
	MaxBatchBytes   int
	MaxRecordBytes  int
}

func (c *Config) setDefaults() error {
	if c.Stream == "" {
		return errors.New("putter: stream name required")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxAttempts, 8)
	def(&c.MaxBatchRecords, MaxBatchRecords)
	def(&c.MaxBatchBytes, MaxBatchBytes)
	def(&c.MaxRecordBytes, MaxRecordBytes)
	if c.BaseBackoff == 0 {
		c.BaseBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	switch {
	case c.MaxAttempts < 1:
		return fmt.Errorf("putter: max attempts %d < 1", c.MaxAttempts)
	case c.MaxBatchRecords < 1 || c.MaxBatchRecords > MaxBatchRecords:
		return fmt.Errorf("putter: batch records %d outside [1, %d]", c.MaxBatchRecords, MaxBatchRecords)
	case c.MaxRecordBytes < 1:
		return fmt.Errorf("putter: record bytes %d < 1", c.MaxRecordBytes)
	case c.MaxBatchBytes < c.MaxRecordBytes || c.MaxBatchBytes > MaxBatchBytes:
		return fmt.Errorf("putter: batch bytes %d outside [%d, %d]", c.MaxBatchBytes, c.MaxRecordBytes, MaxBatchBytes)
	case c.BaseBackoff < 0 || c.MaxBackoff < c.BaseBackoff:
		return fmt.Errorf("putter: backoff %v..%v invalid", c.BaseBackoff, c.MaxBackoff)
	}
	return nil
}

// Putter sends entries with PutRecords. It is safe for concurrent use.
type Putter struct {
	client Client
	cfg    Config
	sleep  func(context.Context, time.Duration) error
	jitter func(n int64) int64
}

// Option configures a Putter.
type Option func(*Putter)

// WithSleep replaces the backoff wait (tests record the delays instead of
// waiting). f must return ctx.Err() when ctx ends first.
func WithSleep(f func(context.Context, time.Duration) error) Option {
	return func(p *Putter) { p.sleep = f }
}

// WithJitter replaces the random source of the backoff jitter: f returns
// a value in [0, n). Must be safe for concurrent use.
func WithJitter(f func(n int64) int64) Option {
	return func(p *Putter) { p.jitter = f }
}

// New returns a Putter writing to cfg.Stream through client.
func New(client Client, cfg Config, opts ...Option) (*Putter, error) {
	if client == nil {
		return nil, errors.New("putter: nil client")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	p := &Putter{client: client, cfg: cfg, sleep: sleepCtx, jitter: rand.Int64N}
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

// Config returns the effective configuration (defaults filled in).
func (p *Putter) Config() Config { return p.cfg }

// Put writes entries in as few calls as the limits allow and returns what
// was sent, retried and failed. Every entry ends up either counted in Sent
// or listed in Failed. entries is not modified.
func (p *Putter) Put(ctx context.Context, entries []Entry) Result {
	var res Result
	batch := make([]Entry, 0, min(len(entries), p.cfg.MaxBatchRecords))
	bytes := 0
	for i := range entries {
		e := &entries[i]
		if err := e.validate(p.cfg.MaxRecordBytes); err != nil {
			res.Failed = append(res.Failed, Failure{Entry: *e, Err: err})
			continue
		}
		if len(batch) == p.cfg.MaxBatchRecords || bytes+e.size() > p.cfg.MaxBatchBytes {
			p.putBatch(ctx, batch, &res)
			batch = make([]Entry, 0, min(len(entries)-i, p.cfg.MaxBatchRecords))
			bytes = 0
		}
		batch = append(batch, *e)
		bytes += e.size()
	}
	if len(batch) > 0 {
		p.putBatch(ctx, batch, &res)
	}
	return res
}

// putBatch sends one call's worth of entries, retrying the failed ones.
// pending is owned by putBatch: request entries point into it.
func (p *Putter) putBatch(ctx context.Context, pending []Entry, res *Result) {
	var lastCode string
	var lastErr error
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if attempt > p.cfg.MaxAttempts {
				p.failAll(pending, lastCode, fmt.Errorf("%w after %d attempts: %w", ErrAttemptsExhausted, p.cfg.MaxAttempts, lastErr), res)
				return
			}
			if err := p.sleep(ctx, p.backoff(attempt-1)); err != nil {
				p.failAll(pending, lastCode, fmt.Errorf("put records: %w (last error: %w)", err, lastErr), res)
				return
			}
			res.Retried += weight(pending)
		}
		if err := ctx.Err(); err != nil {
			p.failAll(pending, lastCode, fmt.Errorf("put records: %w", err), res)
			return
		}
		out, err := p.client.PutRecords(ctx, p.input(pending))
		if err != nil {
			code, retry := classify(ctx, err)
			err = fmt.Errorf("put records to %s: %w", p.cfg.Stream, err)
			if !retry {
				p.failAll(pending, code, err, res)
				return
			}
			lastCode, lastErr = code, err
			continue
		}
		if len(out.Records) != len(pending) {
			// Cannot tell which entries were written: resend all of them
			// (at least once beats losing records).
			lastCode, lastErr = "", fmt.Errorf("put records to %s: %d results for %d records", p.cfg.Stream, len(out.Records), len(pending))
			continue
		}
		next := pending[:0] // compacts in place: index of next <= i
		for i := range out.Records {
			r := &out.Records[i]
			if r.ErrorCode == nil || *r.ErrorCode == "" {
				res.Sent += pending[i].weight()
				continue
			}
			lastCode = *r.ErrorCode
			lastErr = &EntryError{Code: lastCode, Message: deref(r.ErrorMessage)}
			next = append(next, pending[i])
		}
		clear(pending[len(next):]) // drop data references of written entries
		pending = next
		if len(pending) == 0 {
			return
		}
	}
}

func (p *Putter) input(pending []Entry) *kinesis.PutRecordsInput {
	recs := make([]types.PutRecordsRequestEntry, len(pending))
	for i := range pending {
		e := &pending[i]
		// Pointers into pending avoid one allocation per entry; they stay
		// valid until the call returns (pending is compacted after it).
		recs[i] = types.PutRecordsRequestEntry{Data: e.Data, PartitionKey: &e.PartitionKey}
		if e.ExplicitHashKey != "" {
			recs[i].ExplicitHashKey = &e.ExplicitHashKey
		}
	}
	return &kinesis.PutRecordsInput{StreamName: &p.cfg.Stream, Records: recs}
}

func (p *Putter) failAll(pending []Entry, code string, err error, res *Result) {
	for i := range pending {
		res.Failed = append(res.Failed, Failure{Entry: pending[i], Code: code, Err: err})
	}
}

// backoff returns the wait before retry n (1-based): exponential with
// "equal jitter", so concurrent producers spread out but never hammer.
func (p *Putter) backoff(n int) time.Duration {
	d := p.cfg.MaxBackoff
	if n < 32 {
		d = min(p.cfg.MaxBackoff, p.cfg.BaseBackoff<<(n-1))
	}
	half := int64(d / 2)
	if half <= 0 {
		return d
	}
	return time.Duration(half + p.jitter(half))
}

func weight(es []Entry) int {
	n := 0
	for i := range es {
		n += es[i].weight()
	}
	return n
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// EntryError is a per-entry PutRecords error.
type EntryError struct {
	Code    string
	Message string
}

func (e *EntryError) Error() string { return e.Code + ": " + e.Message }

// retryableCodes are the Kinesis error codes worth another attempt.
var retryableCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"LimitExceededException":                 true,
	"KMSThrottlingException":                 true,
	"InternalFailure":                        true,
	"InternalFailureException":               true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	"ServiceUnavailableException":            true,
	"RequestTimeout":                         true,
	"RequestTimeoutException":                true,
}

// classify returns the error code of a whole-call error and whether the
// call is worth retrying: throttling, server faults and transport errors
// are; client errors (unknown stream, access denied, validation) and the
// end of ctx are not.
func classify(ctx context.Context, err error) (code string, retry bool) {
	if ctx.Err() != nil {
		return "", false
	}
	var status interface{ HTTPStatusCode() int }
	httpStatus := 0
	if errors.As(err, &status) {
		httpStatus = status.HTTPStatusCode()
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
		return code, retryableCodes[code] || apiErr.ErrorFault() == smithy.FaultServer ||
			httpStatus >= 500 || httpStatus == 429
	}
	if httpStatus != 0 {
		return "", httpStatus >= 500 || httpStatus == 429
	}
	// No response at all: connection refused or reset, DNS, an HTTP
	// client timeout (ctx itself is still live).
	return "", true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
