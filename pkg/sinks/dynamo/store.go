package dynamo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/sinks"
	"github.com/shardwatch/shardwatch/pkg/sinks/retry"
)

// DefaultMaxQueryItems bounds what one Query call may return.
const DefaultMaxQueryItems = 100_000

// StoreAPI is the DynamoDB calls the Store makes.
type StoreAPI interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// StoreOptions configures a Store.
type StoreOptions struct {
	// Retry governs retries of throttled calls (zero value: retry.Policy's
	// defaults).
	Retry retry.Policy
	// MaxQueryItems bounds the items one Query returns; more is an error
	// wrapping sinks.ErrTooManyResults (default 100,000).
	MaxQueryItems int
}

// StoreStats are running totals since the store was built.
type StoreStats struct {
	Queries, QueryPages, QueryItems uint64
	Puts, PutsWritten, PutsExisting uint64
	Retries                         uint64
}

// Store implements processors.Store. It is safe for concurrent use.
type Store struct {
	api  StoreAPI
	opts StoreOptions

	queries, pages, queryItems, puts, written, existing, retries atomic.Uint64
}

// NewStore returns a Store calling api.
func NewStore(api StoreAPI, opts StoreOptions) (*Store, error) {
	if api == nil {
		return nil, errors.New("dynamo store: nil client")
	}
	if err := opts.Retry.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxQueryItems < 0 {
		return nil, fmt.Errorf("dynamo store: max query items %d < 0", opts.MaxQueryItems)
	}
	if opts.MaxQueryItems == 0 {
		opts.MaxQueryItems = DefaultMaxQueryItems
	}
	return &Store{api: api, opts: opts}, nil
}

// Stats returns the running totals.
func (s *Store) Stats() StoreStats {
	return StoreStats{
		Queries: s.queries.Load(), QueryPages: s.pages.Load(), QueryItems: s.queryItems.Load(),
		Puts: s.puts.Load(), PutsWritten: s.written.Load(), PutsExisting: s.existing.Load(),
		Retries: s.retries.Load(),
	}
}

// Query returns the items of table with partition key pkName = pk and sort
// key skName in [from, to], in sort key order, read consistently (a new
// lease owner must see the partials the previous owner wrote). An empty
// from or to leaves that end open; both empty selects the whole partition.
func (s *Store) Query(ctx context.Context, table, pkName, pk, skName, from, to string) ([]map[string]types.AttributeValue, error) {
	s.queries.Add(1)
	names := map[string]string{"#pk": pkName}
	values := map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}}
	cond := "#pk = :pk"
	// DynamoDB rejects empty key values, so an open end drops its bound
	// instead of comparing with "".
	switch {
	case from != "" && to != "":
		cond += " AND #sk BETWEEN :from AND :to"
	case from != "":
		cond += " AND #sk >= :from"
	case to != "":
		cond += " AND #sk <= :to"
	}
	if from != "" || to != "" {
		names["#sk"] = skName
	}
	if from != "" {
		values[":from"] = &types.AttributeValueMemberS{Value: from}
	}
	if to != "" {
		values[":to"] = &types.AttributeValueMemberS{Value: to}
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ConsistentRead:            aws.Bool(true),
	}
	var items []map[string]types.AttributeValue
	for {
		var out *dynamodb.QueryOutput
		err := s.do(ctx, func(ctx context.Context) error {
			var err error
			out, err = s.api.Query(ctx, in)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("query %s %s=%q: %w", table, pkName, pk, err)
		}
		s.pages.Add(1)
		if len(items)+len(out.Items) > s.opts.MaxQueryItems {
			return nil, fmt.Errorf("query %s %s=%q: %w: more than %d items", table, pkName, pk, sinks.ErrTooManyResults, s.opts.MaxQueryItems)
		}
		items = append(items, out.Items...)
		s.queryItems.Add(uint64(len(out.Items)))
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// PutIfAbsent writes item unless an item with its key exists (condition
// attribute_not_exists(keyAttr)) and reports whether it wrote.
//
// A retried put is ambiguous: the first attempt may have succeeded before
// its response was lost, and the retry then fails its condition on our own
// item. So after a retry a failed condition returns the existing item
// (ReturnValuesOnConditionCheckFailure=ALL_OLD), and if it equals item the
// put counts as ours. Items that must be told apart across writers (alarm
// de-duplication) should carry the writer's id so equality is exact.
func (s *Store) PutIfAbsent(ctx context.Context, table, keyAttr string, item map[string]types.AttributeValue) (bool, error) {
	s.puts.Add(1)
	in := &dynamodb.PutItemInput{
		TableName:                           aws.String(table),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames:            map[string]string{"#k": keyAttr},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	return s.conditionalPut(ctx, in, "put if absent")
}

// PutIf overwrites the item with item's key if it exists (condition
// attribute_exists(keyAttr)) and every attribute of cond equals its value
// there, and reports whether it wrote. Like PutIfAbsent, a retried put
// whose condition fails counts as ours when the stored item equals item:
// the first attempt wrote it before its response was lost.
func (s *Store) PutIf(ctx context.Context, table, keyAttr string, item, cond map[string]types.AttributeValue) (bool, error) {
	s.puts.Add(1)
	names := map[string]string{"#k": keyAttr}
	values := map[string]types.AttributeValue{}
	expr := "attribute_exists(#k)"
	for i, name := range slices.Sorted(maps.Keys(cond)) {
		n, v := "#c"+strconv.Itoa(i), ":c"+strconv.Itoa(i)
		names[n], values[v] = name, cond[name]
		expr += " AND " + n + " = " + v
	}
	in := &dynamodb.PutItemInput{
		TableName:                           aws.String(table),
		Item:                                item,
		ConditionExpression:                 aws.String(expr),
		ExpressionAttributeNames:            names,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	return s.conditionalPut(ctx, in, "put if")
}

// conditionalPut runs one conditional PutItem under the store's retries
// and reports whether it wrote. A retried put whose condition fails counts
// as ours when the stored item equals ours: the first attempt wrote it
// before its response was lost (ReturnValuesOnConditionCheckFailure
// ALL_OLD shows the stored item).
func (s *Store) conditionalPut(ctx context.Context, in *dynamodb.PutItemInput, op string) (bool, error) {
	attempts := 0
	var wrote bool
	err := s.do(ctx, func(ctx context.Context) error {
		attempts++
		_, err := s.api.PutItem(ctx, in)
		if err == nil {
			wrote = true
			return nil
		}
		if !sinks.IsConditionFailed(err) {
			return err
		}
		var ccf *types.ConditionalCheckFailedException
		wrote = attempts > 1 && errors.As(err, &ccf) && attrsEqual(ccf.Item, in.Item)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", op, aws.ToString(in.TableName), err)
	}
	if wrote {
		s.written.Add(1)
	} else {
		s.existing.Add(1)
	}
	return wrote, nil
}

func (s *Store) do(ctx context.Context, fn func(context.Context) error) error {
	first := true
	return s.opts.Retry.Do(ctx, sinks.IsRetryable, func(ctx context.Context) error {
		if !first {
			s.retries.Add(1)
		}
		first = false
		return fn(ctx)
	})
}
