package setup

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"go.uber.org/zap"
)

// DefaultWaitTimeout bounds how long Apply waits for one resource to become
// ACTIVE when Plan.WaitTimeout is zero. Real Kinesis streams take up to about a
// minute, tables seconds; the local stack milliseconds.
const DefaultWaitTimeout = 5 * time.Minute

// Poll backoff while waiting for a resource: fast enough that local runs take
// milliseconds, slow enough not to spend the control-plane quota on real AWS
// (DescribeStreamSummary allows 20 calls per second per account).
const (
	minPoll = 25 * time.Millisecond
	maxPoll = 2 * time.Second
)

var (
	// ErrInvalidPlan is returned (wrapped) when a Plan fails validation;
	// nothing has been called.
	ErrInvalidPlan = errors.New("invalid setup plan")
	// ErrConflict is returned (wrapped) when a resource exists in a shape
	// Apply cannot use and will not change, e.g. a table with other keys.
	ErrConflict = errors.New("existing resource conflicts with plan")
)

// Plan lists the resources to ensure. Zero values mean "none".
type Plan struct {
	Stream *Stream
	Tables []Table
	Topics []string
	// WaitTimeout bounds waiting for each resource to become ACTIVE;
	// zero means DefaultWaitTimeout.
	WaitTimeout time.Duration
}

// Stream is a Kinesis data stream in provisioned mode.
type Stream struct {
	Name   string
	Shards int32
}

// Table is an on-demand DynamoDB table with string keys.
type Table struct {
	Name         string
	PartitionKey string
	SortKey      string // optional
	TTLAttribute string // optional; TTL is enabled on this attribute
}

// Result reports what Apply found or created.
type Result struct {
	StreamARN string
	// TopicARNs maps each topic name in the plan to its ARN.
	TopicARNs map[string]string
	// Created lists, sorted, what this call created: "stream/NAME",
	// "table/NAME" and "ttl/TABLE"; empty when everything already existed.
	// The server picks a single creator of a stream or table; two concurrent
	// calls may both report the same "ttl/" (enabling TTL is idempotent in
	// effect). Topics are not listed: CreateTopic does not say whether it
	// created one.
	Created []string
}

// KinesisAPI is the part of *kinesis.Client that Apply uses.
type KinesisAPI interface {
	CreateStream(ctx context.Context, in *kinesis.CreateStreamInput, optFns ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error)
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// DynamoDBAPI is the part of *dynamodb.Client that Apply uses.
type DynamoDBAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// SNSAPI is the part of *sns.Client that Apply uses.
type SNSAPI interface {
	CreateTopic(ctx context.Context, in *sns.CreateTopicInput, optFns ...func(*sns.Options)) (*sns.CreateTopicOutput, error)
}

// Clients are the AWS clients Apply uses. A client may be nil when the plan
// has no resource of its kind.
type Clients struct {
	Kinesis  KinesisAPI
	DynamoDB DynamoDBAPI
	SNS      SNSAPI
}

// Apply ensures every resource in plan exists and is ACTIVE. Resources are
// handled concurrently; all failures are returned joined. Safe to run from
// several processes at once.
func Apply(ctx context.Context, c Clients, plan Plan, log *zap.Logger) (Result, error) {
	if err := plan.validate(c); err != nil {
		return Result{}, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	wait := plan.WaitTimeout
	if wait <= 0 {
		wait = DefaultWaitTimeout
	}
	a := &applier{c: c, log: log, wait: wait, res: Result{TopicARNs: map[string]string{}}}

	var wg sync.WaitGroup
	if plan.Stream != nil {
		wg.Go(func() { a.record(a.ensureStream(ctx, *plan.Stream)) })
	}
	for _, t := range plan.Tables {
		wg.Go(func() { a.record(a.ensureTable(ctx, t)) })
	}
	for _, name := range plan.Topics {
		wg.Go(func() { a.record(a.ensureTopic(ctx, name)) })
	}
	wg.Wait()
	slices.Sort(a.res.Created)
	if err := errors.Join(a.errs...); err != nil {
		return a.res, err
	}
	return a.res, nil
}

type applier struct {
	c    Clients
	log  *zap.Logger
	wait time.Duration

	mu   sync.Mutex
	res  Result
	errs []error
}

func (a *applier) record(err error) {
	if err == nil {
		return
	}
	a.mu.Lock()
	a.errs = append(a.errs, err)
	a.mu.Unlock()
}

func (a *applier) created(what string) {
	a.mu.Lock()
	a.res.Created = append(a.res.Created, what)
	a.mu.Unlock()
}

// poll calls step until it reports done or fails, backing off between calls,
// for at most a.wait.
func (a *applier) poll(ctx context.Context, step func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, a.wait)
	defer cancel()
	delay := minPoll
	var timer *time.Timer
	for {
		done, err := step(ctx)
		if err != nil || done {
			return err
		}
		if timer == nil {
			timer = time.NewTimer(delay)
			defer timer.Stop()
		} else {
			timer.Reset(delay)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", context.Cause(ctx))
		case <-timer.C:
		}
		delay = min(2*delay, maxPoll)
	}
}

var (
	// AWS naming rules for the resources we create.
	streamName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
	tableName  = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)
	topicName  = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,256}(\.fifo)?$`)
)

func (p Plan) validate(c Clients) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidPlan}, args...)...))
	}
	if s := p.Stream; s != nil {
		if !streamName.MatchString(s.Name) {
			bad("stream name %q: want 1-128 of [a-zA-Z0-9_.-]", s.Name)
		}
		if s.Shards < 1 {
			bad("stream %s: %d shards, want >= 1", s.Name, s.Shards)
		}
		if c.Kinesis == nil {
			bad("stream %s: no Kinesis client", s.Name)
		}
	}
	seen := map[string]bool{}
	for _, t := range p.Tables {
		if !tableName.MatchString(t.Name) {
			bad("table name %q: want 3-255 of [a-zA-Z0-9_.-]", t.Name)
		}
		if seen[t.Name] {
			bad("table %s listed twice", t.Name)
		}
		seen[t.Name] = true
		if t.PartitionKey == "" {
			bad("table %s: no partition key", t.Name)
		}
		if t.SortKey != "" && t.SortKey == t.PartitionKey {
			bad("table %s: sort key equals partition key %q", t.Name, t.SortKey)
		}
	}
	if len(p.Tables) > 0 && c.DynamoDB == nil {
		bad("%d tables: no DynamoDB client", len(p.Tables))
	}
	for _, name := range p.Topics {
		if !topicName.MatchString(name) {
			bad("topic name %q: want 1-256 of [a-zA-Z0-9_-]", name)
		}
	}
	if len(p.Topics) > 0 && c.SNS == nil {
		bad("%d topics: no SNS client", len(p.Topics))
	}
	return errors.Join(errs...)
}
