package setup_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shardwatch/shardwatch/internal/setup"
)

func TestFleetPlan(t *testing.T) {
	got := setup.FleetPlan("shop", &setup.Stream{Name: "traffic", Shards: 4})
	want := setup.Plan{
		Stream: &setup.Stream{Name: "traffic", Shards: 4},
		Tables: []setup.Table{
			{Name: "shop", PartitionKey: "ShardID"},
			{Name: "shop-results", PartitionKey: "pk", SortKey: "sk", TTLAttribute: "expires_at"},
			{Name: "shop-counters", PartitionKey: "event", SortKey: "bucket", TTLAttribute: "expires_at"},
			{Name: "shop-alarms", PartitionKey: "alarm", SortKey: "period", TTLAttribute: "expires_at"},
			{Name: "shop-deadletter", PartitionKey: "pk", SortKey: "sk", TTLAttribute: "expires_at"},
			{Name: "shop-orders", PartitionKey: "pk", SortKey: "sk"},
		},
		Topics: []string{"shop-alarms"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FleetPlan mismatch (-want +got):\n%s", diff)
	}
}

// noCalls fails the test on any AWS call: validation must reject a plan
// before touching AWS.
type noCalls struct {
	setup.KinesisAPI
	setup.DynamoDBAPI
	setup.SNSAPI
}

func TestApplyRejectsInvalidPlan(t *testing.T) {
	all := setup.Clients{Kinesis: noCalls{}, DynamoDB: noCalls{}, SNS: noCalls{}}
	tests := []struct {
		name    string
		clients setup.Clients
		plan    setup.Plan
		want    []string // substrings of the error
	}{
		{
			name:    "zero shards",
			clients: all,
			plan:    setup.Plan{Stream: &setup.Stream{Name: "s", Shards: 0}},
			want:    []string{"stream s: 0 shards"},
		},
		{
			name:    "bad names",
			clients: all,
			plan: setup.Plan{
				Stream: &setup.Stream{Name: "has space", Shards: 1},
				Tables: []setup.Table{{Name: "ab", PartitionKey: "k"}},
				Topics: []string{"dot.ted"},
			},
			want: []string{`stream name "has space"`, `table name "ab"`, `topic name "dot.ted"`},
		},
		{
			name:    "table keys",
			clients: all,
			plan: setup.Plan{Tables: []setup.Table{
				{Name: "nokey"}, {Name: "same", PartitionKey: "k", SortKey: "k"},
				{Name: "dup", PartitionKey: "k"}, {Name: "dup", PartitionKey: "k"},
			}},
			want: []string{"table nokey: no partition key", "table same: sort key equals", "table dup listed twice"},
		},
		{
			name:    "missing clients",
			clients: setup.Clients{},
			plan: setup.Plan{
				Stream: &setup.Stream{Name: "s", Shards: 1},
				Tables: []setup.Table{{Name: "tab", PartitionKey: "k"}},
				Topics: []string{"t"},
			},
			want: []string{"no Kinesis client", "no DynamoDB client", "no SNS client"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := setup.Apply(t.Context(), tc.clients, tc.plan, zaptest.NewLogger(t))
			if !errors.Is(err, setup.ErrInvalidPlan) {
				t.Fatalf("Apply error = %v, want ErrInvalidPlan", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// scriptedDynamoDB serves DescribeTable / TTL answers from a script, for
// states the local stack cannot be made to produce on demand (a table stuck
// in CREATING, a concurrent TTL enable landing between describe and update).
type scriptedDynamoDB struct {
	setup.DynamoDBAPI
	mu         sync.Mutex
	status     types.TableStatus
	ttl        []types.TimeToLiveStatus // successive DescribeTimeToLive answers; the last repeats
	updates    int
	updateErr  error
	describeTL int
}

func (s *scriptedDynamoDB) DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return &dynamodb.DescribeTableOutput{Table: &types.TableDescription{
		TableStatus: s.status,
		KeySchema:   []types.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: types.KeyTypeHash}},
	}}, nil
}

func (s *scriptedDynamoDB) DescribeTimeToLive(context.Context, *dynamodb.DescribeTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.ttl[min(s.describeTL, len(s.ttl)-1)]
	s.describeTL++
	return &dynamodb.DescribeTimeToLiveOutput{TimeToLiveDescription: &types.TimeToLiveDescription{
		TimeToLiveStatus: st, AttributeName: aws.String("expires_at"),
	}}, nil
}

func (s *scriptedDynamoDB) UpdateTimeToLive(context.Context, *dynamodb.UpdateTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates++
	return &dynamodb.UpdateTimeToLiveOutput{}, s.updateErr
}

func TestApplyWaitTimeout(t *testing.T) {
	db := &scriptedDynamoDB{status: types.TableStatusCreating}
	start := time.Now()
	_, err := setup.Apply(t.Context(), setup.Clients{DynamoDB: db}, setup.Plan{
		Tables:      []setup.Table{{Name: "stuck", PartitionKey: "k"}},
		WaitTimeout: 200 * time.Millisecond,
	}, zap.NewNop())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "table stuck") {
		t.Fatalf("Apply error = %v, want a deadline error naming the table", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Apply took %v with a 200ms wait timeout", d)
	}
}

func TestApplyTTL(t *testing.T) {
	tests := []struct {
		name        string
		ttl         []types.TimeToLiveStatus
		updateErr   error
		wantUpdates int
		wantCreated []string
		wantErr     bool
	}{
		{name: "already enabled", ttl: []types.TimeToLiveStatus{types.TimeToLiveStatusEnabled}},
		{name: "enabling", ttl: []types.TimeToLiveStatus{types.TimeToLiveStatusEnabling}},
		{
			name: "disabled", ttl: []types.TimeToLiveStatus{types.TimeToLiveStatusDisabled},
			wantUpdates: 1, wantCreated: []string{"ttl/tab"},
		},
		{
			// Another Apply enabled it between our describe and update.
			name:      "lost race",
			ttl:       []types.TimeToLiveStatus{types.TimeToLiveStatusDisabled, types.TimeToLiveStatusEnabling},
			updateErr: errors.New("ValidationException: TimeToLive is already enabled"), wantUpdates: 1,
		},
		{
			name:      "update fails",
			ttl:       []types.TimeToLiveStatus{types.TimeToLiveStatusDisabled},
			updateErr: errors.New("AccessDenied"), wantUpdates: 1, wantErr: true,
		},
		{name: "disabling", ttl: []types.TimeToLiveStatus{types.TimeToLiveStatusDisabling}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := &scriptedDynamoDB{status: types.TableStatusActive, ttl: tc.ttl, updateErr: tc.updateErr}
			res, err := setup.Apply(t.Context(), setup.Clients{DynamoDB: db}, setup.Plan{
				Tables: []setup.Table{{Name: "tab", PartitionKey: "k", TTLAttribute: "expires_at"}},
			}, zaptest.NewLogger(t))
			if (err != nil) != tc.wantErr {
				t.Fatalf("Apply error = %v, want error %v", err, tc.wantErr)
			}
			if db.updates != tc.wantUpdates {
				t.Errorf("UpdateTimeToLive calls = %d, want %d", db.updates, tc.wantUpdates)
			}
			if diff := cmp.Diff(tc.wantCreated, res.Created); diff != "" {
				t.Errorf("Created mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
