package engine

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/shardwatch/shardwatch/pkg/kpl"
)

// ReadGuard hardens the Kinesis client the engine reads with, against two
// engine defects (DESIGN.md section 3):
//
//   - The polling shard consumer gives a shard up after MaxRetryCount (5)
//     throttled GetRecords calls, and its KMS-throttle path sleeps
//     2^retries * 100 ms, which explodes for any larger count. The guard
//     retries throttled and transient GetRecords and GetShardIterator
//     calls inside the client, with capped, jittered backoff, so the
//     engine only sees a throttle after MaxElapsed of continuous
//     throttling (then its own 1 s waits add up to ~5 more attempts).
//   - The engine's KPL de-aggregator drops the whole GetRecords batch on
//     a malformed aggregate and panics on a bad partition-key index. The
//     guard checks every aggregate of a GetRecords answer with
//     kpl.Deaggregate and rewrites a bad one into an envelope (a random
//     per-process marker, the reason, the original bytes) that the engine
//     passes through as a plain record; the shard processor dead-letters
//     it with reason "kpl: ..." and the original bytes.
//
// Install it on the client with kinesis.NewFromConfig(cfg, g.Options) and
// hand it to the worker (Deps.Guard), which stops its retries when the
// worker shuts down.
type ReadGuard struct {
	marker     [16]byte
	log        *zap.Logger
	minWait    time.Duration
	maxWait    time.Duration
	maxElapsed time.Duration

	stopOnce sync.Once
	stopping chan struct{}
	metrics  atomic.Pointer[Metrics]

	retries   atomic.Int64
	malformed atomic.Int64
}

// ReadGuardOptions configure a ReadGuard; zero fields take defaults.
type ReadGuardOptions struct {
	// MinBackoff and MaxBackoff bound the wait between retries of one
	// call (defaults 100 ms and 2 s: a throttled shard frees its read
	// budget each second).
	MinBackoff, MaxBackoff time.Duration
	// MaxElapsed is how long one call keeps retrying before the engine
	// sees the error (default 60 s).
	MaxElapsed time.Duration
	Logger     *zap.Logger
}

// NewReadGuard returns a guard with a fresh random envelope marker.
func NewReadGuard(o ReadGuardOptions) (*ReadGuard, error) {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.MaxElapsed <= 0 {
		o.MaxElapsed = 60 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		return nil, errors.New("engine: read guard max backoff below min backoff")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	g := &ReadGuard{
		log: o.Logger, minWait: o.MinBackoff, maxWait: o.MaxBackoff, maxElapsed: o.MaxElapsed,
		stopping: make(chan struct{}),
	}
	// The marker is secret to this process, so no producer can forge an
	// envelope (and so a dead-letter reason).
	if _, err := crand.Read(g.marker[:]); err != nil {
		return nil, fmt.Errorf("engine: read guard marker: %w", err)
	}
	return g, nil
}

// Options installs the guard on a Kinesis client:
// kinesis.NewFromConfig(cfg, g.Options).
func (g *ReadGuard) Options(o *kinesis.Options) {
	// The SDK's client-side retry quota would turn a long throttle into
	// "retry quota exceeded" errors the engine cannot classify; the guard
	// bounds retries itself.
	attempts := 3
	if o.Retryer != nil && o.Retryer.MaxAttempts() > 0 {
		attempts = o.Retryer.MaxAttempts()
	}
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.RateLimiter = ratelimit.None
		so.MaxAttempts = attempts
		// The SDK's default waits up to 2^attempt s; the guard's loop
		// does the long waiting, so the inner attempts stay quick.
		so.Backoff = retry.BackoffDelayerFunc(quickBackoff)
	})
	o.APIOptions = append(o.APIOptions, g.addMiddleware)
}

func (g *ReadGuard) addMiddleware(stack *middleware.Stack) error {
	retryMW := middleware.FinalizeMiddlewareFunc("shardwatchReadRetry", g.handleFinalize)
	if err := stack.Finalize.Insert(retryMW, "Retry", middleware.Before); err != nil {
		// No SDK retry middleware (a custom stack): wrap everything.
		if err := stack.Finalize.Add(retryMW, middleware.Before); err != nil {
			return err
		}
	}
	// Before: outermost in the deserialize step, so it sees the decoded
	// output.
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("shardwatchKPLGuard", g.handleDeserialize), middleware.Before)
}

