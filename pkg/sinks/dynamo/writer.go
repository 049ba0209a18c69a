package dynamo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
	"github.com/shardwatch/shardwatch/pkg/sinks/retry"
)

// BatchSize is BatchWriteItem's limit of write requests per call.
const BatchSize = 25

// DefaultMaxInFlight is how many BatchWriteItem calls one WriteItems call
// runs at once unless configured.
const DefaultMaxInFlight = 4

// ErrUnprocessed is the cause recorded for an item DynamoDB kept returning
// in UnprocessedItems until the retries ran out.
var ErrUnprocessed = errors.New("dynamodb returned the item as unprocessed")

// BatchWriteAPI is the DynamoDB call the ItemWriter makes for unfenced
// items.
type BatchWriteAPI interface {
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// PutAPI is the call the ItemWriter makes for fenced items (Item.Fence >
// 0): a conditional PutItem. A client without it (BatchWriteAPI only)
// cannot write fenced items.
type PutAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// AttrFence holds the lease token of the tenure that wrote a fenced item.
const AttrFence = "lease_tenure"

// ErrFenced is the cause of a fenced item not written because the item in
// the table was written by a later tenure of the shard: the writer lost
// its lease. Retrying cannot help (it classifies as permanent).
var ErrFenced = errors.New("item written by a later lease tenure")

// WriterOptions configures an ItemWriter.
type WriterOptions struct {
	// Retry governs retries of throttled calls and unprocessed items
	// (zero value: retry.Policy's defaults, 8 attempts). What is still
	// unwritten after that is reported; the caller must not checkpoint.
	Retry retry.Policy
	// MaxInFlight bounds concurrent BatchWriteItem calls per WriteItems
	// call (default 4).
	MaxInFlight int
	// Logger gets one debug line per retried call; default no-op.
	Logger *zap.Logger
}

func (o *WriterOptions) setDefaults() error {
	if err := o.Retry.Validate(); err != nil {
		return err
	}
	if o.MaxInFlight < 0 {
		return fmt.Errorf("dynamo writer: max in flight %d < 0", o.MaxInFlight)
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return nil
}

// WriterStats are running totals since the writer was built.
type WriterStats struct {
	Items       uint64 // items passed to WriteItems
	Duplicates  uint64 // items superseded by a later item with the same key
	Written     uint64 // items DynamoDB accepted
	Failed      uint64 // items reported in a BatchError
	Calls       uint64 // BatchWriteItem calls
	Retries     uint64 // calls repeated after throttling or unprocessed items
	Unprocessed uint64 // items DynamoDB returned as unprocessed
}

type writerCounters struct {
	items, duplicates, written, failed, calls, retries, unprocessed atomic.Uint64
}

// ItemWriter implements processors.ItemWriter with BatchWriteItem. It is
// safe for concurrent use.
type ItemWriter struct {
	api  BatchWriteAPI
	opts WriterOptions
	c    writerCounters
}

// NewItemWriter returns a writer calling api.
func NewItemWriter(api BatchWriteAPI, opts WriterOptions) (*ItemWriter, error) {
	if api == nil {
		return nil, errors.New("dynamo writer: nil client")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	return &ItemWriter{api: api, opts: opts}, nil
}

// Stats returns the running totals.
func (w *ItemWriter) Stats() WriterStats {
	return WriterStats{
		Items:       w.c.items.Load(),
		Duplicates:  w.c.duplicates.Load(),
		Written:     w.c.written.Load(),
		Failed:      w.c.failed.Load(),
		Calls:       w.c.calls.Load(),
		Retries:     w.c.retries.Load(),
		Unprocessed: w.c.unprocessed.Load(),
	}
}

type tableKey struct{ table, key string }

// WriteItems writes items, the last one winning among items with the same
// (Table, Key): BatchWriteItem rejects a request naming one key twice, and
// the items are overwrites, so earlier ones are superseded anyway. It
// returns when every item is written, or with an error wrapping a
// *sinks.BatchError that lists the items not written (a superseded item
// shares the fate of the one that replaced it, which is the one listed).
func (w *ItemWriter) WriteItems(ctx context.Context, items []results.Item) error {
	if len(items) == 0 {
		return nil
	}
	w.c.items.Add(uint64(len(items)))
	var failed []sinks.Failure

	last := make(map[tableKey]int, len(items))
	for i, it := range items {
		if it.Table == "" || it.Key == "" || len(it.Attrs) == 0 {
			failed = append(failed, sinks.Failure{Index: i, Key: it.Table + "/" + it.Key,
				Err: fmt.Errorf("%w: item needs a table, a key and attributes", sinks.ErrInvalidInput)})
			continue
		}
		k := tableKey{it.Table, it.Key}
		if _, dup := last[k]; dup {
			w.c.duplicates.Add(1)
		}
		last[k] = i
	}
	winners := make([]int, 0, len(last))
	var fenced []int
	for i, it := range items {
		if j, ok := last[tableKey{it.Table, it.Key}]; ok && j == i {
			if it.Fence > 0 {
				fenced = append(fenced, i)
				continue
			}
			winners = append(winners, i)
		}
	}
	failed = append(failed, w.writeFenced(ctx, items, fenced)...)

	chunks := make([][]int, 0, (len(winners)+BatchSize-1)/BatchSize)
	for len(winners) > 0 {
		n := min(BatchSize, len(winners))
		chunks = append(chunks, winners[:n:n])
		winners = winners[n:]
	}
	results := make([][]sinks.Failure, len(chunks))
	workers := min(w.opts.MaxInFlight, len(chunks))
	if workers <= 1 {
		for i, ch := range chunks {
			results[i] = w.writeChunk(ctx, items, ch)
		}
	} else {
		// A fixed set of workers pulls chunks in order, so at most
		// MaxInFlight requests are outstanding whatever the input size.
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(chunks) {
						return
					}
					results[i] = w.writeChunk(ctx, items, chunks[i])
				}
			})
		}
		wg.Wait()
	}
	for _, r := range results {
		failed = append(failed, r...)
	}
	w.c.failed.Add(uint64(len(failed)))
	return sinks.NewBatchError("dynamodb batch write", len(items), failed)
}

