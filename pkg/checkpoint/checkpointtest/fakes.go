package checkpointtest

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwatch/shardwatch/pkg/checkpoint"
)

// Clock is a manual clock. Each store in a test gets its own, standing in
// for that host's monotonic clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at t (monotonic reading stripped).
func NewClock(t time.Time) *Clock { return &Clock{now: t.Round(0)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Shard is one entry of a Shards listing.
type Shard struct{ ID, Parent, Adjacent string }

// Shards is a ShardLister over a settable shard list, one shard per page
// so callers must paginate.
type Shards struct {
	mu     sync.Mutex
	shards []Shard
	calls  int
}

// NewShards lists the given shards.
func NewShards(s ...Shard) *Shards { return &Shards{shards: s} }

// Set replaces the listing.
func (f *Shards) Set(s ...Shard) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shards = s
}

// Calls counts ListShards calls.
func (f *Shards) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// ListShards serves one shard per page; NextToken is the next index.
func (f *Shards) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	i := 0
	if in.NextToken != nil {
		if in.StreamName != nil {
			return nil, &ktypes.InvalidArgumentException{Message: aws.String("NextToken and StreamName are exclusive")}
		}
		var err error
		if i, err = strconv.Atoi(*in.NextToken); err != nil {
			return nil, &ktypes.InvalidArgumentException{Message: aws.String("bad token")}
		}
	}
	out := &kinesis.ListShardsOutput{}
	if i < len(f.shards) {
		s := f.shards[i]
		ks := ktypes.Shard{ShardId: aws.String(s.ID)}
		if s.Parent != "" {
			ks.ParentShardId = aws.String(s.Parent)
		}
		if s.Adjacent != "" {
			ks.AdjacentParentShardId = aws.String(s.Adjacent)
		}
		out.Shards = []ktypes.Shard{ks}
		if i+1 < len(f.shards) {
			out.NextToken = aws.String(strconv.Itoa(i + 1))
		}
	}
	return out, nil
}

// CountingDB wraps a client and counts calls per operation; a Scan with
// no ExclusiveStartKey also counts as a "ScanRound".
type CountingDB struct {
	checkpoint.DynamoDBAPI
	mu        sync.Mutex
	calls     map[string]int
	afterScan func()
}

// AfterNextScan runs fn once, after the next Scan page returns: a way to
// make another worker write between a Scan and the write based on it.
func (c *CountingDB) AfterNextScan(fn func()) {
	c.mu.Lock()
	c.afterScan = fn
	c.mu.Unlock()
}

// NewCountingDB wraps db.
func NewCountingDB(db checkpoint.DynamoDBAPI) *CountingDB {
	return &CountingDB{DynamoDBAPI: db, calls: map[string]int{}}
}

func (c *CountingDB) count(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

// Calls returns a copy of the counters.
func (c *CountingDB) Calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

// Reset zeroes the counters.
func (c *CountingDB) Reset() {
	c.mu.Lock()
	c.calls = map[string]int{}
	c.mu.Unlock()
}

func (c *CountingDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.count("UpdateItem")
	return c.DynamoDBAPI.UpdateItem(ctx, in, o...)
}

func (c *CountingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.count("GetItem")
	return c.DynamoDBAPI.GetItem(ctx, in, o...)
}

func (c *CountingDB) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	c.count("Scan")
	if in.ExclusiveStartKey == nil {
		c.count("ScanRound")
	}
	out, err := c.DynamoDBAPI.Scan(ctx, in, o...)
	c.mu.Lock()
	fn := c.afterScan
	c.afterScan = nil
	c.mu.Unlock()
	if fn != nil {
		fn()
	}
	return out, err
}

func (c *CountingDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.count("DeleteItem")
	return c.DynamoDBAPI.DeleteItem(ctx, in, o...)
}

func (c *CountingDB) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, o ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	c.count("CreateTable")
	return c.DynamoDBAPI.CreateTable(ctx, in, o...)
}

func (c *CountingDB) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, o ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	c.count("DescribeTable")
	return c.DynamoDBAPI.DescribeTable(ctx, in, o...)
}
