package testenv

import (
	"context"
	"maps"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Calls counts the AWS requests a client really sends, per operation (a
// call answered by an earlier middleware, like a cache, is not counted;
// each SDK retry is). Install it with its APIOption on any client:
//
//	c := &testenv.Calls{}
//	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, c.APIOption) })
type Calls struct {
	mu sync.Mutex
	n  map[string]int64
}

// APIOption adds the counting middleware to a client's stack.
func (c *Calls) APIOption(st *middleware.Stack) error {
	// After the retry middleware (Finalize, After): once per attempt.
	return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("shardwatchTestCallCounter",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.add(awsmiddleware.GetOperationName(ctx))
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func (c *Calls) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	c.n[op]++
}

// Get returns the count of one operation.
func (c *Calls) Get(op string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[op]
}

// Snapshot returns every count.
func (c *Calls) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}