// writeChunk writes up to BatchSize items (indices into items) and returns
// those it could not write.
func (w *ItemWriter) writeChunk(ctx context.Context, items []results.Item, idx []int) []sinks.Failure {
	pending := append([]int(nil), idx...)
	req := buildRequest(items, pending)
	var lastErr error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return failAll(items, pending, err, lastErr)
		}
		w.c.calls.Add(1)
		out, err := w.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
		if err != nil {
			switch sinks.Classify(err) {
			case sinks.Canceled:
				return failAll(items, pending, err, nil)
			case sinks.Permanent:
				if len(pending) > 1 {
					// A validation error names no item: write them one
					// by one so only the offending items fail.
					return w.isolate(ctx, items, pending)
				}
				return failAll(items, pending, err, nil)
			}
			lastErr = err
		} else {
			n := countRequests(out.UnprocessedItems)
			w.c.written.Add(uint64(len(pending) - n))
			if n == 0 {
				return nil
			}
			w.c.unprocessed.Add(uint64(n))
			pending = matchUnprocessed(items, pending, out.UnprocessedItems)
			req = out.UnprocessedItems
			lastErr = ErrUnprocessed
		}
		if !w.opts.Retry.More(attempt) {
			return failAll(items, pending, fmt.Errorf("%w after %d attempts: %w", retry.ErrExhausted, attempt, lastErr), nil)
		}
		w.opts.Logger.Debug("dynamodb batch write retry",
			zap.String("sink", "dynamodb"), zap.Int("attempt", attempt), zap.Int("pending", len(pending)), zap.Error(lastErr))
		if err := w.opts.Retry.Wait(ctx, attempt); err != nil {
			return failAll(items, pending, err, lastErr)
		}
		w.c.retries.Add(1)
	}
}

func (w *ItemWriter) isolate(ctx context.Context, items []results.Item, pending []int) []sinks.Failure {
	var failed []sinks.Failure
	for _, i := range pending {
		failed = append(failed, w.writeChunk(ctx, items, []int{i})...)
	}
	return failed
}

func buildRequest(items []results.Item, idx []int) map[string][]types.WriteRequest {
	req := make(map[string][]types.WriteRequest, 1)
	puts := make([]types.PutRequest, len(idx)) // one allocation per chunk
	for j, i := range idx {
		it := items[i]
		puts[j].Item = it.Attrs
		if req[it.Table] == nil {
			req[it.Table] = make([]types.WriteRequest, 0, len(idx))
		}
		req[it.Table] = append(req[it.Table], types.WriteRequest{PutRequest: &puts[j]})
	}
	return req
}