// stop ends retries: a worker that shuts down must not wait on a throttle.
func (g *ReadGuard) stop() { g.stopOnce.Do(func() { close(g.stopping) }) }

func (g *ReadGuard) stopped() bool {
	select {
	case <-g.stopping:
		return true
	default:
		return false
	}
}

// Retries is the number of read calls retried so far.
func (g *ReadGuard) Retries() int64 { return g.retries.Load() }

// Malformed is the number of malformed aggregates turned into envelopes.
func (g *ReadGuard) Malformed() int64 { return g.malformed.Load() }

// ErrStopping is returned (wrapping no AWS error, so the engine gives the
// shard up at once) by a throttled read while the worker shuts down.
var ErrStopping = errors.New("worker stopping")

func (g *ReadGuard) handleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	op := awsmiddleware.GetOperationName(ctx)
	if op != "GetRecords" && op != "GetShardIterator" {
		return next.HandleFinalize(ctx, in)
	}
	start := time.Now()
	wait := g.minWait
	for attempt := 1; ; attempt++ {
		out, md, err := next.HandleFinalize(ctx, in)
		if err == nil || ctx.Err() != nil {
			return out, md, err
		}
		code, ok := transient(err)
		if !ok {
			return out, md, err
		}
		if g.stopped() {
			return out, md, fmt.Errorf("kinesis %s: %w after %d throttled attempts (last: %s)", op, ErrStopping, attempt, code)
		}
		if time.Since(start) >= g.maxElapsed {
			g.log.Warn("kinesis read still failing; handing the error to the engine",
				zap.String("op", op), zap.String("code", code), zap.Int("attempt", attempt), zap.Error(err))
			return out, md, err
		}
		g.retries.Add(1)
		if m := g.metrics.Load(); m != nil {
			m.ReadRetries.WithLabelValues(op, code).Inc()
		}
		if attempt == 1 || attempt%20 == 0 {
			g.log.Warn("kinesis read throttled or failed; backing off", zap.String("op", op), zap.String("code", code), zap.Int("attempt", attempt))
		}
		// Full jitter spreads the shards of a fleet over the next second.
		d := time.Duration(rand.Int64N(int64(wait))) + wait/4
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-g.stopping:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return out, md, ctx.Err()
		}
		wait = min(wait*2, g.maxWait)
		if req, ok := in.Request.(*smithyhttp.Request); ok {
			if err := req.RewindStream(); err != nil {
				return out, md, fmt.Errorf("kinesis %s: rewind request for retry: %w", op, err)
			}
		}
	}
}

// quickBackoff: 25 ms doubling, at most 500 ms, full jitter.
func quickBackoff(attempt int, _ error) (time.Duration, error) {
	d := min(25*time.Millisecond<<min(attempt, 5), 500*time.Millisecond)
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond, nil
}

// retryables is the SDK's standard classification: throttles (including
// ProvisionedThroughputExceededException), 5xx, connection errors.
var retryables = retry.NewStandard()

// transient reports whether err is worth retrying and a short code for
// logs and metrics.
func transient(err error) (string, bool) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "KMSThrottlingException", "ProvisionedThroughputExceededException", "LimitExceededException":
			return ae.ErrorCode(), true
		}
		if retryables.IsErrorRetryable(err) {
			return ae.ErrorCode(), true
		}
		return ae.ErrorCode(), false
	}
	if retryables.IsErrorRetryable(err) {
		return "transport", true
	}
	return "", false
}

func (g *ReadGuard) handleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if err != nil {
		return out, md, err
	}
	if res, ok := out.Result.(*kinesis.GetRecordsOutput); ok {
		n := g.guardRecords(res)
		if n > 0 {
			g.malformed.Add(int64(n))
			if m := g.metrics.Load(); m != nil {
				m.KPLMalformed.Add(float64(n))
			}
		}
	}
	return out, md, err
}

