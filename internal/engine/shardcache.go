package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"
)

// DefaultShardCacheMaxAge bounds how long a cached shard list is served
// without a reshard having been seen (a backstop: every reshard closes a
// shard, and the worker reading that shard invalidates the cache).
const DefaultShardCacheMaxAge = time.Minute

// ShardCache answers ListShards from memory until the stream reshards, so
// the engine's event loop (which lists the stream's shards on every pass)
// can run several passes a second at no Kinesis cost. Kinesis allows
// ListShards 1,000 times per second per stream, shared by the whole fleet.
//
// The cache is dropped when a GetRecords answer shows that a shard closed
// (no NextShardIterator, or child shards: a split or merge happened), on
// Invalidate, and after MaxAge. Only whole listings are cached: a call
// with a NextToken, ExclusiveStartShardId, ShardFilter or MaxResults goes
// through, and so does a listing that needs more than one page.
//
// Install it with kinesis.NewFromConfig(cfg, c.Options); every client
// built with it shares the cache.
type ShardCache struct {
	maxAge time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]cachedList
	gen     uint64 // bumped by every invalidation

	hits, misses, invalidations atomic.Int64
}

type cachedList struct {
	out *kinesis.ListShardsOutput
	at  time.Time
}

// NewShardCache returns an empty cache; maxAge <= 0 means
// DefaultShardCacheMaxAge.
func NewShardCache(maxAge time.Duration) *ShardCache {
	if maxAge <= 0 {
		maxAge = DefaultShardCacheMaxAge
	}
	return &ShardCache{maxAge: maxAge, now: time.Now, entries: map[string]cachedList{}}
}

// Options installs the cache on a Kinesis client.
func (c *ShardCache) Options(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("shardwatchShardCache", c.handle), middleware.Before)
	})
}

// Invalidate drops every cached listing.
func (c *ShardCache) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.gen++
	c.invalidations.Add(1)
}

// Stats returns the listings served from memory, the listings sent to
// Kinesis, and the invalidations so far.
func (c *ShardCache) Stats() (hits, misses, invalidations int64) {
	return c.hits.Load(), c.misses.Load(), c.invalidations.Load()
}

func (c *ShardCache) handle(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	switch p := in.Parameters.(type) {
	case *kinesis.ListShardsInput:
		key, ok := cacheKey(p)
		if !ok {
			return next.HandleInitialize(ctx, in)
		}
		c.mu.Lock()
		e, hit := c.entries[key]
		gen := c.gen
		if hit && c.now().Sub(e.at) >= c.maxAge {
			delete(c.entries, key)
			hit = false
		}
		c.mu.Unlock()
		if hit {
			c.hits.Add(1)
			cp := *e.out // callers read it; a shallow copy keeps them apart
			return middleware.InitializeOutput{Result: &cp}, middleware.Metadata{}, nil
		}
		c.misses.Add(1)
		out, md, err := next.HandleInitialize(ctx, in)
		if err != nil {
			return out, md, err
		}
		if res, ok := out.Result.(*kinesis.ListShardsOutput); ok && aws.ToString(res.NextToken) == "" {
			c.mu.Lock()
			if c.gen == gen { // no reshard seen while the call ran
				c.entries[key] = cachedList{out: res, at: c.now()}
			}
			c.mu.Unlock()
		}
		return out, md, err
	case *kinesis.GetRecordsInput:
		out, md, err := next.HandleInitialize(ctx, in)
		if err == nil {
			if res, ok := out.Result.(*kinesis.GetRecordsOutput); ok && (res.NextShardIterator == nil || len(res.ChildShards) > 0) {
				c.Invalidate()
			}
		}
		return out, md, err
	default:
		return next.HandleInitialize(ctx, in)
	}
}

func cacheKey(p *kinesis.ListShardsInput) (string, bool) {
	if p.NextToken != nil || p.ExclusiveStartShardId != nil || p.ShardFilter != nil || p.MaxResults != nil || p.StreamCreationTimestamp != nil {
		return "", false
	}
	if p.StreamARN != nil {
		return "arn:" + *p.StreamARN, true
	}
	if p.StreamName != nil {
		return "name:" + *p.StreamName, true
	}
	return "", false
}