func countRequests(req map[string][]types.WriteRequest) int {
	n := 0
	for _, r := range req {
		n += len(r)
	}
	return n
}

// matchUnprocessed maps the unprocessed requests back to item indices. An
// unmatched request (DynamoDB never alters items, so this would be a bug)
// keeps every pending item pending: better to over-report than to lose one.
func matchUnprocessed(items []results.Item, pending []int, un map[string][]types.WriteRequest) []int {
	matched := make([]bool, len(pending))
	out := make([]int, 0, countRequests(un))
	for table, reqs := range un {
		for _, r := range reqs {
			if r.PutRequest == nil {
				return pending
			}
			found := false
			for j, i := range pending {
				if !matched[j] && items[i].Table == table && attrsEqual(items[i].Attrs, r.PutRequest.Item) {
					matched[j], found = true, true
					out = append(out, i)
					break
				}
			}
			if !found {
				return pending
			}
		}
	}
	return out
}

// failAll reports every pending item failed because of err, wrapping the
// last transient error too when err is only what stopped the retries.
func failAll(items []results.Item, pending []int, err, last error) []sinks.Failure {
	if last != nil && !errors.Is(err, last) {
		err = fmt.Errorf("%w (last error: %w)", err, last)
	}
	out := make([]sinks.Failure, len(pending))
	for j, i := range pending {
		out[j] = sinks.Failure{Index: i, Key: items[i].Table + "/" + items[i].Key, Err: err}
	}
	return out
}

// writeFenced writes each fenced item with a conditional PutItem (at most
// MaxInFlight at once): it replaces the stored item only if that carries
// no lease token or one not above the item's. A worker resuming after it
// lost its lease (a long GC pause, SIGSTOP) thus never overwrites the new
// owner's partial: its write fails with ErrFenced. BatchWriteItem takes
// no conditions, so these cost one request per item (the same write
// units); a shard writes a handful per flush.
func (w *ItemWriter) writeFenced(ctx context.Context, items []results.Item, idx []int) []sinks.Failure {
	if len(idx) == 0 {
		return nil
	}
	api, ok := w.api.(PutAPI)
	if !ok {
		return failAll(items, idx, fmt.Errorf("%w: fenced item and a client without PutItem", sinks.ErrInvalidInput), nil)
	}
	results := make([]error, len(idx))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(w.opts.MaxInFlight, len(idx)) {
		wg.Go(func() {
			for {
				j := int(next.Add(1)) - 1
				if j >= len(idx) {
					return
				}
				results[j] = w.putFenced(ctx, api, items[idx[j]])
			}
		})
	}
	wg.Wait()
	var failed []sinks.Failure
	for j, err := range results {
		if err != nil {
			i := idx[j]
			failed = append(failed, sinks.Failure{Index: i, Key: items[i].Table + "/" + items[i].Key, Err: err})
		}
	}
	return failed
}

func (w *ItemWriter) putFenced(ctx context.Context, api PutAPI, it results.Item) error {
	attrs := maps.Clone(it.Attrs)
	attrs[AttrFence] = &types.AttributeValueMemberN{Value: strconv.FormatInt(it.Fence, 10)}
	in := &dynamodb.PutItemInput{
		TableName:                 aws.String(it.Table),
		Item:                      attrs,
		ConditionExpression:       aws.String("attribute_not_exists(#t) OR #t <= :t"),
		ExpressionAttributeNames:  map[string]string{"#t": AttrFence},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": attrs[AttrFence]},
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if lastErr != nil {
				return fmt.Errorf("%w (last error: %w)", err, lastErr)
			}
			return err
		}
		w.c.calls.Add(1)
		_, err := api.PutItem(ctx, in)
		if err == nil {
			w.c.written.Add(1)
			return nil
		}
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return fmt.Errorf("%w (fence %d): %w", ErrFenced, it.Fence, err)
		}
		if c := sinks.Classify(err); c == sinks.Canceled || c == sinks.Permanent {
			return err
		}
		lastErr = err
		if !w.opts.Retry.More(attempt) {
			return fmt.Errorf("%w after %d attempts: %w", retry.ErrExhausted, attempt, lastErr)
		}
		if err := w.opts.Retry.Wait(ctx, attempt); err != nil {
			return fmt.Errorf("%w (last error: %w)", err, lastErr)
		}
		w.c.retries.Add(1)
	}
}