// guardRecords rewrites every malformed aggregate of res into an envelope
// and returns how many it rewrote.
func (g *ReadGuard) guardRecords(res *kinesis.GetRecordsOutput) int {
	n := 0
	for i := range res.Records {
		r := &res.Records[i]
		if !kpl.IsAggregated(r.Data) {
			continue
		}
		if validAggregate(r.Data[kpl.MagicLen : len(r.Data)-kpl.DigestLen]) {
			continue // the common case, checked without allocating
		}
		reason := ""
		users, err := kpl.Deaggregate(kpl.UserRecord{PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data})
		switch {
		case err != nil:
			reason = err.Error()
		case len(users) == 0:
			// The engine would yield nothing for it: the sequence number
			// would vanish without a trace.
			reason = "kpl: aggregate holds no user records"
		default:
			continue
		}
		r.Data = g.envelope(reason, r.Data)
		n++
	}
	return n
}

// envelope: marker, uvarint reason length, reason, original bytes. It
// never starts with the KPL magic, so the engine passes it through.
func (g *ReadGuard) envelope(reason string, data []byte) []byte {
	out := make([]byte, 0, len(g.marker)+binary.MaxVarintLen64+len(reason)+len(data))
	out = append(out, g.marker[:]...)
	out = binary.AppendUvarint(out, uint64(len(reason)))
	out = append(out, reason...)
	return append(out, data...)
}

// unwrap returns the reason and original bytes of an envelope.
func (g *ReadGuard) unwrap(data []byte) (reason string, orig []byte, ok bool) {
	if len(data) < len(g.marker) || !bytes.Equal(data[:len(g.marker)], g.marker[:]) {
		return "", nil, false
	}
	rest := data[len(g.marker):]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return "", nil, false
	}
	rest = rest[k:]
	return string(rest[:n]), rest[n:], true
}

// validAggregate walks the protobuf body of an aggregate without decoding
// it and reports whether the engine can de-aggregate it: well-formed wire
// data, at least one record, every record with a partition-key index and
// data, indexes inside the key tables, every tag with a key (proto2
// required fields). A differential fuzz test holds it to kpl.Deaggregate.
func validAggregate(b []byte) bool {
	keys, hashKeys, records := 0, 0, 0
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return false
		}
		rest = rest[n:]
		if typ == protowire.BytesType && num >= 1 && num <= 3 {
			_, n = protowire.ConsumeBytes(rest)
			switch num {
			case 1:
				keys++
			case 2:
				hashKeys++
			case 3:
				records++
			}
		} else {
			n = protowire.ConsumeFieldValue(num, typ, rest)
		}
		if n < 0 {
			return false
		}
		rest = rest[n:]
	}
	if records == 0 {
		return false
	}
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		rest = rest[n:]
		if num == 3 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(rest)
			if !validRecord(v, uint64(keys), uint64(hashKeys)) {
				return false
			}
			rest = rest[m:]
			continue
		}
		if typ == protowire.BytesType && (num == 1 || num == 2) {
			_, n = protowire.ConsumeBytes(rest)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, rest)
		}
		rest = rest[n:]
	}
	return true
}

func validRecord(b []byte, keys, hashKeys uint64) bool {
	var pk, ehk uint64
	hasPK, hasEHK, hasData := false, false, false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			pk, n = protowire.ConsumeVarint(b)
			hasPK = true
		case num == 2 && typ == protowire.VarintType:
			ehk, n = protowire.ConsumeVarint(b)
			hasEHK = true
		case num == 3 && typ == protowire.BytesType:
			_, n = protowire.ConsumeBytes(b)
			hasData = true
		case num == 4 && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if n >= 0 && !validTag(v) {
				return false
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return hasPK && hasData && pk < keys && (!hasEHK || ehk < hashKeys)
}

func validTag(b []byte) bool {
	hasKey := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			_, n = protowire.ConsumeBytes(b)
			hasKey = true
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return hasKey
}
